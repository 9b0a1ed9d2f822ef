using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace Tokenward
{
    /// <summary>
    /// Owns one native <c>tw_client</c>. P/Invoke calls that take the handle keep it alive
    /// for their duration (SafeHandle reference counting), so <see cref="TokenClient.Dispose"/>
    /// never frees it under a running call; the last such call frees it instead. When the
    /// <see cref="TokenClient"/> is collected without Dispose, the SafeHandle's critical
    /// finalizer frees it.
    /// </summary>
    internal sealed class TokenClientHandle : SafeHandle
    {
        // Every native client with a callback registered, so that process exit can stop event
        // delivery before the runtime shuts down (a library thread must not call into it then).
        private static readonly HashSet<IntPtr> s_registered = new HashSet<IntPtr>();
        private static bool s_exiting;
        private static long s_live;

        private EventSink _sink;
        private GCHandle _sinkHandle;

        static TokenClientHandle()
        {
            AppDomain.CurrentDomain.ProcessExit += (sender, args) => StopAllEvents();
        }

        /// <summary>For the P/Invoke marshaller, which fills in the pointer of an <c>out</c> argument.</summary>
        public TokenClientHandle()
            : base(IntPtr.Zero, true)
        {
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        /// <summary>Native clients created and not yet freed, process-wide (for leak tests).</summary>
        internal static long LiveCount
        {
            get { return Interlocked.Read(ref s_live); }
        }

        /// <summary>
        /// Takes ownership of a freshly created handle and routes its events to
        /// <paramref name="sink"/>, which it references weakly from native code: the sink lives
        /// as long as this handle references it, and a callback arriving after that finds no
        /// target and returns.
        /// </summary>
        internal void Attach(EventSink sink)
        {
            Interlocked.Increment(ref s_live);
            _sink = sink;
            _sinkHandle = GCHandle.Alloc(sink, GCHandleType.Weak);
            lock (s_registered)
            {
                if (s_exiting)
                {
                    return;
                }
                NativeMethods.Check(NativeMethods.tw_client_set_event_callback(
                    handle, EventSink.Callback, GCHandle.ToIntPtr(_sinkHandle)));
                s_registered.Add(handle);
            }
        }

        protected override bool ReleaseHandle()
        {
            IntPtr client = handle;
            GCHandle sinkHandle = _sinkHandle;
            if (EventSink.IsDeliveringOnThisThread(_sink))
            {
                // Disposed from inside its own event handler: unregistering here would wait for
                // this very callback to return. Another thread frees it once it has.
                ThreadPool.QueueUserWorkItem(state => Free(client, sinkHandle));
            }
            else
            {
                Free(client, sinkHandle);
            }
            return true;
        }

        private static void Free(IntPtr client, GCHandle sinkHandle)
        {
            lock (s_registered)
            {
                s_registered.Remove(client);
            }
            // When this returns no callback is running or will run, so the GCHandle may go.
            NativeMethods.tw_client_set_event_callback(client, null, IntPtr.Zero);
            NativeMethods.tw_client_free(client);
            if (sinkHandle.IsAllocated)
            {
                sinkHandle.Free();
            }
            Interlocked.Decrement(ref s_live);
        }

        private static void StopAllEvents()
        {
            lock (s_registered)
            {
                s_exiting = true;
                foreach (IntPtr client in s_registered)
                {
                    NativeMethods.tw_client_set_event_callback(client, null, IntPtr.Zero);
                }
                s_registered.Clear();
            }
        }
    }

    /// <summary>
    /// Owns one native <c>tw_response</c>; released with <c>tw_response_free</c> on
    /// <see cref="TokenwardResponse.Dispose"/> or, failing that, by the finalizer.
    /// </summary>
    internal sealed class TokenwardResponseHandle : SafeHandle
    {
        /// <summary>For the P/Invoke marshaller.</summary>
        public TokenwardResponseHandle()
            : base(IntPtr.Zero, true)
        {
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.tw_response_free(handle);
            return true;
        }
    }
}
