"""The :class:`Client`: the public façade over one native ``tw_client`` handle.

Every behaviour (fetching, caching, refresh-ahead, single-flight, backoff, redaction) is
the native core's. What only a Python binding can do lives beside this module: the memo
behind the hit path (:mod:`._memo`), the handle's lifetime (:mod:`._handle`), events to
logging (:mod:`._events`), fork() and exit (:mod:`._fork`), and turning Python values into
what the C ABI takes (:mod:`._encoding`).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from . import _native
from ._encoding import Body, body_bytes, c_string, describe_url, encode, header_pairs, json_default, parse_headers
from ._errors import Error, InvalidArgumentError
from ._events import EventCallback
from ._memo import MemoizedClient, monotonic_ns
from ._response import Response

__all__ = ["Body", "Client", "EventCallback"]

_monotonic_ns = monotonic_ns


class Client(MemoizedClient):
    """An OAuth 2.0 client-credentials client with a token cache (the native core).

    ``Client(**config)`` takes the JSON configuration keys of the core as keyword
    arguments (``token_url``, ``client_id``, ``client_secret``, ``scope``, ``headers``,
    ``timeouts``, ...; unknown keys raise :class:`ConfigError`). No network I/O happens
    until the first token is needed.

    One client is meant to be shared by every thread of the process. Use it as a context
    manager or call :meth:`close`; an unclosed client is freed when garbage-collected.

    Native events (token acquired, refresh failed, retry scheduled, ...) are logged to the
    ``"tokenward"`` logger. ``on_event(kind_name, message)``, if given, is called for each
    too; it may run on a library thread, must return quickly and must not call back into
    this client (such calls raise :class:`InvalidArgumentError`); whatever it raises is
    logged and ignored. Event messages never contain a secret or a full token.
    """

    __slots__ = ("_description",)

    def __init__(self, *, on_event: Optional[EventCallback] = None, **config: Any) -> None:
        self._closed = True  # until a handle exists, for a safe __del__
        try:
            text = json.dumps(config, default=json_default)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"tokenward: the configuration cannot be encoded as JSON: {exc}."
            ) from None
        description = ", ".join(
            f"{key}={value!r}"
            for key, value in (
                ("client_id", config.get("client_id")),
                ("token_url", describe_url(config.get("token_url"))),
                ("issuer", describe_url(config.get("issuer"))),
            )
            if isinstance(value, str)
        )
        self._start(_native.new_client(text.encode("utf-8")), description, on_event)

    @classmethod
    def from_env(
        cls, prefix: Optional[str] = None, *, on_event: Optional[EventCallback] = None
    ) -> "Client":
        """A client configured from environment variables.

        Reads ``{prefix}TOKEN_URL``, ``{prefix}CLIENT_ID``, ``{prefix}CLIENT_SECRET``,
        ``{prefix}SCOPE``, ``{prefix}TENANT_CODE``, ``{prefix}API_VERSION``, ... (the
        core's list); ``prefix`` defaults to ``"TOKENWARD_"``.
        """
        client = cls.__new__(cls)
        client._closed = True
        handle = _native.client_from_env(None if prefix is None else encode(prefix))
        shown = "TOKENWARD_" if prefix is None else prefix
        client._start(handle, f"from_env={shown!r}", on_event)
        return client

    def _start(self, handle: _native.ClientHandle, description: str, on_event: Optional[EventCallback]) -> None:
        self._description = description
        self._init_memo()
        self._adopt(handle, on_event)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        description = getattr(self, "_description", "")
        inner = f" {description}" if description else ""
        return f"<tokenward.Client{inner} {state}>"

    # -- tokens (the hit path reads the memo inline: no call, no lock) --------------------

    def token(self) -> str:
        """The current access token, fetched if needed (blocks at most the request timeout).

        Raises the :class:`Error` subclass of the failure (e.g. :class:`InvalidClientError`,
        :class:`NetworkError`, :class:`TimeoutError`).
        """
        memo = self._memo
        if memo is not None and _monotonic_ns() < memo[1]:
            return memo[0]
        return self._load(False)[0]

    def authorization(self) -> str:
        """The ``Authorization`` header value, ``"Bearer <token>"``."""
        memo = self._memo
        if memo is not None and _monotonic_ns() < memo[1]:
            return memo[3]
        return self._load(True)[3]

    def headers(self) -> Dict[str, str]:
        """Every header to send: ``Authorization`` first, then the configured static ones
        (e.g. ``tenant-code``, ``api-version``). A new dict on each call."""
        memo = self._memo
        if memo is not None and _monotonic_ns() < memo[1]:
            return memo[4].copy()
        return self._load(True)[4].copy()

    def invalidate(self, token: Optional[str] = None) -> None:
        """Evict ``token`` if it is the cached one; ``None`` evicts unconditionally.

        Call it with the token an API rejected with 401: many calls for the same old
        token cause one refresh. Never blocks on the network.
        """
        handle = self._enter()
        try:
            _native.invalidate(handle, None if token is None else encode(token))
        finally:
            self._drop_memo()
            self._exit()

    def set_client_secret(self, secret: str) -> None:
        """Rotate the client secret: every cached token and remembered error is cleared,
        so the next call fetches with the new secret."""
        handle = self._enter()
        try:
            _native.set_client_secret(handle, encode(secret))
        finally:
            self._drop_memo()
            self._exit()

    def stats(self) -> Dict[str, Any]:
        """Counters from the core: ``token_requests``, ``cache_hits``, ``failures``,
        ``background_refreshes``, ``invalidations``, ``remaining_ms`` (``None`` if no
        token is cached). Hits answered by the binding's memo are not counted as
        ``cache_hits``: they never reach the core."""
        handle = self._enter()
        try:
            text = _native.client_stats(handle)
        finally:
            self._exit()
        try:
            stats: Dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise Error(f"tokenward: the native library returned malformed stats JSON: {exc}.") from None
        return stats

    def health(self) -> Dict[str, Any]:
        """The client's state from memory, for readiness probes (no network call, no
        refresh started): ``state`` (``"ok"``, ``"degraded"``: a usable token is served
        while refreshes fail, ``"failing"``: no usable token and the last fetch failed),
        ``remaining_ms`` and ``next_refresh_ms`` (``None`` without a usable token),
        ``consecutive_failures``, ``last_error`` (``{"kind", "message", "http_status"}`` or
        ``None``; kept after a recovery)."""
        handle = self._enter()
        try:
            text = _native.client_health(handle)
        finally:
            self._exit()
        return self._json(text, "health")

    def diagnose(self, probe: Optional[str] = None) -> Dict[str, Any]:
        """Walk the setup — configuration, DNS, TCP, proxy, TLS, clock, token request,
        token sanity, and with ``probe`` (an API URL) one GET with the token — and return
        the diagnosis: ``{"ok", "error_kind", "verdict", "checks": [{"id", "status",
        "summary", "cause", "fix", ...}]}`` (see docs/cli.md). Blocks while it talks to the
        identity provider; leaves the client's cache alone; never raises for what it finds."""
        options = None if probe is None else json.dumps({"probe": probe}).encode("utf-8")
        handle = self._enter()
        try:
            text = _native.diagnose(handle, options)
        finally:
            self._exit()
        return self._json(text, "diagnosis")

    @staticmethod
    def _json(text: str, what: str) -> Dict[str, Any]:
        try:
            value: Dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise Error(f"tokenward: the native library returned malformed {what} JSON: {exc}.") from None
        return value

    # -- requests --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Optional[Mapping[str, str]] = None,
        body: Optional[Body] = None,
    ) -> Response:
        """Send an API request with the token and the configured headers, through the
        core's own HTTP transport (for code without an HTTP client of its own).

        ``headers`` are added after ``Authorization`` and the configured static headers; the
        core checks them (names are RFC 9110 tokens, values have no control characters) and
        refuses those the transport or tokenward sets: ``Authorization``,
        ``Proxy-Authorization``, ``Host``, ``Content-Length``, ``Transfer-Encoding``,
        ``Connection``, ``TE``, ``Upgrade``. On a 401 the core invalidates the token the
        request carried, fetches a new one and re-sends the request once. A URL whose
        origin is not in ``api_base_urls`` (when configured) is refused before anything is
        sent; a redirect to another origin carries none of the client's headers and of
        ``headers`` only ``Accept``, ``Accept-Language``, ``User-Agent`` and
        ``Content-Type``. Blocks at most the request timeout (plus a token fetch);
        thread-safe.

        Returns a :class:`Response` for every status except these, which raise:
        401 again after the retry, or at once for a token issued right after the API rejected
        another → :class:`UnauthorizedError`; 403 → :class:`ForbiddenError`; a URL outside
        ``api_base_urls`` → :class:`ForeignOriginError`; bad method, URL or header →
        :class:`InvalidArgumentError`; token failures → their :class:`Error` subclass;
        transport failures → :class:`NetworkError`, :class:`TimeoutError`, :class:`TlsError`.
        """
        method_bytes = c_string(method, "method")
        url_bytes = c_string(url, "URL")
        pairs = header_pairs(headers) if headers else []
        data = body_bytes(body)
        handle = self._enter()
        try:
            response, status, content = _native.send(handle, method_bytes, url_bytes, pairs, data)
        finally:
            # The core may have replaced the token (a 401 makes it invalidate and refetch),
            # so the memo must not outlive this call.
            self._drop_memo()
            self._exit()
        try:
            return Response(response, status, content)
        except BaseException:
            _native.free_response(response)
            raise

    # -- hooks for the adapters ------------------------------------------------------------

    def headers_for(self, method: str, url: str) -> Dict[str, str]:
        """The headers for one request to ``url`` by another HTTP client: ``Authorization``
        first, then the configured static headers — provided ``url`` may carry them.

        Raises :class:`ForeignOriginError` when ``api_base_urls`` is configured and ``url``
        is of another origin (nothing is handed out), :class:`InvalidArgumentError` for a
        malformed method or URL, and the token fetch's errors. Blocks like :meth:`token`.
        """
        method_bytes = c_string(method, "method")
        url_bytes = c_string(url, "URL")
        handle = self._enter()
        try:
            text = _native.headers_for(handle, method_bytes, url_bytes)
        finally:
            self._exit()
        return parse_headers(text)

    def _recover(self, authorization: str, status: int, body: Optional[bytes]) -> bool:
        """After the API answered a request that carried ``authorization`` (from
        :meth:`headers_for`): whether to re-send it once with new headers (the core found
        the token rejected — 401, or a GraphQL ``UNAUTHENTICATED`` with
        ``graphql_auth_errors`` — and invalidated it). Raises :class:`UnauthorizedError`
        when the core refuses: the API rejects freshly issued tokens."""
        handle = self._enter()
        try:
            resend = _native.recover(handle, encode(authorization), status, body)
            if resend:
                # The core invalidated the token (or found it already replaced): the memo,
                # which may hold it, must not answer with it again.
                self._drop_memo()
            return resend
        finally:
            self._exit()
