using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Text;

namespace Tokenward.Tests
{
    /// <summary>
    /// The request-path policy seen from C#: <see cref="TokenClient.Send"/> hands header pairs to
    /// the core (which refuses injection and reserved headers), <see cref="TokenClient.GetHeadersFor"/>
    /// and <see cref="TokenwardHandler"/> refuse a foreign origin, the handler recovers from a
    /// GraphQL <c>UNAUTHENTICATED</c> when enabled, and an API that rejects every token causes no
    /// refresh storm.
    /// </summary>
    internal static class RequestPathTests
    {
        private static readonly string[] Reserved =
        {
            "Authorization", "Proxy-Authorization", "Host", "Content-Length",
            "Transfer-Encoding", "Connection", "TE", "Upgrade",
        };

        private static TokenClientOptions Bound()
        {
            TokenClientOptions options = Mock.Options();
            options.ApiBaseUrls.Add(Mock.Url);
            return options;
        }

        /// <summary>The mock's port under another host name: another origin.</summary>
        private static string Foreign(string path)
        {
            return Mock.Url.Replace("127.0.0.1", "localhost") + path;
        }

        private static HttpClient Http(TokenClient client)
        {
            return new HttpClient(new TokenwardHandler(client, new HttpClientHandler())) { Timeout = TimeSpan.FromSeconds(20) };
        }

        [Test]
        private static void SendRefusesHeaderInjectionNamingThePair()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                var attempts = new[]
                {
                    new KeyValuePair<string, string>("x-b", "v\r\nX-Evil: 1"),
                    new KeyValuePair<string, string>("x-b", "v\nX-Evil: 1"),
                    new KeyValuePair<string, string>("x-b", "v\rX-Evil: 1"),
                    new KeyValuePair<string, string>("x-b: 1\r\nX-Evil", "1"),
                    new KeyValuePair<string, string>("x b", "1"),
                };
                foreach (KeyValuePair<string, string> attempt in attempts)
                {
                    var headers = new List<KeyValuePair<string, string>>
                    {
                        new KeyValuePair<string, string>("x-a", "1"),
                        attempt,
                    };
                    TokenwardInvalidArgumentException error = Assert.Throws<TokenwardInvalidArgumentException>(
                        () => client.Send("GET", Mock.Url + "/api/items", headers), "injection " + attempt.Key);
                    Assert.Contains("header pair 1", error.Message, "the core names the pair");
                    Assert.NotContains("\r\n", error.Message, "no raw line break in the message");
                }
                Assert.Throws<TokenwardInvalidArgumentException>(
                    () => client.Send("GET", Mock.Url + "/api/items", new Dictionary<string, string> { { "x-a", "a\0b" } }),
                    "NUL cannot cross as a C string");
                Assert.Equal(0L, Mock.ApiRequests, "nothing was sent");
            }
        }

        [Test]
        private static void SendRefusesReservedHeadersInAnyCase()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                foreach (string name in Reserved)
                {
                    foreach (string spelled in new[] { name, name.ToLowerInvariant(), name.ToUpperInvariant() })
                    {
                        TokenwardInvalidArgumentException error = Assert.Throws<TokenwardInvalidArgumentException>(
                            () => client.Send("POST", Mock.Url + "/api/items", new Dictionary<string, string> { { spelled, "0" } }, Encoding.UTF8.GetBytes("x")),
                            spelled);
                        Assert.Contains("may not be set", error.Message, spelled);
                    }
                }
                Assert.Equal(0L, Mock.ApiRequests, "nothing was sent");
                using (TokenwardResponse response = client.Send(
                    "GET", Mock.Url + "/api/items", new Dictionary<string, string> { { "X-Request-Id", "42 43" } }))
                {
                    Assert.Equal(200, response.StatusCode, "a valid pair is sent");
                }
                Assert.Contains("\"x-request-id\":\"42 43\"", Mock.Requests(), "as given");
            }
        }

        [Test]
        private static void ForeignOriginsAreRefusedBeforeAnythingIsSent()
        {
            using (var client = new TokenClient(Bound()))
            using (HttpClient http = Http(client))
            {
                TokenwardForeignOriginException error = Assert.Throws<TokenwardForeignOriginException>(
                    () => client.Send("GET", Foreign("/api/items")), "Send");
                Assert.Equal(TokenwardStatus.ForeignOrigin, error.Status, "Status");
                Assert.Equal("TW_ERR_FOREIGN_ORIGIN", error.StatusName, "StatusName");
                Assert.True(error is TokenwardInvalidArgumentException, "also an invalid argument");
                Assert.Throws<TokenwardForeignOriginException>(() => client.GetHeadersFor("GET", Foreign("/api/items")), "GetHeadersFor");
                AggregateException failure = Assert.Throws<AggregateException>(
                    () => http.GetAsync(Foreign("/api/items")).Wait(), "the handler");
                Assert.True(failure.InnerException is TokenwardForeignOriginException, "inner " + failure.InnerException);
                Assert.Equal(0L, Mock.ApiRequests, "nothing was sent");
                Assert.Equal(0L, Mock.TokenRequests, "not even a token request");

                IReadOnlyDictionary<string, string> headers = client.GetHeadersFor("GET", Mock.Url + "/api/items?x=1");
                Assert.Contains("Bearer ", headers["Authorization"], "Authorization");
                Assert.Equal("T1", headers["tenant-code"], "static header");
                using (HttpResponseMessage response = http.GetAsync(Mock.Url + "/api/items").Result)
                {
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "the configured origin works");
                }
            }
        }

        private static HttpResponseMessage PostGraphql(HttpClient http)
        {
            var content = new StringContent("{\"query\":\"{ viewer { jti } }\"}", Encoding.UTF8, "application/json");
            return http.PostAsync(Mock.Url + "/graphql", content).Result;
        }

        [Test]
        private static void HandlerRecoversFromGraphqlUnauthenticatedWhenEnabled()
        {
            TokenClientOptions options = Mock.Options();
            options.GraphqlAuthErrors = true;
            using (var client = new TokenClient(options))
            using (HttpClient http = Http(client))
            {
                client.GetToken();
                Mock.Revoke();
                using (HttpResponseMessage response = PostGraphql(http))
                {
                    string body = response.Content.ReadAsStringAsync().Result;
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "status");
                    Assert.Equal(Mock.StringMember(Mock.Claims(client.GetToken()), "jti"), Mock.StringMember(body, "jti"), "answered with the new token: " + body);
                }
                Assert.Equal(2L, Mock.TokenRequests, "one refresh");
            }
            Mock.Reset();
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                client.GetToken();
                Mock.Revoke();
                using (HttpResponseMessage response = PostGraphql(http))
                {
                    Assert.Contains("UNAUTHENTICATED", response.Content.ReadAsStringAsync().Result, "returned as it is without the option");
                }
                Assert.Equal(1L, Mock.TokenRequests, "no refresh");
            }
        }

        [Test]
        private static void AnApiThatRejectsEveryTokenCausesNoRefreshStorm()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                for (int i = 0; i < 50; i++)
                {
                    TokenwardUnauthorizedException error = Assert.Throws<TokenwardUnauthorizedException>(
                        () => client.Send("GET", Mock.Url + "/api/always-401"), "send " + i);
                    Assert.Contains("freshly issued", error.Message, "what to check");
                }
                Assert.True(Mock.TokenRequests <= 2, "token requests: " + Mock.TokenRequests);
                Assert.Equal(51L, Mock.ApiRequests, "one re-send, then none");
            }
            Mock.Reset();
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                using (HttpResponseMessage response = http.GetAsync(Mock.Url + "/api/always-401").Result)
                {
                    Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode, "one re-send, then the answer as it is");
                }
                for (int i = 0; i < 49; i++)
                {
                    AggregateException failure = Assert.Throws<AggregateException>(
                        () => http.GetAsync(Mock.Url + "/api/always-401").Wait(), "handler " + i);
                    Assert.True(failure.InnerException is TokenwardUnauthorizedException, "inner " + failure.InnerException);
                }
                Assert.True(Mock.TokenRequests <= 2, "token requests: " + Mock.TokenRequests);
                Assert.Equal(51L, Mock.ApiRequests, "one re-send, then none");
            }
        }
    }
}
