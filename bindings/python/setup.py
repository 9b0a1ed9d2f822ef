"""Build hook: compile the native tokenward library with cargo and bundle it in the wheel.

`pip install ./bindings/python` (from a checkout of the tokenward repository) runs
`cargo build --release --lib` in the repository root, found by walking up from this file,
and copies the shared library into the `tokenward` package. The wheel is tagged for this
platform (`py3-none-<platform>`): it carries native code but no CPython extension, so one
wheel serves every Python 3 version.

To bundle a library built elsewhere instead (packagers, CI caches), set
TOKENWARD_LIBRARY to its path when building; cargo is then not run.
"""

import json
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))

if sys.platform == "darwin":
    LIBRARY = "libtokenward.dylib"
elif sys.platform == "win32":
    LIBRARY = "tokenward.dll"
else:
    LIBRARY = "libtokenward.so"


def find_repository_root():
    """The nearest ancestor holding the tokenward crate's Cargo.toml, or None."""
    directory = HERE
    while True:
        manifest = os.path.join(directory, "Cargo.toml")
        if os.path.isfile(manifest):
            with open(manifest, encoding="utf-8") as f:
                if 'name = "tokenward"' in f.read():
                    return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def cargo_target_directory(root):
    output = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=root,
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
    root = find_repository_root()
    if root is None:
        sys.exit(
            "tokenward build: cannot find the tokenward repository (a Cargo.toml with "
            'name = "tokenward") above ' + HERE + ". Build from a checkout of the "
            "repository (`pip install ./bindings/python`), or set TOKENWARD_LIBRARY to a "
            "built " + LIBRARY + " to bundle it."
        )
    if shutil.which("cargo") is None:
        sys.exit(
            "tokenward build: `cargo` was not found on PATH; install Rust "
            "(https://rustup.rs) or set TOKENWARD_LIBRARY to a built " + LIBRARY + "."
        )
    print(f"tokenward build: cargo build --release --lib (in {root})", flush=True)
    subprocess.run(["cargo", "build", "--release", "--lib"], cwd=root, check=True)
    built = os.path.join(cargo_target_directory(root), "release", LIBRARY)
    if not os.path.isfile(built):
        sys.exit(f"tokenward build: cargo succeeded but {built} does not exist.")
    return built


class BuildPyWithNativeLibrary(build_py):
    def run(self):
        super().run()
        library = build_native_library()
        destination = os.path.join(self.build_lib, "tokenward", LIBRARY)
        self.mkpath(os.path.dirname(destination))
        self.copy_file(library, destination)


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _python, _abi, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": BuildPyWithNativeLibrary, "bdist_wheel": PlatformWheel})
