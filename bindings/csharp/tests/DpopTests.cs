using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;

namespace Tokenward.Tests
{
    /// <summary>DPoP (RFC 9449) from C#: bound tokens, a proof per request through
    /// <see cref="TokenwardHandler"/>, <see cref="TokenClient.Send"/> and
    /// <see cref="TokenClient.GetHeadersFor"/>, API nonces, and the refusal of the
    /// request-independent header calls.</summary>
    internal static class DpopTests
    {
        private static TokenClient DpopClient()
        {
            Mock.Configure("{\"dpop\":\"required\"}");
            TokenClientOptions options = Mock.Options();
            options.Dpop.Generate = true;
            return new TokenClient(options);
        }

        private static string Segment(string jwt, int index)
        {
            string segment = jwt.Split('.')[index].Replace('-', '+').Replace('_', '/');
            segment += new string('=', (4 - segment.Length % 4) % 4);
            return Encoding.UTF8.GetString(Convert.FromBase64String(segment));
        }

        /// <summary>Every <c>dpop</c> request header value the mock API received, in order.</summary>
        private static List<string> ApiProofs()
        {
            var proofs = new List<string>();
            string log = Mock.Requests();
            // {"api":[...],"token":[...]}: only the API's part.
            int start = log.IndexOf("\"api\":", StringComparison.Ordinal);
            int end = log.IndexOf("\"token\":", start, StringComparison.Ordinal);
            string api = end < 0 ? log.Substring(start) : log.Substring(start, end - start);
            foreach (Match match in Regex.Matches(api, "\"dpop\":\"([A-Za-z0-9_\\-\\.]+)\""))
            {
                proofs.Add(match.Groups[1].Value);
            }
            return proofs;
        }

        [Test]
        private static void GetHeadersForCarriesAProofForThisRequest()
        {
            using (TokenClient client = DpopClient())
            {
                string token = client.GetToken();
                Assert.Contains("\"jkt\"", Mock.Claims(token), "the token is bound to the key");
                IReadOnlyDictionary<string, string> headers = client.GetHeadersFor("GET", Mock.Url + "/api/items?x=1");
                Assert.Equal("DPoP " + token, headers["Authorization"], "DPoP scheme");
                string proof = headers["DPoP"];
                Assert.Contains("\"typ\":\"dpop+jwt\"", Segment(proof, 0), "proof header");
                string claims = Segment(proof, 1);
                Assert.Equal("GET", Mock.StringMember(claims, "htm"), "htm");
                Assert.Equal(Mock.Url + "/api/items", Mock.StringMember(claims, "htu"), "htu without the query");
                KeyValuePair<int, string> answer = Mock.CallApi("/api/items?x=1", headers);
                Assert.Equal(200, answer.Key, "the API accepts it: " + answer.Value);
                Assert.Equal(401, Mock.CallApi("/api/items?x=1", headers).Key, "a proof is good once");
                var bearer = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
                {
                    ["Authorization"] = "Bearer " + token, ["tenant-code"] = "T1", ["api-version"] = "2",
                };
                Assert.Equal(401, Mock.CallApi("/api/items", bearer).Key, "the bound token as Bearer is refused");

                Assert.Throws<TokenwardNeedsRequestException>(() => client.GetHeaders(), "GetHeaders");
                var e = Assert.Throws<TokenwardNeedsRequestException>(() => client.GetAuthorization(), "GetAuthorization");
                Assert.Equal(TokenwardStatus.NeedsRequest, e.Status, "status");
                Assert.Contains("GetHeadersFor", e.Message, "the message names the per-request call");
            }
        }

        [Test]
        private static void HandlerSignsEveryRequestAndAnswersAnApiNonce()
        {
            using (TokenClient client = DpopClient())
            using (var http = new HttpClient(new TokenwardHandler(client, new HttpClientHandler())) { Timeout = TimeSpan.FromSeconds(20) })
            {
                Assert.Equal(HttpStatusCode.OK, http.GetAsync(Mock.Url + "/api/a").Result.StatusCode, "GET");
                using (var content = new StringContent("{}", Encoding.UTF8, "application/json"))
                {
                    Assert.Equal(HttpStatusCode.OK, http.PostAsync(Mock.Url + "/api/b", content).Result.StatusCode, "POST");
                }
                Mock.Configure("{\"dpop_api_nonce\":\"cs-n-1\"}");
                Assert.Equal(HttpStatusCode.OK, http.GetAsync(Mock.Url + "/api/c").Result.StatusCode, "after the nonce challenge");
                Assert.Equal(1L, Mock.TokenRequests, "a nonce challenge keeps the token");
                Mock.Revoke();
                Assert.Equal(HttpStatusCode.OK, http.GetAsync(Mock.Url + "/api/d").Result.StatusCode, "after a revocation");
                Assert.Equal(2L, Mock.TokenRequests, "one refresh");
            }
            List<string> proofs = ApiProofs();
            Assert.Equal(6, proofs.Count, "GET, POST, challenge + re-send, 401 + re-send");
            var jtis = new HashSet<string>();
            foreach (string proof in proofs)
            {
                Assert.True(jtis.Add(Mock.StringMember(Segment(proof, 1), "jti")), "every proof is new");
            }
            Assert.Equal("POST", Mock.StringMember(Segment(proofs[1], 1), "htm"), "bound to the method");
            Assert.Equal("cs-n-1", Mock.StringMember(Segment(proofs[3], 1), "nonce"), "the re-send carries the nonce");
        }

        [Test]
        private static void SendSignsTheRequest()
        {
            using (TokenClient client = DpopClient())
            using (TokenwardResponse response = client.Send("PUT", Mock.Url + "/api/items/7", null, Encoding.UTF8.GetBytes("x")))
            {
                Assert.Equal(200, response.StatusCode, "status");
                Assert.Equal("PUT", Mock.StringMember(Segment(ApiProofs()[0], 1), "htm"), "htm");
            }
        }
    }
}
