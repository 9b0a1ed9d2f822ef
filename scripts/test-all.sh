#!/usr/bin/env bash
# Runs every test of tokenward on this machine: Rust (format, lints, unit and integration
# tests against the mock IdP, the loom model of the cache), the generated C header's
# freshness, the `tokenward` command line from a shell script, then the C, Python and C#
# bindings against the same mock, then every installed form (scripts/test-packaging.sh).
# Installs what the binding tests need when missing (redis-server from Debian for the
# shared cache tests, which get a private instance on a free loopback port, without
# persistence, as TOKENWARD_TEST_REDIS; it is stopped on exit). Exits non-zero on the first
# failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

for component in rustfmt clippy; do
  tool=${component/rustfmt/fmt}
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    step "installing the $component component (rustup)"
    rustup component add "$component"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings (without and with the redis feature)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features redis -- -D warnings

# The shared library the bindings load (and ship) has Redis support.
step "release build of the library and the mock IdP (regenerates include/tokenward.h)"
cargo build --release --lib --example mock_idp --features redis
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --quiet -- include/tokenward.h; then
    git --no-pager diff --stat -- include/tokenward.h
    echo "include/tokenward.h is stale: the committed header differs from what cbindgen generates." >&2
    echo "Commit the regenerated header." >&2
    exit 1
  fi
fi

step "a private Redis for the shared-cache tests"
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y redis-server
fi
redis_dir=$(mktemp -d)
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$redis_dir" --daemonize no >"$redis_dir/log" 2>&1 &
redis_pid=$!
stop_redis() { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$redis_dir"; }
trap stop_redis EXIT
for _ in $(seq 100); do
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  kill -0 "$redis_pid" 2>/dev/null || { cat "$redis_dir/log" >&2; echo "redis-server exited" >&2; exit 1; }
  sleep 0.1
done
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || { echo "redis-server did not answer" >&2; exit 1; }
export TOKENWARD_TEST_REDIS="redis://127.0.0.1:$redis_port"
echo "TOKENWARD_TEST_REDIS=$TOKENWARD_TEST_REDIS"

step "Rust tests (with the redis feature)"
cargo test --workspace --features redis

# The cache's concurrency core under the loom model checker (src/cache/loom_model.rs). Its
# own target directory: `--cfg loom` would otherwise invalidate the normal build.
step "loom model of the cache (RUSTFLAGS=--cfg loom)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$root/target/loom" cargo test --release --lib loom

export TOKENWARD_LIBRARY="$root/target/release/libtokenward.so"
export TOKENWARD_STATIC_LIBRARY="$root/target/release/libtokenward.a"
export TOKENWARD_INCLUDE="$root/include"
export TOKENWARD_MOCK="$root/target/release/examples/mock_idp"

step "command line end to end (scripts/test-cli.sh)"
cargo build --release --bin tokenward --features redis
TOKENWARD_BIN="$root/target/release/tokenward" bash scripts/test-cli.sh

step "C tests (bindings/c)"
bash bindings/c/run_tests.sh

step "Python tests (bindings/python)"
bash bindings/python/run_tests.sh

step "C# tests (bindings/csharp)"
bash bindings/csharp/run_tests.sh

step "packaging: crate, C/C++ install (pkg-config, CMake), Python wheel and sdist, versions"
bash scripts/test-packaging.sh

printf '\nAll suites passed: Rust, C, Python, C#, packaging.\n'
