using System.Globalization;

namespace Tokenward
{
    /// <summary>The overall state in a <see cref="TokenwardHealth"/>.</summary>
    public enum TokenwardHealthState
    {
        /// <summary>A usable token is cached and the last fetch succeeded, or nothing was fetched or failed yet.</summary>
        Ok,
        /// <summary>A usable token is still served, but refreshing it fails.</summary>
        Degraded,
        /// <summary>No usable token is cached and the last fetch failed.</summary>
        Failing,
    }

    /// <summary>
    /// The client's state from the native core's memory (<see cref="TokenClient.GetHealth"/>),
    /// for readiness probes. Immutable.
    /// </summary>
    public sealed class TokenwardHealth
    {
        /// <summary>Ok, degraded or failing.</summary>
        public TokenwardHealthState State { get; private set; }

        /// <summary>Milliseconds the cached token may still be used; null without a usable token.</summary>
        public long? RemainingMs { get; private set; }

        /// <summary>
        /// Milliseconds until the next refresh may start (0: due; refreshes are started by
        /// calls, not by a timer); null without a usable token.
        /// </summary>
        public long? NextRefreshMs { get; private set; }

        /// <summary>Fetches and refreshes that failed since the last success.</summary>
        public long ConsecutiveFailures { get; private set; }

        /// <summary>The newest failure's kind (e.g. <c>"server"</c>), kept after a recovery; null if none.</summary>
        public string LastErrorKind { get; private set; }

        /// <summary>The newest failure's message (never a secret or a token); null if none.</summary>
        public string LastErrorMessage { get; private set; }

        /// <summary>The HTTP status of the newest failure, when it came from a response.</summary>
        public int? LastErrorHttpStatus { get; private set; }

        /// <summary>The native JSON this was read from.</summary>
        public string Json { get; private set; }

        /// <summary>The state and numbers, for logs.</summary>
        public override string ToString()
        {
            return string.Format(
                CultureInfo.InvariantCulture,
                "TokenwardHealth {{ State = {0}, RemainingMs = {1}, NextRefreshMs = {2}, ConsecutiveFailures = {3}, LastErrorKind = {4} }}",
                State,
                RemainingMs.HasValue ? RemainingMs.Value.ToString(CultureInfo.InvariantCulture) : "null",
                NextRefreshMs.HasValue ? NextRefreshMs.Value.ToString(CultureInfo.InvariantCulture) : "null",
                ConsecutiveFailures,
                LastErrorKind ?? "null");
        }

        /// <exception cref="TokenwardException">The JSON is not what <c>tw_client_health</c> writes.</exception>
        internal static TokenwardHealth Parse(string json)
        {
            object root = JsonReader.Parse(json);
            TokenwardHealthState state;
            switch (JsonReader.String(root, "state"))
            {
                case "ok": state = TokenwardHealthState.Ok; break;
                case "degraded": state = TokenwardHealthState.Degraded; break;
                case "failing": state = TokenwardHealthState.Failing; break;
                default:
                    throw TokenwardException.Create(
                        TokenwardStatus.BadResponse, "tokenward: the native library returned health JSON without a known state: " + json);
            }
            object error = JsonReader.Member(root, "last_error");
            long? status = JsonReader.Integer(error, "http_status");
            return new TokenwardHealth
            {
                State = state,
                RemainingMs = JsonReader.Integer(root, "remaining_ms"),
                NextRefreshMs = JsonReader.Integer(root, "next_refresh_ms"),
                ConsecutiveFailures = JsonReader.Integer(root, "consecutive_failures") ?? 0,
                LastErrorKind = JsonReader.String(error, "kind"),
                LastErrorMessage = JsonReader.String(error, "message"),
                LastErrorHttpStatus = status.HasValue ? (int?)(int)status.Value : null,
                Json = json,
            };
        }
    }
}
