using System;
using System.Globalization;

namespace Tokenward.FleetWorker
{
    /// <summary>
    /// One process of a fleet, for SharedCacheTests: builds a client for the mock (args[0], the
    /// token URL) with <c>SharedCache = args[1]</c>, prints "ready", waits for a line on stdin
    /// (so the fleet asks at once), then prints "token shared_hits shared_misses shared_errors".
    /// </summary>
    internal static class Program
    {
        private static int Main(string[] args)
        {
            var options = new TokenClientOptions
            {
                TokenUrl = args[0],
                ClientId = "demo-client",
                ClientSecret = "demo-secret",
                AllowHttp = true,
                SharedCache = args[1],
            };
            using (var client = new TokenClient(options))
            {
                Console.WriteLine("ready");
                Console.Out.Flush();
                Console.In.ReadLine();
                string token = client.GetToken();
                TokenwardStats stats = client.GetStats();
                Console.WriteLine(string.Format(
                    CultureInfo.InvariantCulture,
                    "{0} {1} {2} {3}",
                    token, stats.SharedHits, stats.SharedMisses, stats.SharedErrors));
                Console.Out.Flush();
            }
            return 0;
        }
    }
}
