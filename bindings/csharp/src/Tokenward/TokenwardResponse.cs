using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Tokenward
{
    /// <summary>
    /// The response of <see cref="TokenClient.Send"/>: status and body are copied at once; the
    /// native response stays open for <see cref="GetHeader"/> until <see cref="Dispose"/> (or
    /// the finalizer) frees it. Immutable; safe to read from any thread.
    /// </summary>
    public sealed class TokenwardResponse : IDisposable
    {
        private readonly TokenwardResponseHandle _handle;

        internal TokenwardResponse(TokenwardResponseHandle handle)
        {
            _handle = handle;
            StatusCode = NativeMethods.tw_response_status(handle);
            UIntPtr length;
            IntPtr body = NativeMethods.tw_response_body(handle, out length);
            Body = new byte[(int)length.ToUInt64()];
            if (Body.Length > 0)
            {
                Marshal.Copy(body, Body, 0, Body.Length);
            }
        }

        /// <summary>The HTTP status, e.g. 200 (4xx and 5xx are responses too, not exceptions).</summary>
        public int StatusCode { get; }

        /// <summary>The response body (a copy owned by this object).</summary>
        public byte[] Body { get; }

        /// <summary>The body decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
        public string BodyText
        {
            get { return Encoding.UTF8.GetString(Body); }
        }

        /// <summary>
        /// The value of header <paramref name="name"/> (case-insensitive; repeated headers joined
        /// by <c>", "</c>), or null when the response has no such header.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The response was disposed.</exception>
        public string GetHeader(string name)
        {
            if (name == null)
            {
                throw new ArgumentNullException(nameof(name));
            }
            if (_handle.IsClosed)
            {
                throw new ObjectDisposedException(nameof(TokenwardResponse));
            }
            byte[] nameBytes = NativeMethods.Utf8(name, "the header name");
            byte[] buffer = NativeMethods.ThreadBuffer(0);
            while (true)
            {
                UIntPtr needed;
                int status = NativeMethods.tw_response_header(_handle, nameBytes, buffer, (UIntPtr)buffer.Length, out needed);
                ulong size = needed.ToUInt64();
                if (status == NativeMethods.StatusOk)
                {
                    // *len 0: no such header; 1: present and empty.
                    return size == 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)size - 1);
                }
                if (status != NativeMethods.StatusBufferTooSmall || size <= (ulong)buffer.Length || size > int.MaxValue)
                {
                    throw NativeMethods.Error(status);
                }
                buffer = NativeMethods.ThreadBuffer((int)size);
            }
        }

        /// <summary>Frees the native response. Idempotent.</summary>
        public void Dispose()
        {
            _handle.Dispose();
        }

        /// <summary>The status and body size.</summary>
        public override string ToString()
        {
            return "TokenwardResponse { StatusCode = " + StatusCode + ", Body = " + Body.Length + " bytes }";
        }
    }
}
