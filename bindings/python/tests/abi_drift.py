"""Compare the C header's prototypes with the Python and C# declarations of the same
functions (used by test_abi_drift.py).

Each side is reduced to the same small vocabulary of *shapes*, which is what the calling
convention sees:

* ``("void",)``; ``("int", bits)`` (signedness is not part of the calling convention);
  ``("size",)`` for ``size_t`` and other pointer-sized integers;
* ``("ptr", shape)``; ``("bytes",)`` for a pointee of one byte (``char``, ``uint8_t``);
  ``("struct", name, fields)`` with ``fields`` None for an opaque struct;
* ``("fn", result, params)`` for a function pointer;
* ``("nint",)`` for C#'s ``IntPtr`` / ``UIntPtr``: pointer-sized, matching any pointer or
  ``size_t`` (C# cannot say more), and ``("handle",)`` for a ``SafeHandle``: a pointer to
  some struct.

The parsers are deliberately general (any prototype, any ``DllImport``, attributes,
``out``/``ref`` parameters, ``EntryPoint``) and fail loudly on what they do not know, so
that a new construct on either side is reported instead of skipped.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

Shape = Tuple[Any, ...]

POINTER_BITS = ctypes.sizeof(ctypes.c_void_p) * 8

VOID: Shape = ("void",)
SIZE: Shape = ("size",)
NINT: Shape = ("nint",)
BYTES: Shape = ("bytes",)
HANDLE: Shape = ("handle",)


class DriftParseError(Exception):
    """A declaration this checker cannot read: fix the parser, do not skip it."""


@dataclass
class Function:
    name: str
    result: Shape
    params: List[Shape]
    source: str  # where it was declared, for messages


@dataclass
class Header:
    functions: Dict[str, Function] = field(default_factory=dict)
    structs: Dict[str, Shape] = field(default_factory=dict)
    abi_version: Optional[int] = None


# -- C --------------------------------------------------------------------------------------

_C_INTS = {
    "int8_t": 8, "uint8_t": 8, "int16_t": 16, "uint16_t": 16, "int32_t": 32, "uint32_t": 32,
    "int64_t": 64, "uint64_t": 64, "int": 32, "unsigned": 32, "unsigned int": 32, "bool": 8,
}
_C_SIZES = {"size_t", "ssize_t", "intptr_t", "uintptr_t", "ptrdiff_t"}


def _strip_c(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    # C++ linkage wrappers around the prototypes.
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)
    return text


_TYPEDEFS = [
    ("struct", re.compile(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", re.S)),
    ("opaque", re.compile(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", re.S)),
    ("function", re.compile(r"typedef\s+([^;()]+?)\(\s*\*\s*(\w+)\s*\)\s*\(([^;]*?)\)\s*;", re.S)),
    ("plain", re.compile(r"typedef\s+([\w\s\*]+?)\s+(\w+)\s*;", re.S)),
]
_PROTOTYPE = re.compile(r"([\w\s\*]+?)\b(\w+)\s*\(([^()]*)\)\s*;", re.S)


def parse_header(text: str) -> Header:
    """Every function prototype, struct and typedef of a C header."""
    header = Header()
    define = re.search(r"#define\s+TW_ABI_VERSION\s+(\d+)", text)
    header.abi_version = int(define.group(1)) if define else None
    body = _strip_c(text)
    typedefs: Dict[str, Shape] = {}
    rest: List[str] = []
    position = 0
    # Typedefs in source order: each may use the ones before it.
    for start in [m.start() for m in re.finditer(r"\btypedef\b", body)]:
        if start < position:
            continue
        for kind, pattern in _TYPEDEFS:
            match = pattern.match(body, start)
            if match:
                break
        else:
            raise DriftParseError(f"cannot read the typedef {body[start:start + 80]!r}")
        rest.append(body[position:start])
        position = match.end()
        if kind == "struct":
            tag, members, alias = match.groups()
            fields = tuple(
                _c_declaration(member, typedefs, header.structs)[1] for member in members.split(";") if member.strip()
            )
            header.structs[tag] = typedefs[alias] = ("struct", tag, fields)
        elif kind == "opaque":
            tag, alias = match.groups()
            typedefs[alias] = header.structs.setdefault(tag, ("struct", tag, None))
        elif kind == "function":
            result, alias, params = match.groups()
            typedefs[alias] = (
                "fn",
                _c_type(result, typedefs, header.structs),
                tuple(_c_params(params, typedefs, header.structs)),
            )
        else:
            typedefs[match.group(2)] = _c_type(match.group(1), typedefs, header.structs)
    rest.append(body[position:])
    body = " ".join(rest)
    for match in _PROTOTYPE.finditer(body):
        result, name, params = match.groups()
        header.functions[name] = Function(
            name,
            _c_type(result, typedefs, header.structs),
            _c_params(params, typedefs, header.structs),
            "include/tokenward.h",
        )
    leftover = re.sub(r"[\s{}]+", "", _PROTOTYPE.sub("", body))
    if leftover:
        raise DriftParseError(f"unparsed C in the header: {leftover[:120]!r}")
    return header


def _c_params(text: str, typedefs: Dict[str, Shape], structs: Dict[str, Shape]) -> List[Shape]:
    text = text.strip()
    if text in ("", "void"):
        return []
    return [_c_declaration(part, typedefs, structs)[1] for part in text.split(",")]


def _c_declaration(text: str, typedefs: Dict[str, Shape], structs: Dict[str, Shape]) -> Tuple[str, Shape]:
    """``const char *name`` -> (name, shape)."""
    match = re.fullmatch(r"\s*(.*?[\s\*])(\w+)\s*", text, flags=re.S)
    if match is None:
        raise DriftParseError(f"cannot read the C declaration {text.strip()!r}")
    return match.group(2), _c_type(match.group(1), typedefs, structs)


def _c_type(text: str, typedefs: Dict[str, Shape], structs: Dict[str, Shape]) -> Shape:
    depth = text.count("*")
    words = [w for w in text.replace("*", " ").split() if w not in ("const", "volatile", "struct")]
    base = " ".join(words)
    shape: Shape
    if base == "void":
        shape = VOID
    elif base == "char" or base in ("unsigned char", "signed char"):
        shape = ("int", 8)
    elif base in _C_INTS:
        shape = ("int", _C_INTS[base])
    elif base in _C_SIZES:
        shape = SIZE
    elif base in typedefs:
        shape = typedefs[base]
    elif "struct" in text.split() and len(words) == 1:
        shape = structs.setdefault(base, ("struct", base, None))
    else:
        raise DriftParseError(f"unknown C type {text.strip()!r}")
    for _ in range(depth):
        shape = ("ptr", BYTES if shape == ("int", 8) else shape)
    return shape


# -- Python (ctypes) --------------------------------------------------------------------------


def python_shape(ctype: Any) -> Shape:
    """The shape of a ctypes type as used in ``argtypes`` / ``restype``."""
    if ctype is None:
        return VOID
    if ctype is ctypes.c_char_p:
        return ("ptr", BYTES)
    if ctype is ctypes.c_void_p:
        return ("ptr", VOID)
    if isinstance(ctype, type) and issubclass(ctype, ctypes._Pointer):  # POINTER(T)
        pointee = python_shape(ctype._type_)
        return ("ptr", BYTES if pointee == ("int", 8) else pointee)
    if isinstance(ctype, type) and issubclass(ctype, ctypes._CFuncPtr):  # CFUNCTYPE
        return ("fn", python_shape(ctype._restype_), tuple(python_shape(a) for a in ctype._argtypes_))
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
        fields = getattr(ctype, "_fields_", None)
        if fields is None:
            return ("struct", ctype.__name__, None)
        return ("struct", ctype.__name__, tuple(python_shape(f[1]) for f in fields))
    if isinstance(ctype, type) and issubclass(ctype, ctypes._SimpleCData) and ctype._type_ in "bBhHiIlLqQ":
        return ("int", ctypes.sizeof(ctype) * 8)
    raise DriftParseError(f"no shape for the ctypes type {ctype!r}")


def python_functions(declarations: Dict[str, Tuple[Any, List[Any]]]) -> Dict[str, Function]:
    return {
        name: Function(name, python_shape(restype), [python_shape(a) for a in argtypes], "_native.py")
        for name, (restype, argtypes) in declarations.items()
    }


# -- C# -------------------------------------------------------------------------------------

_CS_INTS = {
    "sbyte": 8, "byte": 8, "short": 16, "ushort": 16, "int": 32, "uint": 32, "long": 64,
    "ulong": 64, "bool": 32, "char": 16,
    "SByte": 8, "Byte": 8, "Int16": 16, "UInt16": 16, "Int32": 32, "UInt32": 32,
    "Int64": 64, "UInt64": 64, "Boolean": 32,
}
_CS_NINTS = {"IntPtr", "UIntPtr", "nint", "nuint", "System.IntPtr", "System.UIntPtr"}


@dataclass
class CSharpTypes:
    """Named types the DllImports may use: SafeHandle classes, delegates, structs."""

    handles: set = field(default_factory=set)
    delegates: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # name -> (ret, params)
    structs: Dict[str, str] = field(default_factory=dict)  # name -> body


def _strip_cs(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def csharp_types(sources: Iterable[str]) -> CSharpTypes:
    types = CSharpTypes()
    bases: Dict[str, str] = {}
    for source in sources:
        text = _strip_cs(source)
        for match in re.finditer(r"\bclass\s+(\w+)\s*:\s*([\w\.]+)", text):
            bases[match.group(1)] = match.group(2).rsplit(".", 1)[-1]
        for match in re.finditer(r"\bdelegate\s+([\w\.\[\]]+)\s+(\w+)\s*\(([^)]*)\)\s*;", text):
            types.delegates[match.group(2)] = (match.group(1), match.group(3))
        for match in re.finditer(r"\bstruct\s+(\w+)\s*\{([^{}]*)\}", text):
            types.structs[match.group(1)] = match.group(2)
    changed = True
    while changed:  # classes deriving from SafeHandle, directly or not
        changed = False
        for name, base in bases.items():
            if name not in types.handles and ("SafeHandle" in base or base in types.handles):
                types.handles.add(name)
                changed = True
    return types


def split_params(text: str) -> List[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def csharp_shape(text: str, types: CSharpTypes, seen: Tuple[str, ...] = ()) -> Shape:
    """The shape of a C# parameter (``out UIntPtr len``, ``[In] byte[] buf``) or type."""
    text = re.sub(r"\[[^\]]+\]", " ", text)  # attributes (not the `[]` of an array)
    text = text.split("=", 1)[0]
    words = text.split()
    by_reference = False
    while words and words[0] in ("out", "ref", "in", "this", "params"):
        by_reference = by_reference or words[0] != "params"
        words = words[1:]
    if len(words) == 2:
        words = words[:1]  # drop the parameter name
    if len(words) != 1:
        raise DriftParseError(f"cannot read the C# parameter {text.strip()!r}")
    name = words[0]
    shape: Shape
    if name.endswith("[]"):
        element = csharp_shape(name[:-2], types, seen)
        shape = ("ptr", BYTES if element == ("int", 8) else element)
    elif name in ("string", "String", "StringBuilder"):
        shape = ("ptr", BYTES)
    elif name == "void":
        shape = VOID
    elif name in _CS_INTS:
        shape = ("int", _CS_INTS[name])
    elif name in _CS_NINTS:
        shape = NINT
    elif name in types.handles:
        shape = HANDLE
    elif name in types.delegates and name not in seen:
        result, params = types.delegates[name]
        shape = (
            "fn",
            csharp_shape(result, types, seen + (name,)),
            tuple(csharp_shape(p, types, seen + (name,)) for p in split_params(params)),
        )
    elif name in types.structs and name not in seen:
        fields = re.findall(
            r"(?:(?:internal|public|private|readonly)\s+)*([\w\.\[\]]+)\s+\w+\s*;", types.structs[name]
        )
        shape = ("struct", name, tuple(csharp_shape(f, types, seen + (name,)) for f in fields))
    else:
        raise DriftParseError(f"unknown C# type {name!r}")
    return ("ptr", shape) if by_reference else shape


DLLIMPORT = re.compile(
    r"\[\s*DllImport\s*\((?P<attr>[^\]]*)\)\s*\]\s*"
    r"(?:\[[^\]]*\]\s*)*"
    r"(?:(?:internal|public|private|protected|static|extern|unsafe|new)\s+)+"
    r"(?P<ret>[\w\.\[\]]+)\s+(?P<name>\w+)\s*\((?P<params>[^)]*)\)\s*;",
    flags=re.S,
)


def csharp_functions(native_methods: str, types: CSharpTypes) -> Dict[str, Function]:
    text = _strip_cs(native_methods)
    functions: Dict[str, Function] = {}
    found = 0
    for match in DLLIMPORT.finditer(text):
        found += 1
        entry = re.search(r'EntryPoint\s*=\s*"(\w+)"', match.group("attr"))
        name = entry.group(1) if entry else match.group("name")
        functions[name] = Function(
            name,
            csharp_shape(match.group("ret"), types),
            [csharp_shape(p, types) for p in split_params(match.group("params"))],
            "NativeMethods.cs",
        )
    declared = len(re.findall(r"\[\s*DllImport\b", text))
    if found != declared:
        raise DriftParseError(f"read {found} of the {declared} DllImport declarations in NativeMethods.cs")
    return functions


def csharp_abi_version(native_methods: str) -> Optional[int]:
    match = re.search(r"\bconst\s+int\s+AbiVersion\s*=\s*(\d+)\s*;", _strip_cs(native_methods))
    return int(match.group(1)) if match else None


# -- comparison -----------------------------------------------------------------------------


def compatible(c: Shape, other: Shape, csharp: bool = False) -> bool:
    """Whether a binding's ``other`` passes the same bits as the header's ``c``.

    For C# (``csharp``), ``size_t`` must be ``(U)IntPtr``: a fixed-width integer would only
    be right on some platforms. ctypes' ``c_size_t`` is itself the integer of pointer width.
    """
    if c == other:
        return True
    kind = c[0]
    if other == NINT:
        return kind in ("ptr", "size", "fn")
    if kind == "size":
        return not csharp and other == ("int", POINTER_BITS)
    if kind == "ptr" and other == HANDLE:
        return _opaque_struct(c[1])
    if kind == "ptr" and other[0] == "ptr":
        return compatible(c[1], other[1], csharp)
    if kind == "fn" and other[0] == "fn":
        return (
            compatible(c[1], other[1], csharp)
            and len(c[2]) == len(other[2])
            and all(compatible(a, b, csharp) for a, b in zip(c[2], other[2]))
        )
    if kind == "struct" and other[0] == "struct":
        c_fields, other_fields = c[2], other[2]
        if c_fields is None or other_fields is None:
            # Opaque on either side: only the name can tell them apart.
            return c_fields is None and other_fields is None and c[1] == other[1]
        return len(c_fields) == len(other_fields) and all(
            compatible(a, b, csharp) for a, b in zip(c_fields, other_fields)
        )
    return False


def _opaque_struct(shape: Shape) -> bool:
    return shape[0] == "struct" and shape[2] is None


def describe(shape: Shape) -> str:
    kind = shape[0]
    if kind == "ptr":
        return describe(shape[1]) + " *"
    if kind == "int":
        return f"int{shape[1]}"
    if kind == "struct":
        return f"struct {shape[1]}" + ("" if shape[2] is None else f" {{{', '.join(describe(f) for f in shape[2])}}}")
    if kind == "fn":
        return f"{describe(shape[1])} (*)({', '.join(describe(p) for p in shape[2])})"
    return {"void": "void", "size": "size_t", "nint": "IntPtr", "bytes": "byte", "handle": "SafeHandle"}[kind]


def compare(header: Header, binding: Dict[str, Function], *, csharp: bool = False) -> List[str]:
    """Every difference between ``binding``'s declarations and the header's prototypes."""
    problems = []
    for name, declared in sorted(binding.items()):
        prototype = header.functions.get(name)
        where = declared.source
        if prototype is None:
            problems.append(f"{where}: {name} is not declared in include/tokenward.h")
            continue
        if len(declared.params) != len(prototype.params):
            problems.append(
                f"{where}: {name} takes {len(declared.params)} parameters, the header says "
                f"{len(prototype.params)}"
            )
            continue
        if not compatible(prototype.result, declared.result, csharp):
            problems.append(
                f"{where}: {name} returns {describe(declared.result)}, the header says "
                f"{describe(prototype.result)}"
            )
        for index, (c, other) in enumerate(zip(prototype.params, declared.params)):
            if not compatible(c, other, csharp):
                problems.append(
                    f"{where}: {name} parameter {index + 1} is {describe(other)}, the header "
                    f"says {describe(c)}"
                )
    return problems
