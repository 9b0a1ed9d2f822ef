using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;

namespace Tokenward
{
    /// <summary>
    /// An OAuth 2.0 client-credentials client with the native core's token cache: fetching,
    /// refresh ahead of expiry, single-flight, backoff and header injection all happen in the
    /// core; this class owns one native handle.
    /// </summary>
    /// <remarks>
    /// <para>Thread-safe: create one per API and share it between all threads. No network I/O
    /// happens until the first token is needed. Dispose it when done; a client that is never
    /// disposed is freed by the finalizer. Every member except <see cref="Dispose"/> throws
    /// <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.</para>
    /// <para>Hot path: the core reports how long a token may be reused without asking it again
    /// (until its own refresh point). Until then <see cref="GetToken"/>,
    /// <see cref="GetAuthorization"/> and <see cref="GetHeaders"/> answer from a memo without a
    /// native call; <see cref="Invalidate"/> and <see cref="SetClientSecret"/> drop it.</para>
    /// </remarks>
    public sealed class TokenClient : IDisposable
    {
        // Longest memo: a bound on the unit conversion, far beyond any real refresh point.
        private const ulong MaxReuseNs = 86400UL * 1000 * 1000 * 1000;

        private readonly TokenClientHandle _handle;
        private readonly EventSink _sink;
        private readonly string _description;
        private readonly object _memoLock = new object();
        private volatile Memo _memo;
        private long _generation;
        private volatile bool _disposed;

        /// <summary>Creates a client from <paramref name="options"/> (validated by the core; no network I/O).</summary>
        /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
        /// <exception cref="TokenwardConfigException">The configuration was rejected; the message names the key.</exception>
        /// <exception cref="TokenwardInvalidArgumentException">A string has an unpaired surrogate.</exception>
        public TokenClient(TokenClientOptions options)
        {
            if (options == null)
            {
                throw new ArgumentNullException(nameof(options));
            }
            byte[] json = NativeMethods.Utf8(options.ToJson(), "the configuration");
            TokenClientHandle handle;
            int status = NativeMethods.tw_client_new(json, out handle);
            // The document carries the secret; the core keeps its own (zeroized) copy.
            Array.Clear(json, 0, json.Length);
            _sink = new EventSink(this);
            _handle = Adopt(status, handle, _sink);
            _description = "TokenClient { TokenUrl = " + (options.TokenUrl ?? options.Issuer) + ", ClientId = " + options.ClientId + " }";
        }

        private TokenClient(TokenClientHandle handle, int status, string description)
        {
            _sink = new EventSink(this);
            _handle = Adopt(status, handle, _sink);
            _description = description;
        }

        /// <summary>
        /// Creates a client from environment variables: <c>{prefix}TOKEN_URL</c>,
        /// <c>{prefix}CLIENT_ID</c>, <c>{prefix}CLIENT_SECRET</c>, <c>{prefix}SCOPE</c>,
        /// <c>{prefix}TENANT_CODE</c>, <c>{prefix}API_VERSION</c>, ... (the core reads them;
        /// see the README). <paramref name="prefix"/> defaults to <c>"TOKENWARD_"</c>.
        /// </summary>
        /// <remarks>The core reads the process environment. On .NET (Core), variables set with
        /// <see cref="Environment.SetEnvironmentVariable(string, string)"/> after start-up are not
        /// visible to native code; on Mono and .NET Framework they are.</remarks>
        /// <exception cref="TokenwardConfigException">Missing or invalid variables; the message names them.</exception>
        public static TokenClient FromEnvironment(string prefix = null)
        {
            TokenClientHandle handle;
            int status = NativeMethods.tw_client_from_env(NativeMethods.Utf8(prefix, "the prefix"), out handle);
            return new TokenClient(handle, status, "TokenClient { FromEnvironment = " + (prefix ?? "TOKENWARD_") + " }");
        }

        private static TokenClientHandle Adopt(int status, TokenClientHandle handle, EventSink sink)
        {
            if (status != NativeMethods.StatusOk)
            {
                TokenwardException error = NativeMethods.Error(status);
                handle.Dispose();
                throw error;
            }
            try
            {
                handle.Attach(sink);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
            return handle;
        }

        /// <summary>The native library's version, e.g. <c>"0.1.0"</c>.</summary>
        public static string NativeVersion
        {
            get { return NativeMethods.FromUtf8(NativeMethods.tw_version()); }
        }

        /// <summary>
        /// Raised for each native event (token acquired, refresh failed, retry scheduled, ...).
        /// Handlers may run on a library thread, must return quickly, and must not call back into
        /// this client (such calls throw <see cref="InvalidOperationException"/>); exceptions they
        /// throw are reported to <see cref="Trace"/> and ignored. Event messages never contain a
        /// secret or a full token.
        /// </summary>
        public event EventHandler<TokenwardEventArgs> EventReceived
        {
            add { _sink.Add(value); }
            remove { _sink.Remove(value); }
        }

        /// <summary>
        /// The current access token, fetched if needed. Blocks only when no usable token is
        /// cached, for at most the configured request timeout.
        /// </summary>
        /// <exception cref="TokenwardException">The subclass of the fetch's failure, e.g.
        /// <see cref="TokenwardInvalidClientException"/>, <see cref="TokenwardNetworkException"/>,
        /// <see cref="TokenwardTimeoutException"/>.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public string GetToken()
        {
            Memo memo = _memo;
            if (memo != null && Stopwatch.GetTimestamp() < memo.ReuseUntil)
            {
                return memo.Token;
            }
            return Load(false).Token;
        }

        /// <summary>The <c>Authorization</c> header value, <c>"Bearer &lt;token&gt;"</c>. Errors as <see cref="GetToken"/>.</summary>
        public string GetAuthorization()
        {
            Memo memo = _memo;
            if (memo != null && Stopwatch.GetTimestamp() < memo.ReuseUntil)
            {
                return memo.Authorization;
            }
            return Load(true).Authorization;
        }

        /// <summary>
        /// Every header to send, in order: <c>Authorization</c> first, then the configured static
        /// headers (e.g. <c>tenant-code</c>, <c>api-version</c>). Immutable and looked up
        /// case-insensitively. Errors as <see cref="GetToken"/>.
        /// </summary>
        public IReadOnlyDictionary<string, string> GetHeaders()
        {
            Memo memo = _memo;
            if (memo != null && Stopwatch.GetTimestamp() < memo.ReuseUntil)
            {
                return memo.Headers;
            }
            return Load(true).Headers;
        }

        /// <summary>The memoized headers, or null when getting them would call the core (and maybe block).</summary>
        internal IReadOnlyDictionary<string, string> CachedHeaders
        {
            get
            {
                Memo memo = _memo;
                return memo != null && Stopwatch.GetTimestamp() < memo.ReuseUntil ? memo.Headers : null;
            }
        }

        /// <summary>
        /// Evicts <paramref name="token"/> if it is the cached one; null evicts unconditionally.
        /// Call it with the token an API rejected with 401: many calls for the same old token
        /// cause one refresh. Never blocks on the network.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public void Invalidate(string token = null)
        {
            EnsureUsable();
            byte[] bytes = NativeMethods.Utf8(token, "the token");
            try
            {
                NativeMethods.Check(NativeMethods.tw_client_invalidate(_handle, bytes));
            }
            finally
            {
                DropMemo();
            }
        }

        /// <summary>
        /// Rotates the client secret: every cached token and remembered error is cleared
        /// atomically, so the next call fetches with the new secret.
        /// </summary>
        /// <exception cref="TokenwardConfigException">An empty secret, or an auth method without a secret.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public void SetClientSecret(string secret)
        {
            if (secret == null)
            {
                throw new ArgumentNullException(nameof(secret));
            }
            EnsureUsable();
            byte[] bytes = NativeMethods.Utf8(secret, "the client secret");
            try
            {
                NativeMethods.Check(NativeMethods.tw_client_set_client_secret(_handle, bytes));
            }
            finally
            {
                Array.Clear(bytes, 0, bytes.Length);
                DropMemo();
            }
        }

        /// <summary>A snapshot of the core's counters.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TokenwardStats GetStats()
        {
            EnsureUsable();
            TokenClientHandle handle = _handle;
            return TokenwardStats.Parse(NativeMethods.ReadString(
                (byte[] buf, UIntPtr cap, out UIntPtr len) => NativeMethods.tw_client_stats(handle, buf, cap, out len)));
        }

        /// <summary>
        /// The client's state from the native core's memory, for readiness probes: no network
        /// call, no refresh started. Failing means no usable token and the last fetch failed.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TokenwardHealth GetHealth()
        {
            EnsureUsable();
            TokenClientHandle handle = _handle;
            return TokenwardHealth.Parse(NativeMethods.ReadString(
                (byte[] buf, UIntPtr cap, out UIntPtr len) => NativeMethods.tw_client_health(handle, buf, cap, out len)));
        }

        /// <summary>
        /// Walks the setup — configuration, DNS, TCP, proxy, TLS, clock, token request, token
        /// sanity and, with <paramref name="probe"/>, one GET of that API URL with the token —
        /// and returns every check with its cause and fix (what <c>tokenward doctor</c> prints).
        /// Blocks while it talks to the identity provider; leaves the client's cache alone;
        /// what it finds is in the result, not thrown.
        /// </summary>
        /// <param name="probe">An API URL to call once, or null.</param>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TokenwardDiagnosis Diagnose(string probe = null)
        {
            EnsureUsable();
            byte[] options = null;
            if (probe != null)
            {
                var json = new JsonWriter();
                json.BeginObject();
                json.Name("probe");
                json.Value(probe);
                json.EndObject();
                options = NativeMethods.Utf8(json.ToString(), "the probe URL");
            }
            TokenwardDiagnosisHandle diagnosis;
            NativeMethods.Check(NativeMethods.tw_client_diagnose(_handle, options, out diagnosis));
            using (diagnosis)
            {
                return TokenwardDiagnosis.Read(diagnosis);
            }
        }

        /// <summary>
        /// Sends an API request with the token and configured headers, using the core's own HTTP
        /// transport (for programs without an HTTP client; with <c>HttpClient</c> use
        /// <see cref="TokenwardHandler"/>). On 401 the token is refreshed and the request re-sent
        /// once. Blocks for at most the request timeout (plus a token fetch).
        /// </summary>
        /// <param name="method">The HTTP method, e.g. <c>"GET"</c>.</param>
        /// <param name="url">An absolute URL; outside <see cref="TokenClientOptions.ApiBaseUrls"/> (when set) it is refused before anything is sent.</param>
        /// <param name="headers">Extra request headers (not <c>Authorization</c>), or null.</param>
        /// <param name="body">The request body, or null.</param>
        /// <returns>The response, whatever its status (4xx and 5xx included); dispose it.</returns>
        /// <exception cref="TokenwardUnauthorizedException">The API answered 401 again after one refresh.</exception>
        /// <exception cref="TokenwardForbiddenException">The API answered 403.</exception>
        /// <exception cref="TokenwardException">Token or transport failures, e.g. <see cref="TokenwardNetworkException"/>.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TokenwardResponse Send(
            string method, string url, IEnumerable<KeyValuePair<string, string>> headers = null, byte[] body = null)
        {
            if (method == null)
            {
                throw new ArgumentNullException(nameof(method));
            }
            if (url == null)
            {
                throw new ArgumentNullException(nameof(url));
            }
            EnsureUsable();
            byte[] headerLines = null;
            if (headers != null)
            {
                var lines = new StringBuilder();
                foreach (KeyValuePair<string, string> header in headers)
                {
                    lines.Append(header.Key).Append(": ").Append(header.Value).Append("\r\n");
                }
                headerLines = NativeMethods.Utf8(lines.ToString(), "the request headers");
            }
            TokenwardResponseHandle response;
            int status = NativeMethods.tw_client_send(
                _handle, NativeMethods.Utf8(method, "the method"), NativeMethods.Utf8(url, "the URL"), headerLines,
                body, (UIntPtr)(body == null ? 0 : body.Length), out response);
            if (status != NativeMethods.StatusOk)
            {
                TokenwardException error = NativeMethods.Error(status);
                response.Dispose();
                throw error;
            }
            return new TokenwardResponse(response);
        }

        /// <summary>
        /// Frees the native client. Idempotent; never throws. Calls already running on other
        /// threads finish normally (the handle is freed when the last returns); later calls throw
        /// <see cref="ObjectDisposedException"/>. After it returns no new event is raised.
        /// </summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            lock (_memoLock)
            {
                _disposed = true;
                _memo = null;
            }
            _handle.Dispose();
        }

        /// <summary>The endpoint and client id, never the secret.</summary>
        public override string ToString()
        {
            return _disposed ? _description + " (disposed)" : _description;
        }

        /// <summary>
        /// The token from the core and whether it may be memoized; on the memo's path, so the
        /// benchmark can time the native round trip that a memo hit avoids.
        /// </summary>
        internal string ReadTokenFromCore(out ulong reusableNs)
        {
            EnsureUsable();
            byte[] buffer = NativeMethods.ThreadBuffer(0);
            while (true)
            {
                UIntPtr needed;
                int status = NativeMethods.tw_client_token_cacheable(
                    _handle, buffer, (UIntPtr)buffer.Length, out needed, out reusableNs);
                ulong size = needed.ToUInt64();
                if (status == NativeMethods.StatusOk)
                {
                    return size <= 1 ? string.Empty : Encoding.UTF8.GetString(buffer, 0, (int)size - 1);
                }
                if (status != NativeMethods.StatusBufferTooSmall || size <= (ulong)buffer.Length || size > int.MaxValue)
                {
                    throw NativeMethods.Error(status);
                }
                buffer = NativeMethods.ThreadBuffer((int)size);
            }
        }

        /// <summary>Asks the core; memoizes when it says the token may be reused for a while.</summary>
        private Memo Load(bool needHeaders)
        {
            EnsureUsable();
            long generation = Interlocked.Read(ref _generation);
            TokenClientHandle handle = _handle;
            // Two native calls: a Dispose between them must wait, as it does for a single call.
            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                throw Disposed();
            }
            try
            {
                return LoadFromCore(needHeaders, handle, generation);
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }

        private Memo LoadFromCore(bool needHeaders, TokenClientHandle handle, long generation)
        {
            Memo memo = null;
            // A refresh may land between the two calls; retry for a consistent pair.
            for (int attempt = 0; attempt < 3; attempt++)
            {
                long started = Stopwatch.GetTimestamp();
                ulong reusableNs;
                string token = ReadTokenFromCore(out reusableNs);
                if (reusableNs == 0 && !needHeaders)
                {
                    return new Memo(token, null, null, 0);
                }
                TokenwardHeaders headers = TokenwardHeaders.Parse(NativeMethods.ReadString(
                    (byte[] buf, UIntPtr cap, out UIntPtr len) => NativeMethods.tw_client_headers(handle, buf, cap, out len)));
                string authorization = headers.First;
                long reuseUntil = started + ToTicks(reusableNs);
                memo = new Memo(token, authorization, headers, reuseUntil);
                if (authorization.Length == token.Length + 7 && authorization.EndsWith(token, StringComparison.Ordinal))
                {
                    if (reusableNs > 0)
                    {
                        Store(memo, generation);
                    }
                    return memo;
                }
            }
            return memo;
        }

        private void Store(Memo memo, long generation)
        {
            lock (_memoLock)
            {
                // After an Invalidate that began later than this load, its token must not return.
                if (_generation == generation && !_disposed)
                {
                    _memo = memo;
                }
            }
        }

        private void DropMemo()
        {
            lock (_memoLock)
            {
                Interlocked.Increment(ref _generation);
                _memo = null;
            }
        }

        private static long ToTicks(ulong nanoseconds)
        {
            if (nanoseconds > MaxReuseNs)
            {
                nanoseconds = MaxReuseNs;
            }
            return (long)(nanoseconds * (double)Stopwatch.Frequency / 1e9);
        }

        private void EnsureUsable()
        {
            if (_disposed)
            {
                throw Disposed();
            }
            if (EventSink.IsDeliveringOnThisThread(_sink))
            {
                throw new InvalidOperationException(
                    "tokenward: an event handler must not call back into the TokenClient that raised the event; hand the work to another thread instead.");
            }
        }

        private static ObjectDisposedException Disposed()
        {
            return new ObjectDisposedException(nameof(TokenClient), "tokenward: this TokenClient was disposed; create a new one.");
        }

        private sealed class Memo
        {
            internal readonly string Token;
            internal readonly string Authorization;
            internal readonly IReadOnlyDictionary<string, string> Headers;
            internal readonly long ReuseUntil; // Stopwatch ticks

            internal Memo(string token, string authorization, IReadOnlyDictionary<string, string> headers, long reuseUntil)
            {
                Token = token;
                Authorization = authorization;
                Headers = headers;
                ReuseUntil = reuseUntil;
            }
        }
    }
}
