"""The memo behind the hit path: the core's answer, kept in Python while the core allows.

``tw_client_token_window`` returns the token with two spans: how long it stays *fresh*
(until the core's refresh point) and how long it stays *usable* (after which the core
never hands it out). The memo is one immutable tuple swapped atomically under the GIL, so
reading it takes no lock:

* **fresh**: :meth:`tokenward.Client.token` returns the memoized string, no FFI call;
* **refresh window** (fresh point passed, usable point not): still answered from the memo
  in pure Python, while at most one thread at a time (a non-blocking acquire) asks the
  core, at most every :data:`REFRESH_POLL_NS`. The first such call starts the core's
  refresh; a later one, once the new token has landed, brings it into the memo. No other
  thread waits for them: without this, every call in the window would cross ctypes and
  the threads would convoy on the GIL;
* **past usable**, or no memo: the caller asks the core (which fetches, or waits for the
  fetch in flight).

The memo is dropped on ``invalidate()``, ``set_client_secret()``, ``request()`` (a 401
makes the core invalidate the token it sent), an adapter's recovery that makes the core
invalidate the token a request carried (``_recover``), ``close()`` and in a forked child. A
generation counter, bumped by every drop, keeps a load that began before a drop from
storing what it read; and a memo is only ever replaced by one read later, so concurrent
loads finishing out of order never bring back an older token.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Tuple

from . import _native
from ._encoding import parse_headers
from ._handle import NativeClient
from ._native import ClientHandle

__all__ = ["Memo", "MemoizedClient", "monotonic_ns"]

monotonic_ns = time.monotonic_ns

#: (token, quiet-until, usable-until, authorization value, headers, read-at); the times
#: are time.monotonic_ns() values. Until quiet-until the memo answers without any other
#: check: the core's refresh point for a fresh token, or REFRESH_POLL_NS after the last
#: look inside the refresh window. Usable-until is 0 for an answer not to be kept.
Memo = Tuple[str, int, int, str, Dict[str, str], int]

#: Inside the refresh window, how long after one look at the core the next may happen.
#: Each look costs the thread that makes it a GIL hand-off (milliseconds when every
#: thread is busy); this bounds them to a few dozen per window, and the new token is
#: picked up at most this late (the old one is still usable meanwhile).
REFRESH_POLL_NS = 20_000_000


class MemoizedClient(NativeClient):
    """Base of :class:`tokenward.Client`: the memo and how it is loaded and dropped.

    The public hit path (``token()``, ``authorization()``, ``headers()``) compares
    ``_memo``'s quiet-until inline in :class:`tokenward.Client` (a method call here would
    double its cost) and calls :meth:`_load` otherwise.
    """

    __slots__ = ("_memo", "_generation", "_refreshing")

    _memo: Optional[Memo]
    _generation: int
    _refreshing: threading.Lock

    def _init_memo(self) -> None:
        self._memo = None
        self._generation = 0
        self._refreshing = threading.Lock()

    def _load(self, with_headers: bool) -> Memo:
        """The answer once the memo's quiet time is over: from the memo while it is usable,
        unless this thread is the one to ask the core; else from the core."""
        memo = self._memo
        if memo is not None:
            now = monotonic_ns()
            if now < memo[1]:  # another thread stored a new memo meanwhile
                return memo
            if now < memo[2]:
                if not self._refreshing.acquire(False):
                    return memo
                try:
                    return self._ask(with_headers)
                finally:
                    self._refreshing.release()
        return self._ask(with_headers)

    def _ask(self, with_headers: bool) -> Memo:
        """Ask the core; memoize when it says the token may be reused for a while."""
        handle = self._enter()
        generation = self._generation
        try:
            result = _read(handle, with_headers)
            if result[2] > 0:
                self._store(result, generation)
            return result
        finally:
            self._exit()

    def _store(self, memo: Memo, generation: int) -> None:
        with self._lock:
            current = self._memo
            if (
                generation == self._generation
                and not self._closed
                and (current is None or current[5] <= memo[5])
            ):
                self._memo = memo

    def _drop_memo(self) -> None:
        """Forget the memo after a native call that may have replaced the token.

        After the call: a concurrent load that began before it cannot store the token it
        got (its generation is now stale).
        """
        with self._lock:
            self._generation += 1
            self._memo = None

    def _closing(self) -> None:
        self._memo = None

    def _forked(self) -> None:
        # In a forked child the first call asks the core again (its cache survives the
        # fork), a load that was in flight in a parent thread can never store a memo, and
        # a refresh turn held by a parent thread (which does not exist here) is free.
        self._generation += 1
        self._memo = None
        self._refreshing = threading.Lock()

    def _cached_headers(self) -> Optional[Dict[str, str]]:
        """The memoized headers, or ``None`` when this call would have to ask the core.

        Inside the refresh window the memo answers only while another thread is asking
        the core; otherwise ``None``, so that the caller's own call starts the refresh.
        """
        memo = self._memo
        if memo is not None:
            now = monotonic_ns()
            if now < memo[1] or (now < memo[2] and self._refreshing.locked()):
                return memo[4].copy()
        return None


def _read(handle: ClientHandle, with_headers: bool) -> Memo:
    """The token, its fresh and usable points and (if asked, or when it may be kept) its
    headers. Usable-until is 0 when the answer must not be memoized."""
    # A refresh may land between the two calls; retry for a consistent pair.
    for _ in range(3):
        started = monotonic_ns()
        token, fresh_ns, usable_ns = _native.read_token_window(handle)
        if usable_ns == 0 and not with_headers:
            return (token, 0, 0, "", {}, started)
        headers = parse_headers(_native.client_headers(handle))
        authorization = next(iter(headers.values()), "")
        if authorization.rpartition(" ")[2] == token:
            break
    else:
        return (token, 0, 0, authorization, headers, started)
    if usable_ns == 0:
        return (token, 0, 0, authorization, headers, started)
    # The core counts its spans from inside the call; `started` is earlier, so both points
    # are at or before the core's own.
    usable_until = started + usable_ns
    quiet_until = started + (fresh_ns if fresh_ns > 0 else REFRESH_POLL_NS)
    return (token, min(quiet_until, usable_until), usable_until, authorization, headers, started)
