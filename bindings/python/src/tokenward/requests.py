"""tokenward for `requests <https://requests.readthedocs.io>`_ (an optional dependency).

::

    import requests
    import tokenward
    from tokenward.requests import BearerAuth

    client = tokenward.Client.from_env("API_")
    session = requests.Session()
    session.auth = BearerAuth(client)
    items = session.get("https://api.example.com/api/items").json()
"""

from __future__ import annotations

from typing import Any, Optional

try:
    import requests as _requests
    from requests.auth import AuthBase
    from requests.cookies import extract_cookies_to_jar
except ImportError as exc:  # pragma: no cover - exercised only without requests
    raise ImportError(
        "tokenward.requests needs the 'requests' package: pip install requests"
    ) from exc

from ._client import Client

__all__ = ["BearerAuth"]

# Marks a request this auth has already re-sent once, so a second rejection is returned.
_RETRIED = "_tokenward_retried"
# Where a file-like body started, so the retry can rewind it.
_BODY_POSITION = "_tokenward_body_position"


def _sent_authorization(request: _requests.PreparedRequest) -> Optional[str]:
    value = request.headers.get("Authorization")
    if not value:
        return None
    if isinstance(value, bytes):  # a caller may set header values as bytes
        value = value.decode("latin-1")
    return value


def _json_200(response: _requests.Response) -> bool:
    """A 200 with a JSON body: the only answer whose body can carry a GraphQL
    ``UNAUTHENTICATED`` error for the core to recognise."""
    return response.status_code == 200 and "json" in response.headers.get("Content-Type", "").lower()


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` and the client's static headers to every
    request whose URL the client allows (:meth:`tokenward.Client.headers_for`: with
    ``api_base_urls`` configured, a request to another origin raises
    :class:`tokenward.ForeignOriginError` before it is sent).

    When the answer rejects the token — a 401, or with ``graphql_auth_errors`` a GraphQL
    ``UNAUTHENTICATED`` error in a JSON 200 (not recognised on ``stream=True`` requests,
    whose body is not read here) — the core invalidates exactly that token and the request
    is re-sent once with fresh headers; a second rejection is returned to the caller as is.
    If the API already rejected a token issued just before, the core refuses another
    refresh and :class:`tokenward.UnauthorizedError` is raised (no refresh storm).

    A static header (e.g. ``tenant-code``) the request already carries is left as the
    caller set it. A streamed body that cannot be rewound (a generator) is not re-sent:
    the answer is returned. Redirects are followed by ``requests`` itself, which drops
    ``Authorization`` on another host but keeps the other headers.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def __call__(self, request: _requests.PreparedRequest) -> _requests.PreparedRequest:
        self._apply(request, self.client.headers_for(request.method or "GET", request.url or ""))
        body = request.body
        if body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                setattr(request, _BODY_POSITION, body.tell())
            except (OSError, ValueError):
                setattr(request, _BODY_POSITION, None)
        request.register_hook("response", self._handle_rejection)
        return request

    @staticmethod
    def _apply(request: _requests.PreparedRequest, headers: "dict[str, str]") -> None:
        for name, value in headers.items():
            if name.lower() == "authorization":
                request.headers[name] = value
            else:
                request.headers.setdefault(name, value)

    def _handle_rejection(self, response: _requests.Response, **kwargs: Any) -> _requests.Response:
        request = response.request
        if getattr(request, _RETRIED, False):
            return response
        authorization = _sent_authorization(request)
        if authorization is None:
            # Not our header (e.g. stripped on a cross-origin redirect): nothing to refresh.
            return response
        answer = response.content if _json_200(response) and not kwargs.get("stream") else None
        if not self.client._recover(authorization, response.status_code, answer):
            return response
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            position = getattr(request, _BODY_POSITION, None)
            seek = getattr(body, "seek", None)
            if position is None or seek is None:
                return response
            seek(position)

        # As requests' HTTPDigestAuth does: drain and release the connection, then re-send
        # a copy carrying the cookies the answer set.
        response.content  # noqa: B018 - reading it releases the connection
        response.close()
        retry = request.copy()
        if retry._cookies is not None:
            extract_cookies_to_jar(retry._cookies, request, response.raw)
            retry.prepare_cookies(retry._cookies)
        self._apply(retry, self.client.headers_for(retry.method or "GET", retry.url or ""))
        setattr(retry, _RETRIED, True)

        new_response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
