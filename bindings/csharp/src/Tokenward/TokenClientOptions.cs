using System.Collections.Generic;
using System.Text;

namespace Tokenward
{
    /// <summary>
    /// The configuration of a <see cref="TokenClient"/>: one property per JSON configuration key
    /// of the native core (the README's configuration table), in PascalCase. A property left
    /// null is not sent, so the core's default applies; every value is validated by the core
    /// when the client is created (<see cref="TokenwardConfigException"/> names the offending
    /// key).
    /// </summary>
    /// <example>
    /// <code>
    /// var options = new TokenClientOptions
    /// {
    ///     TokenUrl = "https://login.example.com/oauth/token",
    ///     ClientId = "my-service",
    ///     ClientSecret = Environment.GetEnvironmentVariable("MY_SECRET"),
    ///     Scope = "EventsApi",
    ///     Headers = { ["tenant-code"] = "T1", ["api-version"] = "2" },
    ///     Timeouts = { RequestMs = 5000 },
    /// };
    /// </code>
    /// </example>
    /// <remarks>
    /// A plain mutable settings object: not thread-safe, read once by the
    /// <see cref="TokenClient"/> constructor and not retained. <see cref="ToString"/> never
    /// shows the secret.
    /// </remarks>
    public sealed class TokenClientOptions
    {
        /// <summary><c>token_url</c>: the token endpoint (https, or http for loopback with <see cref="AllowHttp"/>).</summary>
        public string TokenUrl { get; set; }

        /// <summary><c>issuer</c>: find the token endpoint by OpenID discovery instead of <see cref="TokenUrl"/>.</summary>
        public string Issuer { get; set; }

        /// <summary><c>client_id</c>.</summary>
        public string ClientId { get; set; }

        /// <summary><c>client_secret</c>. Never shown by <see cref="ToString"/>.</summary>
        public string ClientSecret { get; set; }

        /// <summary><c>client_secret_file</c>: read the secret from this file.</summary>
        public string ClientSecretFile { get; set; }

        /// <summary><c>client_secret_env</c>: read the secret from this environment variable.</summary>
        public string ClientSecretEnv { get; set; }

        /// <summary><c>auth_method</c>: <c>client_secret_post</c> (default), <c>client_secret_basic</c>, <c>private_key_jwt</c>, <c>tls_client_auth</c> or <c>client_assertion_file</c>.</summary>
        public string AuthMethod { get; set; }

        /// <summary><c>private_key_file</c>: the PEM key for <c>private_key_jwt</c>.</summary>
        public string PrivateKeyFile { get; set; }

        /// <summary><c>private_key_id</c>: the <c>kid</c> of that key.</summary>
        public string PrivateKeyId { get; set; }

        /// <summary>
        /// <c>client_assertion_file</c>: a file holding a signed JWT that the platform writes and
        /// rotates (Kubernetes projected service-account token, workload identity), sent as the
        /// client assertion; read anew for every token request. Implies
        /// <c>auth_method</c> <c>client_assertion_file</c>.
        /// </summary>
        public string ClientAssertionFile { get; set; }

        /// <summary>
        /// <c>dpop</c>: bind tokens to a key with DPoP (RFC 9449). Then every request needs its own
        /// proof: use <see cref="TokenwardHandler"/> or <see cref="TokenClient.Send"/>.
        /// </summary>
        public DpopOptions Dpop { get; set; } = new DpopOptions();

        /// <summary><c>scope</c>: space-separated scopes, e.g. <c>"EventsApi read"</c>.</summary>
        public string Scope { get; set; }

        /// <summary><c>audience</c>.</summary>
        public string Audience { get; set; }

        /// <summary><c>resource</c>.</summary>
        public string Resource { get; set; }

        /// <summary><c>extra_params</c>: additional form parameters of the token request.</summary>
        public IDictionary<string, string> ExtraParams { get; set; } = new Dictionary<string, string>();

        /// <summary>
        /// <c>headers</c>: static headers sent with every API request after <c>Authorization</c>
        /// (e.g. <c>tenant-code</c>, <c>api-version</c>), in the dictionary's enumeration order.
        /// </summary>
        public IDictionary<string, string> Headers { get; set; } = new Dictionary<string, string>();

        /// <summary><c>api_base_urls</c>: the only origins <see cref="TokenClient.Send"/> attaches the token to.</summary>
        public IList<string> ApiBaseUrls { get; set; } = new List<string>();

        /// <summary><c>refresh_before_secs</c>: refresh this long before expiry (default 300).</summary>
        public long? RefreshBeforeSecs { get; set; }

        /// <summary><c>default_lifetime_secs</c>: lifetime of a token whose response has no <c>expires_in</c> (default 3600).</summary>
        public long? DefaultLifetimeSecs { get; set; }

        /// <summary><c>error_cooldown_ms</c>: how long a hard failure is answered from memory (default 5000).</summary>
        public long? ErrorCooldownMs { get; set; }

        /// <summary><c>refresh_mode</c>: <c>background</c> (default) or <c>inline</c>.</summary>
        public string RefreshMode { get; set; }

        /// <summary><c>timeouts</c>.</summary>
        public TimeoutOptions Timeouts { get; set; } = new TimeoutOptions();

        /// <summary><c>retry</c>.</summary>
        public RetryOptions Retry { get; set; } = new RetryOptions();

        /// <summary><c>tls</c>.</summary>
        public TlsOptions Tls { get; set; } = new TlsOptions();

        /// <summary><c>rate_limit</c>: a client-side limit for <see cref="TokenClient.Send"/>.</summary>
        public RateLimitOptions RateLimit { get; set; } = new RateLimitOptions();

        /// <summary><c>proxy</c>: an HTTP(S) proxy URL.</summary>
        public string Proxy { get; set; }

        /// <summary><c>allow_http</c>: permit <c>http://</c> URLs, honoured only for loopback hosts.</summary>
        public bool? AllowHttp { get; set; }

        /// <summary><c>graphql_auth_errors</c>: treat an HTTP 200 GraphQL <c>UNAUTHENTICATED</c> error like a 401 in <see cref="TokenClient.Send"/>.</summary>
        public bool? GraphqlAuthErrors { get; set; }

        /// <summary>
        /// <c>max_response_bytes</c>: the largest API response body <see cref="TokenClient.Send"/>
        /// reads (default 16 MiB); a longer body fails the call with
        /// <see cref="TokenwardBadResponseException"/>. Token responses have their own fixed
        /// 1 MiB cap.
        /// </summary>
        public long? MaxResponseBytes { get; set; }

        /// <summary>
        /// <c>shared_cache</c>: share tokens with the other processes (and hosts) of a fleet —
        /// <c>redis://[[user]:password@]host[:port][/db]</c>, <c>rediss://…</c> (TLS) or
        /// <c>file:///absolute/dir</c> (one host), optionally with <c>?timeout_ms=N</c>. One token
        /// request per token lifetime for all of them; a failing store never fails a call. Not
        /// shown by <see cref="ToString"/> (it may hold a password).
        /// </summary>
        public string SharedCache { get; set; }

        /// <summary>The endpoint and client id, never the secret.</summary>
        public override string ToString()
        {
            var text = new StringBuilder("TokenClientOptions { ");
            if (TokenUrl != null) text.Append("TokenUrl = ").Append(TokenUrl).Append(", ");
            if (Issuer != null) text.Append("Issuer = ").Append(Issuer).Append(", ");
            if (ClientId != null) text.Append("ClientId = ").Append(ClientId).Append(", ");
            if (ClientSecret != null) text.Append("ClientSecret = ***, ");
            return text.Append('}').ToString();
        }

        /// <summary>The JSON configuration document of the native core.</summary>
        internal string ToJson()
        {
            var json = new JsonWriter();
            json.BeginObject();
            String(json, "token_url", TokenUrl);
            String(json, "issuer", Issuer);
            String(json, "client_id", ClientId);
            String(json, "client_secret", ClientSecret);
            String(json, "client_secret_file", ClientSecretFile);
            String(json, "client_secret_env", ClientSecretEnv);
            String(json, "auth_method", AuthMethod);
            String(json, "private_key_file", PrivateKeyFile);
            String(json, "private_key_id", PrivateKeyId);
            String(json, "client_assertion_file", ClientAssertionFile);
            if (Dpop != null && Dpop.IsSet)
            {
                json.Name("dpop");
                json.BeginObject();
                String(json, "key_file", Dpop.KeyFile);
                Flag(json, "generate", Dpop.Generate);
                String(json, "alg", Dpop.Alg);
                json.EndObject();
            }
            String(json, "scope", Scope);
            String(json, "audience", Audience);
            String(json, "resource", Resource);
            if (ExtraParams != null && ExtraParams.Count > 0)
            {
                json.Name("extra_params");
                json.Value(ExtraParams);
            }
            if (Headers != null && Headers.Count > 0)
            {
                json.Name("headers");
                json.Value(Headers);
            }
            if (ApiBaseUrls != null && ApiBaseUrls.Count > 0)
            {
                json.Name("api_base_urls");
                json.Value(ApiBaseUrls);
            }
            Number(json, "refresh_before_secs", RefreshBeforeSecs);
            Number(json, "default_lifetime_secs", DefaultLifetimeSecs);
            Number(json, "error_cooldown_ms", ErrorCooldownMs);
            String(json, "refresh_mode", RefreshMode);
            if (Timeouts != null && Timeouts.IsSet)
            {
                json.Name("timeouts");
                json.BeginObject();
                Number(json, "connect_ms", Timeouts.ConnectMs);
                Number(json, "request_ms", Timeouts.RequestMs);
                json.EndObject();
            }
            if (Retry != null && Retry.IsSet)
            {
                json.Name("retry");
                json.BeginObject();
                Number(json, "max_attempts", Retry.MaxAttempts);
                Number(json, "base_delay_ms", Retry.BaseDelayMs);
                Number(json, "max_delay_ms", Retry.MaxDelayMs);
                Number(json, "max_retry_after_ms", Retry.MaxRetryAfterMs);
                json.EndObject();
            }
            if (Tls != null && Tls.IsSet)
            {
                json.Name("tls");
                json.BeginObject();
                String(json, "ca_file", Tls.CaFile);
                String(json, "client_cert_file", Tls.ClientCertFile);
                String(json, "client_key_file", Tls.ClientKeyFile);
                json.EndObject();
            }
            if (RateLimit != null && RateLimit.IsSet)
            {
                json.Name("rate_limit");
                json.BeginObject();
                Number(json, "requests", RateLimit.Requests);
                Number(json, "per_ms", RateLimit.PerMs);
                json.EndObject();
            }
            String(json, "proxy", Proxy);
            Flag(json, "allow_http", AllowHttp);
            Flag(json, "graphql_auth_errors", GraphqlAuthErrors);
            Number(json, "max_response_bytes", MaxResponseBytes);
            String(json, "shared_cache", SharedCache);
            json.EndObject();
            return json.ToString();
        }

        private static void String(JsonWriter json, string key, string value)
        {
            if (value != null)
            {
                json.Name(key);
                json.Value(value);
            }
        }

        private static void Number(JsonWriter json, string key, long? value)
        {
            if (value.HasValue)
            {
                json.Name(key);
                json.Value(value.Value);
            }
        }

        private static void Flag(JsonWriter json, string key, bool? value)
        {
            if (value.HasValue)
            {
                json.Name(key);
                json.Value(value.Value);
            }
        }
    }

    /// <summary>The <c>timeouts</c> configuration object.</summary>
    public sealed class TimeoutOptions
    {
        /// <summary><c>connect_ms</c>: TCP + TLS connect deadline.</summary>
        public long? ConnectMs { get; set; }

        /// <summary><c>request_ms</c>: deadline of a whole request, token fetches included.</summary>
        public long? RequestMs { get; set; }

        internal bool IsSet
        {
            get { return ConnectMs.HasValue || RequestMs.HasValue; }
        }
    }

    /// <summary>The <c>retry</c> configuration object (transient token-endpoint failures).</summary>
    public sealed class RetryOptions
    {
        /// <summary><c>max_attempts</c>, the first try included.</summary>
        public long? MaxAttempts { get; set; }

        /// <summary><c>base_delay_ms</c> of the exponential backoff.</summary>
        public long? BaseDelayMs { get; set; }

        /// <summary><c>max_delay_ms</c>: the largest backoff, and the longest wait inside one call (a longer <c>Retry-After</c> ends the call).</summary>
        public long? MaxDelayMs { get; set; }

        /// <summary><c>max_retry_after_ms</c>: the longest a transient failure is remembered, whatever <c>Retry-After</c> asked (default 120000).</summary>
        public long? MaxRetryAfterMs { get; set; }

        internal bool IsSet
        {
            get { return MaxAttempts.HasValue || BaseDelayMs.HasValue || MaxDelayMs.HasValue || MaxRetryAfterMs.HasValue; }
        }
    }

    /// <summary>The <c>tls</c> configuration object (paths to PEM files).</summary>
    public sealed class TlsOptions
    {
        /// <summary><c>ca_file</c>: an extra CA to trust besides the OS store.</summary>
        public string CaFile { get; set; }

        /// <summary><c>client_cert_file</c>: the client certificate for <c>tls_client_auth</c>.</summary>
        public string ClientCertFile { get; set; }

        /// <summary><c>client_key_file</c>: its private key.</summary>
        public string ClientKeyFile { get; set; }

        internal bool IsSet
        {
            get { return CaFile != null || ClientCertFile != null || ClientKeyFile != null; }
        }
    }

    /// <summary>The <c>dpop</c> configuration object: a key file or a generated key, and the algorithm.</summary>
    public sealed class DpopOptions
    {
        /// <summary><c>key_file</c>: a PEM private key (PKCS#8 P-256 or RSA, or PKCS#1 RSA).</summary>
        public string KeyFile { get; set; }

        /// <summary><c>generate</c>: a P-256 key made when the client is created, kept in memory only.</summary>
        public bool? Generate { get; set; }

        /// <summary><c>alg</c>: <c>ES256</c> (default; P-256 keys), or <c>RS256</c> (default for RSA keys) or <c>PS256</c>.</summary>
        public string Alg { get; set; }

        internal bool IsSet
        {
            get { return KeyFile != null || Generate.HasValue || Alg != null; }
        }
    }

    /// <summary>The <c>rate_limit</c> configuration object: at most <see cref="Requests"/> per <see cref="PerMs"/>.</summary>
    public sealed class RateLimitOptions
    {
        /// <summary><c>requests</c> per window.</summary>
        public long? Requests { get; set; }

        /// <summary><c>per_ms</c>: the window.</summary>
        public long? PerMs { get; set; }

        internal bool IsSet
        {
            get { return Requests.HasValue || PerMs.HasValue; }
        }
    }
}
