#!/usr/bin/env bash
# Tests tokenward as a C/C++ user gets it: installed by scripts/install.sh into a prefix,
# with the build tree's libraries moved out of the way, then consumed through pkg-config and
# through the CMake package.
#
#   bash bindings/c/test_install.sh
#
# Inputs (environment; defaults in brackets):
#   TOKENWARD_MOCK  mock_idp executable [<repo>/target/release/examples/mock_idp, built when missing]
#   CC / CXX        [gcc / g++]
#
# Checks (each counted in the closing "N passed, M failed" line):
#   - the install layout: header, libtokenward.so -> .so.<ABI> -> .so.<version>, the static
#     archive, tokenward.pc, the CMake package; readelf shows SONAME libtokenward.so.<ABI>
#     with <ABI> = TW_ABI_VERSION of the installed header;
#   - pkg-config: the C test suite (shared and static), the C++ test and the libcurl example
#     build from the installed copy only and pass against the mock; the programs record
#     the SONAME and load the library from the prefix;
#   - CMake: find_package(tokenward CONFIG) from the prefix after it was moved elsewhere
#     (the package is relocatable): the same programs through tokenward::tokenward and
#     tokenward::tokenward_static; the version file accepts 0.1 and refuses 0.2.
# The sources are copied to a temporary directory outside the repository and no repository
# path is given to the compiler. cmake, pkg-config and the libcurl headers are installed from
# Debian when missing. Exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-gcc}
CXX=${CXX:-g++}
MOCK=${TOKENWARD_MOCK:-$root/target/release/examples/mock_idp}

say() { printf '\n==> %s\n' "$*"; }
die() { echo "test_install.sh: $*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------
need=()
command -v "$CC" >/dev/null || need+=(gcc)
command -v "$CXX" >/dev/null || need+=(g++)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
{ command -v pkg-config >/dev/null && pkg-config --exists libcurl; } || need+=(libcurl4-openssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get; install them"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

if [ ! -x "$MOCK" ]; then
  [ -z "${TOKENWARD_MOCK:-}" ] || die "TOKENWARD_MOCK=$MOCK is not an executable"
  say "building the mock (cargo build --release --example mock_idp)"
  (cd "$root" && cargo build --release --example mock_idp) || die "cargo build failed"
fi
MOCK="$(cd "$(dirname "$MOCK")" && pwd)/$(basename "$MOCK")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokenward-install.XXXXXX") || die "mktemp failed"
prefix="$tmp/prefix"
hidden=()
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null; wait "$mock_pid" 2>/dev/null; fi
  mock_pid=""
  local f
  for f in "${hidden[@]}"; do mv -f "$f.hidden-by-test-install" "$f"; done
  hidden=()
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# --- install exactly as documented ----------------------------------------------------------
# The documented command builds with cargo; prebuilt-library overrides from the caller's
# environment (scripts/test-all.sh exports them) are not part of it.
say "scripts/install.sh --prefix $prefix"
env -u TOKENWARD_LIBRARY -u TOKENWARD_STATIC_LIBRARY bash "$root/scripts/install.sh" --prefix "$prefix" \
  || die "scripts/install.sh failed"

# Hide the build tree's libraries: from here on only the prefix has a libtokenward.
target=$(cd "$root" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || die "cannot find cargo's target directory"
for f in "$target/release/libtokenward.so" "$target/release/libtokenward.a"; do
  if [ -e "$f" ]; then mv "$f" "$f.hidden-by-test-install" && hidden+=("$f"); fi
done
echo "hid ${hidden[*]}"

src="$tmp/src"
mkdir -p "$src/tests" "$src/examples" "$tmp/out"
cp "$here/tests/test_tokenward.c" "$here/tests/test_cpp.cpp" "$src/tests/" \
  && cp "$here/examples/curl_get.c" "$src/examples/" && cp "$here/tests/installed/CMakeLists.txt" "$src/" \
  || die "cannot copy the C sources"
out="$tmp/out"
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)

# --- checks ---------------------------------------------------------------------------------
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

abi=$(sed -n 's/^#define TW_ABI_VERSION \([0-9][0-9]*\)$/\1/p' "$prefix/include/tokenward.h")
soname="libtokenward.so.$abi"

check_layout() {
  local lib="$prefix/lib" f
  [ -n "$abi" ] || { echo "the installed header does not define TW_ABI_VERSION" >&2; return 1; }
  for f in include/tokenward.h "lib/libtokenward.so.$version" lib/libtokenward.a lib/pkgconfig/tokenward.pc \
           lib/cmake/tokenward/tokenwardConfig.cmake lib/cmake/tokenward/tokenwardConfigVersion.cmake; do
    [ -f "$prefix/$f" ] && [ ! -L "$prefix/$f" ] || { echo "missing regular file $prefix/$f" >&2; return 1; }
  done
  [ "$(readlink "$lib/libtokenward.so")" = "$soname" ] || { echo "libtokenward.so must link to $soname" >&2; return 1; }
  [ "$(readlink "$lib/$soname")" = "libtokenward.so.$version" ] || { echo "$soname must link to libtokenward.so.$version" >&2; return 1; }
  readelf -d "$lib/libtokenward.so.$version" | grep -F "Library soname: [$soname]" \
    || { echo "readelf -d shows no SONAME $soname" >&2; return 1; }
  echo "layout: libtokenward.so -> $soname -> libtokenward.so.$version, static archive, header, .pc, CMake package"
}

mock_url=""
start_mock() {
  "$MOCK" --port 0 --lifetime-secs 300 > "$out/mock.url" 2> "$out/mock.log" &
  mock_pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^http' "$out/mock.url" 2>/dev/null; then mock_url=$(head -n1 "$out/mock.url"); return 0; fi
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out/mock.log" >&2
  die "the mock did not start ($MOCK)"
}

uses_prefix() { # PROGRAM: records the SONAME and resolves it inside the (current) prefix
  local program=$1 where=$2 resolved
  readelf -d "$program" | grep -qF "Shared library: [$soname]" \
    || { echo "$program does not record $soname as needed" >&2; return 1; }
  resolved=$(ldd "$program" | sed -n "s|^[[:space:]]*$soname => \\([^ ]*\\) .*|\\1|p")
  case "$resolved" in
    "$where"/*) echo "$(basename "$program") loads $resolved" ;;
    *) echo "$program resolves $soname to '${resolved:-nothing}', not inside $where" >&2; return 1 ;;
  esac
}
is_static() { # PROGRAM: needs no libtokenward.so at all
  if readelf -d "$1" | grep -q 'libtokenward'; then echo "$1 depends on libtokenward.so" >&2; return 1; fi
}
run_suite() { TOKENWARD_MOCK="$MOCK" timeout 150 "$1"; }
run_example() { # PROGRAM: the libcurl example fetches a token and calls the mock API
  local body
  body=$(env TOKENWARD_CLIENT_ID=demo-client TOKENWARD_CLIENT_SECRET=demo-secret TOKENWARD_ALLOW_HTTP=1 \
           TOKENWARD_TENANT_CODE=T1 TOKENWARD_API_VERSION=2 \
           timeout 60 "$1" "$mock_url/oauth/token" "$mock_url/api/items" 2> "$out/example.err") \
    || { cat "$out/example.err" >&2; return 1; }
  cat "$out/example.err"; echo "$body"
  grep -q '^HTTP 200$' "$out/example.err" && [[ $body == *'"ok":true'* ]] && [[ $body == *'"tenant_code":"T1"'* ]]
}

pkgconfig_build() {
  local pc=(env PKG_CONFIG_PATH="$prefix/lib/pkgconfig") flags=(-Wall -Wextra -Werror -O2)
  [ "$("${pc[@]}" pkg-config --modversion tokenward)" = "$version" ] || { echo "pkg-config --modversion is not $version" >&2; return 1; }
  echo "pkg-config --cflags --libs tokenward: $("${pc[@]}" pkg-config --cflags --libs tokenward)"
  local libdir; libdir=$("${pc[@]}" pkg-config --variable=libdir tokenward)
  # shellcheck disable=SC2046
  "$CC" -std=c11 "${flags[@]}" "$src/tests/test_tokenward.c" -o "$out/pc_test" \
    $("${pc[@]}" pkg-config --cflags --libs tokenward) -Wl,-rpath,"$libdir" -pthread || return 1
  # Static: the archive by full name (otherwise the linker prefers the .so) and Libs.private.
  # shellcheck disable=SC2046
  "$CC" -std=c11 "${flags[@]}" "$src/tests/test_tokenward.c" -o "$out/pc_test_static" \
    $("${pc[@]}" pkg-config --cflags tokenward) "$libdir/libtokenward.a" \
    $("${pc[@]}" pkg-config --variable=native_static_libs tokenward) -pthread || return 1
  # shellcheck disable=SC2046
  "$CXX" -std=c++17 "${flags[@]}" "$src/tests/test_cpp.cpp" -o "$out/pc_test_cpp" \
    $("${pc[@]}" pkg-config --cflags --libs tokenward) -Wl,-rpath,"$libdir" || return 1
  # shellcheck disable=SC2046
  "$CC" -std=c11 "${flags[@]}" "$src/examples/curl_get.c" -o "$out/pc_curl_get" \
    $("${pc[@]}" pkg-config --cflags --libs tokenward libcurl) -Wl,-rpath,"$libdir" || return 1
  uses_prefix "$out/pc_test" "$prefix" && uses_prefix "$out/pc_curl_get" "$prefix" && is_static "$out/pc_test_static"
}

cmake_version_file() { # find_package honours the version file: 0.1 is found, 0.2 is not
  local dir="$tmp/version-check"
  mkdir -p "$dir" && cat > "$dir/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.13)
project(tokenward_version_check NONE)
find_package(tokenward 0.1 CONFIG REQUIRED)
find_package(tokenward 0.2 CONFIG QUIET)
if(tokenward_FOUND)
  message(FATAL_ERROR "find_package(tokenward 0.2) accepted version ${tokenward_VERSION}")
endif()
message(STATUS "find_package(tokenward 0.1) found ${tokenward_VERSION}; 0.2 refused")
EOF
  cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$moved" > "$dir/log" 2>&1 || { cat "$dir/log" >&2; return 1; }
  grep -- '-- find_package' "$dir/log"
}

cmake_build() {
  cmake -S "$src" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$moved" -DTOKENWARD_C_DIR="$src" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" \
        > "$out/cmake.log" 2>&1 || { cat "$out/cmake.log" >&2; return 1; }
  grep 'tokenward ' "$out/cmake.log"
  cmake --build "$out/cmake" -j 2 > "$out/cmake-build.log" 2>&1 || { cat "$out/cmake-build.log" >&2; return 1; }
  uses_prefix "$out/cmake/test_tokenward" "$moved" && uses_prefix "$out/cmake/curl_get" "$moved" \
    && is_static "$out/cmake/test_tokenward_static"
}

step "install layout and SONAME ($soname)" check_layout
start_mock
echo "mock: $mock_url"
step "pkg-config: build the C tests, the C++ test and the libcurl example from the prefix" pkgconfig_build
[ -x "$out/pc_test" ] && step "pkg-config: C tests, shared library" run_suite "$out/pc_test"
[ -x "$out/pc_test_static" ] && step "pkg-config: C tests, static library" run_suite "$out/pc_test_static"
[ -x "$out/pc_test_cpp" ] && step "pkg-config: C++ test" timeout 60 "$out/pc_test_cpp" "$mock_url"
[ -x "$out/pc_curl_get" ] && step "pkg-config: libcurl example" run_example "$out/pc_curl_get"

# The CMake package finds its prefix from its own location: move the whole prefix.
moved="$tmp/moved-prefix"
mv "$prefix" "$moved" || die "cannot move $prefix"
say "moved the prefix to $moved"
step "CMake: find_package version check" cmake_version_file
step "CMake: build the same programs with tokenward::tokenward / tokenward::tokenward_static" cmake_build
[ -x "$out/cmake/test_tokenward" ] && step "CMake: C tests, shared library" run_suite "$out/cmake/test_tokenward"
[ -x "$out/cmake/test_tokenward_static" ] && step "CMake: C tests, static library" run_suite "$out/cmake/test_tokenward_static"
[ -x "$out/cmake/test_cpp" ] && step "CMake: C++ test" timeout 60 "$out/cmake/test_cpp" "$mock_url"
[ -x "$out/cmake/curl_get" ] && step "CMake: libcurl example" run_example "$out/cmake/curl_get"

cleanup
trap - EXIT
printf '\n'
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
