using System;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Tasks;

namespace Tokenward.Tests
{
    /// <summary><see cref="TokenwardHandler"/> in an <see cref="HttpClient"/> against the mock API.</summary>
    internal static class HandlerTests
    {
        private static HttpClient Http(TokenClient client)
        {
            return new HttpClient(new TokenwardHandler(client, new HttpClientHandler())) { Timeout = TimeSpan.FromSeconds(20) };
        }

        [Test]
        private static void InjectsTheTokenAndStaticHeaders()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                using (HttpResponseMessage response = http.GetAsync(Mock.Url + "/api/items").Result)
                {
                    string body = response.Content.ReadAsStringAsync().Result;
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "status: " + body);
                    Assert.Equal("T1", Mock.StringMember(body, "tenant_code"), "tenant_code");
                    Assert.Equal("2", Mock.StringMember(body, "api_version"), "api_version");
                    Assert.Equal(Mock.StringMember(Mock.Claims(client.GetToken()), "jti"), Mock.StringMember(body, "jti"), "the client's token was sent");
                }

                // A static header the caller set is left as set.
                var request = new HttpRequestMessage(HttpMethod.Get, Mock.Url + "/api/items");
                request.Headers.TryAddWithoutValidation("tenant-code", "T7");
                using (HttpResponseMessage response = http.SendAsync(request).Result)
                {
                    Assert.Equal("T7", Mock.StringMember(response.Content.ReadAsStringAsync().Result, "tenant_code"), "caller's tenant-code kept");
                }
                Assert.Equal(1L, Mock.TokenRequests, "one token request");
            }
        }

        [Test]
        private static void AfterRevokeOne401OneRefreshOneRetry()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                Assert.Equal(HttpStatusCode.OK, http.GetAsync(Mock.Url + "/api/items").Result.StatusCode, "first call");
                string old = client.GetToken();
                Mock.Revoke();
                long apiBefore = Mock.ApiRequests;
                using (HttpResponseMessage response = http.GetAsync(Mock.Url + "/api/items").Result)
                {
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "after revoke");
                }
                Assert.Equal(2L, Mock.ApiRequests - apiBefore, "one 401 and one retry");
                Assert.Equal(2L, Mock.TokenRequests, "one refresh");
                Assert.True(client.GetToken() != old, "a new token is cached");
                Assert.Equal(1L, client.GetStats().Invalidations, "one invalidation");
            }
        }

        [Test]
        private static void ConcurrentRequestsRejectedWithTheSameTokenCauseOneRefresh()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                client.GetToken();
                Mock.Revoke();
                Task<HttpResponseMessage>[] calls = Enumerable.Range(0, 8)
                    .Select(i => http.GetAsync(Mock.Url + "/api/items/" + i)).ToArray();
                Assert.True(Task.WaitAll(calls, 20000), "the calls finished");
                Assert.True(calls.All(c => c.Result.StatusCode == HttpStatusCode.OK), "all recovered");
                Assert.Equal(2L, Mock.TokenRequests, "one refresh for eight 401s");
            }
        }

        [Test]
        private static void PostBodyIsResentIntactOnRetry()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                client.GetToken();
                Mock.Revoke();
                const string json = "{\"name\":\"caf\u00e9 \\\"quoted\\\"\",\"n\":42}";
                var content = new StringContent(json, Encoding.UTF8, "application/json");
                using (HttpResponseMessage response = http.PostAsync(Mock.Url + "/api/items", content).Result)
                {
                    string body = response.Content.ReadAsStringAsync().Result;
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "status: " + body);
                    Assert.Equal(json, Mock.StringMember(body, "body"), "body echoed by the retry");
                    Assert.Equal("POST", Mock.StringMember(body, "method"), "method");
                }
                string log = Mock.Requests();
                MatchCollection bodies = Regex.Matches(log, "\"body\":\"\\{\\\\\"name\\\\\":\\\\\"caf\u00e9");
                Assert.Equal(2, bodies.Count, "both attempts carried the body: " + log);
                Assert.Equal(2, Regex.Matches(log, "\"content-type\":\"application/json; charset=utf-8\"").Count, "both carried the content type");
            }
        }

        [Test]
        private static void Persistent401IsReturnedAfterOneRetry()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (HttpClient http = Http(client))
            {
                using (HttpResponseMessage response = http.GetAsync(Mock.Url + "/api/always-401").Result)
                {
                    Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode, "the second 401 is returned");
                    Assert.Contains("refuses every token", string.Join(" ", response.Headers.WwwAuthenticate), "it is the API's 401");
                }
                Assert.Equal(2L, Mock.ApiRequests, "exactly one retry");
                Assert.Equal(2L, Mock.TokenRequests, "one refresh");
            }
        }

        [Test]
        private static void TokenFailuresSurfaceAsExceptions()
        {
            TokenClientOptions options = Mock.Options();
            options.ClientSecret = "wrong";
            using (var client = new TokenClient(options))
            using (HttpClient http = Http(client))
            {
                AggregateException failure = Assert.Throws<AggregateException>(() => http.GetAsync(Mock.Url + "/api/items").Wait(), "wrong secret");
                Assert.True(failure.InnerException is TokenwardInvalidClientException, "inner " + failure.InnerException);
                Assert.Equal(0L, Mock.ApiRequests, "nothing sent to the API");
            }
        }
    }
}
