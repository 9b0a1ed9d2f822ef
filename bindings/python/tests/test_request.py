"""Client.request(): tw_client_send_pairs through the core's own transport, against the mock API."""

from __future__ import annotations

import gc
import json
import threading

import pytest

import tokenward
from conftest import jwt_payload


def test_get_carries_token_and_static_headers(mock, client):
    with client.request("GET", mock.url + "/api/items?page=2") as response:
        assert isinstance(response, tokenward.Response)
        assert response.status == 200 and response.ok
        data = response.json()
        assert data["ok"] is True and data["method"] == "GET" and data["path"] == "/api/items"
        assert data["query"] == "page=2"
        assert data["tenant_code"] == "T1" and data["api_version"] == "2"
        assert data["jti"] == jwt_payload(client.token())["jti"]
        assert response.header("content-type") == "application/json"
        assert response.header("Content-Type") == "application/json"  # case-insensitive
        assert response.header("x-not-there") is None
        assert json.loads(response.text) == data
    sent = mock.requests()["api"][-1]["headers"]
    assert sent["authorization"] == "Bearer " + client.token()
    assert mock.stats()["token_requests"] == 1


def test_post_sends_body_and_extra_headers(mock, client):
    payload = {"name": "caf\u00e9", "n": 7}
    response = client.request(
        "POST",
        mock.url + "/api/items",
        headers={"Content-Type": "application/json", "x-correlation-id": "c-1"},
        body=json.dumps(payload),
    )
    data = response.json()
    assert response.status == 200 and data["method"] == "POST"
    assert json.loads(data["body"]) == payload
    logged = mock.requests()["api"][-1]
    assert logged["headers"]["x-correlation-id"] == "c-1"
    assert logged["headers"]["tenant-code"] == "T1"
    assert json.loads(logged["body"]) == payload


def test_binary_body_with_nul_bytes_is_sent_whole(mock, client):
    body = bytes(range(1, 40)) + b"\0tail"
    response = client.request("PUT", mock.url + "/api/blob", body=bytearray(body))
    assert response.status == 200
    # The mock logs the body as UTF-8 with invalid bytes replaced; these are all ASCII.
    assert mock.requests()["api"][-1]["body"] == body.decode("ascii")


def test_revoked_token_one_401_one_refresh_one_retry(mock, client):
    first = client.token()
    mock.revoke()
    response = client.request("GET", mock.url + "/api/items")
    assert response.status == 200
    assert mock.stats()["token_requests"] == 2  # the first fetch + exactly one refresh
    api = mock.requests()["api"]
    assert [entry["headers"]["authorization"] for entry in api] == [
        "Bearer " + first,
        "Bearer " + client.token(),
    ]
    # The memo did not outlive the core's refresh: token() gives the new token.
    assert client.token() != first
    assert response.json()["jti"] == jwt_payload(client.token())["jti"]


def test_persistent_401_raises_unauthorized_after_one_retry(mock, client):
    with pytest.raises(tokenward.UnauthorizedError) as caught:
        client.request("GET", mock.url + "/api/always-401")
    assert caught.value.status == 30
    assert mock.stats()["api_requests"] == 2  # the request and one retry, not a loop
    assert mock.stats()["token_requests"] == 2
    assert client.token() not in str(caught.value)


def test_403_raises_forbidden(mock, client):
    with pytest.raises(tokenward.ForbiddenError) as caught:
        client.request("GET", mock.url + "/api/forbidden")
    assert caught.value.status == 31
    assert mock.stats()["api_requests"] == 1


def test_other_statuses_are_responses(mock, make_client, config):
    client = make_client(**dict(config, headers={}))  # no tenant-code: the mock says 400
    response = client.request("GET", mock.url + "/api/items")
    assert response.status == 400 and not response.ok
    assert response.json() == {"error": "MISSING_TENANT"}
    missing = client.request("GET", mock.url + "/nothing-here")
    assert missing.status == 404


def test_origin_binding_refuses_other_origins(mock, make_client, config):
    client = make_client(**dict(config, api_base_urls=["http://127.0.0.1:1"]))
    with pytest.raises(tokenward.ForeignOriginError) as caught:
        client.request("GET", mock.url + "/api/items")
    assert "api_base_urls" in str(caught.value)
    assert caught.value.status == 32 and isinstance(caught.value, tokenward.InvalidArgumentError)
    stats = mock.stats()
    assert stats["api_requests"] == 0 and stats["token_requests"] == 0  # nothing was sent


def test_origin_binding_allows_the_configured_origin(mock, make_client, config):
    client = make_client(**dict(config, api_base_urls=[mock.url]))
    assert client.request("GET", mock.url + "/api/items").status == 200


def test_header_injection_is_refused_before_sending(mock, client):
    for headers in ({"x-a": "1\r\nAuthorization: Bearer stolen"}, {"x-a\nx-b": "1"}, {"x:y": "1"}, {"x": "a\0b"}):
        with pytest.raises(tokenward.InvalidArgumentError):
            client.request("GET", mock.url + "/api/items", headers=headers)
    with pytest.raises(tokenward.InvalidArgumentError):
        client.request("GET", mock.url + "/api/items", headers={"Authorization": "Bearer mine"})
    with pytest.raises(tokenward.InvalidArgumentError):
        client.request("GET\0", mock.url + "/api/items")
    with pytest.raises(TypeError):
        client.request("POST", mock.url + "/api/items", body=12)  # type: ignore[arg-type]
    assert mock.stats()["api_requests"] == 0


RESERVED = ["Authorization", "Proxy-Authorization", "Host", "Content-Length", "Transfer-Encoding", "Connection", "TE", "Upgrade"]


def test_the_core_checks_every_header_pair(mock, client):
    # Each pair goes to the core as a pair (no header text is built here); the core names it.
    for headers, says in (
        ({"x-a": "1", "x-b": "v\r\nX-Evil: 1"}, "header pair 1: header `x-b` has CR, LF"),
        ({"x-b": "v\nX-Evil: 1"}, "header pair 0"),
        ({"x-b": "v\rX-Evil: 1"}, "header pair 0"),
        ({"x-a: 1\r\nX-Evil": "1"}, "header pair 0: header name"),
        ({"x y": "1"}, "not an RFC 9110 token"),
    ):
        with pytest.raises(tokenward.InvalidArgumentError) as caught:
            client.request("GET", mock.url + "/api/items", headers=headers)
        assert says in str(caught.value)
    assert mock.stats()["api_requests"] == 0


def test_reserved_headers_are_refused_in_any_case(mock, client):
    for name in RESERVED:
        for spelled in (name, name.lower(), name.upper()):
            with pytest.raises(tokenward.InvalidArgumentError) as caught:
                client.request("POST", mock.url + "/api/items", headers={spelled: "0"}, body=b"payload")
            assert "may not be set" in str(caught.value), spelled
    stats = mock.stats()
    assert stats["api_requests"] == 0


def test_header_values_arrive_as_given(mock, client):
    response = client.request("GET", mock.url + "/api/items", headers={"X-Request-Id": "42 43", "Accept": "text/csv"})
    assert response.status == 200
    seen = mock.requests()["api"][-1]["headers"]
    assert seen["x-request-id"] == "42 43" and seen["accept"] == "text/csv"


def test_a_rejecting_api_causes_no_refresh_storm(mock, client):
    for i in range(50):
        with pytest.raises(tokenward.UnauthorizedError) as caught:
            client.request("GET", mock.url + "/api/always-401")
        assert "freshly issued" in str(caught.value)
    stats = mock.stats()
    assert stats["token_requests"] <= 2, stats
    assert stats["api_requests"] == 51


def test_network_failure_is_a_network_error(client):
    with pytest.raises(tokenward.NetworkError):
        client.request("GET", "http://127.0.0.1:1/api/items")


def test_response_is_freed_once(mock, client):
    response = client.request("GET", mock.url + "/api/items")
    assert not response.closed
    response.close()
    response.close()
    assert response.closed
    assert response.status == 200 and response.json()["ok"] is True
    with pytest.raises(tokenward.ClosedError):
        response.header("content-type")
    # Unclosed responses are freed by garbage collection.
    for _ in range(50):
        client.request("GET", mock.url + "/api/items")
    gc.collect()


def test_request_after_close_raises_closed_error(mock, client):
    client.close()
    with pytest.raises(tokenward.ClosedError):
        client.request("GET", mock.url + "/api/items")


def test_concurrent_requests_share_one_token(mock, client):
    statuses = []
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        for _ in range(5):
            statuses.append(client.request("GET", mock.url + "/api/items").status)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * 40
    assert mock.stats()["token_requests"] == 1
