"""tokenward for `httpx <https://www.python-httpx.org>`_ (an optional dependency).

::

    import httpx
    import tokenward
    from tokenward.httpx import BearerAuth

    client = tokenward.Client.from_env("API_")
    with httpx.Client(auth=BearerAuth(client)) as http:
        items = http.get("https://api.example.com/api/items").json()

The same object works with ``httpx.AsyncClient``: there, a call that has to reach the
native core (a token fetch) runs in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

from typing import AsyncGenerator, Callable, Dict, Generator, Optional, TypeVar

try:
    import httpx as _httpx
except ImportError as exc:  # pragma: no cover - exercised only without httpx
    raise ImportError("tokenward.httpx needs the 'httpx' package: pip install httpx") from exc

from ._client import Client

__all__ = ["BearerAuth"]


def _sent_token(request: _httpx.Request) -> Optional[str]:
    value = request.headers.get("Authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


class BearerAuth(_httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` and the client's static headers to every
    request; on a 401 invalidates exactly the token that request carried and re-sends it
    once with a fresh token. A second 401 is returned to the caller as is.

    A static header (e.g. ``tenant-code``) the request already carries is left as the
    caller set it. The request body is read up front so it can be re-sent intact.
    """

    requires_request_body = True

    def __init__(self, client: Client) -> None:
        self.client = client

    @staticmethod
    def _apply(request: _httpx.Request, headers: Dict[str, str]) -> None:
        for name, value in headers.items():
            if name.lower() == "authorization":
                request.headers[name] = value
            elif name not in request.headers:
                request.headers[name] = value

    def auth_flow(self, request: _httpx.Request) -> Generator[_httpx.Request, _httpx.Response, None]:
        self._apply(request, self.client.headers())
        response = yield request
        token = _sent_token(request)
        if response.status_code != 401 or token is None:
            return
        self.client.invalidate(token)
        request.headers["Authorization"] = self.client.authorization()
        yield request

    async def async_auth_flow(
        self, request: _httpx.Request
    ) -> AsyncGenerator[_httpx.Request, _httpx.Response]:
        if self.requires_request_body:
            await request.aread()
        headers = self.client._cached_headers()
        if headers is None:
            headers = await _in_thread(self.client.headers)
        self._apply(request, headers)
        response = yield request
        token = _sent_token(request)
        if response.status_code != 401 or token is None:
            return
        self.client.invalidate(token)
        request.headers["Authorization"] = await _in_thread(self.client.authorization)
        yield request


_T = TypeVar("_T")


async def _in_thread(function: Callable[[], _T]) -> _T:
    import anyio.to_thread  # httpx's own dependency; works under asyncio and trio

    return await anyio.to_thread.run_sync(function)
