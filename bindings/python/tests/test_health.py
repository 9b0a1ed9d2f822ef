"""Client.health() and Client.diagnose(): the native core's state and diagnosis as dicts."""

from __future__ import annotations

import time

import tokenward


def test_health_follows_a_failure_and_the_recovery(mock, make_client, config):
    client = make_client(**config)
    assert client.health()["state"] == "ok"
    assert client.health()["remaining_ms"] is None

    client.token()
    health = client.health()
    assert health["state"] == "ok"
    assert health["remaining_ms"] > 0
    assert health["consecutive_failures"] == 0

    client.invalidate()
    mock.fault(status=503, body="down")
    try:
        client.token()
    except tokenward.ServerError:
        pass
    else:
        raise AssertionError("the 503 was not reported")
    health = client.health()
    assert health["state"] == "failing"
    assert health["consecutive_failures"] == 1
    assert health["last_error"]["kind"] == "server"
    assert health["last_error"]["http_status"] == 503

    asked = mock.stats()["token_requests"]
    for _ in range(20):
        client.health()
    assert mock.stats()["token_requests"] == asked, "health asks nobody"

    # The provider recovers; after the short backoff the next call fetches.
    deadline = time.monotonic() + 10
    while True:
        try:
            client.token()
            break
        except tokenward.ServerError:
            assert time.monotonic() < deadline, "never recovered"
            time.sleep(0.05)
    health = client.health()
    assert health["state"] == "ok"
    assert health["consecutive_failures"] == 0
    assert health["last_error"]["kind"] == "server", "the last failure stays visible"


def test_diagnose_reports_each_check(mock, make_client, config):
    client = make_client(**config)
    diagnosis = client.diagnose(probe=mock.url + "/api/items")
    assert diagnosis["ok"] is True
    assert [c["id"] for c in diagnosis["checks"]] == [
        "config", "dns", "tcp", "proxy", "tls", "clock", "token", "token_sanity", "probe",
    ]
    assert diagnosis["verdict"] == "✓ all 8 checks passed"

    wrong = make_client(**{**config, "client_secret": "wr0ng-s3cret"})
    diagnosis = wrong.diagnose()
    assert diagnosis["ok"] is False
    assert diagnosis["error_kind"] == "invalid_client"
    assert diagnosis["verdict"].startswith("✗ token request: ")
    assert "wr0ng-s3cret" not in str(diagnosis)
