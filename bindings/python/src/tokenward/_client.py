"""The :class:`Client`: a thin owner of one native ``tw_client`` handle.

Every behaviour (fetching, caching, refresh-ahead, single-flight, backoff, redaction) is
the native core's. What lives here is what only a Python binding can do:

* **A memo for the hit path.** ``tw_client_token_cacheable`` says for how long the core
  itself would hand out the same token without any decision to make (until its own
  refresh point). Until then :meth:`Client.token` returns the memoized string without an
  FFI call. The memo is one immutable tuple swapped atomically under the GIL, so the hit
  path takes no lock; it is dropped on :meth:`~Client.invalidate`,
  :meth:`~Client.set_client_secret` and :meth:`~Client.close`.
* **Handle lifetime.** Calls in flight are counted; :meth:`~Client.close` marks the
  client closed and the last call to finish frees the handle, so the handle is never
  freed under a running call and ``close()`` never blocks.
* **Events to logging.** Native events arrive (often on the library's refresh thread)
  through a ctypes callback that forwards them to the ``"tokenward"`` logger and an
  optional user callable; nothing raised there reaches native code.
* **fork().** Around ``os.fork()`` event delivery is paused, because the core's fork
  handler waits for a running callback, which could be waiting for the GIL the forking
  thread holds. The child gets fresh Python locks; the core resets its own state.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import _native
from ._errors import ClosedError, Error, InvalidArgumentError
from ._native import EVENT_FN, NO_EVENT_FN, check, lib
from ._response import Response

__all__ = ["Body", "Client", "EventCallback"]

#: What :meth:`Client.request` accepts as a body; ``str`` is sent as UTF-8.
Body = Union[bytes, bytearray, memoryview, str]

#: ``on_event(kind_name, message)``; see :class:`Client`.
EventCallback = Callable[[str, str], None]

logger = logging.getLogger("tokenward")
# A library leaves output to the application's logging configuration.
logger.addHandler(logging.NullHandler())

# Log level per native event kind name; unknown kinds log at INFO.
_LEVELS: Dict[str, int] = {
    "token_acquired": logging.INFO,
    "invalidated": logging.INFO,
    "retry_scheduled": logging.WARNING,
    "refresh_failed": logging.WARNING,
    "served_stale": logging.WARNING,
    "fetch_failed": logging.ERROR,
}

_monotonic_ns = time.monotonic_ns

# Which event sink (if any) is delivering an event on this thread; see `_EventSink`.
_delivering = threading.local()

# Every open client, for the fork and exit hooks.
_live: "weakref.WeakSet[Client]" = weakref.WeakSet()

# (token, reuse-until in time.monotonic_ns(), authorization value, headers)
_Memo = Tuple[str, int, str, Dict[str, str]]


class _EventSink:
    """Receives native events and forwards them to logging and the user's callable.

    Holds the ctypes callback object, which must outlive its registration with the
    handle. It references no client, so an unclosed client can still be collected.
    """

    __slots__ = ("on_event", "function", "__weakref__")

    def __init__(self, on_event: Optional[EventCallback]) -> None:
        self.on_event = on_event
        self.function = EVENT_FN(self._deliver)

    def _deliver(self, _user_data: object, event: object) -> None:
        # Runs inside a native call, often on the library's refresh thread: nothing may
        # propagate out of here.
        try:
            _delivering.sink = self
            try:
                _kind, name, message = _native.event_fields(event)
                logger.log(
                    _LEVELS.get(name, logging.INFO),
                    "%s: %s",
                    name,
                    message,
                    extra={"tokenward_event": name},
                )
                if self.on_event is not None:
                    try:
                        self.on_event(name, message)
                    except Exception:
                        logger.exception(
                            "tokenward: the on_event callable raised while handling a %r "
                            "event; the exception was ignored.",
                            name,
                        )
            finally:
                _delivering.sink = None
        except BaseException:  # noqa: BLE001 - must never unwind into native code
            pass


def _free(handle: int, sink: _EventSink) -> None:
    # Unregister first: when it returns, no callback is running or will run, so the ctypes
    # function object (kept alive by `sink` until here) may then go.
    lib.tw_client_set_event_callback(handle, NO_EVENT_FN, None)
    lib.tw_client_free(handle)


def _encode(text: str) -> bytes:
    # Lone surrogates pass through as the invalid UTF-8 they are: the core reports them
    # as an InvalidArgumentError like any other bad input.
    return text.encode("utf-8", "surrogatepass")


def _parse_headers(text: str) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for line in text.split("\r\n"):
        if line:
            name, _, value = line.partition(":")
            headers[name] = value.strip(" ")
    return headers


def _header_pairs(headers: Mapping[str, str]) -> List[Tuple[bytes, bytes]]:
    """Name/value pairs for ``tw_client_send_pairs``; the core validates them.

    Only NUL is refused here: a C string ends at it, so the core would see a shorter name
    or value than the caller wrote.
    """
    pairs = []
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("tokenward: request header names and values must be str.")
        if "\0" in name or "\0" in value:
            raise InvalidArgumentError(
                f"tokenward: request header {name!r} contains NUL; the request was not sent."
            )
        pairs.append((_encode(name), _encode(value)))
    return pairs


def _c_string(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"tokenward: the request {what} must be a str.")
    if "\0" in text:
        raise InvalidArgumentError(f"tokenward: the request {what} contains NUL; the request was not sent.")
    return _encode(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"a {type(value).__name__} is not JSON-serializable")


def _describe_url(url: Any) -> Optional[str]:
    """scheme://host[:port]/path of a URL: no userinfo, query or fragment in a repr."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Client:
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

    __slots__ = (
        "_memo",
        "_handle",
        "_lock",
        "_active",
        "_closed",
        "_generation",
        "_sink",
        "_description",
        "__weakref__",
    )

    _handle: Optional[int]

    def __init__(self, *, on_event: Optional[EventCallback] = None, **config: Any) -> None:
        self._closed = True  # until a handle exists, for a safe __del__
        try:
            text = json.dumps(config, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"tokenward: the configuration cannot be encoded as JSON: {exc}."
            ) from None
        description = ", ".join(
            f"{key}={value!r}"
            for key, value in (
                ("client_id", config.get("client_id")),
                ("token_url", _describe_url(config.get("token_url"))),
                ("issuer", _describe_url(config.get("issuer"))),
            )
            if isinstance(value, str)
        )
        self._adopt(_native.new_client(text.encode("utf-8")), description, on_event)

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
        handle = _native.client_from_env(None if prefix is None else _encode(prefix))
        shown = "TOKENWARD_" if prefix is None else prefix
        client._adopt(handle, f"from_env={shown!r}", on_event)
        return client

    def _adopt(self, handle: int, description: str, on_event: Optional[EventCallback]) -> None:
        if on_event is not None and not callable(on_event):
            lib.tw_client_free(handle)
            raise TypeError("tokenward: on_event must be a callable (kind_name, message).")
        self._memo: Optional[_Memo] = None
        self._lock = threading.Lock()
        self._active = 0
        self._generation = 0
        self._description = description
        self._sink = _EventSink(on_event)
        self._handle = handle
        self._closed = False
        try:
            check(lib.tw_client_set_event_callback(handle, self._sink.function, None))
        except BaseException:
            self._closed = True
            self._handle = None
            _free(handle, self._sink)
            raise
        _live.add(self)

    # -- the handle: counted use, deferred free ----------------------------------------

    def _enter(self) -> Tuple[int, int]:
        if getattr(_delivering, "sink", None) is self._sink:
            raise InvalidArgumentError(
                "tokenward: an event callback must not call back into the client that "
                "emitted the event; hand the work to another thread instead."
            )
        with self._lock:
            if self._closed or self._handle is None:
                raise ClosedError("tokenward: this Client is closed; create a new one.")
            self._active += 1
            return self._handle, self._generation

    def _exit(self, generation: int = -1, memo: Optional[_Memo] = None, *, drop: bool = False) -> None:
        release = None
        with self._lock:
            self._active -= 1
            if drop:
                # After the native call: a concurrent fetch that began before it cannot
                # store the token it got (its generation is now stale).
                self._generation += 1
                self._memo = None
            elif memo is not None and generation == self._generation and not self._closed:
                self._memo = memo
            if self._closed and self._active == 0 and self._handle is not None:
                release, self._handle = self._handle, None
        if release is not None:
            self._release(release)

    def _release(self, handle: int) -> None:
        if getattr(_delivering, "sink", None) is self._sink:
            # Closed from inside our own event callback: unregistering here would wait
            # for this very callback to return. Let another thread do it.
            threading.Thread(
                target=_free, args=(handle, self._sink), name="tokenward-close", daemon=True
            ).start()
        else:
            _free(handle, self._sink)

    def close(self) -> None:
        """Free the native client. Idempotent; never raises.

        Calls already running on other threads finish normally (the handle is freed when
        the last of them returns); later calls raise :class:`ClosedError`.
        """
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._closed:
                return
            self._closed = True
            self._memo = None
            release = None
            if self._active == 0 and self._handle is not None:
                release, self._handle = self._handle, None
        if release is not None:
            self._release(release)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - interpreter shutdown, half-built objects
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        description = getattr(self, "_description", "")
        inner = f" {description}" if description else ""
        return f"<tokenward.Client{inner} {state}>"

    # -- tokens --------------------------------------------------------------------------

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
            return memo[2]
        return self._load(True)[2]

    def headers(self) -> Dict[str, str]:
        """Every header to send: ``Authorization`` first, then the configured static ones
        (e.g. ``tenant-code``, ``api-version``). A new dict on each call."""
        memo = self._memo
        if memo is not None and _monotonic_ns() < memo[1]:
            return memo[3].copy()
        return self._load(True)[3].copy()

    def _load(self, with_headers: bool) -> _Memo:
        """Ask the core; memoize when it says the token may be reused for a while."""
        handle, generation = self._enter()
        memo: Optional[_Memo] = None
        try:
            # A refresh may land between the two calls; retry for a consistent pair.
            for _ in range(3):
                started = _monotonic_ns()
                token, reusable_ns = _native.read_token_cacheable(handle)
                if reusable_ns == 0 and not with_headers:
                    return (token, 0, "", {})
                headers = _parse_headers(_native.read_string(lib.tw_client_headers, handle))
                authorization = next(iter(headers.values()), "")
                if authorization.rpartition(" ")[2] == token:
                    break
            else:
                return (token, 0, authorization, headers)
            result: _Memo = (token, started + reusable_ns, authorization, headers)
            if reusable_ns > 0:
                memo = result
            return result
        finally:
            self._exit(generation, memo)

    def invalidate(self, token: Optional[str] = None) -> None:
        """Evict ``token`` if it is the cached one; ``None`` evicts unconditionally.

        Call it with the token an API rejected with 401: many calls for the same old
        token cause one refresh. Never blocks on the network.
        """
        handle, _ = self._enter()
        try:
            check(lib.tw_client_invalidate(handle, None if token is None else _encode(token)))
        finally:
            self._exit(drop=True)

    def set_client_secret(self, secret: str) -> None:
        """Rotate the client secret: every cached token and remembered error is cleared,
        so the next call fetches with the new secret."""
        handle, _ = self._enter()
        try:
            check(lib.tw_client_set_client_secret(handle, _encode(secret)))
        finally:
            self._exit(drop=True)

    def stats(self) -> Dict[str, Any]:
        """Counters from the core: ``token_requests``, ``cache_hits``, ``failures``,
        ``background_refreshes``, ``invalidations``, ``remaining_ms`` (``None`` if no
        token is cached). Hits answered by the binding's memo are not counted as
        ``cache_hits``: they never reach the core."""
        handle, _ = self._enter()
        try:
            text = _native.read_string(lib.tw_client_stats, handle)
        finally:
            self._exit()
        try:
            stats: Dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise Error(f"tokenward: the native library returned malformed stats JSON: {exc}.") from None
        return stats

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
        method_bytes = _c_string(method, "method")
        url_bytes = _c_string(url, "URL")
        header_pairs = _header_pairs(headers) if headers else []
        if body is None:
            body_bytes: Optional[bytes] = None
        elif isinstance(body, str):
            body_bytes = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            body_bytes = bytes(body)
        else:
            raise TypeError("tokenward: the request body must be bytes, bytearray, memoryview or str.")
        handle, _ = self._enter()
        try:
            response, status, data = _native.send(handle, method_bytes, url_bytes, header_pairs, body_bytes)
        finally:
            # The core may have replaced the token (a 401 makes it invalidate and refetch),
            # so the memo must not outlive this call.
            self._exit(drop=True)
        try:
            return Response(response, status, data)
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
        method_bytes = _c_string(method, "method")
        url_bytes = _c_string(url, "URL")
        handle, _ = self._enter()
        try:
            text = _native.read_string(lib.tw_client_headers_for, handle, method_bytes, url_bytes)
        finally:
            self._exit()
        return _parse_headers(text)

    def _recover(self, authorization: str, status: int, body: Optional[bytes]) -> bool:
        """After the API answered a request that carried ``authorization`` (from
        :meth:`headers_for`): whether to re-send it once with new headers (the core found
        the token rejected — 401, or a GraphQL ``UNAUTHENTICATED`` with
        ``graphql_auth_errors`` — and invalidated it). Raises :class:`UnauthorizedError`
        when the core refuses: the API rejects freshly issued tokens."""
        handle, _ = self._enter()
        resend = False
        try:
            resend = _native.recover(handle, _encode(authorization), status, body)
            return resend
        finally:
            # The core invalidated the token when it says re-send: drop the memo with it.
            self._exit(drop=resend)

    def _cached_headers(self) -> Optional[Dict[str, str]]:
        """The memoized headers, or ``None`` when getting them would call the core."""
        memo = self._memo
        if memo is not None and _monotonic_ns() < memo[1]:
            return memo[3].copy()
        return None

    # -- fork ------------------------------------------------------------------------------

    def _pause_events(self) -> bool:
        """Stop event delivery, keeping one use counted (so the handle stays valid) until
        :meth:`_resume_events`. Used around fork() and at interpreter exit."""
        with self._lock:
            if self._closed or self._handle is None:
                return False
            self._active += 1
            handle = self._handle
        # ctypes drops the GIL here, so a callback running on the refresh thread can finish.
        lib.tw_client_set_event_callback(handle, NO_EVENT_FN, None)
        return True

    def _resume_events(self, in_child: bool) -> None:
        if in_child:
            # Threads that held the lock or had calls in flight do not exist in the child.
            self._lock = threading.Lock()
            self._active = 1
            self._forget_memo()
        with self._lock:
            handle = self._handle
        if handle is not None and not self._closed:
            lib.tw_client_set_event_callback(handle, self._sink.function, None)
        self._exit()

    def _reset_in_child(self) -> None:
        # A closed client whose last call was in flight in another thread at fork():
        # that thread does not exist here, so nobody else would free the handle.
        self._lock = threading.Lock()
        self._active = 1
        self._forget_memo()
        self._exit()

    def _forget_memo(self) -> None:
        # In a forked child the first call asks the core again (its cache survives the
        # fork), and a load that was in flight in a parent thread can never store a memo.
        self._generation += 1
        self._memo = None


def _before_fork() -> None:
    global _paused
    _paused = [client for client in list(_live) if client._pause_events()]


def _after_fork(in_child: bool) -> None:
    global _paused
    paused, _paused = _paused, []
    for client in paused:
        try:
            client._resume_events(in_child)
        except Exception:  # noqa: BLE001 - a fork hook must not fail the fork
            logger.exception("tokenward: could not resume event delivery after fork().")
    if in_child:
        for client in list(_live):
            if client not in paused:
                client._reset_in_child()


_paused: list = []

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=lambda: _after_fork(False),
        after_in_child=lambda: _after_fork(True),
    )


@atexit.register
def _at_exit() -> None:
    # Events must not reach Python while the interpreter shuts down. The handles stay
    # usable (daemon threads may still call), and are never freed: the process is ending.
    for client in list(_live):
        try:
            client._pause_events()
        except Exception:  # noqa: BLE001
            pass
