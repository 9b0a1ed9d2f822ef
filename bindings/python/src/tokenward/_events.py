"""Native events to the ``"tokenward"`` logger and the user's ``on_event`` callable.

Events arrive through a ctypes callback, often on the library's refresh thread. Nothing
raised while handling one may unwind into native code, and a callable must not call back
into the client that emitted the event: the sink marks the delivering thread so the
client can refuse such calls (:func:`delivering`).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, Optional

from . import _native
from ._native import EVENT_FN, EventPointer

__all__ = ["EventCallback", "EventSink", "delivering", "logger"]

#: ``on_event(kind_name, message)``; see :class:`tokenward.Client`.
EventCallback = Callable[[str, str], None]

logger = logging.getLogger("tokenward")
# A library leaves output to the application's logging configuration.
logger.addHandler(logging.NullHandler())

# Log level per native event kind name; unknown kinds log at INFO.
_LEVELS: Dict[str, int] = {
    "token_acquired": logging.INFO,
    "invalidated": logging.INFO,
    "retry_scheduled": logging.WARNING,
    "refresh_failed": logging.WARNING,
    "served_stale": logging.WARNING,
    "fetch_failed": logging.ERROR,
    "warning": logging.WARNING,
}

# Which sink (if any) is delivering an event on this thread.
_delivering = threading.local()


def delivering(sink: "EventSink") -> bool:
    """Whether this thread is inside ``sink``'s delivery of an event."""
    return getattr(_delivering, "sink", None) is sink


class EventSink:
    """Receives native events and forwards them to logging and the user's callable.

    Holds the ctypes callback object, which must outlive its registration with the
    handle. It references no client, so an unclosed client can still be collected.
    """

    __slots__ = ("on_event", "function", "__weakref__")

    def __init__(self, on_event: Optional[EventCallback]) -> None:
        self.on_event = on_event
        self.function = EVENT_FN(self._deliver)

    def _deliver(self, _user_data: Optional[int], event: EventPointer) -> None:
        # Runs inside a native call, often on the library's refresh thread: nothing may
        # propagate out of here.
        try:
            _delivering.sink = self
            try:
                _kind, name, message = _native.event_fields(event)
                logger.log(
                    _LEVELS.get(name, logging.INFO),
                    "%s: %s",
                    name,
                    message,
                    extra={"tokenward_event": name},
                )
                if self.on_event is not None:
                    try:
                        self.on_event(name, message)
                    except Exception:
                        logger.exception(
                            "tokenward: the on_event callable raised while handling a %r "
                            "event; the exception was ignored.",
                            name,
                        )
            finally:
                _delivering.sink = None
        except BaseException:  # noqa: BLE001 - must never unwind into native code
            pass
