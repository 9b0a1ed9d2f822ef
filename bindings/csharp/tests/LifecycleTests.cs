using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace Tokenward.Tests
{
    /// <summary>Dispose, finalization and events.</summary>
    internal static class LifecycleTests
    {
        [Test]
        private static void DisposeTwiceAndUseAfterDispose()
        {
            long live = TokenClientHandle.LiveCount;
            var client = new TokenClient(Mock.Options());
            Assert.Equal(live + 1, TokenClientHandle.LiveCount, "one native client");
            client.GetToken(); // warm memo: the checks below must not be answered from it
            client.Dispose();
            client.Dispose();
            Assert.Equal(live, TokenClientHandle.LiveCount, "freed by Dispose");
            Assert.Contains("disposed", client.ToString(), "ToString");
            Assert.Throws<ObjectDisposedException>(() => client.GetToken(), "GetToken");
            Assert.Throws<ObjectDisposedException>(() => client.GetAuthorization(), "GetAuthorization");
            Assert.Throws<ObjectDisposedException>(() => client.GetHeaders(), "GetHeaders");
            Assert.Throws<ObjectDisposedException>(() => client.Invalidate(), "Invalidate");
            Assert.Throws<ObjectDisposedException>(() => client.SetClientSecret("x"), "SetClientSecret");
            Assert.Throws<ObjectDisposedException>(() => client.GetStats(), "GetStats");
            Assert.Throws<ObjectDisposedException>(() => client.Send("GET", Mock.Url + "/api/items"), "Send");
        }

        [Test]
        private static void DisposeDuringACallWaitsForItToFinish()
        {
            Mock.Configure("{\"token_delay_ms\":500}");
            long live = TokenClientHandle.LiveCount;
            var client = new TokenClient(Mock.Options());
            Task<string> fetch = Task.Factory.StartNew(() => client.GetToken(), TaskCreationOptions.LongRunning);
            Thread.Sleep(150);
            client.Dispose();
            Assert.Equal(live + 1, TokenClientHandle.LiveCount, "the handle outlives the running call");
            Assert.True(fetch.Result.Length > 0, "the running call finished normally");
            Assert.True(WaitFor(() => TokenClientHandle.LiveCount == live, 2000), "freed when the call returned");
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Abandon(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var client = new TokenClient(Mock.Options());
                client.EventReceived += (sender, args) => { };
                client.GetToken();
                client.GetHeaders();
            }
        }

        private static bool WaitFor(Func<bool> condition, int milliseconds)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(milliseconds);
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                {
                    return false;
                }
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Thread.Sleep(20);
            }
            return true;
        }

        private static long ResidentKiB()
        {
            string line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return long.Parse(line.Substring(6).Trim().Split(' ')[0]);
        }

        [Test]
        private static void FinalizerReleasesAbandonedClients()
        {
            long live = TokenClientHandle.LiveCount;
            const int perRound = 150;
            long[] resident = new long[4];
            for (int round = 0; round < resident.Length; round++)
            {
                Abandon(perRound);
                Assert.True(WaitFor(() => TokenClientHandle.LiveCount == live, 10000),
                    "round " + round + ": every abandoned client finalized (" + (TokenClientHandle.LiveCount - live) + " left)");
                resident[round] = ResidentKiB();
            }
            // Warm-up rounds grow the heaps; after that, abandoned clients must not add up.
            long growth = resident[3] - resident[1];
            Console.WriteLine("        resident KiB after each round of {0} abandoned clients: {1}", perRound, string.Join(", ", resident));
            Assert.True(growth < 8 * 1024, "resident memory grew by " + growth + " KiB over " + (2 * perRound) + " finalized clients");
            Assert.Equal((long)(resident.Length * perRound), Mock.TokenRequests, "each client fetched");
        }

        [Test]
        private static void ASecretFileOthersCanReadIsReportedOnceToTheFirstHandler()
        {
            string path = Path.Combine(Path.GetTempPath(), "tw-cs-secret-" + Process.GetCurrentProcess().Id);
            File.WriteAllText(path, "demo-secret\n");
            try
            {
                // File.WriteAllText leaves the umask's mode; make it 0644 whatever the umask.
                Process chmod = Process.Start("chmod", "0644 " + path);
                chmod.WaitForExit();
                Assert.Equal(0, chmod.ExitCode, "chmod");
                TokenClientOptions options = Mock.Options();
                options.ClientSecret = null;
                options.ClientSecretFile = path;
                using (var client = new TokenClient(options))
                {
                    var first = new ConcurrentQueue<TokenwardEventArgs>();
                    client.EventReceived += (s, e) => first.Enqueue(e);
                    TokenwardEventArgs[] warnings = first.Where(e => e.Kind == TokenwardEventKind.Warning).ToArray();
                    Assert.Equal(1, warnings.Length, "one warning: " + string.Join(" | ", first));
                    Assert.Equal("warning", warnings[0].KindName, "its name");
                    Assert.Contains("client_secret_file", warnings[0].Message, "names the key");
                    Assert.NotContains("demo-secret", warnings[0].Message, "no secret");
                    var second = new ConcurrentQueue<TokenwardEventArgs>();
                    client.EventReceived += (s, e) => second.Enqueue(e);
                    client.GetToken();
                    Assert.True(!second.Any(e => e.Kind == TokenwardEventKind.Warning), "once per client");
                }
            }
            finally
            {
                File.Delete(path);
            }
        }

        [Test]
        private static void EventsCarryNoSecretsAndReachHandlers()
        {
            var received = new ConcurrentQueue<TokenwardEventArgs>();
            object sender = null;
            using (var client = new TokenClient(Mock.Options()))
            {
                EventHandler<TokenwardEventArgs> handler = (s, e) => { sender = s; received.Enqueue(e); };
                client.EventReceived += handler;
                string token = client.GetToken();
                client.Invalidate(token);
                client.GetToken();
                Assert.True(SpinWait.SpinUntil(() => received.Count >= 3, 2000), "three events: " + string.Join(" | ", received));
                Assert.True(ReferenceEquals(client, sender), "sender is the client");
                TokenwardEventArgs[] events = received.ToArray();
                Assert.Equal(TokenwardEventKind.TokenAcquired, events[0].Kind, "first event");
                Assert.Equal("token_acquired", events[0].KindName, "its name");
                Assert.True(events.Any(e => e.Kind == TokenwardEventKind.Invalidated && e.KindName == "invalidated"), "an invalidated event");
                foreach (TokenwardEventArgs e in events)
                {
                    Assert.NotContains("demo-secret", e.Message, "no secret in " + e.Kind);
                    Assert.NotContains(token, e.Message, "no full token in " + e.Kind);
                    Assert.True(e.Message.Length > 0, "a message");
                }

                client.EventReceived -= handler;
                int before = received.Count;
                client.Invalidate();
                client.GetToken();
                Thread.Sleep(100);
                Assert.Equal(before, received.Count, "no events after unsubscribing");
            }
        }

        [Test]
        private static void ThrowingHandlersOnTheRefreshThreadDoNotCrash()
        {
            // A 4 s token enters its refresh window after about 2 s: the next call returns the
            // cached token at once and the core refreshes it on its own thread.
            Mock.Configure("{\"ttl_secs\":4}");
            var threads = new ConcurrentQueue<int>();
            var reentry = new ConcurrentQueue<Exception>();
            int caller = Thread.CurrentThread.ManagedThreadId;
            using (var client = new TokenClient(Mock.Options()))
            {
                client.EventReceived += (s, e) => { throw new InvalidOperationException("handler failure on purpose"); };
                client.EventReceived += (s, e) =>
                {
                    threads.Enqueue(Thread.CurrentThread.ManagedThreadId);
                    try
                    {
                        ((TokenClient)s).GetToken();
                    }
                    catch (Exception exception)
                    {
                        reentry.Enqueue(exception);
                    }
                    throw new Exception("second handler failure on purpose");
                };
                string first = client.GetToken();
                Thread.Sleep(2500);
                Assert.Equal(first, client.GetToken(), "the cached token is served during the refresh window");
                Assert.True(SpinWait.SpinUntil(() => client.GetStats().BackgroundRefreshes == 1, 3000), "a background refresh: " + client.GetStats());
                Assert.True(SpinWait.SpinUntil(() => threads.Count >= 2, 2000), "both token_acquired events reached the handler");
                Assert.True(threads.Any(id => id != caller), "an event arrived on the library's refresh thread");
                Assert.True(reentry.Count >= 2 && reentry.All(e => e is InvalidOperationException), "calls back into the client are refused: " + string.Join(" | ", reentry));
                Assert.True(client.GetToken() != first, "the refreshed token is served");
            }
        }

        [Test]
        private static void DisposeFromInsideAnEventHandler()
        {
            long live = TokenClientHandle.LiveCount;
            var client = new TokenClient(Mock.Options());
            client.EventReceived += (s, e) => ((TokenClient)s).Dispose();
            Assert.True(client.GetToken().Length > 0, "the call that raised the event still returns its token");
            Assert.Throws<ObjectDisposedException>(() => client.GetToken(), "disposed by the handler");
            Assert.True(SpinWait.SpinUntil(() => TokenClientHandle.LiveCount == live, 3000), "freed without a deadlock");
        }
    }
}
