using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace Tokenward.Tests
{
    /// <summary>Tokens, headers, configuration, errors and concurrency of <see cref="TokenClient"/>.</summary>
    internal static class ClientTests
    {
        [Test]
        private static void TokenAuthorizationAndHeadersMatchTheMock()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                string token = client.GetToken();
                string claims = Mock.Claims(token);
                Assert.Equal("demo-client", Mock.StringMember(claims, "client_id"), "client_id claim");
                Assert.Equal("EventsApi", Mock.StringMember(claims, "scope"), "scope claim");
                Assert.Equal("Bearer " + token, client.GetAuthorization(), "authorization");

                IReadOnlyDictionary<string, string> headers = client.GetHeaders();
                Assert.Equal("Authorization,tenant-code,api-version", string.Join(",", headers.Keys), "header order");
                Assert.Equal("Bearer " + token, headers["authorization"], "case-insensitive lookup");
                Assert.Equal("T1", headers["Tenant-Code"], "tenant-code");
                Assert.Equal("2", headers["api-version"], "api-version");
                Assert.NotContains(token, headers.ToString(), "headers ToString");

                KeyValuePair<int, string> answer = Mock.CallApi("/api/items", headers);
                Assert.Equal(200, answer.Key, "API status with the headers: " + answer.Value);
                Assert.Equal("T1", Mock.StringMember(answer.Value, "tenant_code"), "tenant_code echo");
                Assert.Equal("2", Mock.StringMember(answer.Value, "api_version"), "api_version echo");

                for (int i = 0; i < 1000; i++)
                {
                    Assert.Equal(token, client.GetToken(), "cached token");
                }
                Assert.Equal(1L, Mock.TokenRequests, "mock token requests");
                TokenwardStats stats = client.GetStats();
                Assert.Equal(1L, stats.TokenRequests, "core token_requests");
                Assert.True(stats.RemainingMs > 3500 * 1000L - 60000 && stats.RemainingMs <= 3600 * 1000L, "remaining_ms " + stats);
            }
        }

        [Test]
        private static void FromEnvironment()
        {
            var variables = new Dictionary<string, string>
            {
                { "TWCS_TOKEN_URL", Mock.TokenUrl },
                { "TWCS_CLIENT_ID", "demo-client" },
                { "TWCS_CLIENT_SECRET", "demo-secret" },
                { "TWCS_SCOPE", "EventsApi read" },
                { "TWCS_ALLOW_HTTP", "1" },
                { "TWCS_TENANT_CODE", "T9" },
                { "TWCS_API_VERSION", "3" },
            };
            try
            {
                foreach (KeyValuePair<string, string> variable in variables)
                {
                    Environment.SetEnvironmentVariable(variable.Key, variable.Value);
                }
                using (TokenClient client = TokenClient.FromEnvironment("TWCS_"))
                {
                    IReadOnlyDictionary<string, string> headers = client.GetHeaders();
                    Assert.Equal("T9", headers["tenant-code"], "tenant-code from TWCS_TENANT_CODE");
                    Assert.Equal("3", headers["api-version"], "api-version from TWCS_API_VERSION");
                    Assert.Equal("EventsApi read", Mock.StringMember(Mock.Claims(client.GetToken()), "scope"), "scope");
                    Assert.Equal(200, Mock.CallApi("/api/items", headers).Key, "API status");
                    Assert.NotContains("demo-secret", client.ToString(), "ToString");
                }
            }
            finally
            {
                foreach (string name in variables.Keys)
                {
                    Environment.SetEnvironmentVariable(name, null);
                }
            }
            TokenwardConfigException missing = Assert.Throws<TokenwardConfigException>(
                () => TokenClient.FromEnvironment("TWCS_NOTHING_"), "empty environment");
            Assert.Contains("TWCS_NOTHING_TOKEN_URL", missing.Message, "message names the variable");
        }

        private static TokenClientOptions FailFast()
        {
            TokenClientOptions options = Mock.Options();
            options.Retry.MaxAttempts = 1;
            options.Timeouts.RequestMs = 2000;
            return options;
        }

        private static T FetchFails<T>(TokenClientOptions options, TokenwardStatus status) where T : TokenwardException
        {
            using (var client = new TokenClient(options))
            {
                T error = Assert.Throws<T>(() => client.GetToken(), typeof(T).Name);
                Assert.Equal(status, error.Status, "Status");
                Assert.True(error.Message.Length > 0, "a message");
                Assert.NotContains(options.ClientSecret ?? "demo-secret", error.Message, "no secret in the message");
                Assert.Equal(NativeMethods.StatusName((int)status), error.StatusName, "StatusName matches tw_status_name");
                return error;
            }
        }

        [Test]
        private static void ARetryAfterOfADayIsRememberedOnlyUpToMaxRetryAfterMs()
        {
            Mock.Fault("{\"target\":\"token\",\"count\":1,\"status\":429,\"retry_after\":\"86400\",\"body\":{\"error\":\"slow_down\"}}");
            TokenClientOptions options = FailFast();
            options.Retry.MaxRetryAfterMs = 200;
            using (var client = new TokenClient(options))
            {
                Assert.Throws<TokenwardRateLimitedException>(() => client.GetToken(), "the 429");
                string token = null;
                // Bounded: 300 tries 10 ms apart, far less than the day the server asked for.
                for (int i = 0; i < 300 && token == null; i++)
                {
                    try
                    {
                        token = client.GetToken();
                    }
                    catch (TokenwardRateLimitedException)
                    {
                        Thread.Sleep(10);
                    }
                }
                Assert.True(token != null, "a token once the capped Retry-After passed");
                Assert.Equal(2L, Mock.TokenRequests, "the 429, then one request that worked");
            }
        }

        [Test]
        private static void ErrorFamiliesMapToExceptionTypes()
        {
            TokenClientOptions options = Mock.Options();
            options.TokenUrl = "http://example.com/oauth/token";
            TokenwardConfigException config = Assert.Throws<TokenwardConfigException>(() => new TokenClient(options), "http to a non-loopback host");
            Assert.Contains("token_url", config.Message, "message names the key");
            Assert.Equal("TW_ERR_CONFIG", config.StatusName, "StatusName");

            options = Mock.Options();
            options.Retry.MaxAttempts = 0;
            options.RefreshMode = "sometimes";
            Assert.Throws<TokenwardConfigException>(() => new TokenClient(options), "bad refresh_mode");

            options = FailFast();
            options.ClientSecret = "wrong-secret-\u00e9\"x";
            TokenwardInvalidClientException invalidClient = FetchFails<TokenwardInvalidClientException>(options, TokenwardStatus.InvalidClient);
            Assert.Contains("invalid_client", invalidClient.Message, "OAuth error code in the message");

            Mock.Configure("{\"allowed_scopes\":[\"EventsApi\"]}");
            options = FailFast();
            options.Scope = "Nope";
            FetchFails<TokenwardInvalidScopeException>(options, TokenwardStatus.InvalidScope);

            Mock.Fault("{\"status\":400,\"body\":{\"error\":\"unauthorized_client\"}}");
            FetchFails<TokenwardUnauthorizedClientException>(FailFast(), TokenwardStatus.UnauthorizedClient);

            Mock.Fault("{\"status\":400,\"body\":{\"error\":\"invalid_request\",\"error_description\":\"odd\"}}");
            FetchFails<TokenwardOAuthException>(FailFast(), TokenwardStatus.OAuth);

            Mock.Fault("{\"status\":429,\"retry_after\":\"0\",\"body\":{\"error\":\"slow_down\"}}");
            FetchFails<TokenwardRateLimitedException>(FailFast(), TokenwardStatus.RateLimited);

            Mock.Fault("{\"status\":503,\"body\":\"down\"}");
            FetchFails<TokenwardServerException>(FailFast(), TokenwardStatus.Server);

            Mock.Fault("{\"status\":200,\"body\":\"not json\"}");
            FetchFails<TokenwardBadResponseException>(FailFast(), TokenwardStatus.BadResponse);

            options = FailFast();
            options.TokenUrl = "http://127.0.0.1:" + Mock.ClosedPort() + "/oauth/token";
            FetchFails<TokenwardNetworkException>(options, TokenwardStatus.Network);

            Mock.Fault("{\"kind\":\"hang\"}");
            options = FailFast();
            options.Timeouts.RequestMs = 300;
            FetchFails<TokenwardTimeoutException>(options, TokenwardStatus.Timeout);

            options = FailFast();
            options.TokenUrl = "https://" + Mock.Url.Substring("http://".Length) + "/oauth/token";
            FetchFails<TokenwardTlsException>(options, TokenwardStatus.Tls);

            Assert.Equal(0L, Mock.Counter(Mock.Get("stats"), "tokens_issued"), "no token issued to the failing clients");

            using (var client = new TokenClient(Mock.Options()))
            {
                TokenwardForbiddenException forbidden = Assert.Throws<TokenwardForbiddenException>(
                    () => client.Send("GET", Mock.Url + "/api/forbidden"), "403");
                Assert.Equal(TokenwardStatus.Forbidden, forbidden.Status, "Status");
                Assert.Throws<TokenwardUnauthorizedException>(() => client.Send("GET", Mock.Url + "/api/always-401"), "401 after one refresh");
                TokenwardInvalidArgumentException surrogate = Assert.Throws<TokenwardInvalidArgumentException>(
                    () => client.Invalidate("abc\ud800"), "unpaired surrogate");
                Assert.Equal(TokenwardStatus.InvalidArgument, surrogate.Status, "Status");
                Assert.True(surrogate is TokenwardException, "a TokenwardException");
            }
        }

        [Test]
        private static void OptionsWithQuotesBackslashesAndUnicodeSerializeCorrectly()
        {
            const string id = "cli\"ent\\\u00fc";
            const string secret = "s\"e\\c/r\u00e9t \U0001F600 \t\u0001 end";
            var writer = new JsonWriter();
            writer.Value(new Dictionary<string, string> { { id, secret } });
            Assert.Equal("{\"cli\\\"ent\\\\\u00fc\":\"s\\\"e\\\\c/r\u00e9t \U0001F600 \\t\\u0001 end\"}", writer.ToString(), "JsonWriter escaping");
            Mock.Configure("{\"clients\":" + writer + "}");

            TokenClientOptions options = Mock.Options();
            options.ClientId = id;
            options.ClientSecret = secret;
            options.Scope = "EventsApi r\u00e9sum\u00e9";
            options.Headers["tenant-code"] = "T\"1\\ \u00fc\u20ac";
            options.ExtraParams["tenant"] = "acme \"corp\" \\ \u65e5\u672c \U0001F600";
            Assert.NotContains("\u00e9t", options.ToString(), "options ToString hides the secret");
            using (var client = new TokenClient(options))
            {
                string claims = Mock.Claims(client.GetToken());
                Assert.Equal(id, Mock.StringMember(claims, "client_id"), "client id round trip");
                Assert.Equal("EventsApi r\u00e9sum\u00e9", Mock.StringMember(claims, "scope"), "scope round trip");
                Assert.Equal(options.ExtraParams["tenant"], Mock.StringMember(claims, "tenant"), "extra_params round trip");
                Assert.Equal(options.Headers["tenant-code"], client.GetHeaders()["tenant-code"], "header round trip");
                Assert.NotContains("\u00e9t", client.ToString(), "client ToString hides the secret");
            }

            options = Mock.Options();
            options.ClientSecret = "half a pair \ud83d";
            Assert.Throws<TokenwardInvalidArgumentException>(() => new TokenClient(options), "unpaired surrogate in options");

            options = Mock.Options();
            options.Headers["tenant-code"] = "T1\r\nX-Injected: yes";
            TokenwardConfigException injected = Assert.Throws<TokenwardConfigException>(() => new TokenClient(options), "CR LF in a header value");
            Assert.Contains("tenant-code", injected.Message, "message names the header");
        }

        [Test]
        private static void SixteenThreadsOnAColdCacheMakeOneTokenRequest()
        {
            Mock.Configure("{\"token_delay_ms\":300}");
            using (var client = new TokenClient(Mock.Options()))
            using (var start = new Barrier(16))
            {
                Task<string>[] tasks = Enumerable.Range(0, 16).Select(i => Task.Factory.StartNew(
                    () =>
                    {
                        start.SignalAndWait();
                        return i % 2 == 0 ? client.GetToken() : client.GetHeaders()["Authorization"].Substring(7);
                    },
                    TaskCreationOptions.LongRunning)).ToArray();
                Assert.True(Task.WaitAll(tasks, 20000), "the tasks finished");
                Assert.Equal(1, tasks.Select(t => t.Result).Distinct().Count(), "one token for all");
                Assert.Equal(1L, Mock.TokenRequests, "mock token requests");
                Assert.Equal(1L, client.GetStats().TokenRequests, "core token requests");
            }
        }

        [Test]
        private static void InvalidateAndExpiryBypassTheMemo()
        {
            Mock.Configure("{\"ttl_secs\":2}");
            using (var client = new TokenClient(Mock.Options()))
            {
                string first = client.GetToken();
                Assert.Equal(first, client.GetToken(), "memo hit");
                client.Invalidate("not-the-current-token");
                Assert.Equal(first, client.GetToken(), "another token's invalidation keeps the current one");
                client.Invalidate(first);
                string second = client.GetToken();
                Assert.True(second != first, "a new token after Invalidate");
                Assert.Equal("Bearer " + second, client.GetAuthorization(), "authorization follows");
                Assert.Equal(2L, Mock.TokenRequests, "two token requests");

                // A 2 s token: the memo must never outlive the core's own refresh point.
                Thread.Sleep(2300);
                string third = client.GetToken();
                Assert.True(third != second, "a new token after expiry");
                Assert.Equal(200, Mock.CallApi("/api/items", client.GetHeaders()).Key, "the new token is valid");

                client.Invalidate();
                Assert.True(client.GetToken() != third, "Invalidate() evicts unconditionally");
            }
        }

        [Test]
        private static void SetClientSecretRotates()
        {
            var options = FailFast();
            options.ClientSecret = "old-secret";
            using (var client = new TokenClient(options))
            {
                Assert.Throws<TokenwardInvalidClientException>(() => client.GetToken(), "old secret");
                client.SetClientSecret("demo-secret");
                Assert.True(client.GetToken().Length > 0, "token with the new secret");
                Assert.Throws<TokenwardConfigException>(() => client.SetClientSecret(""), "empty secret");
            }
        }

        [Test]
        private static void SendReturnsStatusBodyAndHeaders()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                TokenwardResponse response;
                using (response = client.Send("GET", Mock.Url + "/api/items?page=2"))
                {
                    Assert.Equal(200, response.StatusCode, "status: " + response.BodyText);
                    Assert.Equal("page=2", Mock.StringMember(response.BodyText, "query"), "query echo");
                    Assert.Equal("T1", Mock.StringMember(response.BodyText, "tenant_code"), "tenant_code echo");
                    Assert.Contains("application/json", response.GetHeader("CONTENT-TYPE"), "content type");
                    Assert.Equal(null, response.GetHeader("x-not-there"), "missing header");
                }
                Assert.Throws<ObjectDisposedException>(() => response.GetHeader("content-type"), "header after Dispose");

                byte[] body = System.Text.Encoding.UTF8.GetBytes("{\"name\":\"caf\u00e9\"}");
                using (response = client.Send("POST", Mock.Url + "/api/items", new Dictionary<string, string> { { "x-correlation-id", "abc" } }, body))
                {
                    Assert.Equal("{\"name\":\"caf\u00e9\"}", Mock.StringMember(response.BodyText, "body"), "body echo");
                    Assert.Equal("POST", Mock.StringMember(response.BodyText, "method"), "method echo");
                }
                Assert.Contains("\"x-correlation-id\":\"abc\"", Mock.Requests(), "extra header sent");

                Mock.Revoke();
                using (response = client.Send("GET", Mock.Url + "/api/items"))
                {
                    Assert.Equal(200, response.StatusCode, "recovered after revoke");
                }
                Mock.Fault("{\"target\":\"api\",\"status\":500,\"body\":\"boom\"}");
                using (response = client.Send("GET", Mock.Url + "/api/items"))
                {
                    Assert.Equal(500, response.StatusCode, "a 5xx is a response, not an exception");
                    Assert.Equal("boom", response.BodyText, "its body");
                }
            }
        }
    

        [Test]
        private static void MaxResponseBytesCapsTheBodySendReads()
        {
            TokenClientOptions options = Mock.Options();
            options.MaxResponseBytes = 64;
            using (var client = new TokenClient(options))
            {
                Mock.Fault("{\"target\":\"api\",\"status\":200,\"body\":\"" + new string('x', 64) + "\"}");
                using (TokenwardResponse response = client.Send("GET", Mock.Url + "/api/items"))
                {
                    Assert.Equal(64, response.Body.Length, "a body of exactly the cap is read");
                }
                Mock.Fault("{\"target\":\"api\",\"status\":200,\"body\":\"" + new string('x', 65) + "\"}");
                TokenwardBadResponseException tooLong = Assert.Throws<TokenwardBadResponseException>(
                    () => client.Send("GET", Mock.Url + "/api/items"), "a body over the cap");
                Assert.Contains("64-byte limit", tooLong.Message, "the message names the cap");
                Assert.True(client.GetToken().Length > 0, "the token is unaffected: the cap is for API bodies");
            }
        }
    }
}
