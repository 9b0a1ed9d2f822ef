"""fork() and interpreter exit, for every open client.

Around ``os.fork()`` event delivery is paused, because the core's fork handler waits for a
running callback, which could be waiting for the GIL the forking thread holds. The child
gets fresh Python locks; the core resets its own state. At exit, events stop reaching
Python while the interpreter shuts down.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import TYPE_CHECKING, List

from ._events import logger

if TYPE_CHECKING:
    from ._handle import NativeClient

__all__ = ["track"]

# Every open client.
_live: "weakref.WeakSet[NativeClient]" = weakref.WeakSet()
# Clients whose events were paused by the last _before_fork.
_paused: "List[NativeClient]" = []


def track(client: "NativeClient") -> None:
    """Include ``client`` in the fork and exit hooks (until it is garbage-collected)."""
    _live.add(client)


def _before_fork() -> None:
    global _paused
    _paused = [client for client in list(_live) if client._pause_events()]


def _after_fork(in_child: bool) -> None:
    global _paused
    paused, _paused = _paused, []
    for client in paused:
        try:
            client._resume_events(in_child)
        except Exception:  # noqa: BLE001 - a fork hook must not fail the fork
            logger.exception("tokenward: could not resume event delivery after fork().")
    if in_child:
        for client in list(_live):
            if client not in paused:
                client._reset_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=lambda: _after_fork(False),
        after_in_child=lambda: _after_fork(True),
    )


@atexit.register
def _at_exit() -> None:
    # The handles stay usable (daemon threads may still call), and are never freed: the
    # process is ending.
    for client in list(_live):
        try:
            client._pause_events()
        except Exception:  # noqa: BLE001
            pass
