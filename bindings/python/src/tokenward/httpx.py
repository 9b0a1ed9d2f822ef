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

from typing import AsyncGenerator, Callable, Dict, Generator, TypeVar

try:
    import httpx as _httpx
except ImportError as exc:  # pragma: no cover - exercised only without httpx
    raise ImportError("tokenward.httpx needs the 'httpx' package: pip install httpx") from exc

from ._client import Client

__all__ = ["BearerAuth"]


def _json_200(response: _httpx.Response) -> bool:
    """A 200 with a JSON body: the only answer whose body can carry a GraphQL
    ``UNAUTHENTICATED`` error for the core to recognise."""
    return response.status_code == 200 and "json" in response.headers.get("Content-Type", "").lower()


class BearerAuth(_httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` and the client's static headers to every
    request whose URL the client allows (:meth:`tokenward.Client.headers_for`: with
    ``api_base_urls`` configured, a request to another origin raises
    :class:`tokenward.ForeignOriginError` before it is sent).

    When the answer rejects the token — a 401, or with ``graphql_auth_errors`` a GraphQL
    ``UNAUTHENTICATED`` error in a JSON 200 (whose body is therefore read before it is
    returned) — the core invalidates exactly that token and the request is re-sent once
    with fresh headers; a second rejection is returned to the caller as is. If the API
    already rejected a token issued just before, the core refuses another refresh and
    :class:`tokenward.UnauthorizedError` is raised (no refresh storm).

    A static header (e.g. ``tenant-code``) the request already carries is left as the
    caller set it. The request body is read up front so it can be re-sent intact.
    Redirects are followed by httpx itself, which drops ``Authorization`` on another
    origin but keeps the other headers.
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

    def _headers(self, request: _httpx.Request) -> Dict[str, str]:
        return self.client.headers_for(request.method, str(request.url))

    def auth_flow(self, request: _httpx.Request) -> Generator[_httpx.Request, _httpx.Response, None]:
        self._apply(request, self._headers(request))
        response = yield request
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return
        body = response.read() if _json_200(response) else None
        if not self.client._recover(authorization, response.status_code, body):
            return
        self._apply(request, self._headers(request))
        yield request

    async def async_auth_flow(
        self, request: _httpx.Request
    ) -> AsyncGenerator[_httpx.Request, _httpx.Response]:
        if self.requires_request_body:
            await request.aread()
        # A memoized token means the core answers at once; otherwise it may fetch, which
        # must not block the event loop.
        if self.client._cached_headers() is not None:
            headers = self._headers(request)
        else:
            headers = await _in_thread(lambda: self._headers(request))
        self._apply(request, headers)
        response = yield request
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return
        body = await response.aread() if _json_200(response) else None
        status = response.status_code
        if self.client._cached_headers() is not None:
            # The token is still memoized, so the core has it cached: no fetch, no wait.
            resend = self.client._recover(authorization, status, body)
        else:
            resend = await _in_thread(lambda: self.client._recover(authorization, status, body))
        if not resend:
            return
        self._apply(request, await _in_thread(lambda: self._headers(request)))
        yield request


_T = TypeVar("_T")


async def _in_thread(function: Callable[[], _T]) -> _T:
    import anyio.to_thread  # httpx's own dependency; works under asyncio and trio

    return await anyio.to_thread.run_sync(function)
