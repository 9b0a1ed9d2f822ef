"""Build hook: compile the native tokenward library with cargo and bundle it in the wheel.

`pip wheel ./bindings/python` (or `pip install`) from a checkout of the tokenward
repository runs `cargo build --release --lib` in the repository root, found by walking up
from this file, and copies the shared library into the `tokenward` package. The wheel is
tagged `py3-none-<platform>`: it carries native code but no CPython extension, so one wheel
serves every Python 3 version. `auditwheel repair` turns the Linux tag into a manylinux one
(scripts/build-wheel.sh does both steps).

The sdist carries the Rust crate as published (`cargo package`) in `native/`, so a wheel
builds from the sdist alone, with cargo.

The package version is the crate's, read from Cargo.toml (see package_version).

To bundle a library built elsewhere instead (packagers, CI caches), set TOKENWARD_LIBRARY
to its path when building; cargo is then not run for the wheel.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
# Where an sdist keeps the crate; absent in a repository checkout.
BUNDLED_CRATE = os.path.join(HERE, "native")

if sys.platform == "darwin":
    LIBRARY = "libtokenward.dylib"
elif sys.platform == "win32":
    LIBRARY = "tokenward.dll"
else:
    LIBRARY = "libtokenward.so"


def is_tokenward_crate(directory):
    manifest = os.path.join(directory, "Cargo.toml")
    if not os.path.isfile(manifest):
        return False
    with open(manifest, encoding="utf-8") as f:
        return re.search(r'^name\s*=\s*"tokenward"\s*$', f.read(), re.MULTILINE) is not None


def find_crate():
    """The tokenward crate's directory: the sdist's native/, else the nearest ancestor
    (a repository checkout), else None."""
    if is_tokenward_crate(BUNDLED_CRATE):
        return BUNDLED_CRATE
    directory = os.path.dirname(HERE)
    while True:
        if is_tokenward_crate(directory):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def crate_version(crate):
    """The `version` of Cargo.toml's [package] table."""
    with open(os.path.join(crate, "Cargo.toml"), encoding="utf-8") as f:
        text = f.read()
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    version = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.MULTILINE)
    if not version:
        sys.exit(f"tokenward build: no [package] version in {crate}/Cargo.toml.")
    return version.group(1)


def no_crate_message():
    return (
        "tokenward build: cannot find the tokenward crate (a Cargo.toml with "
        'name = "tokenward") in ' + BUNDLED_CRATE + " or above " + HERE + ". Build from "
        "a checkout of the repository (`pip wheel ./bindings/python`) or from the sdist, "
        "or set TOKENWARD_LIBRARY to a built " + LIBRARY + " to bundle it."
    )


def require_cargo():
    if shutil.which("cargo") is None:
        sys.exit(
            "tokenward build: `cargo` was not found on PATH; install Rust "
            "(https://rustup.rs) or set TOKENWARD_LIBRARY to a built " + LIBRARY + "."
        )


def cargo_target_directory(crate):
    output = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=crate,
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    return json.loads(output)["target_directory"]


def build_native_library():
    """Path of the library to bundle, building it with cargo when needed."""
    prebuilt = os.environ.get("TOKENWARD_LIBRARY")
    if prebuilt:
        if not os.path.isfile(prebuilt):
            sys.exit(f"tokenward build: TOKENWARD_LIBRARY={prebuilt!r} does not exist.")
        return prebuilt
    crate = find_crate()
    if crate is None:
        sys.exit(no_crate_message())
    require_cargo()
    print(f"tokenward build: cargo build --release --lib (in {crate})", flush=True)
    subprocess.run(["cargo", "build", "--release", "--lib"], cwd=crate, check=True)
    built = os.path.join(cargo_target_directory(crate), "release", LIBRARY)
    if not os.path.isfile(built):
        sys.exit(f"tokenward build: cargo succeeded but {built} does not exist.")
    return built


def package_crate(crate, destination):
    """Unpack the crate as `cargo package` publishes it into `destination`."""
    require_cargo()
    print(f"tokenward sdist: cargo package (in {crate})", flush=True)
    # --allow-dirty: an sdist may be built from a working tree with local changes;
    # --no-verify: the wheel build from the sdist compiles it anyway.
    subprocess.run(
        ["cargo", "package", "--no-verify", "--allow-dirty", "--quiet"], cwd=crate, check=True
    )
    version = crate_version(crate)
    archive = os.path.join(
        cargo_target_directory(crate), "package", f"tokenward-{version}.crate"
    )
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()) or member.name.startswith(("/", "..")):
                    sys.exit(f"tokenward sdist: unexpected entry {member.name!r} in {archive}")
            # The "data" filter (Python 3.12+, backported to security releases) refuses
            # links and special files; the check above covers older interpreters.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(unpacked, **extra)
        shutil.copytree(os.path.join(unpacked, f"tokenward-{version}"), destination)


class BuildPyWithNativeLibrary(build_py):
    def run(self):
        super().run()
        library = build_native_library()
        destination = os.path.join(self.build_lib, "tokenward", LIBRARY)
        self.mkpath(os.path.dirname(destination))
        self.copy_file(library, destination)


class SdistWithCrate(sdist):
    """Adds the Rust crate under native/ so that the sdist builds without the repository."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        destination = os.path.join(base_dir, "native")
        if os.path.exists(destination):
            shutil.rmtree(destination)
        crate = find_crate()
        if crate is None:
            sys.exit(no_crate_message())
        if crate == BUNDLED_CRATE:  # an sdist of an sdist
            shutil.copytree(crate, destination)
        else:
            package_crate(crate, destination)


class NativeDistribution(Distribution):
    """Declares the bundled library as platform code, so that it is installed into (and the
    wheel lays it out as) platlib, which `auditwheel` requires, and the wheel is not pure."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        # Native code but no CPython extension: any Python 3, any ABI, this platform.
        _python, _abi, platform = super().get_tag()
        return "py3", "none", platform


def package_version():
    """Cargo.toml's version when the crate is at hand (a checkout, or native/ in an sdist).
    A bare copy of this directory, built with TOKENWARD_LIBRARY, has no crate: it uses the
    package's `__version__`, which scripts/test-packaging.sh keeps equal to Cargo.toml's."""
    crate = find_crate()
    if crate is not None:
        return crate_version(crate)
    with open(os.path.join(HERE, "src", "tokenward", "__init__.py"), encoding="utf-8") as f:
        found = re.search(r'^__version__\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
    if not found:
        sys.exit(no_crate_message())
    return found.group(1)


setup(
    version=package_version(),
    distclass=NativeDistribution,
    cmdclass={
        "build_py": BuildPyWithNativeLibrary,
        "bdist_wheel": PlatformWheel,
        "sdist": SdistWithCrate,
    },
)
