"""Handles are pointers to distinct opaque types: ctypes refuses one where the other belongs."""

from __future__ import annotations

import ctypes

import pytest

from tokenward import _native
from tokenward._native import ClientHandle, ResponseHandle, lib


@pytest.fixture
def response(mock, client):
    with client.request("GET", mock.url + "/api/items") as response:
        yield response


def size():
    return ctypes.byref(ctypes.c_size_t(0))


def test_handles_are_typed_pointers_not_integers(client, response):
    assert isinstance(client._handle, ClientHandle)
    assert isinstance(response._state.handle, ResponseHandle)
    assert not issubclass(ClientHandle, ResponseHandle) and not issubclass(ResponseHandle, ClientHandle)


def test_a_response_where_a_client_belongs_is_a_ctypes_error(client, response):
    with pytest.raises(ctypes.ArgumentError, match="tw_client"):
        lib.tw_client_headers(response._state.handle, None, 0, size())
    with pytest.raises(ctypes.ArgumentError):
        _native.client_stats(response._state.handle)
    with pytest.raises(ctypes.ArgumentError):
        _native.invalidate(response._state.handle, None)


def test_a_client_where_a_response_belongs_is_a_ctypes_error(client, response):
    with pytest.raises(ctypes.ArgumentError, match="tw_response"):
        lib.tw_response_status(client._handle)
    with pytest.raises(ctypes.ArgumentError):
        _native.response_header(client._handle, b"content-type")


def test_raw_addresses_are_refused(client):
    handle = client._handle
    address = ctypes.cast(handle, ctypes.c_void_p).value
    with pytest.raises(ctypes.ArgumentError):
        lib.tw_client_headers(address, None, 0, size())
    with pytest.raises(ctypes.ArgumentError):
        lib.tw_client_headers(ctypes.c_void_p(address), None, 0, size())
    # The right type goes through (size query: nothing written, the size reported).
    needed = ctypes.c_size_t(0)
    assert lib.tw_client_headers(handle, None, 0, ctypes.byref(needed)) == 3  # TW_ERR_BUFFER_TOO_SMALL
    assert needed.value > len("Authorization: Bearer ")
