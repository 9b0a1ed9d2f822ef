"""The memo behind the hit path: the core's answer, kept in Python while the core allows.

``tw_client_token_cacheable`` says for how long the core itself would hand out the same
token without any decision to make (until its own refresh point). Until then
:meth:`tokenward.Client.token` returns the memoized string without an FFI call. The memo
is one immutable tuple swapped atomically under the GIL, so the hit path takes no lock.

It is dropped on ``invalidate()``, ``set_client_secret()``, ``request()`` (a 401 makes the
core replace the token), ``close()`` and in a forked child. A generation counter, bumped
by every drop, keeps a load that began before a drop from storing what it read.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

from . import _native
from ._encoding import parse_headers
from ._handle import NativeClient
from ._native import ClientHandle, lib

__all__ = ["Memo", "MemoizedClient", "monotonic_ns"]

monotonic_ns = time.monotonic_ns

#: (token, reuse-until in time.monotonic_ns(), authorization value, headers)
Memo = Tuple[str, int, str, Dict[str, str]]


class MemoizedClient(NativeClient):
    """Base of :class:`tokenward.Client`: the memo and how it is loaded and dropped.

    The public hit path (``token()``, ``authorization()``, ``headers()``) reads ``_memo``
    inline in :class:`tokenward.Client`: a method call here would double its cost.
    """

    __slots__ = ("_memo", "_generation")

    _memo: Optional[Memo]
    _generation: int

    def _init_memo(self) -> None:
        self._memo = None
        self._generation = 0

    def _load(self, with_headers: bool) -> Memo:
        """Ask the core; memoize when it says the token may be reused for a while."""
        handle = self._enter()
        generation = self._generation
        memo: Optional[Memo] = None
        try:
            result = _read(handle, with_headers)
            if result[1] > 0:
                memo = result
            return result
        finally:
            if memo is not None:
                self._store(memo, generation)
            self._exit()

    def _store(self, memo: Memo, generation: int) -> None:
        with self._lock:
            if generation == self._generation and not self._closed:
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
        # fork), and a load that was in flight in a parent thread can never store a memo.
        self._generation += 1
        self._memo = None

    def _cached_headers(self) -> Optional[Dict[str, str]]:
        """The memoized headers, or ``None`` when getting them would call the core."""
        memo = self._memo
        if memo is not None and monotonic_ns() < memo[1]:
            return memo[3].copy()
        return None


def _read(handle: ClientHandle, with_headers: bool) -> Memo:
    """The token, its reuse deadline and (if asked, or when memoizable) its headers.

    The reuse deadline is 0 when the answer must not be memoized.
    """
    # A refresh may land between the two calls; retry for a consistent pair.
    for _ in range(3):
        started = monotonic_ns()
        token, reusable_ns = _native.read_token_cacheable(handle)
        if reusable_ns == 0 and not with_headers:
            return (token, 0, "", {})
        headers = parse_headers(_native.read_string(lib.tw_client_headers, handle))
        authorization = next(iter(headers.values()), "")
        if authorization.rpartition(" ")[2] == token:
            break
    else:
        return (token, 0, authorization, headers)
    return (token, started + reusable_ns if reusable_ns > 0 else 0, authorization, headers)
