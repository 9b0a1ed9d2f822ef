"""Exceptions: one class per native status family, all under :class:`Error`."""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type

__all__ = [
    "BadResponseError",
    "ClosedError",
    "ConfigError",
    "Error",
    "ForbiddenError",
    "ForeignOriginError",
    "InvalidArgumentError",
    "InvalidClientError",
    "InvalidScopeError",
    "NetworkError",
    "OAuthError",
    "PanicError",
    "RateLimitedError",
    "ServerError",
    "TimeoutError",
    "TlsError",
    "UnauthorizedClientError",
    "UnauthorizedError",
    "error_class",
]


class Error(Exception):
    """A tokenward failure.

    ``status`` is the native ``tw_status`` value (``None`` only for :class:`ClosedError`,
    which the binding raises itself), ``status_name`` its C name, and ``str(error)`` the
    native message: what failed, where, and what to check. Messages never contain a
    secret or a full token.
    """

    status: Optional[int] = None
    status_name: str = "TW_ERR_UNKNOWN"

    def __init__(
        self, message: str, status: Optional[int] = None, status_name: Optional[str] = None
    ) -> None:
        # One positional argument only: it keeps OSError (a base of TimeoutError) from
        # reading (errno, strerror) out of the arguments.
        super().__init__(message)
        if status is not None:
            self.status = status
        if status_name is not None:
            self.status_name = status_name

    @property
    def message(self) -> str:
        """The native message."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class InvalidArgumentError(Error):
    """A NULL pointer, invalid UTF-8 or malformed JSON reached the native library."""

    status = 1
    status_name = "TW_ERR_INVALID_ARGUMENT"


class ConfigError(Error):
    """The configuration was rejected; the message names the key."""

    status = 2
    status_name = "TW_ERR_CONFIG"


class NetworkError(Error):
    """DNS, connect, reset or proxy failure."""

    status = 10
    status_name = "TW_ERR_NETWORK"


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - the family's name
    """The connect or request deadline passed. Also a builtin :class:`TimeoutError`."""

    status = 11
    status_name = "TW_ERR_TIMEOUT"


class TlsError(Error):
    """Certificate or TLS handshake failure."""

    status = 12
    status_name = "TW_ERR_TLS"


class InvalidClientError(Error):
    """OAuth ``invalid_client`` (or HTTP 401 from the token endpoint): check id and secret."""

    status = 20
    status_name = "TW_ERR_INVALID_CLIENT"


class InvalidScopeError(Error):
    """OAuth ``invalid_scope``."""

    status = 21
    status_name = "TW_ERR_INVALID_SCOPE"


class UnauthorizedClientError(Error):
    """OAuth ``unauthorized_client`` or ``unsupported_grant_type``."""

    status = 22
    status_name = "TW_ERR_UNAUTHORIZED_CLIENT"


class OAuthError(Error):
    """Any other OAuth error response from the token endpoint."""

    status = 23
    status_name = "TW_ERR_OAUTH"


class RateLimitedError(Error):
    """HTTP 429 from the token endpoint after retries."""

    status = 24
    status_name = "TW_ERR_RATE_LIMITED"


class ServerError(Error):
    """HTTP 5xx from the token endpoint after retries."""

    status = 25
    status_name = "TW_ERR_SERVER"


class BadResponseError(Error):
    """The token response was malformed (not JSON, no access_token, too large)."""

    status = 26
    status_name = "TW_ERR_BAD_RESPONSE"


class UnauthorizedError(Error):
    """The API answered 401 again after one token refresh."""

    status = 30
    status_name = "TW_ERR_UNAUTHORIZED"


class ForbiddenError(Error):
    """The API answered 403."""

    status = 31
    status_name = "TW_ERR_FORBIDDEN"


class ForeignOriginError(InvalidArgumentError):
    """The request URL's origin is not one of the configured ``api_base_urls``: nothing was
    sent and no header was handed out for it. An :class:`InvalidArgumentError` too."""

    status = 32
    status_name = "TW_ERR_FOREIGN_ORIGIN"


class PanicError(Error):
    """A Rust panic was caught at the native boundary (a tokenward bug; please report it)."""

    status = 99
    status_name = "TW_ERR_PANIC"


class ClosedError(Error):
    """The client was used after :meth:`tokenward.Client.close`."""

    status = None
    status_name = "CLOSED"


_BY_STATUS: Dict[int, Type[Error]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        ConfigError,
        NetworkError,
        TimeoutError,
        TlsError,
        InvalidClientError,
        InvalidScopeError,
        UnauthorizedClientError,
        OAuthError,
        RateLimitedError,
        ServerError,
        BadResponseError,
        UnauthorizedError,
        ForbiddenError,
        ForeignOriginError,
        PanicError,
    )
    if cls.status is not None
}


def error_class(status: int) -> Type[Error]:
    """The exception class for a native status; :class:`Error` for one this version does not know."""
    return _BY_STATUS.get(status, Error)
