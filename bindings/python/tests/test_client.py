"""Tokens, authorization and headers against the mock; from_env; the memo."""

from __future__ import annotations

import time

import pytest

import tokenward
from conftest import CLIENT_ID, CLIENT_SECRET, jwt_payload


def test_token_authorization_and_headers_match_the_mock(mock, client):
    token = client.token()
    claims = jwt_payload(token)
    assert claims["sub"] == CLIENT_ID
    assert claims["client_id"] == CLIENT_ID
    assert claims["iss"] == mock.url
    assert claims["exp"] - claims["iat"] == 3600

    assert client.authorization() == "Bearer " + token
    headers = client.headers()
    assert list(headers.items()) == [
        ("Authorization", "Bearer " + token),
        ("tenant-code", "T1"),
        ("api-version", "2"),
    ]
    assert mock.stats()["tokens_issued"] == 1

    # The mock accepts what the client produced.
    status, body = mock.call("GET", "/api/items", headers=headers)
    assert status == 200, body
    assert (body["tenant_code"], body["api_version"], body["jti"]) == ("T1", "2", claims["jti"])


def test_scope_and_audience_reach_the_token(mock, make_client, config):
    client = make_client(**config, scope=["read", "EventsApi"], audience="https://api.example")
    claims = jwt_payload(client.token())
    assert set(claims["scope"].split()) == {"read", "EventsApi"}
    assert claims["aud"] == "https://api.example"


def test_headers_returns_a_copy(client):
    headers = client.headers()
    headers["Authorization"] = "tampered"
    headers["x-extra"] = "1"
    assert client.headers()["Authorization"] != "tampered"
    assert "x-extra" not in client.headers()


def test_cached_token_is_reused_without_new_requests(mock, client):
    first = client.token()
    for _ in range(1000):
        assert client.token() == first
        assert client.authorization() == "Bearer " + first
        assert client.headers()["Authorization"] == "Bearer " + first
    assert mock.stats()["token_requests"] == 1
    stats = client.stats()
    assert stats["token_requests"] == 1
    # The memo answers the hits: they never reach the core.
    assert stats["cache_hits"] <= 2, stats
    assert stats["remaining_ms"] > 3_000_000


def test_from_env_with_api_prefix(mock, monkeypatch):
    monkeypatch.setenv("API_TOKEN_URL", mock.token_url)
    monkeypatch.setenv("API_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("API_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("API_TENANT_CODE", "TEN-9")
    monkeypatch.setenv("API_API_VERSION", "3.1")
    monkeypatch.setenv("API_ALLOW_HTTP", "1")
    with tokenward.Client.from_env("API_") as client:
        token = client.token()
        assert jwt_payload(token)["sub"] == CLIENT_ID
        assert client.headers() == {
            "Authorization": "Bearer " + token,
            "tenant-code": "TEN-9",
            "api-version": "3.1",
        }
        assert "from_env='API_'" in repr(client)
        assert CLIENT_SECRET not in repr(client)
        status, body = mock.call("GET", "/api/items", headers=client.headers())
        assert status == 200 and body["tenant_code"] == "TEN-9"


def test_from_env_default_prefix(mock, monkeypatch):
    monkeypatch.setenv("TOKENWARD_TOKEN_URL", mock.token_url)
    monkeypatch.setenv("TOKENWARD_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOKENWARD_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TOKENWARD_ALLOW_HTTP", "true")
    with tokenward.Client.from_env() as client:
        assert jwt_payload(client.token())["sub"] == CLIENT_ID


def test_from_env_missing_variables_is_a_config_error(monkeypatch):
    for name in ("NOPE_TOKEN_URL", "NOPE_AUTH_URL", "NOPE_CLIENT_ID", "NOPE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(tokenward.ConfigError) as info:
        tokenward.Client.from_env("NOPE_")
    assert str(info.value)


def test_repr_shows_no_secret(config, make_client):
    client = make_client(**dict(config, client_secret="hunter2-very-secret"))
    text = repr(client)
    assert "hunter2" not in text
    assert CLIENT_ID in text and "/oauth/token" in text and "open" in text
    client.close()
    assert "closed" in repr(client)


def test_repr_drops_userinfo_and_query_of_the_url(config, make_client):
    # The URL is rejected by the core or not: the repr never shows credentials in it.
    url = config["token_url"].replace("http://", "http://user:pw-secret@") + "?key=q-secret"
    try:
        client = make_client(**dict(config, token_url=url))
    except tokenward.ConfigError as error:
        assert "pw-secret" not in str(error) and "q-secret" not in str(error)
        return
    assert "pw-secret" not in repr(client) and "q-secret" not in repr(client)


def test_stats_shape(client):
    stats = client.stats()
    assert set(stats) >= {
        "token_requests",
        "cache_hits",
        "failures",
        "background_refreshes",
        "invalidations",
        "remaining_ms",
    }
    assert stats["remaining_ms"] is None
    client.token()
    assert client.stats()["remaining_ms"] > 0


def test_large_token_grows_the_buffer(mock, make_client, config):
    # The mock echoes extra form parameters into the JWT: a token far beyond the first
    # buffer size exercises grow-and-retry, which must never surface.
    big = "x" * 20_000
    client = make_client(**config, extra_params={"padding": big})
    token = client.token()
    assert len(token) > 20_000
    assert jwt_payload(token)["extra"]["padding"] == big
    assert client.headers()["Authorization"] == "Bearer " + token
    assert client.authorization() == "Bearer " + token


def test_config_values_may_be_paths(config, make_client, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(CLIENT_SECRET)
    settings = dict(config)
    del settings["client_secret"]
    client = make_client(**settings, client_secret_file=secret_file)
    assert jwt_payload(client.token())["sub"] == CLIENT_ID


def test_unserializable_config_value_is_an_invalid_argument():
    with pytest.raises(tokenward.InvalidArgumentError):
        tokenward.Client(token_url=object())


# -- the memo ---------------------------------------------------------------------------


def test_invalidate_after_revoke_gets_a_new_token(mock, client):
    first = client.token()
    mock.revoke()
    # Without invalidate the client keeps its (now revoked) token: it cannot know.
    assert client.token() == first
    client.invalidate(first)
    second = client.token()
    assert second != first
    assert int(jwt_payload(second)["jti"]) > int(jwt_payload(first)["jti"])
    assert mock.api("/api/items", second)[0] == 200
    assert mock.stats()["tokens_issued"] == 2


def test_invalidate_without_token_evicts_unconditionally(mock, client):
    first = client.token()
    client.invalidate()
    assert client.token() != first
    assert mock.stats()["tokens_issued"] == 2


def test_invalidate_of_an_old_token_keeps_the_current_one(mock, client):
    first = client.token()
    client.invalidate(first)
    second = client.token()
    client.invalidate(first)  # a late 401 for the old token: ignored by the core
    assert client.token() == second
    assert mock.stats()["tokens_issued"] == 2


def test_set_client_secret_drops_the_memo(mock, client):
    client.token()
    client.set_client_secret("wrong-secret-4711")
    with pytest.raises(tokenward.InvalidClientError) as info:
        client.token()
    assert "wrong-secret-4711" not in str(info.value)
    client.set_client_secret(CLIENT_SECRET)
    assert jwt_payload(client.token())["sub"] == CLIENT_ID


def test_memo_serves_only_until_the_core_reuse_deadline(mock, make_client, config):
    # 2 s tokens refreshed 1 s early: the core's refresh point is under 1 s after issue.
    mock.configure(ttl_secs=2)
    client = make_client(**config, refresh_before_secs=1)
    token = client.token()
    hits = client.stats()["cache_hits"]
    for _ in range(1000):
        assert client.token() == token
    assert client.stats()["cache_hits"] == hits  # answered by the memo, not the core
    memo = client._memo
    assert memo is not None and memo[0] == token
    assert memo[1] - time.monotonic_ns() <= 1_000_000_000
    while time.monotonic_ns() <= memo[1]:
        time.sleep(0.01)
    client.token()  # past the deadline the core is asked again
    stats = client.stats()
    assert stats["cache_hits"] + stats["token_requests"] > hits + 1


def test_memo_is_not_kept_when_the_core_says_ask_every_time(mock, make_client, config, monkeypatch):
    client = make_client(**config)
    token = client.token()
    real = tokenward._native.read_token_window
    monkeypatch.setattr(tokenward._native, "read_token_window", lambda handle: (real(handle)[0], 0, 0))
    client.invalidate()
    fresh = client.token()
    assert fresh != token and client._memo is None
    hits = client.stats()["cache_hits"]
    client.token()
    assert client.stats()["cache_hits"] == hits + 1


def test_empty_secret_is_rejected(client):
    with pytest.raises(tokenward.ConfigError):
        client.set_client_secret("")


def test_invalid_utf8_reaches_the_core_as_invalid_argument(client):
    # A lone surrogate is passed through as the bytes it would be: the core rejects them.
    with pytest.raises(tokenward.InvalidArgumentError) as info:
        client.set_client_secret("bad\udcff")
    assert str(info.value)


def test_short_ttl_tokens_rotate_and_are_never_expired(mock, make_client, config):
    mock.configure(ttl_secs=2)
    client = make_client(**config, refresh_before_secs=1)
    seen = set()
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        token = client.token()
        claims = jwt_payload(token)
        seen.add(claims["jti"])
        status, body = mock.api("/api/items", token)
        assert status == 200, (claims, body)
        time.sleep(0.02)
    # 4 s of 2 s tokens refreshed 1 s early: at least three distinct tokens.
    assert len(seen) >= 3, seen
