"""The memo inside the core's refresh window: answered in Python while one thread asks the
core, never past the usable point, never after a drop."""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

import tokenward
from tokenward import _memo
from conftest import CLIENT_SECRET, jwt_payload

# A liveness bound for joins: a thread still running after this is stuck, not slow.
STUCK = 20.0


def in_window(client: tokenward.Client, token: str, usable_in_ns: int = 3_600_000_000_000) -> None:
    """Put ``client``'s memo inside its refresh window: not quiet any more, usable for
    ``usable_in_ns`` (negative: already past its usable point)."""
    now = time.monotonic_ns()
    headers = {"Authorization": "Bearer " + token}
    client._memo = (token, now - 1, now + usable_in_ns, headers["Authorization"], headers, now)


class Gate:
    """Wraps a function so that each call signals ``entered`` and waits for ``release``."""

    def __init__(self, function, *, block_first_only: bool = False) -> None:
        self.function = function
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.inside = 0
        self.most_inside = 0
        self.block_first_only = block_first_only
        self._lock = threading.Lock()

    def __call__(self, *args):
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            first = self.calls == 1
        try:
            result = self.function(*args)
            if first or not self.block_first_only:
                self.entered.set()
                assert self.release.wait(STUCK), "the gate was never released"
            return result
        finally:
            with self._lock:
                self.inside -= 1


def run(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_in_the_window_other_threads_answer_while_one_asks_the_core(mock, client, monkeypatch):
    token = client.token()
    in_window(client, token)
    gate = Gate(tokenward._native.read_token_window)
    monkeypatch.setattr(tokenward._native, "read_token_window", gate)
    asker_result: List[str] = []
    asker = run(lambda: asker_result.append(client.token()))
    assert gate.entered.wait(STUCK)

    # The asker is inside the core (and holds the refresh turn): everyone else answers
    # from the memo, in Python, without waiting for it.
    answers: List[str] = []

    def others() -> None:
        for _ in range(1000):
            answers.append(client.token())
            answers.append(client.authorization())
            answers.append(client.headers()["Authorization"])

    callers = [run(others) for _ in range(4)]
    for caller in callers:
        caller.join(STUCK)
        assert not caller.is_alive(), "a caller waited for the thread asking the core"
    assert gate.calls == 1 and gate.most_inside == 1
    assert set(answers) == {token, "Bearer " + token}
    assert client._cached_headers() == {"Authorization": "Bearer " + token}

    gate.release.set()
    asker.join(STUCK)
    assert asker_result == [token]
    # The asker's answer (the core's: fresh again, quiet until its refresh point) is the memo now.
    memo = client._memo
    assert memo is not None and memo[0] == token and memo[1] > time.monotonic_ns()


def test_in_the_window_one_caller_asks_the_core_when_nobody_is(mock, client, monkeypatch):
    token = client.token()
    in_window(client, "memo-token")
    calls = []
    real = tokenward._native.read_token_window
    monkeypatch.setattr(tokenward._native, "read_token_window", lambda handle: calls.append(1) or real(handle))
    # No thread is asking: the async adapter's non-blocking look must not answer either,
    # or nobody would start the refresh.
    assert client._cached_headers() is None
    assert client.token() == token  # this caller took the turn and asked
    assert calls == [1]


def test_the_memo_never_answers_past_its_usable_point(mock, client):
    token = client.token()
    in_window(client, "stale-token", usable_in_ns=-1)
    # Even while another thread holds the refresh turn, an unusable memo is not served.
    assert client._refreshing.acquire(False)
    try:
        assert client.token() == token
        assert client.authorization() == "Bearer " + token
        in_window(client, "stale-token", usable_in_ns=-1)
        assert client.headers()["Authorization"] == "Bearer " + token
        in_window(client, "stale-token", usable_in_ns=-1)
        assert client._cached_headers() is None
    finally:
        client._refreshing.release()


@pytest.mark.parametrize("drop", ["invalidate", "invalidate_token", "set_client_secret", "request"])
def test_drops_end_the_window_too(mock, client, drop):
    client.token()
    in_window(client, "memo-token")
    assert client._refreshing.acquire(False)  # another thread "is asking": the memo would answer
    try:
        assert client.token() == "memo-token"
        if drop == "invalidate":
            client.invalidate()
        elif drop == "invalidate_token":
            client.invalidate("memo-token")
        elif drop == "set_client_secret":
            client.set_client_secret(CLIENT_SECRET)
        else:
            client.request("GET", mock.url + "/api/items").close()
        assert client._memo is None
        assert client.token() != "memo-token"
    finally:
        client._refreshing.release()


def test_close_ends_the_window(mock, make_client, config):
    client = make_client(**config)
    client.token()
    in_window(client, "memo-token")
    client.close()
    with pytest.raises(tokenward.ClosedError):
        client.token()


def test_a_load_that_read_the_old_token_cannot_store_it_after_a_401_recovery(mock, client, monkeypatch):
    old = client.token()
    in_window(client, old)
    # The thread asking the core reads the old token, then stalls before storing it...
    gate = Gate(_memo._read, block_first_only=True)
    monkeypatch.setattr(_memo, "_read", gate)
    asker_result: List[str] = []
    asker = run(lambda: asker_result.append(client.token()))
    assert gate.entered.wait(STUCK)
    # ...while a request's 401 makes the core invalidate that token and fetch another.
    mock.revoke()
    with client.request("GET", mock.url + "/api/items") as response:
        assert response.status == 200
        new = response.json()["jti"]
    assert jwt_payload(old)["jti"] != new
    gate.release.set()
    asker.join(STUCK)
    assert asker_result == [old]  # it overlapped the request, so the old token was its answer
    # But it was not stored: nobody gets the old token from now on.
    assert client._memo is None
    assert jwt_payload(client.token())["jti"] == new
    assert mock.api("/api/items", client.token())[0] == 200


def test_a_store_never_replaces_a_memo_read_later(client):
    client.token()
    now = time.monotonic_ns()
    later = ("later", now + 10**12, now + 10**12, "Bearer later", {}, now)
    earlier = ("earlier", now + 10**12, now + 10**12, "Bearer earlier", {}, now - 1)
    client._store(later, client._generation)
    client._store(earlier, client._generation)
    assert client._memo is later


# -- 8 threads, short tokens, a slow token endpoint, against the mock -------------------------

TTL_SECS = 4
DELAY_MS = 1000
SECOND_NS = 1_000_000_000
# The core stops handing a token out min(30 s, lifetime / 10) before it expires, and
# refreshes it min(refresh_before_secs, lifetime / 2) (less up to 10 % jitter) before.
MARGIN_NS = int(min(30, TTL_SECS / 10) * SECOND_NS)
# Longer than the refresh window of a 4 s token (from 2 s to 3.6 s after its request).
FAILING_DELAY_MS = 2000
RUN_SECS = 10.0
THREADS = 8


class Seen:
    """One thread's view: per token, when it first got it and when it last asked and got it."""

    __slots__ = ("tokens", "order", "errors", "server_errors")

    def __init__(self) -> None:
        # token -> [first call's end, last call's start] in time.monotonic_ns()
        self.tokens: Dict[str, List[int]] = {}
        self.order: List[str] = []
        self.errors: List[BaseException] = []
        self.server_errors = 0


def hammer(client: tokenward.Client, seen: Seen, stop_at: int) -> None:
    clock = time.monotonic_ns
    tokens = seen.tokens
    current: Optional[str] = None
    record: List[int] = []
    try:
        while True:
            began = clock()
            if began >= stop_at:
                return
            try:
                token = client.token()
            except tokenward.ServerError:
                # The failed refresh's 503, to callers left without a usable token.
                seen.server_errors += 1
                continue
            if token is current:
                record[1] = began
            elif token in tokens:  # an older token again (or the same one as a new object)
                tokens[token][1] = began
                if token != current:
                    seen.order.append(token)
                current, record = token, tokens[token]
            else:
                record = tokens[token] = [clock(), began]
                seen.order.append(token)
                current = token
    except BaseException as error:  # noqa: BLE001 - reported by the test
        seen.errors.append(error)


def check_api(mock, client: tokenward.Client, stop_at: int, verdicts: List[Tuple[int, str]]) -> None:
    """The mock's own verdict (its monotonic clock, its TTL) on the token a call just got."""
    while time.monotonic_ns() < stop_at:
        try:
            token = client.token()
        except tokenward.ServerError:
            continue
        status, _body = mock.api("/api/items", token)
        verdicts.append((status, jwt_payload(token)["jti"]))
        time.sleep(0.05)


@pytest.mark.parametrize("refresh_mode", ["background", "inline"])
def test_8_threads_short_tokens_slow_endpoint_never_past_usable(mock, make_client, config, refresh_mode):
    mock.configure(ttl_secs=TTL_SECS, token_delay_ms=DELAY_MS)
    client = make_client(**config, refresh_mode=refresh_mode)
    first = client.token()
    first_seen: Dict[str, int] = {first: time.monotonic_ns()}
    # The first refresh fails, and so slowly that the old token's usable point passes while
    # it is in flight: the memo must stop answering there, and callers wait for the core
    # (which gives them the 503, then a new token).
    mock.fault(target="token", kind="status", status=503, delay_ms=FAILING_DELAY_MS, count=1)
    stop_at = time.monotonic_ns() + int(RUN_SECS * SECOND_NS)
    seens = [Seen() for _ in range(THREADS)]
    verdicts: List[Tuple[int, str]] = []
    threads = [run(hammer, client, seen, stop_at) for seen in seens]
    threads.append(run(check_api, mock, client, stop_at, verdicts))
    for thread in threads:
        thread.join(RUN_SECS + STUCK)
        assert not thread.is_alive()
    for seen in seens:
        assert not seen.errors, seen.errors

    # The mock issues a token DELAY_MS after it receives the request, so the core, whose
    # clock for a token starts before it sends the request, started it at least DELAY_MS
    # before anyone saw the token: its usable point is no later than
    # first-seen - DELAY + TTL - margin. No call may have started after that and got it.
    for seen in seens:
        for token, (seen_at, _last) in seen.tokens.items():
            first_seen[token] = min(seen_at, first_seen.get(token, seen_at))

    def usable_until(token: str) -> int:
        return first_seen[token] - DELAY_MS * 1_000_000 + TTL_SECS * SECOND_NS - MARGIN_NS

    for seen in seens:
        for token, (_first, last_began) in seen.tokens.items():
            late_ms = (last_began - usable_until(token)) / 1e6
            assert late_ms < 0, f"jti {jwt_payload(token)['jti']} served {late_ms:.1f} ms past its usable point"
    # The mock agrees: every token checked was valid when used.
    assert verdicts and all(status == 200 for status, _ in verdicts), verdicts

    # New tokens were picked up: each thread got them in issue order, never going back...
    issued = sorted(first_seen, key=lambda token: int(jwt_payload(token)["jti"]))
    assert len(issued) >= 4, [jwt_payload(t)["jti"] for t in issued]
    for seen in seens:
        jtis = [int(jwt_payload(token)["jti"]) for token in seen.order]
        assert jtis == sorted(set(jtis)), f"a thread went back to an older token: {jtis}"
        assert len(jtis) >= 3, jtis
    # ...and, but for the failed refresh, each arrived while its predecessor was still
    # usable: the refresh was started inside the window, not when the token ran out.
    gaps = [
        (jwt_payload(old)["jti"], (first_seen[new] - usable_until(old)) / 1e6)
        for old, new in zip(issued, issued[1:])
        if first_seen[new] >= usable_until(old)
    ]
    assert len(gaps) <= 1, f"new tokens arrived after the old one's usable point (jti, ms late): {gaps}"
    # One request per token, the failed one, maybe one in flight at the end: no storm.
    requests = mock.stats()["token_requests"]
    assert requests <= len(issued) + 2, (requests, len(issued))
