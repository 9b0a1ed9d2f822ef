"""Python values to the bytes the C ABI takes, and header text back to a dict.

Strings cross as NUL-terminated UTF-8. What would change the meaning of a value on its
way through C (a NUL cutting it short) is refused here with
:class:`~tokenward.InvalidArgumentError`; everything else (header names and values
included) is left for the core to validate, so every language gets the same answer.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._errors import InvalidArgumentError

__all__ = ["Body", "body_bytes", "c_string", "describe_url", "encode", "header_pairs", "json_default", "parse_headers"]

#: What :meth:`Client.request` accepts as a body; ``str`` is sent as UTF-8.
Body = Union[bytes, bytearray, memoryview, str]


def encode(text: str) -> bytes:
    """UTF-8 for a native string argument.

    Lone surrogates pass through as the invalid UTF-8 they are: the core reports them
    as an InvalidArgumentError like any other bad input.
    """
    return text.encode("utf-8", "surrogatepass")


def parse_headers(text: str) -> Dict[str, str]:
    """``"Name: value\\r\\n"`` lines (as ``tw_client_headers`` and
    ``tw_client_headers_for`` write them) to a dict."""
    headers: Dict[str, str] = {}
    for line in text.split("\r\n"):
        if line:
            name, _, value = line.partition(":")
            headers[name] = value.strip(" ")
    return headers


def header_pairs(headers: Mapping[str, str]) -> List[Tuple[bytes, bytes]]:
    """Name/value pairs for ``tw_client_send_pairs``; the core validates them.

    Only NUL is refused here: a C string ends at it, so the core would see a shorter name
    or value than the caller wrote.
    """
    pairs: List[Tuple[bytes, bytes]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("tokenward: request header names and values must be str.")
        if "\0" in name or "\0" in value:
            raise InvalidArgumentError(
                f"tokenward: request header {name!r} contains NUL; the request was not sent."
            )
        pairs.append((encode(name), encode(value)))
    return pairs


def c_string(text: str, what: str) -> bytes:
    """A request's method or URL as a C string; a NUL would silently cut it short."""
    if not isinstance(text, str):
        raise TypeError(f"tokenward: the request {what} must be a str.")
    if "\0" in text:
        raise InvalidArgumentError(f"tokenward: the request {what} contains NUL; the request was not sent.")
    return encode(text)


def body_bytes(body: Optional[Body]) -> Optional[bytes]:
    """A request body as bytes (``str`` as UTF-8); ``None`` stays ``None``."""
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError("tokenward: the request body must be bytes, bytearray, memoryview or str.")


def json_default(value: Any) -> Any:
    """``json.dumps`` hook for configuration values: paths and sets."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"a {type(value).__name__} is not JSON-serializable")


def describe_url(url: Any) -> Optional[str]:
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
