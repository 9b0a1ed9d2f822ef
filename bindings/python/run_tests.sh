#!/usr/bin/env bash
# Python binding tests (pytest) against the mock identity provider.
#
#   bash bindings/python/run_tests.sh           run the tests and the build-hook check
#   bash bindings/python/run_tests.sh --bench   run the hit-path benchmark only (bench.py)
#   bash bindings/python/run_tests.sh --bench-refresh
#                                               token() latency during refreshes (bench_refresh.py)
#
# Inputs (environment; defaults in brackets, built with cargo when missing):
#   TOKENWARD_LIBRARY  libtokenward.so     [<repo>/target/release/libtokenward.so]
#   TOKENWARD_MOCK     mock_idp executable [<repo>/target/release/examples/mock_idp]
#   PYTHON             interpreter for the venv [python3]
#
# A virtual environment in bindings/python/.venv (git-ignored) gets pytest, requests,
# httpx and mypy (and, for --bench, msal and authlib). mypy --strict checks the package
# first. The tests import the package from src/ with TOKENWARD_LIBRARY, so nothing is
# built for them. A last step proves the build hook: it
# builds a wheel with `pip wheel` (bundling TOKENWARD_LIBRARY), installs it into a
# temporary directory and imports it from there with TOKENWARD_LIBRARY unset.
# Everything runs under `timeout`; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=test
case "${1:-}" in
  --bench) mode=bench ;;
  --bench-refresh) mode=bench-refresh ;;
  "") ;;
  *) echo "usage: $0 [--bench | --bench-refresh]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
LIB=${TOKENWARD_LIBRARY:-$root/target/release/libtokenward.so}
MOCK=${TOKENWARD_MOCK:-$root/target/release/examples/mock_idp}
venv="$here/.venv"

say() { printf '\n==> %s\n' "$*"; }
die() { echo "run_tests.sh: $*" >&2; exit 1; }

# --- inputs -------------------------------------------------------------------------------
if [ ! -f "$LIB" ] || [ ! -x "$MOCK" ]; then
  if [ -n "${TOKENWARD_LIBRARY:-}${TOKENWARD_MOCK:-}" ]; then
    die "TOKENWARD_LIBRARY / TOKENWARD_MOCK point at missing files: $LIB $MOCK"
  fi
  say "building the library and the mock (cargo build --release --lib --example mock_idp)"
  (cd "$root" && cargo build --release --lib --example mock_idp) || die "cargo build failed"
fi
[ -f "$LIB" ] || die "missing $LIB"
[ -x "$MOCK" ] || die "missing mock executable $MOCK"
LIB="$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")"
MOCK="$(cd "$(dirname "$MOCK")" && pwd)/$(basename "$MOCK")"
export TOKENWARD_LIBRARY="$LIB" TOKENWARD_MOCK="$MOCK"

# --- the virtual environment --------------------------------------------------------------
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  say "creating $venv"
  rm -rf "$venv"
  if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
    # Debian splits ensurepip out of python3 into python3-venv.
    say "installing python3-venv (apt-get)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    command -v apt-get >/dev/null || die "$PYTHON -m venv failed and there is no apt-get; install venv support"
    rm -rf "$venv"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; } \
      || die "apt-get install python3-venv failed"
    "$PYTHON" -m venv "$venv" || die "$PYTHON -m venv $venv failed"
  fi
fi
py="$venv/bin/python"
pip_install() {
  # Quiet when everything is already there; the versions asked for are minimums.
  "$py" -m pip install -q "$@" || die "pip install $* failed"
}

if [ "$mode" = bench ]; then
  "$py" -c "import msal, authlib, requests" 2>/dev/null || pip_install "msal>=1.20" "authlib>=1.2" "requests>=2.20"
  say "benchmark: Client.token() on a cached token vs msal, Authlib and a lock-and-compare manager"
  PYTHONPATH="$here/src" timeout 300 "$py" "$here/bench.py"
  exit $?
fi

if [ "$mode" = bench-refresh ]; then
  say "benchmark: Client.token() latency, 8 threads, 4 s tokens, a 1.5 s token endpoint"
  PYTHONPATH="$here/src" timeout 300 "$py" "$here/bench_refresh.py"
  exit $?
fi

"$py" -c "import pytest, requests, httpx, setuptools, wheel, mypy" 2>/dev/null \
  || pip_install "pytest>=7" "requests>=2.20" "httpx>=0.23" "setuptools>=61" wheel "mypy>=1.0"

failed=0

# --- static types: mypy --strict over the package ([tool.mypy] in pyproject.toml) ----------
say "mypy --strict (src/tokenward)"
if ! (cd "$here" && timeout -k 5 300 "$py" -m mypy --strict --no-incremental); then
  echo "run_tests.sh: mypy found type errors" >&2
  failed=1
fi

# --- the tests, against the source tree ---------------------------------------------------
say "pytest (package from $here/src, library $LIB)"
(cd "$here" && PYTHONPATH="$here/src" timeout -k 5 240 "$py" -m pytest -q -p no:cacheprovider tests)
status=$?
if [ $status -ne 0 ]; then
  [ $status -eq 124 ] && echo "run_tests.sh: pytest did not finish within 240 s" >&2
  failed=1
fi

# --- the build hook: pip builds a wheel that bundles the library --------------------------
say "build hook: pip wheel + install into a temporary directory, import without TOKENWARD_LIBRARY"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hook_ok=0
# Build from a copy so the source tree gets no build/ or *.egg-info; no build isolation:
# setuptools and wheel are in the venv, so this needs no download.
mkdir -p "$tmp/source"
tar -C "$here" --exclude=./.venv --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ \
  --exclude=.pytest_cache --exclude=.mypy_cache -cf - . | tar -C "$tmp/source" -xf -
if timeout -k 5 120 "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/wheels" "$tmp/source" \
    >"$tmp/wheel.log" 2>&1 \
  && wheel_file=$(ls "$tmp"/wheels/tokenward-*.whl 2>/dev/null | head -n 1) && [ -n "$wheel_file" ] \
  && timeout -k 5 60 "$py" -m pip install -q --no-deps --target "$tmp/site" "$wheel_file" >>"$tmp/wheel.log" 2>&1; then
  # Run from $tmp with only the installed copy on the path: not src/, not the env override.
  if (cd "$tmp" && env -u TOKENWARD_LIBRARY PYTHONPATH="$tmp/site" timeout -k 5 60 "$py" - "$tmp/site" "$MOCK" <<'EOF'
import os, subprocess, sys
site, mock = sys.argv[1], sys.argv[2]
import tokenward
bundled = os.path.join(site, "tokenward", os.path.basename(tokenward.library_path))
assert tokenward.library_path == bundled, (tokenward.library_path, bundled)
assert os.path.isfile(os.path.join(site, "tokenward", "py.typed")), "py.typed is not in the wheel"
process = subprocess.Popen([mock, "--port", "0", "--lifetime-secs", "60"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base = process.stdout.readline().strip()
    with tokenward.Client(token_url=base + "/oauth/token", client_id="demo-client",
                          client_secret="demo-secret", allow_http=True) as client:
        assert client.authorization().startswith("Bearer ")
finally:
    process.kill()
    process.wait(timeout=10)
print(f"the installed wheel imports from {site}, loads its bundled library and fetches a token")
EOF
  ); then
    hook_ok=1
    echo "wheel: $(basename "$wheel_file")"
  fi
else
  cat "$tmp/wheel.log" >&2
fi
if [ $hook_ok -eq 1 ]; then
  echo "build hook: passed"
else
  echo "build hook: FAILED" >&2
  failed=1
fi

exit $failed
