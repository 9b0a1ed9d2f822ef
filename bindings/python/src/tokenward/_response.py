"""The :class:`Response` of :meth:`tokenward.Client.request`."""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any, Optional

from . import _native
from ._errors import ClosedError
from ._native import ResponseHandle

__all__ = ["Response"]


class _State:
    """The native response and the lock guarding it; shared with the finalizer, so the
    handle is freed exactly once whether close(), the context manager or garbage
    collection comes first."""

    __slots__ = ("handle", "lock")

    def __init__(self, handle: ResponseHandle) -> None:
        self.handle: Optional[ResponseHandle] = handle
        self.lock = threading.Lock()


def _free(state: _State) -> None:
    with state.lock:
        handle, state.handle = state.handle, None
    if handle is not None:
        _native.free_response(handle)


class Response:
    """An API response from :meth:`tokenward.Client.request`.

    ``status`` and ``body`` are copied out when the response arrives. Header lookups go to
    the native response, which this object owns: it is freed by :meth:`close`, at the end
    of a ``with`` block, or when the object is garbage-collected (in CPython, as soon as
    the last reference goes), whichever comes first. After that :meth:`header` raises
    :class:`~tokenward.ClosedError`; ``status``, ``body``, :attr:`text` and :meth:`json`
    keep working.

    Thread-safe: the native response is immutable, and closing waits for a lookup in
    progress.
    """

    __slots__ = ("status", "body", "_state", "_finalizer", "__weakref__")

    status: int
    body: bytes

    def __init__(self, handle: ResponseHandle, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self._state = _State(handle)
        self._finalizer = weakref.finalize(self, _free, self._state)

    def header(self, name: str) -> Optional[str]:
        """The value of header ``name`` (case-insensitive; repeated headers joined by
        ``", "``), or ``None`` if the response has no such header."""
        with self._state.lock:
            handle = self._state.handle
            if handle is None:
                raise ClosedError("tokenward: this Response is closed; read its headers before closing it.")
            return _native.response_header(handle, name.encode("utf-8", "surrogatepass"))

    @property
    def ok(self) -> bool:
        """Whether ``status`` is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`ValueError` if it is not JSON."""
        return json.loads(self.body)

    def close(self) -> None:
        """Free the native response. Idempotent; never raises."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether the native response was freed."""
        return not self._finalizer.alive

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tokenward.Response status={self.status} {len(self.body)} bytes>"
