"""No drift between include/tokenward.h and the bindings: every function Python's ctypes
layer and C#'s NativeMethods declare exists in the header with the same number of
parameters and compatible types. Doctored copies prove the check fails when either side
changes alone."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path
from typing import Dict, List

import pytest

import abi_drift
from abi_drift import DriftParseError, compare, csharp_abi_version, csharp_functions, csharp_types, parse_header
from tokenward import _native

REPO = Path(__file__).resolve().parents[3]
HEADER = Path(os.environ.get("TOKENWARD_INCLUDE", REPO / "include")) / "tokenward.h"
CSHARP = REPO / "bindings" / "csharp" / "src"
NATIVE_METHODS = next(CSHARP.rglob("NativeMethods.cs"), CSHARP / "NativeMethods.cs")
PACKAGE = Path(_native.__file__).resolve().parent


@pytest.fixture(scope="module")
def header_text() -> str:
    return HEADER.read_text()


@pytest.fixture(scope="module")
def csharp_text() -> str:
    if not NATIVE_METHODS.is_file():
        pytest.fail(f"NativeMethods.cs not found under {CSHARP}")
    return NATIVE_METHODS.read_text()


def python_problems(header_text: str, declarations=None) -> List[str]:
    header = parse_header(header_text)
    return compare(header, abi_drift.python_functions(declarations or _native.DECLARATIONS))


def csharp_problems(header_text: str, csharp_text: str) -> List[str]:
    """Problems of ``csharp_text`` as NativeMethods.cs, with the other C# sources as they
    are (they define the SafeHandle classes)."""
    others = [path.read_text() for path in CSHARP.rglob("*.cs") if path != NATIVE_METHODS]
    types = csharp_types(others + [csharp_text])
    return compare(parse_header(header_text), csharp_functions(csharp_text, types), csharp=True)


def doctor(text: str, old: str, new: str) -> str:
    """``text`` with exactly one occurrence of ``old`` (a regex) replaced."""
    doctored, count = re.subn(old, new, text, count=1)
    assert count == 1, f"the original no longer contains {old!r}; update this test"
    return doctored


# -- the real files agree ------------------------------------------------------------------


def test_python_declarations_match_the_header(header_text):
    header = parse_header(header_text)
    assert len(header.functions) >= len(_native.DECLARATIONS)
    assert python_problems(header_text) == []


def test_csharp_native_methods_match_the_header(header_text, csharp_text):
    types = csharp_types(path.read_text() for path in CSHARP.rglob("*.cs"))
    assert csharp_functions(csharp_text, types), "no DllImport found in NativeMethods.cs"
    assert csharp_problems(header_text, csharp_text) == []


def test_abi_versions_agree(header_text, csharp_text):
    header = parse_header(header_text)
    assert header.abi_version is not None, "TW_ABI_VERSION is not defined in the header"
    assert _native.ABI_VERSION == header.abi_version
    declared = csharp_abi_version(csharp_text)
    if declared is not None:
        assert declared == header.abi_version


def test_the_declarations_are_exactly_the_native_calls_of_the_package():
    called = set()
    for source in PACKAGE.glob("*.py"):
        called.update(re.findall(r"\blib\.(tw_\w+)", source.read_text()))
        called.update(re.findall(r"\blibrary\.(tw_\w+)", source.read_text()))
    assert called, "found no native call in the package"
    assert called <= set(_native.DECLARATIONS), called - set(_native.DECLARATIONS)
    # Nor the other way round: a declaration the package no longer calls (one replaced by a
    # newer native function) would be checked against the header for nothing.
    assert set(_native.DECLARATIONS) <= called, set(_native.DECLARATIONS) - called
    for name, (restype, argtypes) in _native.DECLARATIONS.items():
        function = getattr(_native.lib, name)
        assert function.restype is restype and list(function.argtypes) == argtypes, name


# -- the header changes alone --------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            r"(tw_client_stats\([^)]*), size_t \*len\)",
            r"\1)",
            "tw_client_stats takes 4 parameters, the header says 3",
        ),
        (
            r"(tw_client_headers\([^,]*, char \*buf, )size_t cap",
            r"\1uint32_t cap",
            "tw_client_headers parameter 3 is",
        ),
        (r"tw_status tw_client_invalidate\(", "tw_status tw_client_evict(", "tw_client_invalidate is not declared"),
        (r"uint16_t tw_response_status\(", "uint32_t tw_response_status(", "tw_response_status returns"),
        (
            r"(const char \*message;)",
            r"\1 int32_t flags;",
            "tw_client_set_event_callback parameter 2 is",
        ),
    ],
)
def test_a_header_change_alone_is_caught_on_both_sides(header_text, csharp_text, old, new, expected):
    doctored = doctor(header_text, old, new)
    for problems in (python_problems(doctored), csharp_problems(doctored, csharp_text)):
        assert any(expected in problem for problem in problems), problems


def test_a_header_handle_type_change_is_caught_by_python(header_text):
    doctored = doctor(header_text, r"void tw_client_free\(struct tw_client \*", "void tw_client_free(struct tw_response *")
    assert any("tw_client_free parameter 1" in problem for problem in python_problems(doctored))


def test_a_header_abi_version_change_is_caught(header_text):
    doctored = doctor(header_text, r"#define TW_ABI_VERSION \d+", "#define TW_ABI_VERSION 999")
    assert parse_header(doctored).abi_version == 999 != _native.ABI_VERSION


# -- a binding changes alone ---------------------------------------------------------------
# NativeMethods.cs is doctored through its parsed declarations, not fixed strings, so these
# tests keep working as the C# binding evolves.


def imports(text: str):
    """(match, name, parameters) of every DllImport in ``text``, in order."""
    for match in abi_drift.DLLIMPORT.finditer(text):
        entry = re.search(r'EntryPoint\s*=\s*"(\w+)"', match.group("attr"))
        name = entry.group(1) if entry else match.group("name")
        yield match, name, [p.strip() for p in abi_drift.split_params(match.group("params"))]


def with_params(text: str, match, params: List[str]) -> str:
    start, end = match.span("params")
    return text[:start] + ", ".join(params) + text[end:]


def drop_a_parameter(text: str):
    match, name, params = next(i for i in imports(text) if len(i[2]) >= 2)
    return with_params(text, match, params[:-1]), f"{name} takes {len(params) - 1} parameters"


def fixed_width_size(text: str):
    for match, name, params in imports(text):
        for index, param in enumerate(params):
            if re.search(r"\bUIntPtr\b", param):
                params[index] = re.sub(r"\bUIntPtr\b", "ulong", param)
                return with_params(text, match, params), f"{name} parameter {index + 1} is"
    pytest.fail("no UIntPtr (size_t) parameter in NativeMethods.cs")


def wider_result(text: str):
    match, name, _params = next(i for i in imports(text) if i[0].group("ret") == "int")
    start, end = match.span("ret")
    return text[:start] + "long" + text[end:], f"{name} returns int64"


def undeclared_function(text: str):
    match = next(imports(text))[0]
    added = "[DllImport(\"tokenward\")] internal static extern int tw_client_evict(IntPtr client);\n"
    return text[: match.start()] + added + text[match.start():], "tw_client_evict is not declared"


def struct_loses_a_field(text: str):
    struct = re.search(r"\bstruct\s+\w+\s*\{([^{}]*?)([\w\.\[\]]+\s+\w+\s*;)\s*\}", text)
    assert struct, "no struct in NativeMethods.cs"
    start, end = struct.span(2)
    return text[:start] + text[end:], ""


@pytest.mark.parametrize(
    "change", [drop_a_parameter, fixed_width_size, wider_result, undeclared_function, struct_loses_a_field]
)
def test_a_csharp_change_alone_is_caught(header_text, csharp_text, change):
    doctored, expected = change(csharp_text)
    problems = csharp_problems(header_text, doctored)
    assert problems and any(expected in problem for problem in problems), problems


def test_a_csharp_declaration_the_parser_cannot_read_fails_loudly(header_text, csharp_text):
    match = next(imports(csharp_text))[0]
    added = "[DllImport(\"tokenward\")] internal static extern int tw_client_token(Dictionary<string, int> c);\n"
    with pytest.raises(DriftParseError):
        csharp_problems(header_text, csharp_text[: match.start()] + added + csharp_text[match.start():])


def declarations_with(name: str, restype=None, argtypes=None) -> Dict:
    doctored = dict(_native.DECLARATIONS)
    old_restype, old_argtypes = doctored[name]
    doctored[name] = (old_restype if restype is None else restype, old_argtypes if argtypes is None else argtypes)
    return doctored


@pytest.mark.parametrize(
    "doctored, expected",
    [
        (
            lambda: declarations_with("tw_client_headers", argtypes=_native.DECLARATIONS["tw_client_headers"][1][:-1]),
            "tw_client_headers takes 3 parameters, the header says 4",
        ),
        (
            lambda: declarations_with("tw_client_invalidate", argtypes=[_native.ResponseHandle, ctypes.c_char_p]),
            "tw_client_invalidate parameter 1 is struct tw_response *",
        ),
        (
            lambda: declarations_with("tw_client_invalidate", argtypes=[ctypes.c_void_p, ctypes.c_char_p]),
            "tw_client_invalidate parameter 1 is void *",
        ),
        (lambda: declarations_with("tw_response_status", restype=ctypes.c_int32), "tw_response_status returns int32"),
        (
            lambda: declarations_with(
                "tw_client_token_window",
                argtypes=_native.DECLARATIONS["tw_client_token_window"][1][:-1] + [ctypes.POINTER(ctypes.c_uint32)],
            ),
            "tw_client_token_window parameter 6 is int32 *",
        ),
        (
            lambda: declarations_with(
                "tw_client_send_pairs",
                argtypes=[
                    ctypes.c_char_p if index == 3 else argtype
                    for index, argtype in enumerate(_native.DECLARATIONS["tw_client_send_pairs"][1])
                ],
            ),
            "tw_client_send_pairs parameter 4 is byte *, the header says byte * *",
        ),
        (
            lambda: declarations_with(
                "tw_client_recover",
                argtypes=_native.DECLARATIONS["tw_client_recover"][1][:-1] + [ctypes.POINTER(ctypes.c_int64)],
            ),
            "tw_client_recover parameter 6 is int64 *",
        ),
        (lambda: dict(_native.DECLARATIONS, tw_client_evict=(ctypes.c_int32, [])), "tw_client_evict is not declared"),
    ],
)
def test_a_python_change_alone_is_caught(header_text, doctored, expected):
    problems = python_problems(header_text, doctored())
    assert any(expected in problem for problem in problems), problems
