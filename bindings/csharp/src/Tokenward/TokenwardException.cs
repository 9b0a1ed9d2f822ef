using System;

namespace Tokenward
{
    /// <summary>
    /// The native status codes (<c>tw_status</c> of include/tokenward.h; docs/design.md
    /// "Errors" says what each means). Values are fixed forever; new ones are appended.
    /// </summary>
    public enum TokenwardStatus
    {
        /// <summary>Success (<c>TW_OK</c>).</summary>
        Ok = 0,
        /// <summary>An invalid argument reached the native library (malformed configuration JSON, invalid UTF-8), or a string with an unpaired surrogate was passed. (<c>TW_ERR_INVALID_ARGUMENT</c>)</summary>
        InvalidArgument = 1,
        /// <summary>The configuration was rejected; the message names the key. (<c>TW_ERR_CONFIG</c>)</summary>
        Config = 2,
        /// <summary>The caller's buffer was too small; the binding retries with a larger one, so this never reaches callers. (<c>TW_ERR_BUFFER_TOO_SMALL</c>)</summary>
        BufferTooSmall = 3,
        /// <summary>DNS, connect, reset or proxy failure. (<c>TW_ERR_NETWORK</c>)</summary>
        Network = 10,
        /// <summary>The connect or request deadline passed. (<c>TW_ERR_TIMEOUT</c>)</summary>
        Timeout = 11,
        /// <summary>Certificate or TLS handshake failure. (<c>TW_ERR_TLS</c>)</summary>
        Tls = 12,
        /// <summary>OAuth <c>invalid_client</c> (or HTTP 401 from the token endpoint): check the client id and secret. (<c>TW_ERR_INVALID_CLIENT</c>)</summary>
        InvalidClient = 20,
        /// <summary>OAuth <c>invalid_scope</c>. (<c>TW_ERR_INVALID_SCOPE</c>)</summary>
        InvalidScope = 21,
        /// <summary>OAuth <c>unauthorized_client</c> or <c>unsupported_grant_type</c>. (<c>TW_ERR_UNAUTHORIZED_CLIENT</c>)</summary>
        UnauthorizedClient = 22,
        /// <summary>Any other OAuth error response from the token endpoint. (<c>TW_ERR_OAUTH</c>)</summary>
        OAuth = 23,
        /// <summary>HTTP 429 from the token endpoint after retries. (<c>TW_ERR_RATE_LIMITED</c>)</summary>
        RateLimited = 24,
        /// <summary>HTTP 5xx from the token endpoint after retries. (<c>TW_ERR_SERVER</c>)</summary>
        Server = 25,
        /// <summary>The token response was malformed (not JSON, no access_token, too large). (<c>TW_ERR_BAD_RESPONSE</c>)</summary>
        BadResponse = 26,
        /// <summary>The API answered 401 again after one token refresh (<see cref="TokenClient.Send"/>). (<c>TW_ERR_UNAUTHORIZED</c>)</summary>
        Unauthorized = 30,
        /// <summary>The API answered 403 (<see cref="TokenClient.Send"/>). (<c>TW_ERR_FORBIDDEN</c>)</summary>
        Forbidden = 31,
        /// <summary>The request URL's origin is not one of the configured <c>ApiBaseUrls</c>: nothing was sent and no header was handed out for it. (<c>TW_ERR_FOREIGN_ORIGIN</c>)</summary>
        ForeignOrigin = 32,
        /// <summary>The client uses DPoP: every request carries its own proof, so <see cref="TokenClient.GetHeaders"/> and <see cref="TokenClient.GetAuthorization"/> cannot serve it; use <see cref="TokenClient.GetHeadersFor"/>, <see cref="TokenClient.Send"/> or <see cref="TokenwardHandler"/>. (<c>TW_ERR_NEEDS_REQUEST</c>)</summary>
        NeedsRequest = 33,
        /// <summary>A Rust panic was caught at the native boundary (a tokenward bug; please report it). (<c>TW_ERR_PANIC</c>)</summary>
        Panic = 99
    }

    /// <summary>
    /// A tokenward failure: <see cref="Status"/> is the native status and <see cref="Exception.Message"/>
    /// the native message (what failed, where, and what to check). Messages never contain a
    /// secret or a full token. Each status family has its own subclass, so callers catch
    /// e.g. <see cref="TokenwardInvalidClientException"/> or <see cref="TokenwardNetworkException"/>.
    /// </summary>
    public class TokenwardException : Exception
    {
        /// <summary>Creates an exception for <paramref name="status"/> with the native message.</summary>
        public TokenwardException(TokenwardStatus status, string message)
            : base(message)
        {
            Status = status;
        }

        /// <summary>The native status code of the failure.</summary>
        public TokenwardStatus Status { get; }

        /// <summary>The C name of <see cref="Status"/>, e.g. <c>"TW_ERR_TIMEOUT"</c>.</summary>
        public string StatusName
        {
            get { return NameOf(Status); }
        }

        /// <summary>The exception class of each native status; the base class for one this version does not know.</summary>
        internal static TokenwardException Create(TokenwardStatus status, string message)
        {
            switch (status)
            {
                case TokenwardStatus.InvalidArgument: return new TokenwardInvalidArgumentException(message);
                case TokenwardStatus.Config: return new TokenwardConfigException(message);
                case TokenwardStatus.Network: return new TokenwardNetworkException(message);
                case TokenwardStatus.Timeout: return new TokenwardTimeoutException(message);
                case TokenwardStatus.Tls: return new TokenwardTlsException(message);
                case TokenwardStatus.InvalidClient: return new TokenwardInvalidClientException(message);
                case TokenwardStatus.InvalidScope: return new TokenwardInvalidScopeException(message);
                case TokenwardStatus.UnauthorizedClient: return new TokenwardUnauthorizedClientException(message);
                case TokenwardStatus.OAuth: return new TokenwardOAuthException(message);
                case TokenwardStatus.RateLimited: return new TokenwardRateLimitedException(message);
                case TokenwardStatus.Server: return new TokenwardServerException(message);
                case TokenwardStatus.BadResponse: return new TokenwardBadResponseException(message);
                case TokenwardStatus.Unauthorized: return new TokenwardUnauthorizedException(message);
                case TokenwardStatus.Forbidden: return new TokenwardForbiddenException(message);
                case TokenwardStatus.ForeignOrigin: return new TokenwardForeignOriginException(message);
                case TokenwardStatus.NeedsRequest: return new TokenwardNeedsRequestException(message);
                case TokenwardStatus.Panic: return new TokenwardPanicException(message);
                default: return new TokenwardException(status, message);
            }
        }

        private static string NameOf(TokenwardStatus status)
        {
            switch (status)
            {
                case TokenwardStatus.Ok: return "TW_OK";
                case TokenwardStatus.InvalidArgument: return "TW_ERR_INVALID_ARGUMENT";
                case TokenwardStatus.Config: return "TW_ERR_CONFIG";
                case TokenwardStatus.BufferTooSmall: return "TW_ERR_BUFFER_TOO_SMALL";
                case TokenwardStatus.Network: return "TW_ERR_NETWORK";
                case TokenwardStatus.Timeout: return "TW_ERR_TIMEOUT";
                case TokenwardStatus.Tls: return "TW_ERR_TLS";
                case TokenwardStatus.InvalidClient: return "TW_ERR_INVALID_CLIENT";
                case TokenwardStatus.InvalidScope: return "TW_ERR_INVALID_SCOPE";
                case TokenwardStatus.UnauthorizedClient: return "TW_ERR_UNAUTHORIZED_CLIENT";
                case TokenwardStatus.OAuth: return "TW_ERR_OAUTH";
                case TokenwardStatus.RateLimited: return "TW_ERR_RATE_LIMITED";
                case TokenwardStatus.Server: return "TW_ERR_SERVER";
                case TokenwardStatus.BadResponse: return "TW_ERR_BAD_RESPONSE";
                case TokenwardStatus.Unauthorized: return "TW_ERR_UNAUTHORIZED";
                case TokenwardStatus.Forbidden: return "TW_ERR_FORBIDDEN";
                case TokenwardStatus.ForeignOrigin: return "TW_ERR_FOREIGN_ORIGIN";
                case TokenwardStatus.NeedsRequest: return "TW_ERR_NEEDS_REQUEST";
                case TokenwardStatus.Panic: return "TW_ERR_PANIC";
                default: return "TW_ERR_UNKNOWN";
            }
        }
    }

    /// <summary>An invalid argument reached the native library (malformed configuration JSON, invalid UTF-8), or a string with an unpaired surrogate was passed. Status <c>TW_ERR_INVALID_ARGUMENT</c>.</summary>
    public class TokenwardInvalidArgumentException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardInvalidArgumentException(string message)
            : base(TokenwardStatus.InvalidArgument, message)
        {
        }

        /// <summary>For the more specific kinds of invalid argument.</summary>
        protected TokenwardInvalidArgumentException(TokenwardStatus status, string message)
            : base(status, message)
        {
        }
    }

    /// <summary>
    /// The request URL's origin is not one of the configured <c>ApiBaseUrls</c>: nothing was sent
    /// and no header was handed out for it. Also a <see cref="TokenwardInvalidArgumentException"/>.
    /// Status <c>TW_ERR_FOREIGN_ORIGIN</c>.
    /// </summary>
    public class TokenwardForeignOriginException : TokenwardInvalidArgumentException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardForeignOriginException(string message)
            : base(TokenwardStatus.ForeignOrigin, message)
        {
        }
    }

    /// <summary>The configuration was rejected; the message names the key. Status <c>TW_ERR_CONFIG</c>.</summary>
    public class TokenwardConfigException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardConfigException(string message)
            : base(TokenwardStatus.Config, message)
        {
        }
    }

    /// <summary>DNS, connect, reset or proxy failure. Status <c>TW_ERR_NETWORK</c>.</summary>
    public class TokenwardNetworkException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardNetworkException(string message)
            : base(TokenwardStatus.Network, message)
        {
        }
    }

    /// <summary>The connect or request deadline passed. Status <c>TW_ERR_TIMEOUT</c>.</summary>
    public class TokenwardTimeoutException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardTimeoutException(string message)
            : base(TokenwardStatus.Timeout, message)
        {
        }
    }

    /// <summary>Certificate or TLS handshake failure. Status <c>TW_ERR_TLS</c>.</summary>
    public class TokenwardTlsException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardTlsException(string message)
            : base(TokenwardStatus.Tls, message)
        {
        }
    }

    /// <summary>OAuth <c>invalid_client</c> (or HTTP 401 from the token endpoint): check the client id and secret. Status <c>TW_ERR_INVALID_CLIENT</c>.</summary>
    public class TokenwardInvalidClientException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardInvalidClientException(string message)
            : base(TokenwardStatus.InvalidClient, message)
        {
        }
    }

    /// <summary>OAuth <c>invalid_scope</c>. Status <c>TW_ERR_INVALID_SCOPE</c>.</summary>
    public class TokenwardInvalidScopeException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardInvalidScopeException(string message)
            : base(TokenwardStatus.InvalidScope, message)
        {
        }
    }

    /// <summary>OAuth <c>unauthorized_client</c> or <c>unsupported_grant_type</c>. Status <c>TW_ERR_UNAUTHORIZED_CLIENT</c>.</summary>
    public class TokenwardUnauthorizedClientException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardUnauthorizedClientException(string message)
            : base(TokenwardStatus.UnauthorizedClient, message)
        {
        }
    }

    /// <summary>Any other OAuth error response from the token endpoint. Status <c>TW_ERR_OAUTH</c>.</summary>
    public class TokenwardOAuthException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardOAuthException(string message)
            : base(TokenwardStatus.OAuth, message)
        {
        }
    }

    /// <summary>HTTP 429 from the token endpoint after retries. Status <c>TW_ERR_RATE_LIMITED</c>.</summary>
    public class TokenwardRateLimitedException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardRateLimitedException(string message)
            : base(TokenwardStatus.RateLimited, message)
        {
        }
    }

    /// <summary>HTTP 5xx from the token endpoint after retries. Status <c>TW_ERR_SERVER</c>.</summary>
    public class TokenwardServerException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardServerException(string message)
            : base(TokenwardStatus.Server, message)
        {
        }
    }

    /// <summary>The token response was malformed (not JSON, no access_token, too large). Status <c>TW_ERR_BAD_RESPONSE</c>.</summary>
    public class TokenwardBadResponseException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardBadResponseException(string message)
            : base(TokenwardStatus.BadResponse, message)
        {
        }
    }

    /// <summary>The API answered 401 again after one token refresh (<see cref="TokenClient.Send"/>). Status <c>TW_ERR_UNAUTHORIZED</c>.</summary>
    public class TokenwardUnauthorizedException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardUnauthorizedException(string message)
            : base(TokenwardStatus.Unauthorized, message)
        {
        }
    }

    /// <summary>The API answered 403 (<see cref="TokenClient.Send"/>). Status <c>TW_ERR_FORBIDDEN</c>.</summary>
    public class TokenwardForbiddenException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardForbiddenException(string message)
            : base(TokenwardStatus.Forbidden, message)
        {
        }
    }

    /// <summary>
    /// The client uses DPoP: every request carries its own proof, made for its method and URL,
    /// so <see cref="TokenClient.GetHeaders"/> and <see cref="TokenClient.GetAuthorization"/>
    /// cannot serve it. Use <see cref="TokenClient.GetHeadersFor"/>, <see cref="TokenClient.Send"/>
    /// or <see cref="TokenwardHandler"/>. Status <c>TW_ERR_NEEDS_REQUEST</c>.
    /// </summary>
    public class TokenwardNeedsRequestException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardNeedsRequestException(string message)
            : base(TokenwardStatus.NeedsRequest, message)
        {
        }
    }

    /// <summary>A Rust panic was caught at the native boundary (a tokenward bug; please report it). Status <c>TW_ERR_PANIC</c>.</summary>
    public class TokenwardPanicException : TokenwardException
    {
        /// <summary>Creates the exception with the native message.</summary>
        public TokenwardPanicException(string message)
            : base(TokenwardStatus.Panic, message)
        {
        }
    }

    /// <summary>
    /// The native library cannot be used: it was not found, or it was built for another C ABI
    /// version than this Tokenward.dll (a mismatched pair of files). Thrown by the first use
    /// of the library (creating a <see cref="TokenClient"/>, reading
    /// <see cref="TokenClient.NativeVersion"/>), and by every use after that in the same
    /// process. The message names both versions and the library's path.
    /// </summary>
    public sealed class TokenwardLibraryException : Exception
    {
        /// <summary>Creates the exception; <paramref name="inner"/> is the loader's own exception, if any.</summary>
        public TokenwardLibraryException(string message, string libraryPath, int? actualAbiVersion, Exception inner)
            : base(message, inner)
        {
            LibraryPath = libraryPath;
            ActualAbiVersion = actualAbiVersion;
        }

        /// <summary>The path of the library that was loaded; null when none was, or where the path cannot be found out.</summary>
        public string LibraryPath { get; }

        /// <summary>The C ABI version the library reports; null when it could not be asked.</summary>
        public int? ActualAbiVersion { get; }

        /// <summary>The C ABI version this binding is written for.</summary>
        public int ExpectedAbiVersion
        {
            get { return NativeMethods.AbiVersion; }
        }
    }
}
