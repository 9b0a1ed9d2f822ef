"""Hit-path benchmark: ``tokenward.Client.token()`` on a cached token, next to what a Python
user would pick instead, all against the same mock identity provider in one run.

    bash bindings/python/run_tests.sh --bench          # sets up the venv, msal, authlib
    PYTHONPATH=bindings/python/src TOKENWARD_LIBRARY=... TOKENWARD_MOCK=... python3 bindings/python/bench.py

Compared, each after one real fetch so that every call below is a cache hit:

* msal ``ConfidentialClientApplication.acquire_token_for_client`` (its token cache);
* Authlib ``OAuth2Session.ensure_active_token`` + reading ``token["access_token"]``
  (no lock, no single-flight: not safe to share between threads as it is);
* the lock-and-compare manager vendor guides show (``threading.Lock``, a monotonic
  deadline, fetch on expiry) — the floor for a thread-safe pure-Python cache.

The mock runs with ``--tls`` because msal accepts only ``https`` authorities; every client
trusts the mock's CA. Each figure is the median over REPEATS runs of ``timeit`` (NUMBER
calls per run) in nanoseconds per call. A benchmark, never a test: nothing is asserted
about speed, only that every timed call was a cache hit (the mock's token counter does not
move while timing).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

import tokenward

REPEATS = 7
NUMBER = 200_000
CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
SCOPE = "api://bench/.default"


class Mock:
    def __init__(self, directory: str) -> None:
        mock = os.environ.get("TOKENWARD_MOCK")
        if not mock or not os.path.isfile(mock):
            sys.exit("bench.py: set TOKENWARD_MOCK to the mock_idp executable (run_tests.sh does).")
        self.process = subprocess.Popen(
            [mock, "--port", "0", "--lifetime-secs", "300", "--tls", directory],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("https://"):
            self.stop()
            sys.exit(f"bench.py: the mock did not start (printed {self.url!r}).")
        self.ca = os.path.join(directory, "ca.pem")
        self._https = __import__("ssl").create_default_context(cafile=self.ca)

    def token_requests(self) -> int:
        with urllib.request.urlopen(self.url + "/admin/stats", context=self._https, timeout=10) as r:
            return int(json.load(r)["token_requests"])

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def per_call_ns(function: Callable[[], Any], number: int) -> Tuple[float, float, float]:
    """(median, min, max) ns per call over REPEATS timeit runs of `number` calls."""
    function()
    runs = [t / number * 1e9 for t in timeit.Timer(function).repeat(repeat=REPEATS, number=number)]
    return statistics.median(runs), min(runs), max(runs)


# -- the contenders -------------------------------------------------------------------------


def _trust(session: Any, ca: str) -> None:
    """Make a requests session trust the mock's CA. `trust_env` off: otherwise a
    REQUESTS_CA_BUNDLE in the environment silently wins over `session.verify`."""
    session.trust_env = False
    session.verify = ca


def msal_contender(mock: Mock) -> Tuple[Optional[Callable[[], str]], str]:
    try:
        import msal
        import requests
    except ImportError as exc:
        return None, f"skipped: {exc.name} is not installed (pip install msal)"

    base = mock.url

    class DiscoveryAtRoot(requests.Session):
        # Only construction is shimmed, never the timed calls: msal looks for Entra's
        # `{authority}/v2.0/.well-known/openid-configuration`, while the mock serves OIDC
        # discovery at its root; and msal insists on an `authorization_endpoint`, which a
        # client-credentials-only IdP like the mock does not publish (msal never calls it
        # for acquire_token_for_client).
        def get(self, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
            if not url.split("?", 1)[0].endswith("/.well-known/openid-configuration"):
                return super().get(url, **kwargs)
            response = super().get(base + "/.well-known/openid-configuration", **kwargs)
            document = response.json()
            document.setdefault("authorization_endpoint", base + "/oauth/authorize")
            response._content = json.dumps(document).encode()
            return response

    http = DiscoveryAtRoot()
    _trust(http, mock.ca)
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=base + "/bench-tenant",  # msal wants https and one path segment
        validate_authority=False,
        instance_discovery=False,
        http_client=http,
    )
    first = app.acquire_token_for_client(scopes=[SCOPE])
    if "access_token" not in first:
        return None, f"skipped: msal could not get a token from the mock: {first.get('error_description', first)}"
    second = app.acquire_token_for_client(scopes=[SCOPE])
    source = second.get("token_source", "cache")
    if source != "cache":
        return None, f"skipped: msal's second call did not hit its cache (token_source={source!r})"

    def acquire() -> str:
        return app.acquire_token_for_client(scopes=[SCOPE])["access_token"]

    return acquire, f"msal {msal.__version__}"


def authlib_contender(mock: Mock) -> Tuple[Optional[Callable[[], str]], str]:
    try:
        import authlib
        from authlib.integrations.requests_client import OAuth2Session
    except ImportError as exc:
        return None, f"skipped: {exc.name} is not installed (pip install authlib)"
    session = OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        token_endpoint=mock.url + "/oauth/token",
        grant_type="client_credentials",
        token_endpoint_auth_method="client_secret_post",
    )
    _trust(session, mock.ca)
    session.fetch_token()

    def ensure() -> str:
        session.ensure_active_token(session.token)
        return session.token["access_token"]

    return ensure, f"Authlib {authlib.__version__}"


class LockAndCompare:
    """The token manager vendor guides show: a lock, a cached token, a deadline."""

    def __init__(self, token_url: str, ca: str) -> None:
        import requests

        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._refresh_at = 0.0
        self._session = requests.Session()
        _trust(self._session, ca)
        self._token_url = token_url

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                response = self._session.post(
                    self._token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "scope": SCOPE,
                    },
                    timeout=10,
                )
                response.raise_for_status()
                body = response.json()
                self._token = body["access_token"]
                self._refresh_at = time.monotonic() + float(body.get("expires_in", 3600)) - 60
            return self._token


def lock_and_compare_contender(mock: Mock) -> Tuple[Optional[Callable[[], str]], str]:
    try:
        manager = LockAndCompare(mock.url + "/oauth/token", mock.ca)
    except ImportError as exc:
        return None, f"skipped: {exc.name} is not installed (pip install requests)"
    manager.token()
    return manager.token, "threading.Lock + monotonic deadline"


# -- the run --------------------------------------------------------------------------------


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tokenward-bench-") as directory:
        mock = Mock(directory)
        try:
            return run(mock)
        finally:
            mock.stop()


def run(mock: Mock) -> int:
    client = tokenward.Client(
        token_url=mock.url + "/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=SCOPE,
        tls={"ca_file": mock.ca},
        headers={"tenant-code": "T1", "api-version": "2"},
    )
    client.token()

    rows: List[Tuple[str, str, Optional[Tuple[float, float, float]]]] = []
    notes: List[str] = []
    requests_before = mock.token_requests()

    def measure(name: str, detail: str, function: Optional[Callable[[], Any]], number: int) -> None:
        if function is None:
            rows.append((name, detail, None))
            return
        rows.append((name, detail, per_call_ns(function, number)))

    measure("tokenward Client.token()", "memo hit: no FFI call", client.token, NUMBER)
    measure("tokenward Client.authorization()", "memo hit", client.authorization, NUMBER)
    measure("tokenward Client.headers()", "memo hit; a new dict", client.headers, NUMBER)
    measure(
        "tokenward memo miss",
        "tw_client_token_window + tw_client_headers via ctypes",
        lambda: client._ask(False)[0],
        NUMBER // 4,
    )
    for name, contender, number in (
        ("msal acquire_token_for_client", msal_contender, NUMBER // 20),
        ("Authlib ensure_active_token", authlib_contender, NUMBER),
        ("lock-and-compare (pure Python)", lock_and_compare_contender, NUMBER),
    ):
        function, detail = contender(mock)
        if function is None:
            notes.append(f"{name}: {detail}")
        measure(name, detail, function, number)

    fetched = mock.token_requests() - requests_before
    client.close()

    print(f"Python {sys.version.split()[0]}, tokenward {tokenward.native_version()} ({tokenward.library_path})")
    print(f"median ns per call over {REPEATS} runs (min-max); every timed call is a cache hit\n")
    width = max(len(name) for name, _, _ in rows)
    for name, detail, result in rows:
        if result is None:
            print(f"{name:<{width}}  {'-':>9}        {detail}")
        else:
            median, low, high = result
            print(f"{name:<{width}}  {median:9.1f} ns  ({low:.1f}-{high:.1f})  {detail}")
    for note in notes:
        print("note:", note)

    # The setup of msal/Authlib/lock-and-compare fetches happened before their timing;
    # the timed loops themselves must not have fetched.
    expected_setup = sum(1 for name, _, result in rows[4:] if result is not None)
    if fetched != expected_setup:
        print(f"warning: the mock saw {fetched} token requests, expected {expected_setup} (one per contender)")

    ours = rows[0][2]
    if ours is not None:
        verdicts = [f"Client.token() hit: {ours[0]:.0f} ns (goal <= 1000 ns: {'met' if ours[0] <= 1000 else 'NOT met'})"]
        by_name = {name: result for name, _, result in rows}
        msal_result = by_name.get("msal acquire_token_for_client")
        if msal_result is not None:
            verdicts.append(f"{msal_result[0] / ours[0]:.0f}x faster than msal")
        floor = by_name.get("lock-and-compare (pure Python)")
        if floor is not None:
            verdicts.append(
                f"{ours[0] / floor[0]:.2f}x the lock-and-compare floor "
                f"(stretch goal <= 1x: {'met' if ours[0] <= floor[0] else 'not met'})"
            )
        print("\n" + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
