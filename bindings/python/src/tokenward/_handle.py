"""Handle lifetime: one native ``tw_client`` owned by one Python object.

Calls in flight are counted (:meth:`NativeClient._enter` / :meth:`NativeClient._exit`);
:meth:`~NativeClient.close` marks the client closed and the last call to finish frees the
handle, so the handle is never freed under a running call and ``close()`` never blocks.
Freeing first unregisters the event callback: when that returns no callback is running,
so the ctypes function object may go.

The fork and exit hooks (:mod:`._fork`) pause event delivery through
:meth:`~NativeClient._pause_events`, which keeps one use counted so the handle stays valid
until :meth:`~NativeClient._resume_events`.
"""

from __future__ import annotations

import threading
from typing import Optional

from . import _fork
from ._errors import ClosedError, InvalidArgumentError
from ._events import EventCallback, EventSink, delivering
from ._native import ClientHandle, check, free_client, set_event_callback

__all__ = ["NativeClient"]


def _free(handle: ClientHandle, sink: EventSink) -> None:
    # Unregister first: when it returns, no callback is running or will run, so the ctypes
    # function object (kept alive by `sink` until here) may then go.
    set_event_callback(handle, None)
    free_client(handle)


class NativeClient:
    """Base of :class:`tokenward.Client`: owns the handle and counts the calls using it.

    Subclasses keep per-handle state of their own and clear it in :meth:`_closing` (under
    the lock, when the client closes) and :meth:`_forked` (in a forked child).
    """

    __slots__ = ("_handle", "_lock", "_active", "_closed", "_sink", "__weakref__")

    _handle: Optional[ClientHandle]
    _lock: threading.Lock
    _active: int
    _closed: bool
    _sink: EventSink

    def _adopt(self, handle: ClientHandle, on_event: Optional[EventCallback]) -> None:
        """Take ownership of a new handle (freed here if this raises)."""
        if on_event is not None and not callable(on_event):
            free_client(handle)
            raise TypeError("tokenward: on_event must be a callable (kind_name, message).")
        self._lock = threading.Lock()
        self._active = 0
        self._sink = EventSink(on_event)
        self._handle = handle
        self._closed = False
        try:
            check(set_event_callback(handle, self._sink.function))
        except BaseException:
            self._closed = True
            self._handle = None
            _free(handle, self._sink)
            raise
        _fork.track(self)

    def _closing(self) -> None:
        """Called under the lock as the client closes: drop state derived from the handle."""

    def _forked(self) -> None:
        """Called in a forked child, before any use: replace locks, drop derived state."""

    # -- counted use ---------------------------------------------------------------------

    def _enter(self) -> ClientHandle:
        """Count a call and return the handle; raises if closed or called from our own
        event callback. Pair with :meth:`_exit`."""
        if delivering(self._sink):
            raise InvalidArgumentError(
                "tokenward: an event callback must not call back into the client that "
                "emitted the event; hand the work to another thread instead."
            )
        with self._lock:
            if self._closed or self._handle is None:
                raise ClosedError("tokenward: this Client is closed; create a new one.")
            self._active += 1
            return self._handle

    def _exit(self) -> None:
        """End a call counted by :meth:`_enter`; the last one after ``close()`` frees."""
        release = None
        with self._lock:
            self._active -= 1
            if self._closed and self._active == 0 and self._handle is not None:
                release, self._handle = self._handle, None
        if release is not None:
            self._release(release)

    def _release(self, handle: ClientHandle) -> None:
        if delivering(self._sink):
            # Closed from inside our own event callback: unregistering here would wait
            # for this very callback to return. Let another thread do it.
            threading.Thread(
                target=_free, args=(handle, self._sink), name="tokenward-close", daemon=True
            ).start()
        else:
            _free(handle, self._sink)

    def close(self) -> None:
        """Free the native client. Idempotent; never raises.

        Calls already running on other threads finish normally (the handle is freed when
        the last of them returns); later calls raise :class:`ClosedError`.
        """
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._closed:
                return
            self._closed = True
            self._closing()
            release = None
            if self._active == 0 and self._handle is not None:
                release, self._handle = self._handle, None
        if release is not None:
            self._release(release)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - interpreter shutdown, half-built objects
            pass

    # -- fork() and exit -----------------------------------------------------------------

    def _pause_events(self) -> bool:
        """Stop event delivery, keeping one use counted (so the handle stays valid) until
        :meth:`_resume_events`. Used around fork() and at interpreter exit."""
        with self._lock:
            if self._closed or self._handle is None:
                return False
            self._active += 1
            handle = self._handle
        # ctypes drops the GIL here, so a callback running on the refresh thread can finish.
        set_event_callback(handle, None)
        return True

    def _resume_events(self, in_child: bool) -> None:
        if in_child:
            # Threads that held the lock or had calls in flight do not exist in the child.
            self._lock = threading.Lock()
            self._active = 1
            self._forked()
        with self._lock:
            handle = self._handle
        if handle is not None and not self._closed:
            set_event_callback(handle, self._sink.function)
        self._exit()

    def _reset_in_child(self) -> None:
        # A closed client whose last call was in flight in another thread at fork():
        # that thread does not exist here, so nobody else would free the handle.
        self._lock = threading.Lock()
        self._active = 1
        self._forked()
        self._exit()
