using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
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
    /// <para>Hot path: with each token the core reports how long it stays fresh (until the
    /// core's own refresh point) and how long it stays usable (until shortly before it
    /// expires). While fresh, <see cref="GetToken"/>, <see cref="GetAuthorization"/> and
    /// <see cref="GetHeaders"/> answer from a memo without a native call. Between the two
    /// points they keep answering from the memo while one calling thread at a time asks the
    /// core, which starts the refresh and hands over the new token once it has landed; no
    /// caller waits for that thread. The memo is never used past the usable point, nor after
    /// <see cref="Invalidate"/>, <see cref="SetClientSecret"/>, <see cref="Dispose"/> or the core
    /// evicting the token (e.g. <see cref="Send"/> recovering from a 401).</para>
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
        // 1 while a thread asks the core on behalf of a memo past its fresh point.
        private int _asking;
        private volatile bool _disposed;

        /// <summary>Creates a client from <paramref name="options"/> (validated by the core; no network I/O).</summary>
        /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
        /// <exception cref="TokenwardConfigException">The configuration was rejected; the message names the key.</exception>
        /// <exception cref="TokenwardInvalidArgumentException">A string has an unpaired surrogate.</exception>
        /// <exception cref="TokenwardLibraryException">The native library is missing or of another ABI version.</exception>
        public TokenClient(TokenClientOptions options)
        {
            if (options == null)
            {
                throw new ArgumentNullException(nameof(options));
            }
            NativeMethods.EnsureCompatible();
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
        /// <exception cref="TokenwardLibraryException">The native library is missing or of another ABI version.</exception>
        public static TokenClient FromEnvironment(string prefix = null)
        {
            NativeMethods.EnsureCompatible();
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

        /// <summary>The native library's version (<c>tw_version</c>), e.g. <c>"0.1.0"</c>.</summary>
        /// <exception cref="TokenwardLibraryException">The native library is missing or of another ABI version.</exception>
        public static string NativeVersion
        {
            get
            {
                NativeMethods.EnsureCompatible();
                return NativeMethods.FromUtf8(NativeMethods.tw_version());
            }
        }

        /// <summary>
        /// This binding's version, e.g. <c>"0.1.0"</c>: the tokenward release it belongs to, equal
        /// to <see cref="NativeVersion"/> when the assembly and the native library come from the
        /// same release. Does not load the native library.
        /// </summary>
        public static string Version
        {
            get
            {
                var attribute = (AssemblyInformationalVersionAttribute)Attribute.GetCustomAttribute(
                    typeof(TokenClient).Assembly, typeof(AssemblyInformationalVersionAttribute));
                return attribute.InformationalVersion;
            }
        }

        /// <summary>
        /// Raised for each native event (token acquired, refresh failed, retry scheduled, ...).
        /// Handlers may run on a library thread, must return quickly, and must not call back into
        /// this client (such calls throw <see cref="InvalidOperationException"/>); exceptions they
        /// throw are reported to <see cref="Trace"/> and ignored. Event messages never contain a
        /// secret or a full token. Configuration warnings (<see cref="TokenwardEventKind.Warning"/>,
        /// e.g. a secret file others can read) arise while the client is built; the first handler
        /// added receives them, on the adding thread.
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
            if (memo != null && Stopwatch.GetTimestamp() < memo.FreshUntil)
            {
                return memo.Token;
            }
            return Current(memo, false).Token;
        }

        /// <summary>The <c>Authorization</c> header value, <c>"Bearer &lt;token&gt;"</c>. Errors as <see cref="GetToken"/>.</summary>
        public string GetAuthorization()
        {
            Memo memo = _memo;
            if (memo != null && Stopwatch.GetTimestamp() < memo.FreshUntil)
            {
                return memo.Authorization;
            }
            return Current(memo, true).Authorization;
        }

        /// <summary>
        /// Every header to send, in order: <c>Authorization</c> first, then the configured static
        /// headers (e.g. <c>tenant-code</c>, <c>api-version</c>). Immutable and looked up
        /// case-insensitively. Errors as <see cref="GetToken"/>.
        /// </summary>
        public IReadOnlyDictionary<string, string> GetHeaders()
        {
            Memo memo = _memo;
            if (memo != null && Stopwatch.GetTimestamp() < memo.FreshUntil)
            {
                return memo.Headers;
            }
            return Current(memo, true).Headers;
        }

        /// <summary>
        /// The memoized headers, or null when getting them would call the core (and might block
        /// there): fresh, or usable while another thread asks the core.
        /// </summary>
        internal IReadOnlyDictionary<string, string> CachedHeaders
        {
            get
            {
                Memo memo = _memo;
                if (memo == null)
                {
                    return null;
                }
                long now = Stopwatch.GetTimestamp();
                bool cached = now < memo.FreshUntil || (now < memo.UsableUntil && Volatile.Read(ref _asking) != 0);
                return cached ? memo.Headers : null;
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
        /// <remarks>
        /// The headers go to the core as name/value pairs and the core checks each: a name that
        /// is not an RFC 9110 token, a value with CR, LF or another control character, or a
        /// header the transport or tokenward sets (<c>Authorization</c>, <c>Proxy-Authorization</c>,
        /// <c>Host</c>, <c>Content-Length</c>, <c>Transfer-Encoding</c>, <c>Connection</c>,
        /// <c>TE</c>, <c>Upgrade</c>) is a <see cref="TokenwardInvalidArgumentException"/> and
        /// nothing is sent. A redirect to another origin carries none of the client's headers and
        /// of these only <c>Accept</c>, <c>Accept-Language</c>, <c>User-Agent</c> and
        /// <c>Content-Type</c>.
        /// </remarks>
        /// <param name="method">The HTTP method, e.g. <c>"GET"</c>.</param>
        /// <param name="url">An absolute URL; outside <see cref="TokenClientOptions.ApiBaseUrls"/> (when set) it is refused before anything is sent.</param>
        /// <param name="headers">Extra request headers, or null.</param>
        /// <param name="body">The request body, or null.</param>
        /// <returns>The response, whatever its status (4xx and 5xx included); dispose it.</returns>
        /// <exception cref="TokenwardUnauthorizedException">The API answered 401 again after one refresh, or at once for a token issued right after it rejected another (no refresh storm).</exception>
        /// <exception cref="TokenwardForbiddenException">The API answered 403.</exception>
        /// <exception cref="TokenwardForeignOriginException">The URL is outside <see cref="TokenClientOptions.ApiBaseUrls"/>.</exception>
        /// <exception cref="TokenwardInvalidArgumentException">A bad method, URL or header (the message names the pair).</exception>
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
            var pairs = new List<KeyValuePair<string, string>>();
            if (headers != null)
            {
                pairs.AddRange(headers);
            }
            var names = new IntPtr[pairs.Count];
            var values = new IntPtr[pairs.Count];
            try
            {
                for (int i = 0; i < pairs.Count; i++)
                {
                    names[i] = NativeString(pairs[i].Key, "the name of request header " + i);
                    values[i] = NativeString(pairs[i].Value, "the value of request header " + i);
                }
                TokenwardResponseHandle response;
                int status = NativeMethods.tw_client_send_pairs(
                    _handle, NativeMethods.Utf8(method, "the method"), NativeMethods.Utf8(url, "the URL"),
                    names, values, (UIntPtr)pairs.Count,
                    body, (UIntPtr)(body == null ? 0 : body.Length), out response);
                if (status != NativeMethods.StatusOk)
                {
                    TokenwardException error = NativeMethods.Error(status);
                    response.Dispose();
                    throw error;
                }
                return new TokenwardResponse(response);
            }
            finally
            {
                // The core may have replaced the token (a 401 makes it invalidate and refetch).
                DropMemo();
                FreeNativeStrings(names);
                FreeNativeStrings(values);
            }
        }

        /// <summary>
        /// A NUL-terminated UTF-8 copy of <paramref name="text"/> in unmanaged memory (null stays
        /// NULL, which the core reports). NUL itself is refused: a C string would end there.
        /// </summary>
        private static IntPtr NativeString(string text, string what)
        {
            if (text == null)
            {
                return IntPtr.Zero;
            }
            if (text.IndexOf('\0') >= 0)
            {
                throw new TokenwardInvalidArgumentException(
                    "tokenward: " + what + " contains NUL; the request was not sent.");
            }
            byte[] bytes = NativeMethods.Utf8(text, what);
            IntPtr copy = Marshal.AllocHGlobal(bytes.Length);
            Marshal.Copy(bytes, 0, copy, bytes.Length);
            Array.Clear(bytes, 0, bytes.Length);
            return copy;
        }

        private static void FreeNativeStrings(IntPtr[] strings)
        {
            foreach (IntPtr text in strings)
            {
                if (text == IntPtr.Zero)
                {
                    continue;
                }
                // Header values may be credentials (cookies, API keys): wipe before freeing.
                for (int i = 0; Marshal.ReadByte(text, i) != 0; i++)
                {
                    Marshal.WriteByte(text, i, 0);
                }
                Marshal.FreeHGlobal(text);
            }
        }

        /// <summary>
        /// The headers for one request to <paramref name="url"/> by another HTTP client:
        /// <c>Authorization</c> first, then the configured static headers — provided the URL may
        /// carry them. Blocks like <see cref="GetToken"/>.
        /// </summary>
        /// <exception cref="TokenwardForeignOriginException"><see cref="TokenClientOptions.ApiBaseUrls"/> is set and the URL is of another origin (nothing is handed out).</exception>
        /// <exception cref="TokenwardInvalidArgumentException">A malformed method or URL.</exception>
        /// <exception cref="TokenwardException">Token failures, as for <see cref="GetToken"/>.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public IReadOnlyDictionary<string, string> GetHeadersFor(string method, string url)
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
            TokenClientHandle handle = _handle;
            byte[] methodBytes = NativeMethods.Utf8(method, "the method");
            byte[] urlBytes = NativeMethods.Utf8(url, "the URL");
            return TokenwardHeaders.Parse(NativeMethods.ReadString(
                (byte[] buf, UIntPtr cap, out UIntPtr len) =>
                    NativeMethods.tw_client_headers_for(handle, methodBytes, urlBytes, buf, cap, out len)));
        }

        /// <summary>
        /// After the API answered a request that carried <paramref name="authorization"/> (from
        /// <see cref="GetHeadersFor"/>): whether to re-send it once with new headers — the core
        /// found the token rejected (401, or a GraphQL <c>UNAUTHENTICATED</c> with
        /// <c>GraphqlAuthErrors</c>) and invalidated it.
        /// </summary>
        /// <exception cref="TokenwardUnauthorizedException">The core refuses a re-send: the API rejects freshly issued tokens.</exception>
        internal bool Recover(string authorization, int status, byte[] body)
        {
            EnsureUsable();
            int resend = 0;
            try
            {
                NativeMethods.Check(NativeMethods.tw_client_recover(
                    _handle, NativeMethods.Utf8(authorization, "the Authorization value"), (ushort)status,
                    body, (UIntPtr)(body == null ? 0 : body.Length), out resend));
                return resend != 0;
            }
            finally
            {
                if (resend != 0)
                {
                    // The core invalidated the token: the memo goes with it.
                    DropMemo();
                }
            }
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
        /// The token from the core with its fresh and usable spans (ns from the call); on the
        /// memo's path, so the benchmark can time the native round trip that a memo hit avoids.
        /// </summary>
        internal string ReadTokenFromCore(out ulong freshNs, out ulong usableNs)
        {
            int length;
            byte[] buffer = ReadTokenWindow(out length, out freshNs, out usableNs);
            return Encoding.UTF8.GetString(buffer, 0, length);
        }

        /// <summary>
        /// <c>tw_client_token_window</c> into this thread's buffer: the token is its first
        /// <paramref name="length"/> bytes (UTF-8, NUL excluded).
        /// </summary>
        private byte[] ReadTokenWindow(out int length, out ulong freshNs, out ulong usableNs)
        {
            EnsureUsable();
            byte[] buffer = NativeMethods.ThreadBuffer(0);
            while (true)
            {
                UIntPtr needed;
                int status = NativeMethods.tw_client_token_window(
                    _handle, buffer, (UIntPtr)buffer.Length, out needed, out freshNs, out usableNs);
                ulong size = needed.ToUInt64();
                if (status == NativeMethods.StatusOk)
                {
                    length = size == 0 ? 0 : (int)size - 1;
                    return buffer;
                }
                if (status != NativeMethods.StatusBufferTooSmall || size <= (ulong)buffer.Length || size > int.MaxValue)
                {
                    throw NativeMethods.Error(status);
                }
                buffer = NativeMethods.ThreadBuffer((int)size);
            }
        }

        /// <summary>
        /// The slow path, past <paramref name="memo"/>'s fresh point (or without a memo). While
        /// the memo is still usable, one thread at a time asks the core (which starts the
        /// refresh, or hands over the token it brought) and the others keep answering from the
        /// memo without waiting for it. Past the usable point every caller asks the core, which
        /// makes them wait for the new token.
        /// </summary>
        private Memo Current(Memo memo, bool needHeaders)
        {
            if (memo != null && Stopwatch.GetTimestamp() < memo.UsableUntil)
            {
                if (Interlocked.CompareExchange(ref _asking, 1, 0) != 0)
                {
                    return memo;
                }
                try
                {
                    return Load(needHeaders);
                }
                finally
                {
                    Volatile.Write(ref _asking, 0);
                }
            }
            return Load(needHeaders);
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
                int length;
                ulong freshNs, usableNs;
                byte[] buffer = ReadTokenWindow(out length, out freshNs, out usableNs);
                // Counted from before the call, so both points are at or before the core's own.
                long freshUntil = started + ToTicks(Math.Min(freshNs, usableNs));
                long usableUntil = started + ToTicks(usableNs);
                Memo known = _memo;
                if (known != null && known.IsToken(buffer, length))
                {
                    // The same token, the usual answer inside the refresh window. Its headers are
                    // unchanged; and unless this answer moves one of its points later, the memo
                    // already says all there is to say, so the asking thread allocates nothing.
                    if ((freshNs == 0 || freshUntil <= known.FreshUntil) && usableUntil <= known.UsableUntil)
                    {
                        return known;
                    }
                    memo = new Memo(known.TokenUtf8, known.Token, known.Authorization, known.Headers, freshUntil, usableUntil);
                    if (usableNs > 0)
                    {
                        Store(memo, generation);
                    }
                    return memo;
                }
                byte[] utf8 = new byte[length];
                Buffer.BlockCopy(buffer, 0, utf8, 0, length);
                string token = Encoding.UTF8.GetString(utf8);
                if (usableNs == 0 && !needHeaders)
                {
                    return new Memo(utf8, token, null, null, 0, 0);
                }
                TokenwardHeaders headers = TokenwardHeaders.Parse(NativeMethods.ReadString(
                    (byte[] buf, UIntPtr cap, out UIntPtr len) => NativeMethods.tw_client_headers(handle, buf, cap, out len)));
                string authorization = headers.First;
                memo = new Memo(utf8, token, authorization, headers, freshUntil, usableUntil);
                if (authorization.Length == token.Length + 7 && authorization.EndsWith(token, StringComparison.Ordinal))
                {
                    if (usableNs > 0)
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
                if (_generation != generation || _disposed)
                {
                    return;
                }
                // A fresh memo holds the newest token: a load that read the core before the
                // refresh landed (and stores after the one that read it afterwards) must not
                // bring the previous token back.
                Memo current = _memo;
                if (current != null && !string.Equals(current.Token, memo.Token, StringComparison.Ordinal)
                    && Stopwatch.GetTimestamp() < current.FreshUntil)
                {
                    return;
                }
                _memo = memo;
            }
        }

        /// <summary>The core evicted a token (its Invalidated event); runs on the evicting thread.</summary>
        internal void OnTokenEvicted()
        {
            DropMemo();
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

        /// <summary>One token with its headers and the two points (Stopwatch ticks) that bound its reuse.</summary>
        private sealed class Memo
        {
            internal readonly byte[] TokenUtf8;
            internal readonly string Token;
            internal readonly string Authorization;
            internal readonly IReadOnlyDictionary<string, string> Headers;
            internal readonly long FreshUntil;
            internal readonly long UsableUntil;

            internal Memo(
                byte[] tokenUtf8, string token, string authorization, IReadOnlyDictionary<string, string> headers,
                long freshUntil, long usableUntil)
            {
                TokenUtf8 = tokenUtf8;
                Token = token;
                Authorization = authorization;
                Headers = headers;
                FreshUntil = freshUntil;
                UsableUntil = usableUntil;
            }

            /// <summary>Whether the first <paramref name="length"/> bytes of <paramref name="utf8"/> are this token.</summary>
            internal bool IsToken(byte[] utf8, int length)
            {
                if (length != TokenUtf8.Length)
                {
                    return false;
                }
                for (int i = 0; i < length; i++)
                {
                    if (utf8[i] != TokenUtf8[i])
                    {
                        return false;
                    }
                }
                return true;
            }
        }
    }
}
