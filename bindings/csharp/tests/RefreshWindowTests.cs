using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace Tokenward.Tests
{
    /// <summary>
    /// The memo between a token's fresh and usable points: served while one thread asks the
    /// core, never past the usable point, never after an eviction, and the new token is taken
    /// up. Short mock tokens and a slow token endpoint put the clients in that window often.
    /// </summary>
    internal static class RefreshWindowTests
    {
        [Test]
        private static void EightThreadsThroughBackgroundRefreshes()
        {
            Hammer(null, 4, 1500, 6000);
        }

        [Test]
        private static void EightThreadsThroughInlineRefreshes()
        {
            Hammer("inline", 3, 1000, 5000);
        }

        [Test]
        private static void EightThreadsWhenRefreshesLandAfterTheUsablePoint()
        {
            // 2 s tokens are usable for 1.8 s and refreshed from about 1 s on: a 1.5 s token
            // endpoint leaves every caller without a usable token for a while each time.
            Hammer(null, 2, 1500, 5000);
        }

        /// <summary>
        /// Eight threads call GetToken, GetAuthorization or GetHeaders in a loop for
        /// <paramref name="runMs"/> against tokens of <paramref name="ttlSecs"/> from a token
        /// endpoint that answers after <paramref name="delayMs"/>.
        /// </summary>
        /// <remarks>
        /// The core counts a token's usable point from just before it sent the request, and the
        /// mock answered at least <paramref name="delayMs"/> later; so the point lies at or
        /// before (first time a caller got the token) − delay + lifetime − margin, on the same
        /// monotonic clock as <see cref="Stopwatch"/>. No call that started after that bound
        /// may have returned the token. The run outlasts a lifetime, so a correct memo must
        /// have moved on to a newer token; each thread sees tokens in the order the mock
        /// issued them (never an older one again).
        /// </remarks>
        private static void Hammer(string refreshMode, int ttlSecs, int delayMs, int runMs)
        {
            Mock.Configure("{\"ttl_secs\":" + ttlSecs + ",\"token_delay_ms\":" + delayMs + "}");
            TokenClientOptions options = Mock.Options();
            options.RefreshMode = refreshMode;
            double marginSecs = Math.Min(30.0, ttlSecs / 10.0);
            long usableAfterArrival = (long)((ttlSecs - marginSecs - delayMs / 1000.0) * Stopwatch.Frequency);

            const int threads = 8;
            var observed = new Observations[threads];
            using (var client = new TokenClient(options))
            using (var start = new Barrier(threads))
            {
                long stopAt = 0;
                Task[] workers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(
                    () =>
                    {
                        var seen = new Observations();
                        start.SignalAndWait();
                        if (t == 0)
                        {
                            Volatile.Write(ref stopAt, Stopwatch.GetTimestamp() + runMs * Stopwatch.Frequency / 1000);
                        }
                        start.SignalAndWait();
                        long end = Volatile.Read(ref stopAt);
                        long returned = 0;
                        while (returned < end)
                        {
                            long called = Stopwatch.GetTimestamp();
                            string token;
                            switch (t % 3)
                            {
                                case 0: token = client.GetToken(); break;
                                case 1: token = client.GetAuthorization().Substring("Bearer ".Length); break;
                                default: token = client.GetHeaders()["Authorization"].Substring("Bearer ".Length); break;
                            }
                            returned = Stopwatch.GetTimestamp();
                            seen.Add(token, called, returned);
                        }
                        observed[t] = seen;
                    },
                    TaskCreationOptions.LongRunning)).ToArray();
                Assert.True(Task.WaitAll(workers, runMs + 30000), "the workers finished");
            }

            var firstReturned = new Dictionary<string, long>();
            var lastCalled = new Dictionary<string, long>();
            foreach (Observations seen in observed)
            {
                long previous = -1;
                foreach (Observations.Run run in seen.Runs)
                {
                    long jti = Jti(run.Token);
                    Assert.True(jti >= previous, "a thread got token jti " + jti + " after the newer jti " + previous);
                    previous = jti;
                    long first;
                    firstReturned[run.Token] = firstReturned.TryGetValue(run.Token, out first) ? Math.Min(first, run.FirstReturned) : run.FirstReturned;
                    long last;
                    lastCalled[run.Token] = lastCalled.TryGetValue(run.Token, out last) ? Math.Max(last, run.LastCalled) : run.LastCalled;
                }
            }
            foreach (KeyValuePair<string, long> token in firstReturned)
            {
                long usableBound = token.Value + usableAfterArrival;
                long late = lastCalled[token.Key] - usableBound;
                Assert.True(late < 0, "token jti " + Jti(token.Key) + " was returned by a call that started "
                    + (late * 1000.0 / Stopwatch.Frequency).ToString("F1", CultureInfo.InvariantCulture) + " ms after its usable point");
            }
            Assert.True(firstReturned.Count >= 2, "the callers moved on to a new token: " + firstReturned.Count + " seen");
        }

        private static long Jti(string token)
        {
            return long.Parse(Mock.StringMember(Mock.Claims(token), "jti"), CultureInfo.InvariantCulture);
        }

        /// <summary>One thread's calls, compressed into runs of the same token.</summary>
        private sealed class Observations
        {
            internal readonly List<Run> Runs = new List<Run>();
            private Run _current;

            internal void Add(string token, long called, long returned)
            {
                if (_current != null && (ReferenceEquals(token, _current.Token) || token == _current.Token))
                {
                    _current.LastCalled = called;
                    return;
                }
                _current = new Run { Token = token, FirstReturned = returned, LastCalled = called };
                Runs.Add(_current);
            }

            internal sealed class Run
            {
                internal string Token;
                internal long FirstReturned;
                internal long LastCalled;
            }
        }

        /// <summary>
        /// Puts a client with inline refreshes in its refresh window with one thread inside the
        /// core doing the refresh (2 s), checks that the other callers are answered from the
        /// memo meanwhile, then applies <paramref name="operation"/> and hands the client to
        /// <paramref name="after"/> while the refresh is still running.
        /// </summary>
        private static void WhileAnotherThreadRefreshes(Action<TokenClient, string> operation, Action<TokenClient, string> after)
        {
            Mock.Configure("{\"ttl_secs\":10,\"token_delay_ms\":2000}");
            TokenClientOptions options = Mock.Options();
            options.RefreshMode = "inline";
            var client = new TokenClient(options);
            try
            {
                string first = client.GetToken();
                // The core's refresh point is 4.5–5 s after the request (half the lifetime, less
                // up to 10 % jitter) and its usable point 9 s after it (a 1 s margin). The memo
                // counts both from before its native call, which took the 2 s of the fetch, so
                // it may answer until 7 s: 3.1 s more puts this inside the refresh window with
                // about 2 s to spare for the checks below.
                Thread.Sleep(3100);
                Task<string> refresher = Task.Factory.StartNew(() => client.GetToken(), TaskCreationOptions.LongRunning);
                Assert.True(SpinWait.SpinUntil(() => Mock.TokenRequests == 2, 10000), "the refresh reached the token endpoint");
                Assert.True(!refresher.IsCompleted, "the refreshing thread is still inside the core");

                long coreHits = client.GetStats().CacheHits;
                Assert.Equal(first, client.GetToken(), "GetToken from the memo");
                Assert.Equal("Bearer " + first, client.GetAuthorization(), "GetAuthorization from the memo");
                Assert.Equal("Bearer " + first, client.GetHeaders()["Authorization"], "GetHeaders from the memo");
                Assert.Equal(coreHits, client.GetStats().CacheHits, "no call reached the core while another thread refreshes");

                operation(client, first);
                after(client, first);
                Assert.True(refresher.Wait(20000), "the refreshing thread returned");
            }
            finally
            {
                client.Dispose();
            }
        }

        [Test]
        private static void InvalidateEndsTheWindowMemo()
        {
            WhileAnotherThreadRefreshes(
                (client, first) => client.Invalidate(first),
                (client, first) =>
                {
                    string next = client.GetToken();
                    Assert.True(next != first, "a new token after Invalidate");
                    Assert.Equal("Bearer " + next, client.GetAuthorization(), "GetAuthorization follows");
                    Assert.Equal("Bearer " + next, client.GetHeaders()["Authorization"], "GetHeaders follows");
                });
        }

        [Test]
        private static void SetClientSecretEndsTheWindowMemo()
        {
            WhileAnotherThreadRefreshes(
                (client, first) => client.SetClientSecret("demo-secret"),
                (client, first) =>
                {
                    Assert.True(client.GetHeaders()["Authorization"] != "Bearer " + first, "GetHeaders: a new token after SetClientSecret");
                    Assert.True(client.GetToken() != first, "GetToken: a new token after SetClientSecret");
                });
        }

        [Test]
        private static void DisposeEndsTheWindowMemo()
        {
            WhileAnotherThreadRefreshes(
                (client, first) => client.Dispose(),
                (client, first) =>
                {
                    Assert.Throws<ObjectDisposedException>(() => client.GetToken(), "GetToken after Dispose");
                    Assert.Throws<ObjectDisposedException>(() => client.GetAuthorization(), "GetAuthorization after Dispose");
                    Assert.Throws<ObjectDisposedException>(() => client.GetHeaders(), "GetHeaders after Dispose");
                });
        }

        [Test]
        private static void SendRecoveringFromA401DropsTheMemoBeforeItsRetry()
        {
            using (var client = new TokenClient(Mock.Options()))
            using (var evicted = new ManualResetEventSlim())
            {
                string first = client.GetToken();
                // The API now rejects it; the token Send fetches after the 401 takes a second.
                Mock.Revoke();
                Mock.Configure("{\"token_delay_ms\":1000}");
                client.EventReceived += (sender, e) =>
                {
                    if (e.Kind == TokenwardEventKind.Invalidated)
                    {
                        evicted.Set();
                    }
                };
                Task<int> send = Task.Factory.StartNew(
                    () =>
                    {
                        using (TokenwardResponse response = client.Send("GET", Mock.Url + "/api/items"))
                        {
                            return response.StatusCode;
                        }
                    },
                    TaskCreationOptions.LongRunning);
                Assert.True(evicted.Wait(10000), "Send made the core evict the rejected token");
                string during = client.GetToken();
                Assert.True(during != first, "the memo no longer answers with the rejected token while Send fetches");
                Assert.Equal(200, send.Result, "Send recovered");
                Assert.Equal(during, client.GetToken(), "the new token is memoized");
                Assert.Equal(200, Mock.CallApi("/api/items", client.GetHeaders()).Key, "and the API accepts it");
            }
        }
    }
}
