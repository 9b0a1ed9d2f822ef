using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;

namespace Tokenward.Bench
{
    /// <summary>
    /// The C# hit path under Mono: GetToken() while a token is cached, against the mock at
    /// argv[0]. One token is fetched first (the only network call); then 7 runs of N calls
    /// each are timed and the median ns per call reported: for GetToken (the memo hit),
    /// GetAuthorization, GetHeaders, the native round trip a memo hit avoids
    /// (tw_client_token_cacheable into the per-thread buffer), and GetToken from 2 threads.
    /// Run by `bindings/csharp/run_tests.sh --bench`.
    /// </summary>
    internal static class Bench
    {
        private const int Runs = 7;

        private static int Main(string[] args)
        {
            if (args.Length < 1)
            {
                Console.Error.WriteLine("usage: Tokenward.Bench.exe MOCK_BASE_URL");
                return 2;
            }
            var options = new TokenClientOptions
            {
                TokenUrl = args[0].TrimEnd('/') + "/oauth/token",
                ClientId = "demo-client",
                ClientSecret = "demo-secret",
                AllowHttp = true,
                Headers = { ["tenant-code"] = "T1", ["api-version"] = "2" },
            };
            using (var client = new TokenClient(options))
            {
                string token = client.GetToken();
                Console.WriteLine("tokenward {0}, Mono {1}, token {2} bytes, median of {3} runs",
                    TokenClient.NativeVersion, MonoVersion(), token.Length, Runs);
                Report("GetToken() (memo hit)", 10000000, () => client.GetToken());
                Report("GetAuthorization() (memo hit)", 10000000, () => client.GetAuthorization());
                Report("GetHeaders() (memo hit)", 10000000, () => client.GetHeaders());
                ulong reusable;
                Report("tw_client_token_cacheable via P/Invoke (no memo)", 1000000, () => client.ReadTokenFromCore(out reusable));
                ReportThreads("GetToken() (memo hit), 2 threads", client, 2, 10000000);
                TokenwardStats stats = client.GetStats();
                Console.WriteLine("core token requests: {0}", stats.TokenRequests);
                return stats.TokenRequests == 1 ? 0 : 1;
            }
        }

        private static string MonoVersion()
        {
            Type mono = Type.GetType("Mono.Runtime");
            var display = mono == null ? null : mono.GetMethod("GetDisplayName", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
            return display == null ? Environment.Version.ToString() : (string)display.Invoke(null, null);
        }

        private static void Report(string name, int calls, Action call)
        {
            for (int i = 0; i < calls / 10; i++)
            {
                call();
            }
            var perCall = new List<double>();
            for (int run = 0; run < Runs; run++)
            {
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < calls; i++)
                {
                    call();
                }
                long elapsed = Stopwatch.GetTimestamp() - start;
                perCall.Add(elapsed * 1e9 / Stopwatch.Frequency / calls);
            }
            perCall.Sort();
            Console.WriteLine("{0,-52} {1,8:F1} ns/call (min {2:F1}, max {3:F1})", name, perCall[Runs / 2], perCall[0], perCall[Runs - 1]);
        }

        private static void ReportThreads(string name, TokenClient client, int threads, int calls)
        {
            var perCall = new List<double>();
            for (int run = 0; run < Runs; run++)
            {
                using (var start = new Barrier(threads + 1))
                {
                    var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                    {
                        start.SignalAndWait();
                        for (int i = 0; i < calls; i++)
                        {
                            client.GetToken();
                        }
                    })).ToList();
                    workers.ForEach(w => w.Start());
                    start.SignalAndWait();
                    long begin = Stopwatch.GetTimestamp();
                    workers.ForEach(w => w.Join());
                    long elapsed = Stopwatch.GetTimestamp() - begin;
                    perCall.Add(elapsed * 1e9 / Stopwatch.Frequency / calls);
                }
            }
            perCall.Sort();
            Console.WriteLine("{0,-52} {1,8:F1} ns/call per thread (wall time / calls per thread)", name, perCall[Runs / 2]);
        }
    }
}
