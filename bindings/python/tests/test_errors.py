"""Every failure family raises its own exception class, with a message and no secret."""

from __future__ import annotations

import builtins
import socket
import time

import pytest

import tokenward
from tokenward._errors import error_class
from conftest import CLIENT_SECRET, jwt_payload, start_mock, stop_mock

SECRET = "s3cr3t-never-shown-0815"


def assert_clean(error: tokenward.Error, *secrets: str) -> None:
    message = str(error)
    assert message.strip(), "empty error message"
    for secret in (SECRET, CLIENT_SECRET) + secrets:
        assert secret not in message
        assert secret not in repr(error)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_mapping_is_complete():
    expected = {
        1: tokenward.InvalidArgumentError,
        2: tokenward.ConfigError,
        10: tokenward.NetworkError,
        11: tokenward.TimeoutError,
        12: tokenward.TlsError,
        20: tokenward.InvalidClientError,
        21: tokenward.InvalidScopeError,
        22: tokenward.UnauthorizedClientError,
        23: tokenward.OAuthError,
        24: tokenward.RateLimitedError,
        25: tokenward.ServerError,
        26: tokenward.BadResponseError,
        30: tokenward.UnauthorizedError,
        31: tokenward.ForbiddenError,
        32: tokenward.ForeignOriginError,
        99: tokenward.PanicError,
    }
    for status, cls in expected.items():
        assert error_class(status) is cls
        assert cls.status == status
        assert issubclass(cls, tokenward.Error)
        assert tokenward._native.status_name(status) == cls.status_name
    assert error_class(12345) is tokenward.Error
    assert issubclass(tokenward.ClosedError, tokenward.Error)
    assert issubclass(tokenward.TimeoutError, builtins.TimeoutError)


def test_error_attributes():
    error = tokenward.TimeoutError("took too long", 11, "TW_ERR_TIMEOUT")
    assert str(error) == "took too long"
    assert error.message == "took too long"
    assert error.status == 11
    assert error.errno is None  # not confused with an OSError errno
    assert "took too long" in repr(error)


def test_bad_secret_is_invalid_client(mock, make_client, config):
    client = make_client(**dict(config, client_secret=SECRET))
    with pytest.raises(tokenward.InvalidClientError) as info:
        client.token()
    assert info.value.status == 20
    assert "invalid_client" in str(info.value)
    assert_clean(info.value)
    # Remembered for the cooldown: the next call fails at once without a request.
    before = mock.stats()["token_requests"]
    with pytest.raises(tokenward.InvalidClientError):
        client.headers()
    assert mock.stats()["token_requests"] == before


def test_closed_port_is_network_error(make_client, config):
    client = make_client(**dict(config, token_url=f"http://127.0.0.1:{free_port()}/oauth/token"))
    with pytest.raises(tokenward.NetworkError) as info:
        client.token()
    assert info.value.status == 10
    assert_clean(info.value)


def test_mock_shut_down_is_network_error(make_client, config):
    other = start_mock()
    try:
        client = make_client(**dict(config, token_url=other.token_url))
        assert client.token()
        client.invalidate()
    finally:
        stop_mock(other)
    with pytest.raises(tokenward.NetworkError) as info:
        client.token()
    assert_clean(info.value)


def test_connection_closed_without_answer_is_network_error(mock, make_client, config):
    mock.fault(target="token", kind="close", count=5)
    client = make_client(**config)
    with pytest.raises(tokenward.NetworkError) as info:
        client.token()
    assert_clean(info.value)


def test_hanging_endpoint_is_timeout_error(mock, make_client, config):
    mock.fault(target="token", kind="hang", count=1)
    client = make_client(**config, timeouts={"request_ms": 500})
    started = time.monotonic()
    with pytest.raises(tokenward.TimeoutError) as info:
        client.token()
    elapsed = time.monotonic() - started
    assert isinstance(info.value, builtins.TimeoutError)
    assert info.value.status == 11
    assert elapsed < 5, elapsed
    assert_clean(info.value)


def test_builtin_timeout_handler_catches_it(mock, make_client, config):
    mock.fault(target="token", kind="hang", count=1)
    client = make_client(**config, timeouts={"request_ms": 300})
    try:
        client.token()
    except builtins.TimeoutError as error:
        assert isinstance(error, tokenward.Error)
    else:
        pytest.fail("no timeout")


def test_unknown_config_key_is_config_error(config):
    with pytest.raises(tokenward.ConfigError) as info:
        tokenward.Client(**dict(config, client_secert="typo"))
    assert "client_secert" in str(info.value)
    assert info.value.status == 2
    assert_clean(info.value)


def test_plain_http_to_a_remote_host_is_config_error(config):
    with pytest.raises(tokenward.ConfigError) as info:
        tokenward.Client(**dict(config, token_url="http://idp.example.com/oauth/token"))
    assert "token_url" in str(info.value)


def test_malformed_200_body_is_bad_response(mock, make_client, config):
    mock.fault(target="token", status=200, body="<html>proxy login</html>", content_type="text/html")
    client = make_client(**config)
    with pytest.raises(tokenward.BadResponseError) as info:
        client.token()
    assert info.value.status == 26
    assert_clean(info.value)


def test_json_without_access_token_is_bad_response(mock, make_client, config):
    mock.fault(target="token", status=200, body='{"token_type":"Bearer"}', content_type="application/json")
    with pytest.raises(tokenward.BadResponseError) as info:
        make_client(**config).token()
    assert_clean(info.value)


def test_server_error_after_retries(mock, make_client, config):
    mock.fault(target="token", status=503, body="busy", count=5)
    with pytest.raises(tokenward.ServerError) as info:
        make_client(**config).token()
    assert info.value.status == 25
    assert_clean(info.value)


def test_rate_limited(mock, make_client, config):
    mock.fault(target="token", status=429, body="slow down", retry_after="1", count=5)
    with pytest.raises(tokenward.RateLimitedError) as info:
        make_client(**config).token()
    assert_clean(info.value)


def test_invalid_scope(mock, make_client, config):
    mock.configure(allowed_scopes=["EventsApi"])
    with pytest.raises(tokenward.InvalidScopeError) as info:
        make_client(**config, scope="Other").token()
    assert "invalid_scope" in str(info.value)
    assert_clean(info.value)


def test_unauthorized_client(mock, make_client, config):
    mock.fault(target="token", status=400, body='{"error":"unauthorized_client"}', content_type="application/json")
    with pytest.raises(tokenward.UnauthorizedClientError) as info:
        make_client(**config).token()
    assert_clean(info.value)


def test_other_oauth_error(mock, make_client, config):
    mock.fault(
        target="token",
        status=400,
        body='{"error":"invalid_request","error_description":"Missing thing."}',
        content_type="application/json",
    )
    with pytest.raises(tokenward.OAuthError) as info:
        make_client(**config).token()
    assert "invalid_request" in str(info.value)
    assert_clean(info.value)


def test_untrusted_certificate_is_tls_error(make_client, config, tmp_path):
    tls_mock = start_mock("--tls", str(tmp_path))
    try:
        settings = dict(config, token_url=tls_mock.token_url)
        with pytest.raises(tokenward.TlsError) as info:
            make_client(**settings).token()
        assert_clean(info.value)
        # With the mock's CA the same endpoint works: the failure was the certificate.
        trusted = make_client(**settings, tls={"ca_file": str(tmp_path / "ca.pem")})
        assert jwt_payload(trusted.token())["sub"] == config["client_id"]
    finally:
        stop_mock(tls_mock)


def test_errors_are_shared_by_waiting_threads(mock, make_client, config):
    import threading

    mock.configure(token_delay_ms=300)
    client = make_client(**dict(config, client_secret=SECRET))
    errors = []

    def worker():
        try:
            client.token()
        except tokenward.Error as error:
            errors.append(type(error))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [tokenward.InvalidClientError] * 8
    assert mock.stats()["token_requests"] == 1
