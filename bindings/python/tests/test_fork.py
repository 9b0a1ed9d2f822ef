"""os.fork(): the child gets working tokens without deadlock; the parent keeps working."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import tokenward
from conftest import jwt_payload

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Child exit codes: 0 = success; anything else names the step that failed.
OK, SAME_TOKEN, API, FRESH_FETCH, STATS, HEADERS, MEMO, TURN, CRASH = 0, 10, 11, 12, 13, 14, 15, 16, 99

# Every child's work is a few loopback requests; a child still running after this is stuck.
CHILD_TIMEOUT = 10.0


def wait_child(pid: int, timeout: float = CHILD_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child did not finish in time (deadlock?)")


@pytest.fixture
def bounded(config):
    """The test configuration with short network deadlines, so no child waits long."""
    return dict(config, timeouts={"connect_ms": 2000, "request_ms": 5000})


def in_child(body) -> int:
    pid = os.fork()
    if pid == 0:
        code = CRASH
        try:
            code = body()
        finally:
            os._exit(code)
    return wait_child(pid)


def test_a_refresh_turn_held_at_fork_is_free_in_the_child(mock, make_client, bounded):
    client = make_client(**bounded)
    token = client.token()
    # As if a parent thread were asking the core inside the refresh window when fork() ran:
    # that thread does not exist in the child, so its turn must not stay taken there.
    assert client._refreshing.acquire(False)
    try:

        def child() -> int:
            if not client._refreshing.acquire(False):
                return TURN
            client._refreshing.release()
            return OK if client.token() == token else SAME_TOKEN

        assert in_child(child) == OK
    finally:
        client._refreshing.release()


def test_child_gets_a_working_token(mock, make_client, bounded):
    client = make_client(**bounded)
    parent_token = client.token()

    def child() -> int:
        if client._memo is not None:  # the binding's memo is dropped in the child...
            return MEMO
        if client.token() != parent_token:  # ...but the core's cache survives the fork
            return SAME_TOKEN
        if mock.api("/api/items", parent_token)[0] != 200:
            return API
        if not client.headers()["Authorization"].endswith(parent_token):
            return HEADERS
        client.stats()
        client.invalidate()
        fresh = client.token()  # a real fetch, in the child
        if fresh == parent_token or mock.api("/api/items", fresh)[0] != 200:
            return FRESH_FETCH
        return OK

    assert in_child(child) == OK
    # The parent is unaffected: its memo and its core still hold its token.
    assert client.token() == parent_token
    assert mock.api("/api/items", client.token())[0] == 200
    client.invalidate()
    assert client.token() != parent_token


def test_fork_while_other_threads_use_the_client(mock, make_client, bounded):
    # Threads keep calling into the core (and emitting events into Python) while we fork:
    # the child must neither inherit a held lock nor wait on a callback.
    events = []
    client = make_client(**bounded, on_event=lambda kind, message: events.append(kind))
    client.token()
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            client.invalidate()
            client.token()

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            def child() -> int:
                token = client.token()
                if mock.api("/api/items", token)[0] != 200:
                    return API
                client.invalidate()
                if mock.api("/api/items", client.token())[0] != 200:
                    return FRESH_FETCH
                return OK

            assert in_child(child) == OK
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert "token_acquired" in events and "invalidated" in events
    assert mock.api("/api/items", client.token())[0] == 200


def test_fork_during_a_fetch_in_flight(mock, make_client, bounded):
    # A fetch is in flight in a parent thread at fork time; no thread finishes it in the
    # child, which must fetch for itself instead of waiting forever.
    mock.configure(token_delay_ms=500)
    client = make_client(**bounded)
    parent_result = []
    worker = threading.Thread(target=lambda: parent_result.append(client.token()))
    worker.start()
    time.sleep(0.15)

    def child() -> int:
        token = client.token()
        return OK if mock.api("/api/items", token)[0] == 200 else API

    assert in_child(child) == OK
    worker.join(10)
    assert parent_result and jwt_payload(parent_result[0])["sub"] == bounded["client_id"]


def test_closed_client_stays_closed_in_the_child(make_client, bounded):
    client = make_client(**bounded)
    client.token()
    client.close()

    def child() -> int:
        try:
            client.token()
        except tokenward.ClosedError:
            return OK
        return CRASH

    assert in_child(child) == OK
