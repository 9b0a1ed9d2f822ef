using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace Tokenward
{
    /// <summary>
    /// An <see cref="HttpClient"/> handler that adds <c>Authorization: Bearer &lt;token&gt;</c> and
    /// the client's static headers (e.g. <c>tenant-code</c>, <c>api-version</c>) to every
    /// request; on a 401 it invalidates exactly the token that request carried and re-sends the
    /// request once with a fresh token. A second 401 is returned to the caller as it is.
    /// </summary>
    /// <remarks>
    /// <para>A static header the request already carries is left as the caller set it. Request
    /// content is buffered before the first send so the retry can send the same bytes.</para>
    /// <para>Every request through this handler gets the token: use it only in the
    /// <see cref="HttpClient"/> for the API the token is for. It does not own the
    /// <see cref="TokenClient"/>; dispose that separately. Thread-safe, like
    /// <see cref="HttpClient"/>. Token failures surface as <see cref="TokenwardException"/>
    /// from <c>SendAsync</c>.</para>
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

        /// <summary>Sends <paramref name="request"/> with the headers; once more after a 401.</summary>
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
            string sentToken = Apply(request, await HeadersAsync(cancellationToken).ConfigureAwait(false));
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized || sentToken == null)
            {
                return response;
            }

            _client.Invalidate(sentToken);
            HttpRequestMessage retry = Copy(request, body);
            Apply(retry, await HeadersAsync(cancellationToken).ConfigureAwait(false));
            response.Dispose();
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        private Task<IReadOnlyDictionary<string, string>> HeadersAsync(CancellationToken cancellationToken)
        {
            IReadOnlyDictionary<string, string> cached = _client.CachedHeaders;
            if (cached != null)
            {
                return Task.FromResult(cached);
            }
            // May block on a token fetch: not on the caller's (perhaps UI or request) thread.
            return Task.Run(() => _client.GetHeaders(), cancellationToken);
        }

        /// <summary>Puts the headers on <paramref name="request"/>; returns the token it carries.</summary>
        private static string Apply(HttpRequestMessage request, IReadOnlyDictionary<string, string> headers)
        {
            string token = null;
            foreach (KeyValuePair<string, string> header in headers)
            {
                if (string.Equals(header.Key, AuthorizationHeader, StringComparison.OrdinalIgnoreCase))
                {
                    request.Headers.Remove(AuthorizationHeader);
                    request.Headers.TryAddWithoutValidation(AuthorizationHeader, header.Value);
                    int space = header.Value.IndexOf(' ');
                    token = space < 0 ? null : header.Value.Substring(space + 1);
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
            return token;
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
