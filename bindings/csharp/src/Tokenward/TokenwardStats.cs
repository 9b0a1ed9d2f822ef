using System.Globalization;

namespace Tokenward
{
    /// <summary>
    /// A snapshot of the native core's counters (<see cref="TokenClient.GetStats"/>). Hits
    /// answered by the binding's own memo never reach the core, so they are not counted in
    /// <see cref="CacheHits"/>. Immutable.
    /// </summary>
    public sealed class TokenwardStats
    {
        /// <summary>Token requests sent to the token endpoint (retries included).</summary>
        public long TokenRequests { get; private set; }

        /// <summary>Calls answered from the core's cache.</summary>
        public long CacheHits { get; private set; }

        /// <summary>Token fetches that failed.</summary>
        public long Failures { get; private set; }

        /// <summary>Refreshes done in the background before expiry.</summary>
        public long BackgroundRefreshes { get; private set; }

        /// <summary>Tokens evicted by <see cref="TokenClient.Invalidate"/>.</summary>
        public long Invalidations { get; private set; }

        /// <summary>Milliseconds until the cached token expires; null when none is cached.</summary>
        public long? RemainingMs { get; private set; }

        /// <summary>Tokens adopted from the shared cache instead of fetched; null without <see cref="TokenClientOptions.SharedCache"/>.</summary>
        public long? SharedHits { get; private set; }

        /// <summary>Fetches made because the shared cache had no usable token; null without a shared cache.</summary>
        public long? SharedMisses { get; private set; }

        /// <summary>Failed shared-cache operations; null without a shared cache.</summary>
        public long? SharedErrors { get; private set; }

        /// <summary>Times this process waited for another process's fetch; null without a shared cache.</summary>
        public long? SharedLockWaits { get; private set; }

        /// <summary>The counters, for logs.</summary>
        public override string ToString()
        {
            return string.Format(
                CultureInfo.InvariantCulture,
                "TokenwardStats {{ TokenRequests = {0}, CacheHits = {1}, Failures = {2}, BackgroundRefreshes = {3}, Invalidations = {4}, RemainingMs = {5} }}",
                TokenRequests, CacheHits, Failures, BackgroundRefreshes, Invalidations,
                RemainingMs.HasValue ? RemainingMs.Value.ToString(CultureInfo.InvariantCulture) : "null");
        }

        /// <summary>
        /// Parses the flat JSON object of <c>tw_client_stats</c> (names to integers or null);
        /// names this version does not know are skipped.
        /// </summary>
        /// <exception cref="TokenwardException">The text is not such an object.</exception>
        internal static TokenwardStats Parse(string json)
        {
            var stats = new TokenwardStats();
            int at = 0;
            Expect(json, ref at, '{');
            SkipSpace(json, ref at);
            if (at < json.Length && json[at] == '}')
            {
                return stats;
            }
            while (true)
            {
                Expect(json, ref at, '"');
                int end = json.IndexOf('"', at);
                if (end < 0)
                {
                    throw Malformed(json);
                }
                string name = json.Substring(at, end - at);
                at = end + 1;
                Expect(json, ref at, ':');
                SkipSpace(json, ref at);
                int start = at;
                while (at < json.Length && (char.IsLetterOrDigit(json[at]) || json[at] == '-' || json[at] == '.'))
                {
                    at++;
                }
                string token = json.Substring(start, at - start);
                long? value = null;
                long number;
                if (long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out number))
                {
                    value = number;
                }
                else if (token != "null")
                {
                    throw Malformed(json);
                }
                stats.Set(name, value);
                SkipSpace(json, ref at);
                if (at < json.Length && json[at] == ',')
                {
                    at++;
                    continue;
                }
                Expect(json, ref at, '}');
                return stats;
            }
        }

        private void Set(string name, long? value)
        {
            switch (name)
            {
                case "token_requests": TokenRequests = value ?? 0; break;
                case "cache_hits": CacheHits = value ?? 0; break;
                case "failures": Failures = value ?? 0; break;
                case "background_refreshes": BackgroundRefreshes = value ?? 0; break;
                case "invalidations": Invalidations = value ?? 0; break;
                case "remaining_ms": RemainingMs = value; break;
                case "shared_hits": SharedHits = value; break;
                case "shared_misses": SharedMisses = value; break;
                case "shared_errors": SharedErrors = value; break;
                case "shared_lock_waits": SharedLockWaits = value; break;
            }
        }

        private static void SkipSpace(string json, ref int at)
        {
            while (at < json.Length && char.IsWhiteSpace(json[at]))
            {
                at++;
            }
        }

        private static void Expect(string json, ref int at, char c)
        {
            SkipSpace(json, ref at);
            if (at >= json.Length || json[at] != c)
            {
                throw Malformed(json);
            }
            at++;
        }

        private static TokenwardException Malformed(string json)
        {
            return TokenwardException.Create(
                TokenwardStatus.BadResponse,
                "tokenward: the native library returned malformed stats JSON: " + json);
        }
    }
}
