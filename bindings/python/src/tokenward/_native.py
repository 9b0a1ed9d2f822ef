"""The native library: located once at import, every function declared once.

This is the only module that touches ctypes types. The rest of the package calls the
helpers below (:func:`check`, :func:`read_string`) and the declared functions on
:data:`lib`, passing plain ints (handles), bytes and ctypes callback objects.

``ctypes.CDLL`` releases the GIL for the duration of every call, so a call that blocks on
the network (a token fetch) never stalls other Python threads.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint16,
    c_uint64,
    c_void_p,
    create_string_buffer,
)
from typing import Callable, Optional, Sequence, Tuple

from ._errors import Error, error_class

__all__ = [
    "ABI_VERSION",
    "EVENT_FN",
    "NO_EVENT_FN",
    "check",
    "lib",
    "library_path",
    "read_string",
    "read_token_cacheable",
    "send",
]

ABI_VERSION = 1

TW_OK = 0
TW_ERR_BUFFER_TOO_SMALL = 3

_ENV_VAR = "TOKENWARD_LIBRARY"

if sys.platform == "darwin":
    _FILE_NAME = "libtokenward.dylib"
elif sys.platform == "win32":
    _FILE_NAME = "tokenward.dll"
else:
    _FILE_NAME = "libtokenward.so"


def _locate() -> str:
    """``$TOKENWARD_LIBRARY`` if set, else the library bundled inside the package."""
    override = os.environ.get(_ENV_VAR)
    if override:
        if not os.path.isfile(override):
            raise ImportError(
                f"tokenward: {_ENV_VAR} is set to {override!r}, but no file exists there. "
                f"Point it at a built {_FILE_NAME} (cargo build --release --lib, in the "
                f"tokenward repository, writes target/release/{_FILE_NAME}) or unset it to "
                f"use the library bundled with the package."
            )
        return os.path.abspath(override)
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), _FILE_NAME)
    if os.path.isfile(bundled):
        return bundled
    raise ImportError(
        f"tokenward: the native library {_FILE_NAME} was not found next to the package "
        f"({bundled}) and {_ENV_VAR} is not set. Install the package with "
        f"`pip install ./bindings/python` from the tokenward repository (it builds the "
        f"library with cargo and bundles it), or build it yourself with "
        f"`cargo build --release --lib` and set {_ENV_VAR}=/path/to/target/release/{_FILE_NAME}."
    )


def _load(path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(path)
    except OSError as exc:
        raise ImportError(
            f"tokenward: cannot load the native library {path}: {exc}. Rebuild it with "
            f"`cargo build --release --lib` for this platform, or set {_ENV_VAR} to a "
            f"working copy."
        ) from exc


library_path: str = _locate()
lib: ctypes.CDLL = _load(library_path)


class _Event(Structure):
    _fields_ = [
        ("kind", c_int32),
        ("kind_name", c_char_p),
        ("message", c_char_p),
    ]


#: ``void (*tw_event_fn)(void *user_data, const tw_event *event)``.
EVENT_FN = CFUNCTYPE(None, c_void_p, POINTER(_Event))
#: The NULL callback, which unregisters (ctypes does not accept None for a CFUNCTYPE argument).
NO_EVENT_FN = EVENT_FN()

_client_p = c_void_p
_response_p = c_void_p
_size_p = POINTER(c_size_t)


def _declare(name: str, restype: object, argtypes: list) -> None:
    try:
        fn = getattr(lib, name)
    except AttributeError as exc:
        raise ImportError(
            f"tokenward: {library_path} does not export {name}; it is not a tokenward "
            f"library of C ABI version {ABI_VERSION}. Rebuild it from the same tokenward "
            f"release as this package."
        ) from exc
    fn.restype = restype
    fn.argtypes = argtypes


_declare("tw_version", c_char_p, [])
_declare("tw_status_name", c_char_p, [c_int32])
_declare("tw_last_error", c_char_p, [])
_declare("tw_client_new", c_int32, [c_char_p, POINTER(_client_p)])
_declare("tw_client_from_env", c_int32, [c_char_p, POINTER(_client_p)])
_declare("tw_client_free", None, [_client_p])
_declare("tw_client_token", c_int32, [_client_p, c_char_p, c_size_t, _size_p])
_declare(
    "tw_client_token_cacheable",
    c_int32,
    [_client_p, c_char_p, c_size_t, _size_p, POINTER(c_uint64)],
)
_declare("tw_client_authorization", c_int32, [_client_p, c_char_p, c_size_t, _size_p])
_declare("tw_client_headers", c_int32, [_client_p, c_char_p, c_size_t, _size_p])
_declare("tw_client_invalidate", c_int32, [_client_p, c_char_p])
_declare("tw_client_set_client_secret", c_int32, [_client_p, c_char_p])
_declare("tw_client_stats", c_int32, [_client_p, c_char_p, c_size_t, _size_p])
_declare("tw_client_set_event_callback", c_int32, [_client_p, EVENT_FN, c_void_p])
# `body` is `const uint8_t *`; c_char_p passes a bytes object's buffer as is (embedded NULs
# included: the length travels separately).
_declare(
    "tw_client_send",
    c_int32,
    [_client_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t, POINTER(_response_p)],
)
_declare(
    "tw_client_send_pairs",
    c_int32,
    [
        _client_p,
        c_char_p,
        c_char_p,
        POINTER(c_char_p),
        POINTER(c_char_p),
        c_size_t,
        c_char_p,
        c_size_t,
        POINTER(_response_p),
    ],
)
_declare(
    "tw_client_headers_for",
    c_int32,
    [_client_p, c_char_p, c_char_p, c_char_p, c_size_t, _size_p],
)
_declare(
    "tw_client_recover",
    c_int32,
    [_client_p, c_char_p, c_uint16, c_char_p, c_size_t, POINTER(c_int)],
)
_declare("tw_response_status", c_uint16, [_response_p])
_declare("tw_response_body", c_void_p, [_response_p, _size_p])
_declare("tw_response_header", c_int32, [_response_p, c_char_p, c_char_p, c_size_t, _size_p])
_declare("tw_response_free", None, [_response_p])


def version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    return lib.tw_version().decode("ascii", "replace")


def status_name(status: int) -> str:
    """The native name of a status, e.g. ``"TW_ERR_TIMEOUT"``."""
    return lib.tw_status_name(status).decode("ascii", "replace")


def check(status: int) -> None:
    """Raise the exception for a native status; return for ``TW_OK``.

    Must run on the thread that made the failed call, before any other ``tw_`` call on it:
    the message comes from the thread-local ``tw_last_error``.
    """
    if status == TW_OK:
        return
    message = lib.tw_last_error().decode("utf-8", "replace")
    name = status_name(status)
    if not message:
        message = f"tokenward call failed with {name}."
    raise error_class(status)(message, status, name)


# Fits a typical JWT, and the header block around it, in one call.
_INITIAL_CAPACITY = 2048

_Reader = Callable[..., int]


def read_string(fn: _Reader, *args: object) -> str:
    """Call ``fn(*args, buf, cap, &len)`` under the buffer protocol and return the text.

    A too-small buffer is grown to the reported size and the call retried; the value may
    change in between (a refresh), so this loops until it fits.
    """
    text = _read(fn, *args)
    return "" if text is None else text


def _read(fn: _Reader, *args: object) -> Optional[str]:
    """:func:`read_string`, but ``None`` when the call reports ``*len == 0`` (no value at
    all, as opposed to an empty one, whose length is 1 for the NUL)."""
    capacity = _INITIAL_CAPACITY
    needed = c_size_t(0)
    while True:
        buf = create_string_buffer(capacity)
        status = fn(*args, buf, capacity, byref(needed))
        if status == TW_ERR_BUFFER_TOO_SMALL and needed.value > capacity:
            capacity = needed.value
            continue
        check(status)
        if needed.value == 0:
            return None
        # `needed` counts the NUL.
        return buf.raw[: needed.value - 1].decode("utf-8", "replace")


def read_token_cacheable(handle: int) -> Tuple[str, int]:
    """``tw_client_token_cacheable``: the token and for how many ns it may be reused."""
    capacity = _INITIAL_CAPACITY
    needed = c_size_t(0)
    reusable = c_uint64(0)
    fn = lib.tw_client_token_cacheable
    while True:
        buf = create_string_buffer(capacity)
        status = fn(handle, buf, capacity, byref(needed), byref(reusable))
        if status == TW_ERR_BUFFER_TOO_SMALL and needed.value > capacity:
            capacity = needed.value
            continue
        check(status)
        return buf.raw[: max(needed.value - 1, 0)].decode("utf-8"), reusable.value


def send(
    handle: int,
    method: bytes,
    url: bytes,
    headers: Sequence[Tuple[bytes, bytes]],
    body: Optional[bytes],
) -> Tuple[int, int, bytes]:
    """``tw_client_send_pairs``: (response handle, HTTP status, body copy). The core checks
    every header pair; no header text is built here.

    The caller owns the returned response handle and must pass it to
    :func:`free_response`; if copying out the status or body fails, it is freed here.
    """
    out = _response_p()
    length = 0 if body is None else len(body)
    count = len(headers)
    names = (c_char_p * count)(*(name for name, _ in headers))
    values = (c_char_p * count)(*(value for _, value in headers))
    check(lib.tw_client_send_pairs(handle, method, url, names, values, count, body, length, byref(out)))
    response = out.value
    if not response:
        raise Error("tokenward: the native library returned TW_OK without a response.")
    try:
        status = lib.tw_response_status(response)
        size = c_size_t(0)
        pointer = lib.tw_response_body(response, byref(size))
        data = ctypes.string_at(pointer, size.value) if pointer and size.value else b""
    except BaseException:
        lib.tw_response_free(response)
        raise
    return response, status, data


def recover(handle: int, authorization: bytes, status: int, body: Optional[bytes]) -> bool:
    """``tw_client_recover``: whether to re-send after this answer (the token it carried was
    rejected and invalidated). Raises :class:`UnauthorizedError` when the core refuses a
    re-send (the API rejects freshly issued tokens)."""
    resend = c_int(0)
    length = 0 if body is None else len(body)
    check(lib.tw_client_recover(handle, authorization, status, body, length, byref(resend)))
    return bool(resend.value)


def response_header(response: int, name: bytes) -> Optional[str]:
    """``tw_response_header``: the value, or ``None`` when the response lacks the header."""
    return _read(lib.tw_response_header, response, name)


def free_response(response: int) -> None:
    """``tw_response_free``."""
    lib.tw_response_free(response)


def new_client(config_json: bytes) -> int:
    """``tw_client_new``; returns the handle as an int."""
    out = _client_p()
    check(lib.tw_client_new(config_json, byref(out)))
    return _handle_value(out)


def client_from_env(prefix: Optional[bytes]) -> int:
    """``tw_client_from_env``; returns the handle as an int."""
    out = _client_p()
    check(lib.tw_client_from_env(prefix, byref(out)))
    return _handle_value(out)


def _handle_value(out: c_void_p) -> int:
    if not out.value:
        raise Error("tokenward: the native library returned TW_OK without a client handle.")
    return out.value


def event_fields(event: object) -> Tuple[int, str, str]:
    """(kind, kind name, message) out of the ``const tw_event *`` a callback received."""
    contents = event.contents  # type: ignore[attr-defined]
    name = contents.kind_name
    message = contents.message
    return (
        contents.kind,
        name.decode("ascii", "replace") if name else "unknown",
        message.decode("utf-8", "replace") if message else "",
    )
