#!/usr/bin/env bash
# Runs every test of tokenward on this machine: Rust (format, lints, unit and integration
# tests against the mock IdP, the loom model of the cache), the generated C header's
# freshness, the `tokenward` command line from a shell script, then the C, Python and C#
# bindings against the same mock, then every installed form (scripts/test-packaging.sh).
# Installs what the binding tests need when missing. Exits non-zero on the first failing
# suite.
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

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "release build of the library and the mock IdP (regenerates include/tokenward.h)"
cargo build --release --lib --example mock_idp
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --quiet -- include/tokenward.h; then
    git --no-pager diff --stat -- include/tokenward.h
    echo "include/tokenward.h is stale: the committed header differs from what cbindgen generates." >&2
    echo "Commit the regenerated header." >&2
    exit 1
  fi
fi

step "Rust tests"
cargo test --workspace

# The cache's concurrency core under the loom model checker (src/cache/loom_model.rs). Its
# own target directory: `--cfg loom` would otherwise invalidate the normal build.
step "loom model of the cache (RUSTFLAGS=--cfg loom)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$root/target/loom" cargo test --release --lib loom

export TOKENWARD_LIBRARY="$root/target/release/libtokenward.so"
export TOKENWARD_STATIC_LIBRARY="$root/target/release/libtokenward.a"
export TOKENWARD_INCLUDE="$root/include"
export TOKENWARD_MOCK="$root/target/release/examples/mock_idp"

step "command line end to end (scripts/test-cli.sh)"
cargo build --release --bin tokenward
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
