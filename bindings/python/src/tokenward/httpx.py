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

    With DPoP (``dpop`` configured) every request, the re-send included, carries
    ``Authorization: DPoP <token>`` and a ``DPoP`` proof made for its own method and URL;
    when the API asks for a DPoP nonce (``WWW-Authenticate: DPoP error="use_dpop_nonce"``)
    the core keeps the token and the re-send carries the nonce.

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
            # Authorization and a DPoP proof are made for this request: always replaced
            # (the re-sent request still carries the first ones; a proof is good only once).
            if name.lower() in ("authorization", "dpop"):
                request.headers[name] = value
            elif name not in request.headers:
                request.headers[name] = value

    def _headers(self, request: _httpx.Request) -> Dict[str, str]:
        return self.client.headers_for(request.method, str(request.url))

    def auth_flow(self, request: _httpx.Request) -> Generator[_httpx.Request, _httpx.Response, None]:
        self._apply(request, self._headers(request))
        response = yield request
        # The request that got this answer: after redirects httpx followed, the last one
        # (re-sent as such: a DPoP proof is bound to its URL).
        sent = response.request
        authorization = sent.headers.get("Authorization")
        if authorization is None:
            return
        body = response.read() if _json_200(response) else None
        if not self.client._recover(
            str(sent.url), authorization, response.status_code, response.headers.multi_items(), body
        ):
            return
        self._apply(sent, self._headers(sent))
        yield sent

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
        sent = response.request
        authorization = sent.headers.get("Authorization")
        if authorization is None:
            return
        body = await response.aread() if _json_200(response) else None
        status = response.status_code
        url = str(sent.url)
        answer = response.headers.multi_items()
        if self.client._cached_headers() is not None:
            # The token is still memoized, so the core has it cached: no fetch, no wait.
            resend = self.client._recover(url, authorization, status, answer, body)
        else:
            resend = await _in_thread(
                lambda: self.client._recover(url, authorization, status, answer, body)
            )
        if not resend:
            return
        self._apply(sent, await _in_thread(lambda: self._headers(sent)))
        yield sent


_T = TypeVar("_T")


async def _in_thread(function: Callable[[], _T]) -> _T:
    import anyio.to_thread  # httpx's own dependency; works under asyncio and trio

    return await anyio.to_thread.run_sync(function)
