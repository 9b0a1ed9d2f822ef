using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tokenward
{
    /// <summary>The kind of a <see cref="TokenwardEventArgs"/> (the native <c>TW_EVENT_*</c> values).</summary>
    public enum TokenwardEventKind
    {
        /// <summary>A kind this version of the binding does not know.</summary>
        Unknown = 0,

        /// <summary>A new token was fetched.</summary>
        TokenAcquired = 1,

        /// <summary>A fetch that callers were waiting on failed.</summary>
        FetchFailed = 2,

        /// <summary>An early refresh failed; the current token keeps serving.</summary>
        RefreshFailed = 3,

        /// <summary>A still-usable token was served while refreshes fail (once per episode).</summary>
        ServedStale = 4,

        /// <summary>A transient failure; retrying after a delay.</summary>
        RetryScheduled = 5,

        /// <summary>A token was evicted: by <see cref="TokenClient.Invalidate"/>, or by <see cref="TokenClient.Send"/> after the API answered 401.</summary>
        Invalidated = 6,

        /// <summary>A configuration problem that does not stop the client, such as a secret file readable by group or others (once, to the first handler).</summary>
        Warning = 7,
    }

    /// <summary>
    /// One event of the native core. <see cref="Message"/> is a sentence for logs; it never
    /// contains a secret or a full token (only fingerprints). Immutable.
    /// </summary>
    public sealed class TokenwardEventArgs : EventArgs
    {
        internal TokenwardEventArgs(TokenwardEventKind kind, string kindName, string message)
        {
            Kind = kind;
            KindName = kindName;
            Message = message;
        }

        /// <summary>What happened.</summary>
        public TokenwardEventKind Kind { get; }

        /// <summary>The core's name of the kind, e.g. <c>"token_acquired"</c> (also for kinds newer than this binding).</summary>
        public string KindName { get; }

        /// <summary>A sentence for logs.</summary>
        public string Message { get; }

        /// <summary><c>kind_name: message</c>.</summary>
        public override string ToString()
        {
            return KindName + ": " + Message;
        }
    }

    /// <summary>
    /// Receives native events (often on the library's refresh thread) and raises them to the
    /// handlers of one <see cref="TokenClient"/>. It references the client only weakly, so an
    /// undisposed client can still be collected and finalized.
    /// </summary>
    internal sealed class EventSink
    {
        /// <summary>The one native callback; a static field, so it is never collected.</summary>
        internal static readonly NativeMethods.EventFn Callback = Deliver;

        [ThreadStatic] private static EventSink t_delivering;

        private readonly WeakReference<TokenClient> _owner;
        private volatile EventHandler<TokenwardEventArgs> _handlers;

        /// <summary>
        /// Warnings the core delivers while the client is being built, before any handler can
        /// be added; the first handler added receives them. Guarded by <c>lock (this)</c>.
        /// </summary>
        private List<TokenwardEventArgs> _early = new List<TokenwardEventArgs>();

        internal EventSink(TokenClient owner)
        {
            _owner = new WeakReference<TokenClient>(owner);
        }

        internal void Add(EventHandler<TokenwardEventArgs> handler)
        {
            List<TokenwardEventArgs> early;
            lock (this)
            {
                _handlers = (EventHandler<TokenwardEventArgs>)Delegate.Combine(_handlers, handler);
                early = _early;
                _early = new List<TokenwardEventArgs>();
            }
            if (early.Count > 0 && handler != null)
            {
                TokenClient sender;
                _owner.TryGetTarget(out sender);
                EventSink outer = t_delivering;
                t_delivering = this;
                try
                {
                    foreach (TokenwardEventArgs args in early)
                    {
                        Invoke(handler, sender, args);
                    }
                }
                finally
                {
                    t_delivering = outer;
                }
            }
        }

        private static void Invoke(EventHandler<TokenwardEventArgs> handler, TokenClient sender, TokenwardEventArgs args)
        {
            try
            {
                handler(sender, args);
            }
            catch (Exception exception)
            {
                Trace.TraceError(
                    "tokenward: an event handler threw while handling a {0} event; the exception was ignored: {1}",
                    args.KindName, exception);
            }
        }

        internal void Remove(EventHandler<TokenwardEventArgs> handler)
        {
            lock (this)
            {
                _handlers = (EventHandler<TokenwardEventArgs>)Delegate.Remove(_handlers, handler);
            }
        }

        /// <summary>Whether this thread is inside an event handler of <paramref name="sink"/>.</summary>
        internal static bool IsDeliveringOnThisThread(EventSink sink)
        {
            return sink != null && ReferenceEquals(t_delivering, sink);
        }

        private static void Deliver(IntPtr userData, ref NativeMethods.NativeEvent nativeEvent)
        {
            // Runs inside a native call: nothing may propagate out of here.
            try
            {
                EventSink sink = GCHandle.FromIntPtr(userData).Target as EventSink;
                if (sink == null)
                {
                    return;
                }
                TokenClient owner;
                if (nativeEvent.Kind == (int)TokenwardEventKind.Invalidated && sink._owner.TryGetTarget(out owner))
                {
                    // The core evicted a token (also inside Send, before its retry): from now on
                    // no caller may get it from the memo. Done before any handler runs.
                    owner.OnTokenEvicted();
                }
                EventHandler<TokenwardEventArgs> handlers = sink._handlers;
                if (handlers == null && nativeEvent.Kind != (int)TokenwardEventKind.Warning)
                {
                    return;
                }
                var args = new TokenwardEventArgs(
                    Enum.IsDefined(typeof(TokenwardEventKind), nativeEvent.Kind)
                        ? (TokenwardEventKind)nativeEvent.Kind
                        : TokenwardEventKind.Unknown,
                    NativeMethods.FromUtf8(nativeEvent.KindName),
                    NativeMethods.FromUtf8(nativeEvent.Message));
                if (handlers == null)
                {
                    lock (sink)
                    {
                        handlers = sink._handlers;
                        if (handlers == null)
                        {
                            sink._early.Add(args);
                            return;
                        }
                    }
                }
                TokenClient sender;
                sink._owner.TryGetTarget(out sender);
                t_delivering = sink;
                try
                {
                    foreach (Delegate handler in handlers.GetInvocationList())
                    {
                        Invoke((EventHandler<TokenwardEventArgs>)handler, sender, args);
                    }
                }
                finally
                {
                    t_delivering = null;
                }
            }
            catch
            {
                // Never unwind into native code (the C ABI forbids it).
            }
        }
    }
}
