"""Native events reach logging (and on_event) without secrets or tokens."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import tokenward

SECRET = "ev3nt-s3cret-value-xyz"
CLIENT = "events-client"


def records_of(caplog):
    return [r for r in caplog.records if r.name == "tokenward"]


def assert_no_secrets(messages, tokens):
    for message in messages:
        assert SECRET not in message, message
        for token in tokens:
            assert token not in message, message
            # Not even a large part of it: only short fingerprints are allowed.
            for part in token.split("."):
                if len(part) >= 16:
                    assert part not in message, message


@pytest.fixture
def events_config(mock, config):
    mock.configure(clients={CLIENT: SECRET})
    return dict(config, client_id=CLIENT, client_secret=SECRET)


def test_events_are_logged_without_secrets(mock, make_client, events_config, caplog):
    caplog.set_level(logging.DEBUG, logger="tokenward")
    seen = []
    client = make_client(
        **dict(events_config, retry={"max_attempts": 3, "base_delay_ms": 10}),
        on_event=lambda kind, message: seen.append((kind, message)),
    )

    first = client.token()
    client.invalidate(first)
    second = client.token()
    mock.fault(target="token", status=503, body="down", count=1)
    client.invalidate()
    third = client.token()  # one 503, a retry, then success

    bad = make_client(**dict(events_config, client_secret=SECRET + "-wrong"))
    with pytest.raises(tokenward.InvalidClientError):
        bad.token()

    records = records_of(caplog)
    kinds = [getattr(r, "tokenward_event", None) for r in records]
    assert {"token_acquired", "invalidated", "retry_scheduled", "fetch_failed"} <= set(kinds), kinds
    acquired = [r for r in records if r.tokenward_event == "token_acquired"]
    assert all(r.levelno == logging.INFO for r in acquired)
    failed = [r for r in records if r.tokenward_event == "fetch_failed"]
    assert all(r.levelno == logging.ERROR for r in failed)
    assert all(r.getMessage().strip() for r in records)

    assert [k for k, _ in seen].count("token_acquired") == 3
    assert "invalidated" in [k for k, _ in seen]

    messages = [r.getMessage() for r in records] + [m for _, m in seen]
    assert_no_secrets(messages, [first, second, third])
    assert not any("-wrong" in m for m in messages)


def test_retry_events(mock, make_client, events_config, caplog):
    caplog.set_level(logging.DEBUG, logger="tokenward")
    mock.fault(target="token", status=503, body="down", count=1)
    client = make_client(**dict(events_config, retry={"max_attempts": 3, "base_delay_ms": 10}))
    token = client.token()
    kinds = [r.tokenward_event for r in records_of(caplog)]
    assert "retry_scheduled" in kinds
    assert_no_secrets([r.getMessage() for r in records_of(caplog)], [token])


def test_background_refresh_events_arrive_from_the_library_thread(mock, make_client, events_config, caplog):
    caplog.set_level(logging.DEBUG, logger="tokenward")
    # Refresh window from 1.8-2 s (2 s before expiry, minus jitter); usable until 3 s (a
    # margin of at least a second).
    mock.configure(ttl_secs=4)
    threads = []
    acquired = threading.Event()

    def on_event(kind, message):
        if kind == "token_acquired":
            threads.append(threading.get_ident())
            if len(threads) >= 2:
                acquired.set()

    client = make_client(**events_config, refresh_before_secs=2, on_event=on_event)
    first = client.token()
    time.sleep(2.1)  # into the refresh window: the next call starts a background refresh
    assert client.token() == first  # served at once
    assert acquired.wait(5), "no background refresh event"
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()
    # Inside the refresh window the memo looks at the core again every few milliseconds
    # (tokenward._memo.REFRESH_POLL_NS), and so picks up the new token.
    for _ in range(200):
        if client.token() != first:
            break
        time.sleep(0.005)
    assert client.token() != first
    assert_no_secrets([r.getMessage() for r in records_of(caplog)], [first, client.token()])


def test_a_raising_on_event_is_logged_and_ignored(mock, make_client, events_config, caplog):
    caplog.set_level(logging.DEBUG, logger="tokenward")

    def explode(kind, message):
        raise RuntimeError("boom from user code")

    client = make_client(**events_config, on_event=explode)
    token = client.token()
    assert token
    assert client.headers()["Authorization"] == "Bearer " + token
    errors = [r for r in records_of(caplog) if r.levelno == logging.ERROR and r.exc_info]
    assert errors and "on_event" in errors[0].getMessage()
    assert "boom from user code" in str(errors[0].exc_info[1])


def test_on_event_must_not_call_back_into_the_client(mock, make_client, events_config):
    outcomes = []
    holder = {}

    def reenter(kind, message):
        try:
            holder["client"].stats()
        except tokenward.Error as error:
            outcomes.append(type(error))

    client = make_client(**events_config, on_event=reenter)
    holder["client"] = client
    assert client.token()
    assert outcomes and set(outcomes) == {tokenward.InvalidArgumentError}
    # The client itself is unharmed.
    assert client.stats()["token_requests"] == 1


def test_close_from_inside_on_event(mock, make_client, events_config):
    holder = {}
    done = threading.Event()

    def close_it(kind, message):
        holder["client"].close()
        done.set()

    client = make_client(**events_config, on_event=close_it)
    holder["client"] = client
    token = client.token()  # the call in flight finishes; the handle is freed after it
    assert token and done.is_set()
    assert client.closed
    with pytest.raises(tokenward.ClosedError):
        client.token()


def test_on_event_must_be_callable(events_config):
    with pytest.raises(TypeError):
        tokenward.Client(**events_config, on_event="not callable")


def test_no_output_without_logging_configuration(mock, events_config, tmp_path):
    # A library must not print: the "tokenward" logger has a NullHandler.
    import os
    import subprocess
    import sys

    code = (
        "import tokenward\n"
        f"c = tokenward.Client(token_url='http://127.0.0.1:9/oauth/token', client_id='x', "
        "client_secret='y', allow_http=True, retry={'max_attempts': 2, 'base_delay_ms': 1})\n"
        "try:\n    c.token()\nexcept tokenward.NetworkError:\n    pass\n"
        "c.close()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_a_secret_file_others_can_read_is_logged_once_as_a_warning(
    mock, make_client, config, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG, logger="tokenward")
    path = tmp_path / "secret"
    path.write_text("demo-secret\n")
    path.chmod(0o644)
    seen = []
    settings = {k: v for k, v in config.items() if k != "client_secret"}
    client = make_client(
        **dict(settings, client_secret_file=str(path)),
        on_event=lambda kind, message: seen.append((kind, message)),
    )
    client.token()
    client.invalidate()
    client.token()
    warnings = [message for kind, message in seen if kind == "warning"]
    assert len(warnings) == 1, seen
    assert "client_secret_file" in warnings[0] and "0644" in warnings[0], warnings[0]
    assert "demo-secret" not in warnings[0]
    logged = [r for r in records_of(caplog) if r.tokenward_event == "warning"]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING, logged


def test_a_day_long_retry_after_is_remembered_only_up_to_max_retry_after_ms(mock, make_client, config):
    mock.fault(target="token", status=429, retry_after="86400", body={"error": "slow_down"}, count=1)
    client = make_client(**dict(config, retry={"max_attempts": 1, "max_retry_after_ms": 200}))
    with pytest.raises(tokenward.RateLimitedError):
        client.token()
    token = None
    for _ in range(300):  # bounded: 3 s, not the day the server asked for
        try:
            token = client.token()
            break
        except tokenward.RateLimitedError:
            time.sleep(0.01)
    assert token is not None
    assert mock.stats()["token_requests"] == 2
