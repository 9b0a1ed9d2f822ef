#!/usr/bin/env bash
# Tests every way tokenward is installed, as its users install it:
#
#   Rust    the crate: `cargo package --list` holds only the allow-listed files; `cargo
#           package` (with its verification build) and `cargo publish --dry-run` pass; the
#           build script writes include/tokenward.h only in a checkout; without the default
#           `ffi` feature there is no cbindgen and no exported tw_ symbol, and the lib tests
#           and clippy pass.
#   C/C++   bindings/c/test_install.sh: scripts/install.sh into a prefix, then pkg-config and
#           CMake consumers (SONAME, symlinks, tests, libcurl example).
#   Python  scripts/build-wheel.sh --sdist: manylinux wheel (auditwheel repair + show) and
#           sdist; each installed into a fresh virtualenv outside the repository and checked
#           there (scripts/check_installed_python.py: smoke test against the mock, one
#           version in Cargo.toml / Python metadata / tw_version() / the C# project, one ABI
#           version in header / tw_abi_version() / SONAME). The sdist's wheel is built by
#           cargo from the crate inside the sdist.
#
#   bash scripts/test-packaging.sh
#
# Inputs: TOKENWARD_MOCK (mock_idp executable; built when missing); TOKENWARD_LIBRARY and
# friends are ignored. Needs network access to
# crates.io and PyPI (cargo publish --dry-run, pip). Ends with "N passed, M failed"; exits
# non-zero on any failure.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Every form is built here the way its users build it, from the sources: prebuilt-library
# overrides that the other suites use (scripts/test-all.sh exports them) must not leak in.
unset TOKENWARD_LIBRARY TOKENWARD_STATIC_LIBRARY TOKENWARD_INCLUDE
say() { printf '\n==> %s\n' "$*"; }
die() { echo "test-packaging.sh: $*" >&2; exit 1; }

target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || die "cannot find cargo's target directory"
MOCK=${TOKENWARD_MOCK:-$target/release/examples/mock_idp}
if [ ! -x "$MOCK" ]; then
  [ -z "${TOKENWARD_MOCK:-}" ] || die "TOKENWARD_MOCK=$MOCK is not an executable"
  cargo build --release --example mock_idp || die "cargo build --example mock_idp failed"
fi
MOCK="$(cd "$(dirname "$MOCK")" && pwd)/$(basename "$MOCK")"
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenward-packaging.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

passed=0; failed=0; failures=()
step() { # step NAME COMMAND... : run, record pass/fail
  local name=$1; shift
  say "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "--> ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--> FAILED: $name ($((SECONDS - t0)) s)"
  fi
}

# --- Rust -------------------------------------------------------------------------------------
# --allow-dirty: these check what would be published from this tree, committed or not.
crate_contents() {
  cargo package --list --allow-dirty 2>/dev/null > "$tmp/crate-files" || { cargo package --list --allow-dirty; return 1; }
  cat "$tmp/crate-files"
  local allowed='^(src/.*\.rs|build\.rs|cbindgen\.toml|include/tokenward\.h|README\.md|CHANGELOG\.md|Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json)$'
  if grep -Ev "$allowed" "$tmp/crate-files"; then
    echo "the files above would be published but are not on the allow-list" >&2; return 1
  fi
  local f
  for f in src/lib.rs src/ffi/mod.rs build.rs cbindgen.toml include/tokenward.h README.md CHANGELOG.md Cargo.lock; do
    grep -qx "$f" "$tmp/crate-files" || { echo "the package lacks $f" >&2; return 1; }
  done
}
crate_package() {
  # The verification build compiles the packaged copy and fails if its build script
  # modified anything outside OUT_DIR.
  cargo package --allow-dirty && cargo publish --dry-run --allow-dirty
}
header_only_in_checkout() {
  # The packaged crate, copied three times with a stale header: as unpacked from the
  # registry (no .git), as a cargo git-dependency checkout (.git and .cargo-ok) and as a
  # developer's checkout (.git). cargo check runs the build script; only the last copy may
  # get its header rewritten, and every build leaves a fresh header in OUT_DIR.
  local unpacked="$target/package/tokenward-$version" kind dir status out_dir
  [ -f "$unpacked/Cargo.toml" ] || { echo "no $unpacked (cargo package runs first)" >&2; return 1; }
  for kind in registry git-dependency checkout; do
    dir="$tmp/crate-$kind"
    cp -R "$unpacked" "$dir" || return 1
    echo "/* stale */" >> "$dir/include/tokenward.h"
    # Copies share cargo's fingerprints (path packages hash without their path): a new
    # build.rs mtime makes sure this copy's build script runs.
    touch "$dir/build.rs"
    case $kind in
      git-dependency) mkdir "$dir/.git" && touch "$dir/.cargo-ok" ;;
      checkout) mkdir "$dir/.git" ;;
    esac
    (cd "$dir" && env -u TOKENWARD_WRITE_HEADER CARGO_TARGET_DIR="$target" \
       cargo check --lib --quiet --message-format=json > "$tmp/check-$kind.json") || return 1
    if grep -q 'stale' "$dir/include/tokenward.h"; then status=untouched; else status=rewritten; fi
    echo "$kind copy: include/tokenward.h $status"
    case $kind in
      checkout) [ $status = rewritten ] || { echo "the build of a checkout did not refresh its header" >&2; return 1; } ;;
      *) [ $status = untouched ] || { echo "the build of a $kind copy wrote into its source tree" >&2; return 1; } ;;
    esac
    # The build script's own output: OUT_DIR/tokenward.h, equal to the committed header.
    out_dir=$(grep '"reason":"build-script-executed"' "$tmp/check-$kind.json" | grep "crate-$kind" \
                | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p')
    [ -n "$out_dir" ] && cmp "$out_dir/tokenward.h" "$root/include/tokenward.h" \
      || { echo "no OUT_DIR/tokenward.h equal to include/tokenward.h for the $kind copy" >&2; return 1; }
  done
}
no_default_features() {
  if cargo tree -p tokenward --no-default-features -e normal,build --prefix none | grep -q '^cbindgen '; then
    echo "cbindgen is still a build dependency without the ffi feature" >&2; return 1
  fi
  cargo tree -p tokenward -e normal,build --prefix none | grep -q '^cbindgen ' \
    || { echo "cbindgen is missing from the default build (the check above cannot fail)" >&2; return 1; }
  cargo build --lib --no-default-features || return 1
  local lib="$target/debug/libtokenward.so" exported
  exported=$(nm -D --defined-only "$lib" | awk '$3 ~ /^tw_/ {print $3}')
  if [ -n "$exported" ]; then echo "$lib exports: $exported" >&2; return 1; fi
  echo "$lib exports no tw_ symbol"
  # The control: the default build does export them.
  nm -D --defined-only "$target/release/libtokenward.so" | grep -q ' T tw_client_new$' \
    || { echo "the default release build does not export tw_client_new" >&2; return 1; }
  cargo test --no-default-features --lib && cargo clippy --no-default-features --all-targets -- -D warnings
}

step "crate: cargo package --list has only the allow-listed files" crate_contents
step "crate: cargo package (verification build) and cargo publish --dry-run" crate_package
step "crate: build.rs writes include/tokenward.h only in a checkout" header_only_in_checkout
step "crate: --no-default-features has no cbindgen, no tw_ symbols; lib tests and clippy pass" no_default_features

# --- C/C++ ------------------------------------------------------------------------------------
step "C/C++: install into a prefix, consume via pkg-config and CMake" \
  env TOKENWARD_MOCK="$MOCK" bash bindings/c/test_install.sh

# --- Python -----------------------------------------------------------------------------------
fresh_venv_check() { # DIR WHEEL: new venv outside the repository, install WHEEL, check it there
  local venv=$1 wheel=$2
  python3 -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --no-deps "$wheel" || return 1
  (cd "$tmp" && env -u TOKENWARD_LIBRARY -u PYTHONPATH timeout 120 \
     "$venv/bin/python" "$root/scripts/check_installed_python.py" "$root" "$MOCK")
}
wheel_and_sdist() {
  bash scripts/build-wheel.sh --sdist --out "$tmp/dist" > "$tmp/built" || return 1
  cat "$tmp/built"
  [ "$(wc -l < "$tmp/built")" -eq 2 ] || return 1
}
wheel_check() {
  local wheel
  wheel=$(grep '\.whl$' "$tmp/built") || return 1
  case "$(basename "$wheel")" in
    "tokenward-$version-py3-none-manylinux_"*"_$(uname -m).whl") ;;
    *) echo "unexpected wheel $(basename "$wheel")" >&2; return 1 ;;
  esac
  fresh_venv_check "$tmp/venv-wheel" "$wheel"
}
sdist_check() {
  # The sdist is self-contained: the crate in native/, nothing of the build tree.
  local sdist listing
  sdist=$(grep '\.tar\.gz$' "$tmp/built") || return 1
  listing=$(tar tzf "$sdist") || return 1
  local f
  for f in native/Cargo.toml native/Cargo.lock native/build.rs native/src/lib.rs native/include/tokenward.h \
           setup.py pyproject.toml src/tokenward/__init__.py src/tokenward/py.typed; do
    grep -qx "tokenward-$version/$f" <<< "$listing" || { echo "the sdist lacks $f" >&2; return 1; }
  done
  if grep -E '/(target|\.venv|build|bindings)/|\.so$' <<< "$listing"; then
    echo "the sdist carries the files above" >&2; return 1
  fi
  # Built from the sdist alone: setup.py runs cargo on native/ (the shared target directory
  # only saves compiling the dependencies again).
  CARGO_TARGET_DIR="$target" "$target/packaging-tools/bin/python" -m pip wheel -q --no-deps --no-cache-dir \
    -w "$tmp/from-sdist" "$sdist" || return 1
  local wheel
  wheel=$(ls "$tmp"/from-sdist/tokenward-*.whl) || return 1
  echo "built from the sdist: $(basename "$wheel")"
  fresh_venv_check "$tmp/venv-sdist" "$wheel"
}

step "Python: scripts/build-wheel.sh --sdist (pip wheel, auditwheel repair and show)" wheel_and_sdist
if [ -s "$tmp/built" ]; then
  step "Python: the manylinux wheel in a fresh virtualenv (smoke test, versions, ABI)" wheel_check
  step "Python: the sdist builds with cargo alone, and its wheel works in a fresh virtualenv" sdist_check
fi

printf '\n'
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
