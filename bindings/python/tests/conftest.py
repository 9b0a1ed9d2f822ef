"""Shared fixtures: the mock identity provider (one process per test session) and clients.

The native library and the mock come from TOKENWARD_LIBRARY / TOKENWARD_MOCK (run_tests.sh
sets both), defaulting to the repository's target/release.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

os.environ.setdefault("TOKENWARD_LIBRARY", str(REPO / "target" / "release" / "libtokenward.so"))
if importlib.util.find_spec("tokenward") is None:
    sys.path.insert(0, str(HERE.parent / "src"))

import tokenward  # noqa: E402

MOCK = os.environ.get("TOKENWARD_MOCK", str(REPO / "target" / "release" / "examples" / "mock_idp"))

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"


class Mock:
    """A running mock_idp and its admin endpoints."""

    def __init__(self, url: str, process: "subprocess.Popen[bytes]") -> None:
        self.url = url
        self.process = process

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def call(self, method: str, path: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def admin(self, path: str, body: Any = None) -> Any:
        status, value = self.call("POST" if body is not None or path in _POST_PATHS else "GET", "/admin/" + path, body)
        assert status == 200, (path, status, value)
        return value

    def stats(self) -> Dict[str, int]:
        return self.admin("stats")

    def requests(self) -> Dict[str, List[Dict[str, Any]]]:
        return self.admin("requests")

    def configure(self, **config: Any) -> Any:
        return self.admin("config", config)

    def fault(self, **fault: Any) -> Any:
        return self.admin("fault", fault)

    def revoke(self) -> None:
        self.admin("revoke", {})

    def reset(self) -> None:
        self.admin("reset", {})

    def api(self, path: str, token: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        sent = {"Authorization": "Bearer " + token, "tenant-code": "T1", "api-version": "2"}
        sent.update(headers or {})
        return self.call("GET", path, headers=sent)


_POST_PATHS = {"revoke", "reset", "shutdown"}


def start_mock(*args: str) -> Mock:
    if not os.path.isfile(MOCK):
        pytest.exit(f"mock_idp not found at {MOCK}; set TOKENWARD_MOCK or run run_tests.sh", 2)
    process = subprocess.Popen(
        [MOCK, "--port", "0", "--lifetime-secs", "600", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("http"):
        process.kill()
        pytest.exit(f"mock_idp did not print its URL (got {line!r})", 2)
    return Mock(line, process)


def stop_mock(mock: Mock) -> None:
    mock.process.kill()
    mock.process.wait(timeout=10)


@pytest.fixture(scope="session")
def mock_server() -> Iterator[Mock]:
    mock = start_mock()
    yield mock
    stop_mock(mock)


@pytest.fixture
def mock(mock_server: Mock) -> Mock:
    """The session's mock, reset to defaults (no faults, counters 0) for this test."""
    mock_server.reset()
    return mock_server


@pytest.fixture
def config(mock: Mock) -> Dict[str, Any]:
    """A configuration for the mock; tests adjust it before building a client."""
    return {
        "token_url": mock.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allow_http": True,
        "headers": {"tenant-code": "T1", "api-version": "2"},
        "retry": {"max_attempts": 1},
    }


@pytest.fixture
def make_client() -> Iterator[Callable[..., tokenward.Client]]:
    """Build clients that are closed at the end of the test."""
    clients: List[tokenward.Client] = []

    def make(**config: Any) -> tokenward.Client:
        client = tokenward.Client(**config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., tokenward.Client], config: Dict[str, Any]) -> tokenward.Client:
    return make_client(**config)


def jwt_payload(token: str) -> Dict[str, Any]:
    """The (unsigned) JWT's claims."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
