using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace Tokenward
{
    /// <summary>
    /// Every entry point of the tokenward C ABI (include/tokenward.h), declared once, with the
    /// marshalling helpers. Native pointers stay inside the assembly: public types never see an
    /// <see cref="IntPtr"/>.
    /// </summary>
    /// <remarks>
    /// Strings cross as NUL-terminated UTF-8 byte arrays built by <see cref="Utf8"/>; strings
    /// coming back are copied out of caller-owned buffers (the buffer protocol), so native code
    /// never hands the binding a string it would have to free. The only native-owned strings
    /// read here are static (<c>tw_version</c>, <c>tw_status_name</c>) or valid until the
    /// thread's next call (<c>tw_last_error</c>, event fields) and are copied at once.
    /// <para>Every way into the library (creating a client, <see cref="TokenClient.NativeVersion"/>)
    /// first calls <see cref="EnsureCompatible"/>, so a library of another ABI is refused with a
    /// clear message before anything else is called in it.</para>
    /// </remarks>
    internal static class NativeMethods
    {
        private const string Library = "tokenward";

        /// <summary>The C ABI version this binding is written for (<c>TW_ABI_VERSION</c> of include/tokenward.h).</summary>
        internal const int AbiVersion = 1;
        internal const int StatusOk = 0;
        internal const int StatusBufferTooSmall = 3;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventFn(IntPtr userData, ref NativeEvent nativeEvent);

        /// <summary>The C <c>tw_event</c> struct; its pointers are valid only during the callback.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct NativeEvent
        {
            internal int Kind;
            internal IntPtr KindName;
            internal IntPtr Message;
        }

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_abi_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tw_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tw_status_name(int status);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tw_last_error();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_new(byte[] configJson, out TokenClientHandle client);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_from_env(byte[] prefix, out TokenClientHandle client);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void tw_client_free(IntPtr client);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_token_window(
            TokenClientHandle client, byte[] buf, UIntPtr cap, out UIntPtr len, out ulong freshNs, out ulong usableNs);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_headers(TokenClientHandle client, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_stats(TokenClientHandle client, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_invalidate(TokenClientHandle client, byte[] token);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_set_client_secret(TokenClientHandle client, byte[] secret);

        // IntPtr, not the SafeHandle: also called from ReleaseHandle, when the SafeHandle is closed.
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_set_event_callback(IntPtr client, EventFn callback, IntPtr userData);

        // `names`/`values`: arrays of pointers to NUL-terminated UTF-8 (see TokenClient.Send).
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_send_pairs(
            TokenClientHandle client, byte[] method, byte[] url, IntPtr[] names, IntPtr[] values, UIntPtr count,
            byte[] body, UIntPtr bodyLen, out TokenwardResponseHandle response);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_headers_for(
            TokenClientHandle client, byte[] method, byte[] url, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_recover(
            TokenClientHandle client, byte[] authorization, ushort status, byte[] body, UIntPtr bodyLen, out int resend);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ushort tw_response_status(TokenwardResponseHandle response);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr tw_response_body(TokenwardResponseHandle response, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_response_header(
            TokenwardResponseHandle response, byte[] name, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void tw_response_free(IntPtr response);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_health(TokenClientHandle client, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_client_diagnose(
            TokenClientHandle client, byte[] optionsJson, out TokenwardDiagnosisHandle diagnosis);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_diagnosis_json(TokenwardDiagnosisHandle diagnosis, byte[] buf, UIntPtr cap, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int tw_diagnosis_status(TokenwardDiagnosisHandle diagnosis);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void tw_diagnosis_free(IntPtr diagnosis);

        internal delegate int StringCall(byte[] buf, UIntPtr cap, out UIntPtr len);

        private static readonly object s_checkLock = new object();
        private static volatile bool s_checked;
        private static TokenwardLibraryException s_incompatible;

        /// <summary>
        /// Checks, once per process, that the native library loads and speaks
        /// <see cref="AbiVersion"/>; afterwards costs one volatile read.
        /// </summary>
        /// <exception cref="TokenwardLibraryException">The library is missing, predates the ABI
        /// check, or has another ABI version; every later call throws the same.</exception>
        internal static void EnsureCompatible()
        {
            if (!s_checked)
            {
                lock (s_checkLock)
                {
                    if (!s_checked)
                    {
                        s_incompatible = CheckLibrary();
                        s_checked = true;
                    }
                }
            }
            TokenwardLibraryException incompatible = s_incompatible;
            if (incompatible != null)
            {
                // A new instance each time: a thrown exception carries its own stack trace.
                throw new TokenwardLibraryException(
                    incompatible.Message, incompatible.LibraryPath, incompatible.ActualAbiVersion, incompatible.InnerException);
            }
        }

        private static TokenwardLibraryException CheckLibrary()
        {
            int actual;
            try
            {
                actual = tw_abi_version();
            }
            catch (DllNotFoundException missing)
            {
                return new TokenwardLibraryException(
                    "tokenward: the native library was not found: Tokenward.dll looks for libtokenward.so "
                    + "(libtokenward.dylib on macOS, tokenward.dll on Windows) next to itself, in the runtimes/<rid>/native "
                    + "folder of its package, and on the system's library search path (LD_LIBRARY_PATH).",
                    null, null, missing);
            }
            catch (EntryPointNotFoundException old)
            {
                string path = LoadedLibraryPath();
                return new TokenwardLibraryException(
                    "tokenward: the native library " + (path ?? "libtokenward") + " does not export tw_abi_version, so it is older than "
                    + "this Tokenward.dll " + TokenClient.Version + ", which needs C ABI version " + AbiVersion
                    + "; use the native library of the same tokenward release.",
                    path, null, old);
            }
            if (actual != AbiVersion)
            {
                string path = LoadedLibraryPath();
                return new TokenwardLibraryException(
                    "tokenward: the native library " + (path ?? "libtokenward") + " has C ABI version " + actual
                    + ", but this Tokenward.dll " + TokenClient.Version + " was written for C ABI version " + AbiVersion
                    + "; use the native library of the same tokenward release.",
                    path, actual, null);
            }
            return null;
        }

        /// <summary>
        /// Where the loaded native library lives, for messages: the first mapping of a file named
        /// libtokenward* in /proc/self/maps; null where that is unavailable (not Linux).
        /// </summary>
        internal static string LoadedLibraryPath()
        {
            const string maps = "/proc/self/maps";
            try
            {
                if (!File.Exists(maps))
                {
                    return null;
                }
                foreach (string line in File.ReadLines(maps))
                {
                    int slash = line.IndexOf('/');
                    if (slash >= 0 && Path.GetFileName(line.Substring(slash)).StartsWith("libtokenward", StringComparison.Ordinal))
                    {
                        return line.Substring(slash);
                    }
                }
            }
            catch (Exception unreadable) when (unreadable is IOException || unreadable is UnauthorizedAccessException)
            {
                // Only a message detail: without it the message names the library instead.
            }
            return null;
        }

        // Strict: an unpaired surrogate is an error, never silently a U+FFFD in a secret or URL.
        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        [ThreadStatic] private static byte[] t_buffer;

        /// <summary>
        /// This thread's reusable output buffer (grown, never shrunk below 1 KiB): the slow path
        /// allocates only the resulting string.
        /// </summary>
        internal static byte[] ThreadBuffer(int atLeast)
        {
            byte[] buffer = t_buffer;
            if (buffer == null || buffer.Length < atLeast)
            {
                buffer = new byte[Math.Max(atLeast, 1024)];
                t_buffer = buffer;
            }
            return buffer;
        }

        /// <summary>
        /// Runs a buffer-protocol call into this thread's buffer, growing it and retrying while
        /// the value does not fit (it may grow between calls, e.g. a refresh with a longer
        /// token); throws the mapped exception on any other failure.
        /// </summary>
        internal static string ReadString(StringCall call)
        {
            int length;
            byte[] buffer = ReadBytes(call, out length);
            return length == 0 ? string.Empty : Encoding.UTF8.GetString(buffer, 0, length);
        }

        /// <summary>
        /// As <see cref="ReadString"/>, leaving the value in the returned thread buffer:
        /// <paramref name="length"/> bytes, the NUL excluded.
        /// </summary>
        internal static byte[] ReadBytes(StringCall call, out int length)
        {
            byte[] buffer = ThreadBuffer(0);
            while (true)
            {
                UIntPtr needed;
                int status = call(buffer, (UIntPtr)buffer.Length, out needed);
                ulong size = needed.ToUInt64();
                if (status == StatusOk)
                {
                    length = size == 0 ? 0 : (int)size - 1;
                    return buffer;
                }
                if (status != StatusBufferTooSmall || size <= (ulong)buffer.Length || size > int.MaxValue)
                {
                    throw Error(status);
                }
                buffer = ThreadBuffer((int)size);
            }
        }

        /// <summary>Throws the mapped exception unless <paramref name="status"/> is TW_OK.</summary>
        internal static void Check(int status)
        {
            if (status != StatusOk)
            {
                throw Error(status);
            }
        }

        /// <summary>
        /// The exception for a failed call; must run on the failing thread before any other
        /// tw_ call, since that replaces <c>tw_last_error</c>.
        /// </summary>
        internal static TokenwardException Error(int status)
        {
            string message = FromUtf8(tw_last_error());
            if (message.Length == 0)
            {
                message = "tokenward: the native call failed with " + StatusName(status) + ".";
            }
            return TokenwardException.Create((TokenwardStatus)status, message);
        }

        internal static string StatusName(int status)
        {
            return FromUtf8(tw_status_name(status));
        }

        /// <summary>
        /// NUL-terminated UTF-8 for a native string argument; null stays null (the C NULL).
        /// </summary>
        /// <exception cref="TokenwardInvalidArgumentException">The text has an unpaired surrogate.</exception>
        internal static byte[] Utf8(string text, string what)
        {
            if (text == null)
            {
                return null;
            }
            try
            {
                byte[] bytes = new byte[StrictUtf8.GetByteCount(text) + 1];
                StrictUtf8.GetBytes(text, 0, text.Length, bytes, 0);
                return bytes;
            }
            catch (EncoderFallbackException)
            {
                throw new TokenwardInvalidArgumentException(
                    "tokenward: " + what + " is not valid UTF-16 (it has an unpaired surrogate), so it cannot be sent as UTF-8.");
            }
        }

        /// <summary>Copies a NUL-terminated UTF-8 string owned by the library; IntPtr.Zero gives "".</summary>
        internal static string FromUtf8(IntPtr text)
        {
            if (text == IntPtr.Zero)
            {
                return string.Empty;
            }
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0)
            {
                length++;
            }
            return FromUtf8(text, length);
        }

        /// <summary>Copies <paramref name="length"/> bytes of UTF-8 owned by the library.</summary>
        internal static string FromUtf8(IntPtr bytes, int length)
        {
            if (length == 0)
            {
                return string.Empty;
            }
            byte[] copy = new byte[length];
            Marshal.Copy(bytes, copy, 0, length);
            return Encoding.UTF8.GetString(copy);
        }
    }
}
