using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;

namespace Tokenward
{
    /// <summary>
    /// An <see cref="HttpClient"/> handler that adds <c>Authorization: Bearer &lt;token&gt;</c> and
    /// the client's static headers (e.g. <c>tenant-code</c>, <c>api-version</c>) to every request
    /// whose URL the client allows (<see cref="TokenClient.GetHeadersFor"/>); when the answer
    /// rejects the token it re-sends the request once with a fresh one. A second rejection is
    /// returned to the caller as it is.
    /// </summary>
    /// <remarks>
    /// <para>With <see cref="TokenClientOptions.ApiBaseUrls"/> set, a request to another origin
    /// fails with <see cref="TokenwardForeignOriginException"/> before it is sent. The core
    /// decides what a rejection is — a 401, or with <c>GraphqlAuthErrors</c> a GraphQL
    /// <c>UNAUTHENTICATED</c> error in a JSON 200 (whose content is therefore buffered) — and
    /// invalidates exactly the token the request carried. If the API already rejected a token
    /// issued just before, the core refuses another refresh and <c>SendAsync</c> throws
    /// <see cref="TokenwardUnauthorizedException"/> (no refresh storm).</para>
    /// <para>A static header the request already carries is left as the caller set it. Request
    /// content is buffered before the first send so the retry can send the same bytes.
    /// Redirects are followed by the inner handler, below this one.</para>
    /// <para>It does not own the <see cref="TokenClient"/>; dispose that separately.
    /// Thread-safe, like <see cref="HttpClient"/>. Token failures surface as
    /// <see cref="TokenwardException"/> from <c>SendAsync</c>.</para>
    /// </remarks>
    public sealed class TokenwardHandler : DelegatingHandler
    {
        private const string AuthorizationHeader = "Authorization";

        private readonly TokenClient _client;

        /// <summary>
        /// A handler for <paramref name="client"/> without an inner handler yet: set
        /// <see cref="DelegatingHandler.InnerHandler"/>, or let <c>IHttpClientFactory</c> do it
        /// (<c>AddHttpMessageHandler</c>).
        /// </summary>
        public TokenwardHandler(TokenClient client)
        {
            if (client == null)
            {
                throw new ArgumentNullException(nameof(client));
            }
            _client = client;
        }

        /// <summary>A handler for <paramref name="client"/> that sends through <paramref name="innerHandler"/>.</summary>
        public TokenwardHandler(TokenClient client, HttpMessageHandler innerHandler)
            : base(innerHandler)
        {
            if (client == null)
            {
                throw new ArgumentNullException(nameof(client));
            }
            _client = client;
        }

        /// <summary>Sends <paramref name="request"/> with the headers; once more after a rejection.</summary>
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request == null)
            {
                throw new ArgumentNullException(nameof(request));
            }
            byte[] body = null;
            if (request.Content != null)
            {
                body = await request.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
            string authorization = Apply(request, await HeadersAsync(request, cancellationToken).ConfigureAwait(false));
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (authorization == null)
            {
                return response;
            }
            byte[] answer = null;
            if (IsJson200(response))
            {
                answer = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
            bool resend;
            try
            {
                resend = await RecoverAsync(authorization, (int)response.StatusCode, answer, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                response.Dispose();
                throw;
            }
            if (!resend)
            {
                return response;
            }
            HttpRequestMessage retry = Copy(request, body);
            Apply(retry, await HeadersAsync(retry, cancellationToken).ConfigureAwait(false));
            response.Dispose();
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>A 200 with a JSON body: the only answer whose body can carry a GraphQL error for the core to recognise.</summary>
        private static bool IsJson200(HttpResponseMessage response)
        {
            if (response.StatusCode != HttpStatusCode.OK || response.Content == null)
            {
                return false;
            }
            MediaTypeHeaderValue type = response.Content.Headers.ContentType;
            return type != null && type.MediaType != null
                && type.MediaType.IndexOf("json", StringComparison.OrdinalIgnoreCase) >= 0;
        }

        private Task<IReadOnlyDictionary<string, string>> HeadersAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string method = request.Method.Method;
            string url = request.RequestUri == null ? string.Empty : request.RequestUri.AbsoluteUri;
            if (_client.CachedHeaders != null)
            {
                // A memoized token means the core answers from its cache at once.
                return Task.FromResult(_client.GetHeadersFor(method, url));
            }
            // May block on a token fetch: not on the caller's (perhaps UI or request) thread.
            return Task.Run(() => _client.GetHeadersFor(method, url), cancellationToken);
        }

        private Task<bool> RecoverAsync(string authorization, int status, byte[] answer, CancellationToken cancellationToken)
        {
            if (_client.CachedHeaders != null)
            {
                // The token is still memoized, so the core has it cached: no fetch, no wait.
                return Task.FromResult(_client.Recover(authorization, status, answer));
            }
            return Task.Run(() => _client.Recover(authorization, status, answer), cancellationToken);
        }

        /// <summary>Puts the headers on <paramref name="request"/>; returns the <c>Authorization</c> value it carries.</summary>
        private static string Apply(HttpRequestMessage request, IReadOnlyDictionary<string, string> headers)
        {
            string authorization = null;
            foreach (KeyValuePair<string, string> header in headers)
            {
                if (string.Equals(header.Key, AuthorizationHeader, StringComparison.OrdinalIgnoreCase))
                {
                    request.Headers.Remove(AuthorizationHeader);
                    request.Headers.TryAddWithoutValidation(AuthorizationHeader, header.Value);
                    authorization = header.Value;
                }
                else if (!request.Headers.Contains(header.Key)
                         && !request.Headers.TryAddWithoutValidation(header.Key, header.Value)
                         && request.Content != null
                         && !request.Content.Headers.Contains(header.Key))
                {
                    // A content header (e.g. Content-Language) belongs on the content.
                    request.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
            return authorization;
        }

        /// <summary>A fresh message for the retry: a message may not be sent twice, and some handlers dispose the content they sent.</summary>
        private static HttpRequestMessage Copy(HttpRequestMessage request, byte[] body)
        {
            var copy = new HttpRequestMessage(request.Method, request.RequestUri) { Version = request.Version };
            foreach (KeyValuePair<string, IEnumerable<string>> header in request.Headers)
            {
                copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            foreach (KeyValuePair<string, object> property in request.Properties)
            {
                copy.Properties[property.Key] = property.Value;
            }
            if (body != null)
            {
                copy.Content = new ByteArrayContent(body);
                foreach (KeyValuePair<string, IEnumerable<string>> header in request.Content.Headers)
                {
                    copy.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
            return copy;
        }
    }
}
