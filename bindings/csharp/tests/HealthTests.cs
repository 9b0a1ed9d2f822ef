using System.Linq;
using System.Threading;

namespace Tokenward.Tests
{
    /// <summary><see cref="TokenClient.GetHealth"/> and <see cref="TokenClient.Diagnose"/>.</summary>
    internal static class HealthTests
    {
        [Test]
        private static void HealthFollowsAFailureAndTheRecovery()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                TokenwardHealth health = client.GetHealth();
                Assert.Equal(TokenwardHealthState.Ok, health.State, "nothing asked yet");
                Assert.True(health.RemainingMs == null, "no token yet: " + health);

                client.GetToken();
                health = client.GetHealth();
                Assert.Equal(TokenwardHealthState.Ok, health.State, "after a fetch");
                Assert.True(health.RemainingMs > 0, "remaining: " + health);

                client.Invalidate(null);
                Mock.Fault("{\"status\":503,\"body\":\"down\",\"count\":\"forever\"}");
                Assert.Throws<TokenwardServerException>(() => client.GetToken(), "the 503");
                health = client.GetHealth();
                Assert.Equal(TokenwardHealthState.Failing, health.State, "after the 503");
                Assert.Equal(1L, health.ConsecutiveFailures, "failures");
                Assert.Equal("server", health.LastErrorKind, "last error kind");
                Assert.Equal((int?)503, health.LastErrorHttpStatus, "last error status");
                Assert.Contains("HTTP 503", health.LastErrorMessage, "last error message");

                long asked = Mock.TokenRequests;
                for (int i = 0; i < 20; i++)
                {
                    client.GetHealth();
                }
                Assert.Equal(asked, Mock.TokenRequests, "health asks nobody");

                // The provider recovers; after the backoff the next call fetches.
                Mock.Reset();
                for (int i = 0; ; i++)
                {
                    try
                    {
                        client.GetToken();
                        break;
                    }
                    catch (TokenwardServerException)
                    {
                        Assert.True(i < 200, "never recovered");
                        Thread.Sleep(50);
                    }
                }
                health = client.GetHealth();
                Assert.Equal(TokenwardHealthState.Ok, health.State, "recovered");
                Assert.Equal("server", health.LastErrorKind, "the last failure stays visible");
            }
        }

        [Test]
        private static void DiagnoseReportsEachCheck()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                TokenwardDiagnosis diagnosis = client.Diagnose(Mock.Url + "/api/items");
                Assert.True(diagnosis.Ok, diagnosis.ToString());
                Assert.Equal(TokenwardStatus.Ok, diagnosis.Status, "status");
                Assert.Equal(
                    "config,dns,tcp,proxy,tls,clock,token,token_sanity,probe",
                    string.Join(",", diagnosis.Checks.Select(c => c.Id)),
                    "check order");
                Assert.Equal("✓ all 8 checks passed", diagnosis.Verdict, "verdict");
                Assert.Contains("verdict: ✓ all 8 checks passed", diagnosis.ToString(), "text");
            }
            TokenClientOptions wrong = Mock.Options();
            wrong.ClientSecret = "wr0ng-s3cret";
            using (var client = new TokenClient(wrong))
            {
                TokenwardDiagnosis diagnosis = client.Diagnose();
                Assert.True(!diagnosis.Ok, "a wrong secret fails");
                Assert.Equal(TokenwardStatus.InvalidClient, diagnosis.Status, "status");
                TokenwardCheck token = diagnosis.Checks.First(c => c.Id == "token");
                Assert.Equal("fail", token.Status, "token check");
                Assert.Equal((int?)401, token.HttpStatus, "token check status");
                Assert.True(token.Fix != null && token.Cause != null, "cause and fix");
                Assert.True(diagnosis.Verdict.StartsWith("✗ token request: "), diagnosis.Verdict);
                Assert.NotContains("wr0ng-s3cret", diagnosis.Json, "no secret in the diagnosis");
            }
        }
    }
}
