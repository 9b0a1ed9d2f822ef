"""One client shared by many threads."""

from __future__ import annotations

import threading
import time

import pytest

import tokenward


def test_32_threads_on_a_cold_cache_make_one_request(mock, client):
    # The delay keeps the fetch in flight while every thread arrives.
    mock.configure(token_delay_ms=300)
    barrier = threading.Barrier(32)
    results = []
    errors = []

    def worker():
        barrier.wait()
        try:
            results.append(client.token())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(results) == 32
    assert len(set(results)) == 1
    assert mock.stats()["token_requests"] == 1


def test_mixed_calls_from_many_threads(mock, client):
    stop = time.monotonic() + 1.0
    errors = []

    def worker(n):
        try:
            while time.monotonic() < stop:
                token = client.token()
                assert client.headers()["Authorization"].startswith("Bearer ")
                if n % 4 == 0:
                    client.invalidate(token)
                if n % 8 == 1:
                    client.stats()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    # Every token the threads got was a real one.
    assert mock.api("/api/items", client.token())[0] == 200


def test_close_while_calls_are_in_flight(mock, make_client, config):
    mock.configure(token_delay_ms=1500)
    client = make_client(**config)
    results = []
    started = threading.Barrier(9)

    def worker():
        started.wait()
        try:
            results.append(client.token())
        except tokenward.ClosedError:
            results.append("closed")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.1)  # the fetch is in flight now
    client.close()
    # close() returned while the fetch is still in flight: it did not wait for the calls.
    assert not [r for r in results if r != "closed"], "close() waited for calls in flight"
    for t in threads:
        t.join(10)
    # Calls already inside the core finish normally; the handle is freed after the last.
    assert len(results) == 8
    tokens = [r for r in results if r != "closed"]
    assert tokens and len(set(tokens)) == 1
    assert client._handle is None
    with pytest.raises(tokenward.ClosedError):
        client.token()


def test_close_races_with_hammering_threads(mock, config):
    for _ in range(5):
        client = tokenward.Client(**config)
        client.token()
        stop = threading.Event()
        errors = []

        def worker():
            try:
                while not stop.is_set():
                    try:
                        client.invalidate()
                        client.headers()
                        client.stats()
                    except tokenward.ClosedError:
                        return
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        client.close()
        stop.set()
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert client._handle is None
