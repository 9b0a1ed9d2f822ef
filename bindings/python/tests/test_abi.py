"""The C ABI version check at import: a library of another ABI version is refused, by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tokenward
from tokenward import _native

SRC = Path(__file__).resolve().parents[1] / "src"


def build_shim(directory: Path, source: str) -> Path:
    """A shared library compiled from ``source`` with the system C compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc or cc) to build the shim library")
    c_file = directory / "shim.c"
    c_file.write_text(source)
    library = directory / "libtokenward.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(library), str(c_file)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return library


def import_with(library: Path) -> subprocess.CompletedProcess:
    """``import tokenward`` in a fresh interpreter, loading ``library``."""
    env = dict(os.environ, TOKENWARD_LIBRARY=str(library), PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-c", "import tokenward"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_loaded_library_has_the_bindings_abi_version():
    assert tokenward._native.lib.tw_abi_version() == _native.ABI_VERSION


def test_a_library_of_another_abi_version_is_refused_with_both_versions_and_its_path(tmp_path):
    other = _native.ABI_VERSION + 41
    # Only tw_abi_version: the check runs before any other symbol is looked up.
    library = build_shim(tmp_path, f"int tw_abi_version(void) {{ return {other}; }}\n")
    result = import_with(library)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), result.stderr
    assert f"C ABI version {other}" in last
    assert f"written for C ABI version {_native.ABI_VERSION}" in last
    assert str(library) in last


def test_a_library_without_an_abi_version_is_refused_by_name(tmp_path):
    library = build_shim(tmp_path, 'const char *tw_version(void) { return "0.0.1"; }\n')
    result = import_with(library)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), result.stderr
    assert "does not export tw_abi_version" in last
    assert f"C ABI version {_native.ABI_VERSION}" in last
    assert str(library) in last


def test_the_real_library_imports_in_a_fresh_interpreter():
    # The same harness accepts the right library, so the refusals above are the check's.
    result = import_with(Path(tokenward.library_path))
    assert result.returncode == 0, result.stderr
