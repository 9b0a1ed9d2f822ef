"""The native library: located once at import, every function declared once.

This is the only module that touches ctypes types. The rest of the package calls the
typed functions below, passing handles (:data:`ClientHandle`, :data:`ResponseHandle`:
pointers to distinct opaque types), bytes and ctypes callback objects.

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
    c_uint8,
    c_uint16,
    c_uint64,
    c_void_p,
    create_string_buffer,
)
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._errors import Error, error_class

__all__ = [
    "ABI_VERSION",
    "DECLARATIONS",
    "EVENT_FN",
    "ClientHandle",
    "EventPointer",
    "ResponseHandle",
    "check",
    "client_from_env",
    "client_headers",
    "client_stats",
    "event_fields",
    "free_client",
    "free_response",
    "headers_for",
    "invalidate",
    "lib",
    "library_path",
    "new_client",
    "read_token_window",
    "recover",
    "response_header",
    "send",
    "set_client_secret",
    "set_event_callback",
    "status_name",
    "version",
]

#: The C ABI version (``TW_ABI_VERSION`` of include/tokenward.h) these declarations are
#: written for; the loaded library must report the same from ``tw_abi_version()``.
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


def _check_abi(library: ctypes.CDLL, path: str) -> None:
    """Refuse a library of another C ABI version before any other symbol is looked up,
    so a mismatch is reported as such rather than as a missing symbol or a crash."""
    try:
        abi_version = library.tw_abi_version
    except AttributeError:
        raise ImportError(
            f"tokenward: the native library {path} does not export tw_abi_version, so it "
            f"predates C ABI version checks; this package is written for C ABI version "
            f"{ABI_VERSION}. Rebuild the library from the same tokenward release as this "
            f"package (cargo build --release --lib), or point {_ENV_VAR} at one that matches."
        ) from None
    abi_version.restype = c_int32
    abi_version.argtypes = []
    found = abi_version()
    if found != ABI_VERSION:
        raise ImportError(
            f"tokenward: the native library {path} has C ABI version {found}, but this "
            f"package is written for C ABI version {ABI_VERSION}. Rebuild the library from "
            f"the same tokenward release as this package (cargo build --release --lib), or "
            f"point {_ENV_VAR} at one that matches."
        )


library_path: str = _locate()
lib: ctypes.CDLL = _load(library_path)
_check_abi(lib, library_path)


class tw_event(Structure):  # noqa: N801
    """``struct tw_event``, as a callback receives it (pointers valid only during it)."""

    _fields_ = [
        ("kind", c_int32),
        ("kind_name", c_char_p),
        ("message", c_char_p),
    ]


class tw_client(Structure):  # noqa: N801 - the C name, shown in ctypes' type errors
    """The opaque ``struct tw_client``: never built in Python, only pointed to."""


class tw_response(Structure):  # noqa: N801
    """The opaque ``struct tw_response``: never built in Python, only pointed to."""


class tw_diagnosis(Structure):  # noqa: N801
    """The opaque ``struct tw_diagnosis``: never built in Python, only pointed to."""


# Each handle is a pointer to its own opaque type, so ctypes itself refuses a response
# (or an int, or a c_void_p) where a client belongs, instead of the core reading one
# object as another.
if TYPE_CHECKING:
    from _ctypes import CFuncPtr

    ClientHandle = ctypes._Pointer[tw_client]
    ResponseHandle = ctypes._Pointer[tw_response]
    DiagnosisHandle = ctypes._Pointer[tw_diagnosis]
    EventPointer = ctypes._Pointer[tw_event]
else:
    ClientHandle = POINTER(tw_client)
    ResponseHandle = POINTER(tw_response)
    DiagnosisHandle = POINTER(tw_diagnosis)
    EventPointer = POINTER(tw_event)

#: ``void (*tw_event_fn)(void *user_data, const tw_event *event)``.
EVENT_FN = CFUNCTYPE(None, c_void_p, EventPointer)
#: The NULL callback, which unregisters (ctypes does not accept None for a CFUNCTYPE argument).
NO_EVENT_FN = EVENT_FN()

_size_p = POINTER(c_size_t)
_u64_p = POINTER(c_uint64)
_strings = POINTER(c_char_p)

#: Every native function this package calls: name -> (restype, argtypes). Declared on
#: :data:`lib` at import; the header drift test compares this table with the C header.
DECLARATIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "tw_version": (c_char_p, []),
    "tw_abi_version": (c_int32, []),
    "tw_status_name": (c_char_p, [c_int32]),
    "tw_last_error": (c_char_p, []),
    "tw_client_new": (c_int32, [c_char_p, POINTER(ClientHandle)]),
    "tw_client_from_env": (c_int32, [c_char_p, POINTER(ClientHandle)]),
    "tw_client_free": (None, [ClientHandle]),
    "tw_client_token_window": (
        c_int32,
        [ClientHandle, c_char_p, c_size_t, _size_p, _u64_p, _u64_p],
    ),
    "tw_client_headers": (c_int32, [ClientHandle, c_char_p, c_size_t, _size_p]),
    "tw_client_headers_for": (
        c_int32,
        [ClientHandle, c_char_p, c_char_p, c_char_p, c_size_t, _size_p],
    ),
    # `body` is `const uint8_t *`; c_char_p passes a bytes object's buffer as is (embedded
    # NULs included: the length travels separately).
    "tw_client_recover": (
        c_int32,
        [ClientHandle, c_char_p, c_uint16, c_char_p, c_size_t, POINTER(c_int)],
    ),
    "tw_client_invalidate": (c_int32, [ClientHandle, c_char_p]),
    "tw_client_set_client_secret": (c_int32, [ClientHandle, c_char_p]),
    "tw_client_stats": (c_int32, [ClientHandle, c_char_p, c_size_t, _size_p]),
    "tw_client_set_event_callback": (c_int32, [ClientHandle, EVENT_FN, c_void_p]),
    # Header names and values travel as two arrays of C strings, one pair per index, so
    # no header text is built (or split) on the way. `body` as for tw_client_recover.
    "tw_client_send_pairs": (
        c_int32,
        [
            ClientHandle,
            c_char_p,
            c_char_p,
            _strings,
            _strings,
            c_size_t,
            c_char_p,
            c_size_t,
            POINTER(ResponseHandle),
        ],
    ),
    "tw_response_status": (c_uint16, [ResponseHandle]),
    "tw_response_body": (POINTER(c_uint8), [ResponseHandle, _size_p]),
    "tw_response_header": (c_int32, [ResponseHandle, c_char_p, c_char_p, c_size_t, _size_p]),
    "tw_response_free": (None, [ResponseHandle]),
    "tw_client_health": (c_int32, [ClientHandle, c_char_p, c_size_t, _size_p]),
    "tw_client_diagnose": (c_int32, [ClientHandle, c_char_p, POINTER(DiagnosisHandle)]),
    "tw_diagnosis_json": (c_int32, [DiagnosisHandle, c_char_p, c_size_t, _size_p]),
    "tw_diagnosis_free": (None, [DiagnosisHandle]),
}


def _declare(name: str, restype: Any, argtypes: List[Any]) -> None:
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


for _name, (_restype, _argtypes) in DECLARATIONS.items():
    _declare(_name, _restype, _argtypes)
del _name, _restype, _argtypes


def version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    return _text(lib.tw_version(), "ascii")


def status_name(status: int) -> str:
    """The native name of a status, e.g. ``"TW_ERR_TIMEOUT"``."""
    return _text(lib.tw_status_name(status), "ascii")


def _text(value: Optional[bytes], encoding: str = "utf-8") -> str:
    return "" if value is None else value.decode(encoding, "replace")


def check(status: int) -> None:
    """Raise the exception for a native status; return for ``TW_OK``.

    Must run on the thread that made the failed call, before any other ``tw_`` call on it:
    the message comes from the thread-local ``tw_last_error``.
    """
    if status == TW_OK:
        return
    message = _text(lib.tw_last_error())
    name = status_name(status)
    if not message:
        message = f"tokenward call failed with {name}."
    raise error_class(status)(message, status, name)


# Fits a typical JWT, and the header block around it, in one call.
_INITIAL_CAPACITY = 2048


def _read(fn: Callable[..., int], *args: object) -> Optional[str]:
    """Call ``fn(*args, buf, cap, &len)`` under the buffer protocol and return the text;
    ``None`` when the call reports ``*len == 0`` (no value at all, as opposed to an empty
    one, whose length is 1 for the NUL).

    A too-small buffer is grown to the reported size and the call retried; the value may
    change in between (a refresh), so this loops until it fits.
    """
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


def read_token_window(handle: ClientHandle) -> Tuple[str, int, int]:
    """``tw_client_token_window``: the token, and for how many ns it stays fresh and usable."""
    capacity = _INITIAL_CAPACITY
    needed = c_size_t(0)
    fresh = c_uint64(0)
    usable = c_uint64(0)
    fn = lib.tw_client_token_window
    while True:
        buf = create_string_buffer(capacity)
        status = fn(handle, buf, capacity, byref(needed), byref(fresh), byref(usable))
        if status == TW_ERR_BUFFER_TOO_SMALL and needed.value > capacity:
            capacity = needed.value
            continue
        check(status)
        return buf.raw[: max(needed.value - 1, 0)].decode("utf-8"), fresh.value, usable.value


def client_headers(handle: ClientHandle) -> str:
    """``tw_client_headers``: ``"Name: value\r\n"`` lines, Authorization first."""
    return _read(lib.tw_client_headers, handle) or ""


def headers_for(handle: ClientHandle, method: bytes, url: bytes) -> str:
    """``tw_client_headers_for``: the ``"Name: value\r\n"`` lines for one request to
    ``url``, Authorization first; raises :class:`ForeignOriginError` for a URL the client
    may not send them to."""
    return _read(lib.tw_client_headers_for, handle, method, url) or ""


def client_stats(handle: ClientHandle) -> str:
    """``tw_client_stats``: the counters as JSON text."""
    return _read(lib.tw_client_stats, handle) or ""


def invalidate(handle: ClientHandle, token: Optional[bytes]) -> None:
    """``tw_client_invalidate`` (``None``: whatever token is cached)."""
    check(lib.tw_client_invalidate(handle, token))


def set_client_secret(handle: ClientHandle, secret: bytes) -> None:
    """``tw_client_set_client_secret``."""
    check(lib.tw_client_set_client_secret(handle, secret))


def set_event_callback(handle: ClientHandle, function: Optional[CFuncPtr]) -> int:
    """``tw_client_set_event_callback``, returning its status (for :func:`check`; the
    free and fork paths, which must not raise, ignore it). ``None`` unregisters; when that
    returns, no callback is running or will run."""
    status: int = lib.tw_client_set_event_callback(handle, NO_EVENT_FN if function is None else function, None)
    return status


def free_client(handle: ClientHandle) -> None:
    """``tw_client_free``; the handle must not be used afterwards."""
    lib.tw_client_free(handle)


def send(
    handle: ClientHandle,
    method: bytes,
    url: bytes,
    headers: Sequence[Tuple[bytes, bytes]],
    body: Optional[bytes],
) -> Tuple[ResponseHandle, int, bytes]:
    """``tw_client_send_pairs``: (response handle, HTTP status, body copy). The core checks
    every header pair; no header text is built here.

    The caller owns the returned response handle and must pass it to
    :func:`free_response`; if copying out the status or body fails, it is freed here.
    """
    response = ResponseHandle()
    length = 0 if body is None else len(body)
    count = len(headers)
    names = (c_char_p * count)(*(name for name, _ in headers))
    values = (c_char_p * count)(*(value for _, value in headers))
    check(lib.tw_client_send_pairs(handle, method, url, names, values, count, body, length, byref(response)))
    if not response:
        raise Error("tokenward: the native library returned TW_OK without a response.")
    try:
        status = int(lib.tw_response_status(response))
        size = c_size_t(0)
        pointer = lib.tw_response_body(response, byref(size))
        data = ctypes.string_at(pointer, size.value) if pointer and size.value else b""
    except BaseException:
        lib.tw_response_free(response)
        raise
    return response, status, data


def recover(handle: ClientHandle, authorization: bytes, status: int, body: Optional[bytes]) -> bool:
    """``tw_client_recover``: whether to re-send after this answer (the token it carried was
    rejected and invalidated). Raises :class:`UnauthorizedError` when the core refuses a
    re-send (the API rejects freshly issued tokens)."""
    resend = c_int(0)
    length = 0 if body is None else len(body)
    check(lib.tw_client_recover(handle, authorization, status, body, length, byref(resend)))
    return bool(resend.value)


def response_header(response: ResponseHandle, name: bytes) -> Optional[str]:
    """``tw_response_header``: the value, or ``None`` when the response lacks the header."""
    return _read(lib.tw_response_header, response, name)


def free_response(response: ResponseHandle) -> None:
    """``tw_response_free``."""
    lib.tw_response_free(response)


def new_client(config_json: bytes) -> ClientHandle:
    """``tw_client_new``: a new handle, owned by the caller (see :func:`free_client`)."""
    handle = ClientHandle()
    check(lib.tw_client_new(config_json, byref(handle)))
    return _non_null(handle)


def client_health(handle: ClientHandle) -> str:
    """``tw_client_health``: the client's state as JSON text (from memory, no network)."""
    return _read(lib.tw_client_health, handle) or ""


def diagnose(handle: ClientHandle, options_json: Optional[bytes]) -> str:
    """``tw_client_diagnose``: the diagnosis as JSON text (the native result is freed here)."""
    diagnosis = DiagnosisHandle()
    check(lib.tw_client_diagnose(handle, options_json, byref(diagnosis)))
    if not diagnosis:
        raise Error("tokenward: the native library returned TW_OK without a diagnosis.")
    try:
        return _read(lib.tw_diagnosis_json, diagnosis) or ""
    finally:
        lib.tw_diagnosis_free(diagnosis)


def client_from_env(prefix: Optional[bytes]) -> ClientHandle:
    """``tw_client_from_env``: a new handle, owned by the caller (see :func:`free_client`)."""
    handle = ClientHandle()
    check(lib.tw_client_from_env(prefix, byref(handle)))
    return _non_null(handle)


def _non_null(handle: ClientHandle) -> ClientHandle:
    if not handle:
        raise Error("tokenward: the native library returned TW_OK without a client handle.")
    return handle


def event_fields(event: EventPointer) -> Tuple[int, str, str]:
    """(kind, kind name, message) out of the ``const tw_event *`` a callback received."""
    contents = event.contents
    name: Optional[bytes] = contents.kind_name
    message: Optional[bytes] = contents.message
    return (
        int(contents.kind),
        _text(name, "ascii") if name else "unknown",
        _text(message),
    )
