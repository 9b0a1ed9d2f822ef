"""tokenward.requests.BearerAuth and tokenward.httpx.BearerAuth against the mock API."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

import tokenward.httpx  # noqa: E402
import tokenward.requests  # noqa: E402
from conftest import jwt_payload  # noqa: E402


class RequestsDriver:
    name = "requests"

    def __init__(self, client):
        self.session = requests.Session()
        self.session.auth = tokenward.requests.BearerAuth(client)

    def get(self, url, headers=None):
        r = self.session.get(url, headers=headers, timeout=10)
        return r.status_code, r.json(), r

    def post_json(self, url, payload):
        r = self.session.post(url, json=payload, timeout=10)
        return r.status_code, r.json(), r

    def close(self):
        self.session.close()


class HttpxDriver:
    name = "httpx"

    def __init__(self, client):
        self.http = httpx.Client(auth=tokenward.httpx.BearerAuth(client), timeout=10)

    def get(self, url, headers=None):
        r = self.http.get(url, headers=headers)
        return r.status_code, r.json(), r

    def post_json(self, url, payload):
        r = self.http.post(url, json=payload)
        return r.status_code, r.json(), r

    def close(self):
        self.http.close()


class AsyncHttpxDriver:
    """httpx.AsyncClient through the same auth object, one event loop per call."""

    name = "httpx-async"

    def __init__(self, client):
        self.auth = tokenward.httpx.BearerAuth(client)

    def _run(self, method, url, **kwargs):
        async def go():
            async with httpx.AsyncClient(auth=self.auth, timeout=10) as http:
                r = await http.request(method, url, **kwargs)
                await r.aread()
                return r

        r = asyncio.run(go())
        return r.status_code, r.json(), r

    def get(self, url, headers=None):
        return self._run("GET", url, headers=headers)

    def post_json(self, url, payload):
        return self._run("POST", url, json=payload)

    def close(self):
        pass


@pytest.fixture(params=[RequestsDriver, HttpxDriver, AsyncHttpxDriver], ids=lambda d: d.name)
def http(request, client):
    driver = request.param(client)
    yield driver
    driver.close()


def test_api_call_carries_token_and_static_headers(mock, http, client):
    status, body, _ = http.get(mock.url + "/api/items?page=2")
    assert status == 200, body
    assert body["tenant_code"] == "T1"
    assert body["api_version"] == "2"
    assert body["jti"] == jwt_payload(client.token())["jti"]


def test_caller_set_static_header_wins(mock, http):
    status, body, _ = http.get(mock.url + "/api/items", headers={"tenant-code": "OTHER"})
    assert status == 200 and body["tenant_code"] == "OTHER"


def test_revoked_token_is_refreshed_and_retried_once(mock, http, client):
    assert http.get(mock.url + "/api/items")[0] == 200
    old = client.token()
    mock.revoke()
    before = mock.stats()
    status, body, _ = http.get(mock.url + "/api/items")
    after = mock.stats()
    assert status == 200, body
    assert after["api_requests"] - before["api_requests"] == 2  # the 401, then the retry
    assert after["token_requests"] - before["token_requests"] == 1
    assert client.token() != old
    assert body["jti"] == jwt_payload(client.token())["jti"]
    # Exactly one 401 in the API log, for the old token, then the success with the new one.
    api_log = mock.requests()["api"][-2:]
    assert api_log[0]["headers"]["authorization"] == "Bearer " + old
    assert api_log[1]["headers"]["authorization"] == "Bearer " + client.token()


def test_json_body_is_resent_intact(mock, http):
    assert http.get(mock.url + "/api/items")[0] == 200
    mock.revoke()
    payload = {"name": "widget", "tags": ["a", "b"], "n": 42, "text": "ünïcødé"}
    status, body, _ = http.post_json(mock.url + "/api/items", payload)
    assert status == 200, body
    assert json.loads(body["body"]) == payload
    first, retry = mock.requests()["api"][-2:]
    assert first["method"] == retry["method"] == "POST"
    assert json.loads(first["body"]) == payload
    assert retry["body"] == first["body"]
    assert first["headers"]["authorization"] != retry["headers"]["authorization"]


def test_persistent_401_is_returned_not_looped(mock, http):
    before = mock.stats()
    status, body, _ = http.get(mock.url + "/api/always-401")
    after = mock.stats()
    assert status == 401
    assert body == {"error": "invalid_token"}
    assert after["api_requests"] - before["api_requests"] == 2


def test_other_statuses_pass_through(mock, http):
    before = mock.stats()["api_requests"]
    status, _, response = http.get(mock.url + "/api/forbidden")
    assert status == 403
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    assert mock.stats()["api_requests"] - before == 1


@pytest.fixture
def bound(make_client, config, mock):
    """A client whose only API origin is the mock."""
    return make_client(**dict(config, api_base_urls=[mock.url]))


@pytest.mark.parametrize("driver", [RequestsDriver, HttpxDriver, AsyncHttpxDriver], ids=lambda d: d.name)
def test_adapters_refuse_a_foreign_origin(mock, bound, driver):
    http = driver(bound)
    try:
        # Same port, other host: another origin. Nothing is sent, not even a token request.
        other = mock.url.replace("127.0.0.1", "localhost") + "/api/items"
        with pytest.raises(tokenward.ForeignOriginError) as caught:
            http.get(other)
        assert "api_base_urls" in str(caught.value)
        stats = mock.stats()
        assert stats["api_requests"] == 0 and stats["token_requests"] == 0
        assert http.get(mock.url + "/api/items")[0] == 200
    finally:
        http.close()


def test_headers_for_answers_for_one_url(mock, bound):
    headers = bound.headers_for("GET", mock.url + "/api/items?x=1")
    assert list(headers)[0] == "Authorization" and headers["tenant-code"] == "T1"
    with pytest.raises(tokenward.ForeignOriginError):
        bound.headers_for("GET", "http://localhost:1/api/items")
    with pytest.raises(tokenward.InvalidArgumentError):
        bound.headers_for("G ET", mock.url + "/api/items")


def _graphql(http, mock):
    if isinstance(http, RequestsDriver):
        r = http.session.post(mock.url + "/graphql", json={"query": "{ viewer { jti } }"}, timeout=10)
        return r.status_code, r.json()
    return http.post_json(mock.url + "/graphql", {"query": "{ viewer { jti } }"})[:2]


@pytest.mark.parametrize("driver", [RequestsDriver, HttpxDriver, AsyncHttpxDriver], ids=lambda d: d.name)
def test_adapters_recover_from_graphql_unauthenticated_when_enabled(mock, make_client, config, driver):
    client = make_client(**dict(config, graphql_auth_errors=True))
    http = driver(client)
    try:
        client.token()
        mock.revoke()
        status, body = _graphql(http, mock)
        assert status == 200 and body["data"]["viewer"]["jti"] == jwt_payload(client.token())["jti"], body
        assert mock.stats()["token_requests"] == 2
    finally:
        http.close()
    # Without the option the answer is returned as it is.
    plain = make_client(**config)
    http = driver(plain)
    try:
        plain.token()
        mock.revoke()
        status, body = _graphql(http, mock)
        assert status == 200 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        http.close()


@pytest.mark.parametrize("driver", [RequestsDriver, HttpxDriver, AsyncHttpxDriver], ids=lambda d: d.name)
def test_a_rejecting_api_causes_no_refresh_storm_through_adapters(mock, client, driver):
    http = driver(client)
    try:
        status, _, _ = http.get(mock.url + "/api/always-401")
        assert status == 401  # one re-send, then the answer as it is
        for _ in range(49):
            with pytest.raises(tokenward.UnauthorizedError) as caught:
                http.get(mock.url + "/api/always-401")
            assert "freshly issued" in str(caught.value)
        stats = mock.stats()
        assert stats["token_requests"] <= 2, stats
        assert stats["api_requests"] == 51
    finally:
        http.close()


def test_requests_rewinds_a_file_body_for_the_retry(mock, client):
    session = requests.Session()
    session.auth = tokenward.requests.BearerAuth(client)
    assert session.get(mock.url + "/api/items").status_code == 200
    mock.revoke()
    data = io.BytesIO(b"prefix-to-skip|the real payload")
    data.seek(len(b"prefix-to-skip|"))
    r = session.post(mock.url + "/api/upload", data=data, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == "the real payload"
    assert len(r.history) == 1 and r.history[0].status_code == 401
    first, retry = mock.requests()["api"][-2:]
    assert first["body"] == retry["body"] == "the real payload"


def test_requests_does_not_resend_a_generator_body(mock, client):
    session = requests.Session()
    session.auth = tokenward.requests.BearerAuth(client)
    client.token()
    mock.revoke()
    before = mock.stats()["api_requests"]
    r = session.post(mock.url + "/api/upload", data=(chunk for chunk in [b"a", b"b"]), timeout=10)
    assert r.status_code == 401  # a consumed generator cannot be replayed
    assert mock.stats()["api_requests"] - before == 1


def test_many_401s_on_one_token_cause_one_refresh(mock, client):
    auth = tokenward.requests.BearerAuth(client)
    client.token()
    mock.revoke()
    before = mock.stats()["token_requests"]
    barrier = threading.Barrier(8)
    statuses = []

    def worker():
        with requests.Session() as session:
            session.auth = auth
            barrier.wait()
            statuses.append(session.get(mock.url + "/api/items", timeout=10).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses == [200] * 8
    assert mock.stats()["token_requests"] - before == 1


def test_adapters_import_without_the_other_library():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['requests'] = None; sys.modules['httpx'] = None\n"
        "import tokenward\n"
        "try:\n"
        "    import tokenward.requests\n"
        "except ImportError as e:\n"
        "    assert 'pip install requests' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('tokenward.requests imported without requests')\n"
        "try:\n"
        "    import tokenward.httpx\n"
        "except ImportError as e:\n"
        "    assert 'pip install httpx' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('tokenward.httpx imported without httpx')\n"
    )
    env_path = [p for p in sys.path if p]
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(env_path))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
