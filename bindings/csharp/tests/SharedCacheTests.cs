using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tokenward.Tests
{
    /// <summary>
    /// <see cref="TokenClientOptions.SharedCache"/>: two Mono processes share one token, through
    /// a directory and through Redis (TOKENWARD_TEST_REDIS, else a private redis-server); a
    /// failing store is one <see cref="TokenwardEventKind.SharedStoreUnavailable"/> event.
    /// </summary>
    internal static class SharedCacheTests
    {
        [Test]
        private static void TwoMonoProcessesShareOneTokenThroughADirectory()
        {
            string dir = Path.Combine(Path.GetTempPath(), "tokenward-cs-shared-" + Process.GetCurrentProcess().Id);
            try
            {
                RunPair("file://" + Path.Combine(dir, "store"));
            }
            finally
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, true);
                }
            }
        }

        [Test]
        private static void TwoMonoProcessesShareOneTokenThroughRedis()
        {
            string url = Environment.GetEnvironmentVariable("TOKENWARD_TEST_REDIS");
            Process server = null;
            if (string.IsNullOrEmpty(url))
            {
                int port = FreePort();
                server = Start("redis-server", "--port " + port + " --bind 127.0.0.1 --save \"\" --appendonly no");
                WaitForRedis(port);
                url = "redis://127.0.0.1:" + port + "/0";
            }
            else
            {
                int scheme = url.IndexOf("://", StringComparison.Ordinal) + 3;
                int slash = url.IndexOf('/', scheme);
                url = (slash < 0 ? url : url.Substring(0, slash)) + "/13";
                using (Process flush = Start("redis-cli", "-u " + url + " FLUSHDB"))
                {
                    Assert.True(flush.WaitForExit(10000) && flush.ExitCode == 0, "redis-cli FLUSHDB");
                }
            }
            try
            {
                RunPair(url);
            }
            finally
            {
                if (server != null)
                {
                    server.Kill();
                    server.WaitForExit(10000);
                    server.Dispose();
                }
            }
        }

        [Test]
        private static void WithoutSharedCacheTheStatsHaveNoSharedCounters()
        {
            using (var client = new TokenClient(Mock.Options()))
            {
                client.GetToken();
                Assert.True(client.GetStats().SharedHits == null, "no SharedHits");
            }
        }

        [Test]
        private static void AFailingStoreIsOneEventNotAnError()
        {
            // A directory inside a plain file cannot be made: every store call fails.
            string file = Path.Combine(Path.GetTempPath(), "tokenward-cs-plain-" + Process.GetCurrentProcess().Id);
            File.WriteAllText(file, "x");
            try
            {
                TokenClientOptions options = Mock.Options();
                options.SharedCache = "file://" + Path.Combine(file, "store");
                using (var client = new TokenClient(options))
                {
                    var events = new ConcurrentQueue<TokenwardEventArgs>();
                    client.EventReceived += (s, e) => events.Enqueue(e);
                    for (int i = 0; i < 3; i++)
                    {
                        Assert.True(client.GetToken().Length > 0, "a token despite the store");
                        client.Invalidate();
                    }
                    TokenwardEventArgs[] unavailable = events
                        .Where(e => e.Kind == TokenwardEventKind.SharedStoreUnavailable)
                        .ToArray();
                    Assert.Equal(1, unavailable.Length, "one event per episode: " + string.Join(" | ", events));
                    Assert.Equal("shared_store_unavailable", unavailable[0].KindName, "its name");
                    Assert.True(!events.Any(e => e.Kind == TokenwardEventKind.Unknown), "every kind is known");
                    Assert.True(client.GetStats().SharedErrors >= 1, "counted in SharedErrors");
                }
            }
            finally
            {
                File.Delete(file);
            }
        }

        /// <summary>Two worker processes ask at once: one token request, one token, one adopted.</summary>
        private static void RunPair(string sharedCache)
        {
            string worker = Environment.GetEnvironmentVariable("TOKENWARD_FLEET_WORKER");
            Assert.True(!string.IsNullOrEmpty(worker), "TOKENWARD_FLEET_WORKER is set (run_tests.sh)");
            var processes = new Process[2];
            try
            {
                for (int i = 0; i < processes.Length; i++)
                {
                    processes[i] = Start("mono", "\"" + worker + "\" " + Mock.TokenUrl + " " + sharedCache);
                    Assert.Equal("ready", processes[i].StandardOutput.ReadLine(), "worker " + i + " is ready");
                }
                foreach (Process process in processes)
                {
                    process.StandardInput.WriteLine("go");
                    process.StandardInput.Flush();
                }
                string[][] results = processes
                    .Select(p => (p.StandardOutput.ReadLine() ?? "").Split(' '))
                    .ToArray();
                foreach (Process process in processes)
                {
                    Assert.True(process.WaitForExit(30000), "a worker finished");
                    Assert.Equal(0, process.ExitCode, "worker exit code");
                }
                Assert.Equal(4, results[0].Length, "token and three counters");
                Assert.Equal(results[0][0], results[1][0], "one token for both processes");
                Assert.Equal(1L, Mock.TokenRequests, "one token request");
                Assert.Equal(1L, long.Parse(results[0][1]) + long.Parse(results[1][1]), "one adopted from the store");
                Assert.Equal(1L, long.Parse(results[0][2]) + long.Parse(results[1][2]), "one fetched");
                Assert.Equal("0 0", results[0][3] + " " + results[1][3], "no store errors");
            }
            finally
            {
                foreach (Process process in processes.Where(p => p != null))
                {
                    if (!process.HasExited)
                    {
                        process.Kill();
                    }
                    process.Dispose();
                }
            }
        }

        private static Process Start(string file, string arguments)
        {
            var info = new ProcessStartInfo(file, arguments)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            };
            return Process.Start(info);
        }

        private static int FreePort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }

        private static void WaitForRedis(int port)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                try
                {
                    using (var tcp = new TcpClient("127.0.0.1", port))
                    {
                        NetworkStream stream = tcp.GetStream();
                        stream.Write(new byte[] { (byte)'P', (byte)'I', (byte)'N', (byte)'G', 13, 10 }, 0, 6);
                        var reply = new byte[5];
                        if (stream.Read(reply, 0, 5) == 5 && reply[0] == (byte)'+')
                        {
                            return;
                        }
                    }
                }
                catch (SocketException)
                {
                }
                Assert.True(DateTime.UtcNow < deadline, "redis-server answers");
                Thread.Sleep(50);
            }
        }
    }
}
