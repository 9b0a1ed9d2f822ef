"""DPoP (RFC 9449) from Python: bound tokens, a proof per request through headers_for,
Client.request and the requests/httpx adapters, API nonce challenges, and the refusal of
the request-independent header calls."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Dict, List, Tuple

import pytest

import tokenward
from conftest import jwt_payload

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

import tokenward.httpx  # noqa: E402
import tokenward.requests  # noqa: E402


def decode_jwt(jwt: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    def part(segment: str) -> Dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, claims, _ = jwt.split(".")
    return part(header), part(claims)


def ath(token: str) -> str:
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def dpop_mock(mock):
    mock.configure(dpop="required")
    return mock


@pytest.fixture
def dpop_client(make_client, config, dpop_mock):
    return make_client(**config, dpop={"generate": True})


def api_proofs(mock) -> List[Tuple[str, str, Dict[str, str]]]:
    """(method, path, headers) of every API request the mock received."""
    return [(r["method"], r["path"], r["headers"]) for r in mock.requests()["api"]]


def check_bound(mock, method: str, path: str, headers: Dict[str, str]) -> str:
    """The request carried a DPoP token and a proof for exactly this method and URL."""
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "DPoP"
    _, claims = decode_jwt(headers["dpop"])
    assert claims["htm"] == method
    assert claims["htu"] == mock.url + path.split("?")[0]
    assert claims["ath"] == ath(token)
    return claims["jti"]


def test_a_dpop_token_and_headers_for_each_request(dpop_client, dpop_mock):
    token = dpop_client.token()
    assert jwt_payload(token)["cnf"]["jkt"]
    url = dpop_mock.url + "/api/items?page=2"
    first = dpop_client.headers_for("GET", url)
    assert list(first)[:2] == ["Authorization", "DPoP"]
    assert first["Authorization"] == "DPoP " + token
    assert first["tenant-code"] == "T1"
    header, claims = decode_jwt(first["DPoP"])
    assert header["typ"] == "dpop+jwt" and "d" not in header["jwk"]
    assert (claims["htm"], claims["htu"], claims["ath"]) == ("GET", dpop_mock.url + "/api/items", ath(token))
    second = dpop_client.headers_for("GET", url)
    assert decode_jwt(second["DPoP"])[1]["jti"] != claims["jti"], "a new proof every time"

    status, body = dpop_mock.call("GET", "/api/items?page=2", headers=first)
    assert status == 200, body
    # The same proof again is a replay; the token as Bearer is refused.
    assert dpop_mock.call("GET", "/api/items?page=2", headers=first)[0] == 401
    assert dpop_mock.api("/api/items", token)[0] == 401


def test_plain_headers_and_authorization_need_the_request(dpop_client):
    dpop_client.token()
    for call in (dpop_client.headers, dpop_client.authorization):
        with pytest.raises(tokenward.NeedsRequestError) as caught:
            call()
        assert caught.value.status == 33
        assert "headers_for" in str(caught.value)
    assert dpop_client.token().count(".") == 2, "the token itself is still available"


def test_client_request_signs_and_answers_an_api_nonce(dpop_client, dpop_mock):
    dpop_mock.configure(dpop_api_nonce="api-n-1")
    response = dpop_client.request("PUT", dpop_mock.url + "/api/items/7", body=b"x")
    assert response.status == 200, response.text()
    sent = api_proofs(dpop_mock)
    assert len(sent) == 2, "the nonce challenge, then the re-send"
    jtis = [check_bound(dpop_mock, m, p, h) for m, p, h in sent]
    assert len(set(jtis)) == 2
    assert "nonce" not in decode_jwt(sent[0][2]["dpop"])[1]
    assert decode_jwt(sent[1][2]["dpop"])[1]["nonce"] == "api-n-1"
    assert dpop_mock.stats()["token_requests"] == 1, "a nonce challenge keeps the token"


class Requests:
    def __init__(self, client):
        self.session = requests.Session()
        self.session.auth = tokenward.requests.BearerAuth(client)

    def send(self, method: str, url: str) -> int:
        return self.session.request(method, url, data=b"body", timeout=10).status_code

    def close(self) -> None:
        self.session.close()


class Httpx:
    def __init__(self, client):
        self.http = httpx.Client(auth=tokenward.httpx.BearerAuth(client), timeout=10)

    def send(self, method: str, url: str) -> int:
        return self.http.request(method, url, content=b"body").status_code

    def close(self) -> None:
        self.http.close()


class AsyncHttpx:
    def __init__(self, client):
        self.auth = tokenward.httpx.BearerAuth(client)

    def send(self, method: str, url: str) -> int:
        async def run() -> int:
            async with httpx.AsyncClient(auth=self.auth, timeout=10) as http:
                return (await http.request(method, url, content=b"body")).status_code

        return asyncio.run(run())

    def close(self) -> None:
        pass


@pytest.mark.parametrize("driver", [Requests, Httpx, AsyncHttpx], ids=["requests", "httpx", "httpx-async"])
def test_adapters_sign_every_request_and_recover(driver, dpop_client, dpop_mock):
    http = driver(dpop_client)
    try:
        for method, path in [("GET", "/api/a?x=1"), ("POST", "/api/b"), ("DELETE", "/api/c")]:
            assert http.send(method, dpop_mock.url + path) == 200
        # An API nonce: one challenge, one re-send with the nonce, same token.
        dpop_mock.configure(dpop_api_nonce="n-7")
        assert http.send("PATCH", dpop_mock.url + "/api/d") == 200
        assert dpop_mock.stats()["token_requests"] == 1
        # A revoked token: the core invalidates it, the re-send carries a new token and proof.
        dpop_mock.revoke()
        assert http.send("GET", dpop_mock.url + "/api/e") == 200
        assert dpop_mock.stats()["token_requests"] == 2
    finally:
        http.close()
    sent = api_proofs(dpop_mock)
    jtis = [check_bound(dpop_mock, m, p, h) for m, p, h in sent]
    assert len(jtis) == len(set(jtis)) == 7
    assert decode_jwt(sent[4][2]["dpop"])[1]["nonce"] == "n-7"


def test_dpop_key_file_and_client_assertion_file_options(make_client, config, dpop_mock, tmp_path):
    # An unreadable key is a configuration error naming the key.
    with pytest.raises(tokenward.ConfigError) as caught:
        make_client(**config, dpop={"key_file": str(tmp_path / "missing.pem")})
    assert "dpop.key_file" in str(caught.value)
    # An expired assertion file: the typed error, and nothing is sent.
    now = 1_000_000_000

    def seg(value: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    expired = seg({"alg": "ES256"}) + "." + seg({"sub": "x", "exp": now}) + ".c2ln"
    path = tmp_path / "token"
    path.write_text(expired)
    settings = {k: v for k, v in config.items() if k != "client_secret"}
    client = make_client(**settings, client_assertion_file=str(path))
    with pytest.raises(tokenward.ConfigError) as caught:
        client.token()
    assert "expired" in str(caught.value) and str(path) in str(caught.value)
    assert expired not in str(caught.value)
    assert dpop_mock.stats()["token_requests"] == 0
