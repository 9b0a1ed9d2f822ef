using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading;

namespace Tokenward.Bench
{
    /// <summary>
    /// GetToken() under Mono against the mock at argv[0], in two scenarios (argv[1]: "hit",
    /// "window" or "all", the default). Run by `bindings/csharp/run_tests.sh --bench [WHAT]`.
    /// </summary>
    /// <remarks>
    /// <para>hit: one token is fetched first (the only network call); then 7 runs of N calls
    /// each are timed and the median ns per call reported: for GetToken (the memo hit),
    /// GetAuthorization, GetHeaders, the native round trip a memo hit avoids (into the
    /// per-thread buffer), and GetToken from 2 threads.</para>
    /// <para>window: 8 threads call GetToken() in a loop for 12 s while the mock issues 4 s
    /// tokens from a token endpoint that takes 1.5 s to answer, so about three quarters of
    /// the time a refresh is in flight; every call is timed and the latency distribution
    /// (p50, p99, p99.9, worst, calls over 1 and 10 ms) reported, with the number of calls that
    /// reached the core.</para>
    /// </remarks>
    internal static class Bench
    {
        private const int Runs = 7;
        private const int WindowThreads = 8;
        private const int WindowSeconds = 12;

        private static int Main(string[] args)
        {
            if (args.Length < 1 || (args.Length > 1 && args[1] != "hit" && args[1] != "window" && args[1] != "all"))
            {
                Console.Error.WriteLine("usage: Tokenward.Bench.exe MOCK_BASE_URL [hit|window|all]");
                return 2;
            }
            string what = args.Length > 1 ? args[1] : "all";
            string url = args[0].TrimEnd('/');
            Console.WriteLine("tokenward {0}, Mono {1}, {2} cores", TokenClient.NativeVersion, MonoVersion(), Environment.ProcessorCount);
            int status = 0;
            if (what != "window")
            {
                status |= HitPath(url);
            }
            if (what != "hit")
            {
                status |= RefreshWindow(url);
            }
            return status;
        }

        private static TokenClientOptions Options(string url)
        {
            return new TokenClientOptions
            {
                TokenUrl = url + "/oauth/token",
                ClientId = "demo-client",
                ClientSecret = "demo-secret",
                AllowHttp = true,
                Headers = { ["tenant-code"] = "T1", ["api-version"] = "2" },
            };
        }

        private static int HitPath(string url)
        {
            using (var client = new TokenClient(Options(url)))
            {
                string token = client.GetToken();
                Console.WriteLine("hit path: token {0} bytes, median of {1} runs", token.Length, Runs);
                Report("GetToken() (memo hit)", 10000000, () => client.GetToken());
                Report("GetAuthorization() (memo hit)", 10000000, () => client.GetAuthorization());
                Report("GetHeaders() (memo hit)", 10000000, () => client.GetHeaders());
                ulong fresh, usable;
                Report("tw_client_token_window via P/Invoke (no memo)", 1000000, () => client.ReadTokenFromCore(out fresh, out usable));
                ReportThreads("GetToken() (memo hit), 2 threads", client, 2, 10000000);
                TokenwardStats stats = client.GetStats();
                Console.WriteLine("core token requests: {0}", stats.TokenRequests);
                return stats.TokenRequests == 1 ? 0 : 1;
            }
        }

        private static int RefreshWindow(string url)
        {
            using (var admin = new HttpClient { Timeout = TimeSpan.FromSeconds(20) })
            using (HttpResponseMessage configured = admin.PostAsync(
                url + "/admin/config",
                new StringContent("{\"ttl_secs\":4,\"token_delay_ms\":1500}", Encoding.UTF8, "application/json")).Result)
            {
                if (!configured.IsSuccessStatusCode)
                {
                    Console.Error.WriteLine("the mock refused the configuration: {0}", configured.StatusCode);
                    return 1;
                }
            }
            using (var client = new TokenClient(Options(url)))
            {
                client.GetToken();
                TokenwardStats before = client.GetStats();
                var histograms = new LatencyHistogram[WindowThreads];
                var tokens = new HashSet<string>[WindowThreads];
                long stopAt = 0;
                using (var start = new Barrier(WindowThreads + 1))
                {
                    var workers = Enumerable.Range(0, WindowThreads).Select(t => new Thread(() =>
                    {
                        var histogram = new LatencyHistogram();
                        var seen = new HashSet<string>();
                        string last = null;
                        start.SignalAndWait();
                        long end = Volatile.Read(ref stopAt);
                        long returned = 0;
                        while (returned < end)
                        {
                            long called = Stopwatch.GetTimestamp();
                            string token = client.GetToken();
                            returned = Stopwatch.GetTimestamp();
                            histogram.Add(returned - called);
                            if (!ReferenceEquals(token, last))
                            {
                                seen.Add(token);
                                last = token;
                            }
                        }
                        histograms[t] = histogram;
                        tokens[t] = seen;
                    })).ToList();
                    workers.ForEach(w => w.Start());
                    Volatile.Write(ref stopAt, Stopwatch.GetTimestamp() + WindowSeconds * Stopwatch.Frequency);
                    start.SignalAndWait();
                    workers.ForEach(w => w.Join());
                }
                TokenwardStats after = client.GetStats();
                var all = new LatencyHistogram();
                foreach (LatencyHistogram histogram in histograms)
                {
                    all.Merge(histogram);
                }
                int distinct = tokens.SelectMany(set => set).Distinct().Count();
                Console.WriteLine("refresh window: {0} threads, 4 s tokens, 1.5 s token endpoint, {1} s", WindowThreads, WindowSeconds);
                Console.WriteLine("  GetToken() calls {0}, tokens seen {1}, token requests {2}, calls answered by the core {3}",
                    all.Count, distinct, after.TokenRequests - before.TokenRequests, after.CacheHits - before.CacheHits);
                Console.WriteLine("  latency p50 {0}, p99 {1}, p99.9 {2}, worst {3}; calls over 1 ms {4}, over 10 ms {5}",
                    Micros(all.Percentile(0.50)), Micros(all.Percentile(0.99)), Micros(all.Percentile(0.999)), Micros(all.Max),
                    all.CountOver(Stopwatch.Frequency / 1000), all.CountOver(Stopwatch.Frequency / 100));
                return distinct >= 3 ? 0 : 1;
            }
        }

        private static string Micros(long ticks)
        {
            return (ticks * 1e6 / Stopwatch.Frequency).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + " us";
        }

        /// <summary>
        /// Call latencies in Stopwatch ticks: exact counts up to 10 ms (the interesting range,
        /// without storing tens of millions of samples), and each slower call kept as it is.
        /// </summary>
        private sealed class LatencyHistogram
        {
            private static readonly int ExactTicks = (int)(Stopwatch.Frequency / 100);

            private readonly long[] _counts = new long[ExactTicks];
            private readonly List<long> _slow = new List<long>();

            internal long Count { get; private set; }

            internal long Max { get; private set; }

            internal void Add(long ticks)
            {
                if (ticks < ExactTicks)
                {
                    _counts[ticks]++;
                }
                else
                {
                    _slow.Add(ticks);
                }
                Count++;
                if (ticks > Max)
                {
                    Max = ticks;
                }
            }

            internal void Merge(LatencyHistogram other)
            {
                for (int i = 0; i < ExactTicks; i++)
                {
                    _counts[i] += other._counts[i];
                }
                _slow.AddRange(other._slow);
                Count += other.Count;
                Max = Math.Max(Max, other.Max);
            }

            /// <summary>Calls slower than <paramref name="ticks"/>.</summary>
            internal long CountOver(long ticks)
            {
                long count = _slow.Count(t => t > ticks);
                for (long i = ticks + 1; i < ExactTicks; i++)
                {
                    count += _counts[i];
                }
                return count;
            }

            /// <summary>The smallest latency that at least <paramref name="fraction"/> of the calls did not exceed.</summary>
            internal long Percentile(double fraction)
            {
                long rank = (long)Math.Ceiling(fraction * Count);
                long seen = 0;
                for (int i = 0; i < ExactTicks; i++)
                {
                    seen += _counts[i];
                    if (seen >= rank)
                    {
                        return i;
                    }
                }
                _slow.Sort();
                return _slow[(int)Math.Min(_slow.Count - 1, rank - seen - 1)];
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
