"""tokenward: OAuth 2.0 client-credentials tokens done once, correctly.

Fetching, caching, refresh-ahead, single-flight and header injection all happen in the
native tokenward library; this package loads it with ctypes::

    import tokenward

    with tokenward.Client(
        token_url="https://login.example.com/oauth/token",
        client_id="my-service",
        client_secret_env="MY_SERVICE_SECRET",
        scope="EventsApi",
        headers={"tenant-code": "T1", "api-version": "2"},
    ) as client:
        headers = client.headers()  # {"Authorization": "Bearer ...", "tenant-code": "T1", ...}

``tokenward.requests.BearerAuth`` and ``tokenward.httpx.BearerAuth`` plug a client into
those HTTP libraries (which stay optional); :meth:`Client.request` sends a request through
the core's own transport for code that has no HTTP client.

The native library is the one bundled inside the package by ``pip install``, unless the
``TOKENWARD_LIBRARY`` environment variable names another file.
"""

from __future__ import annotations

from . import _native
from ._client import Body, Client, EventCallback
from ._errors import (
    BadResponseError,
    ClosedError,
    ConfigError,
    Error,
    ForbiddenError,
    ForeignOriginError,
    InvalidArgumentError,
    InvalidClientError,
    InvalidScopeError,
    NetworkError,
    OAuthError,
    PanicError,
    RateLimitedError,
    ServerError,
    TimeoutError,
    TlsError,
    UnauthorizedClientError,
    UnauthorizedError,
)
from ._response import Response

__version__ = "0.1.0"

__all__ = [
    "BadResponseError",
    "Body",
    "Client",
    "ClosedError",
    "ConfigError",
    "Error",
    "EventCallback",
    "ForbiddenError",
    "ForeignOriginError",
    "InvalidArgumentError",
    "InvalidClientError",
    "InvalidScopeError",
    "NetworkError",
    "OAuthError",
    "PanicError",
    "RateLimitedError",
    "Response",
    "ServerError",
    "TimeoutError",
    "TlsError",
    "UnauthorizedClientError",
    "UnauthorizedError",
    "library_path",
    "native_version",
]

#: The file the native library was loaded from.
library_path: str = _native.library_path


def native_version() -> str:
    """The version of the loaded native library, e.g. ``"0.1.0"``."""
    return _native.version()
