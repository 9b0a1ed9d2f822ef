"""Checks an installed tokenward wheel from outside the repository: smoke test and versions.

    python check_installed_python.py REPOSITORY MOCK_IDP

Run with the interpreter of a fresh virtualenv into which only the wheel was installed,
from a working directory outside the repository, with TOKENWARD_LIBRARY unset
(scripts/test-packaging.sh does all that). It checks:

  * the package and its native library load from the virtualenv's site-packages, not from
    the repository;
  * a client fetches a token from the mock identity provider and builds the headers;
  * one version everywhere: Cargo.toml's [package] version equals the installed
    distribution's metadata version, `tokenward.__version__`, `tw_version()` of the bundled
    library, and the <Version> of the C# project; and the C ABI major version agrees
    between the header's TW_ABI_VERSION, `tw_abi_version()` and the bundled library's
    SONAME (libtokenward.so.<ABI>).

Prints one line per check and a closing "N passed, M failed"; exits 1 on any failure.
"""

import ctypes
import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
from typing import Callable, List, Tuple

ROOT, MOCK = sys.argv[1], sys.argv[2]


def read(relative: str) -> str:
    with open(os.path.join(ROOT, relative), encoding="utf-8") as f:
        return f.read()


def cargo_version() -> str:
    text = read("Cargo.toml")
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    assert package, "Cargo.toml has no [package] table"
    version = re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.MULTILINE)
    assert version, "Cargo.toml's [package] has no version"
    return version.group(1)


def csharp_version() -> str:
    project = read("bindings/csharp/src/Tokenward/Tokenward.csproj")
    versions = re.findall(r"<Version>\s*([^<\s]+)\s*</Version>", project)
    assert len(versions) == 1, f"expected one <Version> in Tokenward.csproj, found {versions}"
    # An explicit assembly version, if someone adds one, must agree too.
    info = read("bindings/csharp/src/Tokenward/AssemblyInfo.cs")
    for attribute in re.findall(r'Assembly(?:Informational|File)?Version\s*\(\s*"([^"]+)"', info):
        assert attribute.startswith(versions[0]), (
            f"AssemblyInfo.cs says {attribute}, Tokenward.csproj says {versions[0]}"
        )
    return versions[0]


def header_abi() -> int:
    found = re.search(r"^#define TW_ABI_VERSION (\d+)$", read("include/tokenward.h"), re.MULTILINE)
    assert found, "include/tokenward.h does not define TW_ABI_VERSION"
    return int(found.group(1))


def soname(path: str) -> str:
    dynamic = subprocess.run(
        ["readelf", "-d", path], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    found = re.search(r"Library soname: \[([^\]]+)\]", dynamic)
    assert found, f"{path} has no SONAME"
    return found.group(1)


def check_location() -> str:
    import tokenward

    site = os.path.realpath(sysconfig.get_paths()["platlib"])
    package = os.path.realpath(os.path.dirname(tokenward.__file__))
    library = os.path.realpath(tokenward.library_path)
    root = os.path.realpath(ROOT)
    assert package == os.path.join(site, "tokenward"), f"package imported from {package}"
    assert library == os.path.join(package, os.path.basename(library)), f"library {library}"
    assert not library.startswith(root + os.sep), f"library {library} is inside the repository"
    assert os.path.isfile(os.path.join(package, "py.typed")), "py.typed is not installed"
    return f"package and library load from {package}"


def check_token() -> str:
    import tokenward

    mock = subprocess.Popen(
        [MOCK, "--port", "0", "--lifetime-secs", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert mock.stdout is not None
        base = mock.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), f"the mock printed {base!r}"
        with tokenward.Client(
            token_url=base + "/oauth/token",
            client_id="demo-client",
            client_secret="demo-secret",
            allow_http=True,
            headers={"tenant-code": "T1"},
        ) as client:
            authorization = client.authorization()
            headers = client.headers()
        assert authorization.startswith("Bearer "), "no bearer authorization"
        assert headers.get("tenant-code") == "T1", f"headers {sorted(headers)}"
        try:
            tokenward.Client(
                token_url=base + "/oauth/token",
                client_id="demo-client",
                client_secret="wrong",
                allow_http=True,
            ).token()
        except tokenward.InvalidClientError:
            pass
        else:
            raise AssertionError("a wrong secret did not raise InvalidClientError")
    finally:
        mock.kill()
        mock.wait(timeout=10)
    return "token from the mock, static header present, invalid_client typed"


def check_versions() -> str:
    import tokenward

    expected = cargo_version()
    found = {
        "Python distribution metadata": importlib.metadata.version("tokenward"),
        "tokenward.__version__": tokenward.__version__,
        "tw_version()": tokenward.native_version(),
        "C# Tokenward.csproj <Version>": csharp_version(),
    }
    wrong = {name: value for name, value in found.items() if value != expected}
    assert not wrong, f"Cargo.toml says {expected}; these differ: {wrong}"
    return f"{expected} in Cargo.toml, " + ", ".join(found)


def check_abi() -> str:
    import tokenward

    native = ctypes.CDLL(tokenward.library_path)
    native.tw_abi_version.restype = ctypes.c_int32
    native.tw_abi_version.argtypes = []
    runtime = native.tw_abi_version()
    header = header_abi()
    name = soname(tokenward.library_path)
    assert runtime == header, f"tw_abi_version() = {runtime}, TW_ABI_VERSION = {header}"
    assert name == f"libtokenward.so.{header}", f"SONAME {name}, TW_ABI_VERSION = {header}"
    return f"ABI {header}: TW_ABI_VERSION, tw_abi_version(), SONAME {name}"


def main() -> int:
    checks: List[Tuple[str, Callable[[], str]]] = [
        ("installed location", check_location),
        ("smoke test against the mock", check_token),
        ("one version", check_versions),
        ("one ABI version", check_abi),
    ]
    passed = failed = 0
    for name, check in checks:
        try:
            detail = check()
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAILED: {name}: {type(e).__name__}: {e}")
        else:
            passed += 1
            print(f"ok: {name}: {detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
