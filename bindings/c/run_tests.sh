#!/usr/bin/env bash
# C/C++ tests of tokenward's C ABI, against the mock identity provider.
#
#   bash bindings/c/run_tests.sh           build and run every check below
#   bash bindings/c/run_tests.sh --bench   build and run the C hit-path benchmark only
#
# Inputs (environment; defaults in brackets, built with cargo when missing):
#   TOKENWARD_LIBRARY         libtokenward.so  [<repo>/target/release/libtokenward.so]
#   TOKENWARD_STATIC_LIBRARY  libtokenward.a   [<repo>/target/release/libtokenward.a]
#   TOKENWARD_INCLUDE         dir of tokenward.h [<repo>/include]
#   TOKENWARD_MOCK            mock_idp executable [<repo>/target/release/examples/mock_idp]
#   TOKENWARD_NATIVE_STATIC_LIBS  system libraries for static linking; default is what
#       `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`
#       prints on Linux/glibc: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#   CC / CXX                  [gcc / g++]
#
# Checks (each counted in the closing "N passed, M failed" line): the C tests linked
# against the shared library, the same under valgrind (definite leaks and memory errors
# fail), built with -fsanitize=address,undefined (LeakSanitizer on), linked against the
# static library; the C++ translation unit; the libcurl example against the mock API; the
# pkg-config file written by scripts/install.sh. Builds go to bindings/c/out/. Exits non-zero on any failure.
# Missing tools (libcurl headers, valgrind, pkg-config) are installed from Debian.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/out"
mode=test
case "${1:-}" in
  --bench) mode=bench ;;
  "") ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

CC=${CC:-gcc}
CXX=${CXX:-g++}
LIB=${TOKENWARD_LIBRARY:-$root/target/release/libtokenward.so}
STATIC_LIB=${TOKENWARD_STATIC_LIBRARY:-$root/target/release/libtokenward.a}
INCLUDE=${TOKENWARD_INCLUDE:-$root/include}
MOCK=${TOKENWARD_MOCK:-$root/target/release/examples/mock_idp}
NATIVE_STATIC_LIBS=${TOKENWARD_NATIVE_STATIC_LIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}

say() { printf '\n==> %s\n' "$*"; }
die() { echo "run_tests.sh: $*" >&2; exit 1; }

# --- inputs -------------------------------------------------------------------------------
if [ ! -f "$LIB" ] || [ ! -f "$STATIC_LIB" ] || [ ! -x "$MOCK" ] || [ ! -f "$INCLUDE/tokenward.h" ]; then
  if [ -n "${TOKENWARD_LIBRARY:-}${TOKENWARD_STATIC_LIBRARY:-}${TOKENWARD_MOCK:-}" ]; then
    die "TOKENWARD_LIBRARY/STATIC_LIBRARY/MOCK/INCLUDE point at missing files: $LIB $STATIC_LIB $MOCK $INCLUDE"
  fi
  say "building the library and the mock (cargo build --release --lib --example mock_idp)"
  (cd "$root" && cargo build --release --lib --example mock_idp) || die "cargo build failed"
fi
for f in "$LIB" "$STATIC_LIB" "$INCLUDE/tokenward.h"; do [ -f "$f" ] || die "missing $f"; done
[ -x "$MOCK" ] || die "missing mock executable $MOCK"
LIB="$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")"

# --- tools --------------------------------------------------------------------------------
need=()
command -v "$CC" >/dev/null || need+=(gcc)
command -v "$CXX" >/dev/null || need+=(g++)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ "$mode" = test ]; then
  command -v valgrind >/dev/null || need+=(valgrind)
  { command -v pkg-config >/dev/null && pkg-config --exists libcurl; } || need+=(libcurl4-openssl-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get; install them"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

mkdir -p "$out"

# The library's SONAME (libtokenward.so.<ABI>) is what a program linked against it records
# and looks for at run time; cargo's output directory has only libtokenward.so. Link and run
# through a directory holding both names, as an installed copy has them.
LIBDIR="$out/lib"
rm -rf "$LIBDIR" && mkdir -p "$LIBDIR" || die "cannot create $LIBDIR"
ln -s "$LIB" "$LIBDIR/libtokenward.so" || die "cannot link $LIB into $LIBDIR"
soname=$(readelf -d "$LIB" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ -n "$soname" ] && [ "$soname" != libtokenward.so ]; then
  ln -s "$LIB" "$LIBDIR/$soname" || die "cannot link $LIB as $LIBDIR/$soname"
fi

# --- the mock for the steps driven from this script ---------------------------------------
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null; wait "$mock_pid" 2>/dev/null; fi
  mock_pid=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

start_mock() {
  : > "$out/mock.url"
  "$MOCK" --port 0 --lifetime-secs 300 > "$out/mock.url" 2> "$out/mock.log" &
  mock_pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^http' "$out/mock.url" 2>/dev/null; then
      MOCK_URL=$(head -n1 "$out/mock.url")
      return 0
    fi
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out/mock.log" >&2
  die "the mock did not start ($MOCK)"
}

CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -O2 -g -I"$INCLUDE")
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror -pedantic -O2 -g -I"$INCLUDE")
SHARED_LINK=(-L"$LIBDIR" -ltokenward -Wl,-rpath,"$LIBDIR" -pthread)

# --- --bench ------------------------------------------------------------------------------
if [ "$mode" = bench ]; then
  say "building bench_token (-O2, shared library)"
  "$CC" "${CFLAGS[@]}" "$here/bench_token.c" -o "$out/bench_token" "${SHARED_LINK[@]}" || die "build failed"
  start_mock
  say "bench: $out/bench_token $MOCK_URL"
  "$out/bench_token" "$MOCK_URL"
  exit $?
fi

# --- tests --------------------------------------------------------------------------------
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

# Bounded everywhere: each test binary has its own whole-run alarm and kills its mock;
# `timeout` is the outer bound.
check_header() {
  # The header is self-contained, compiles as C99/C11/C17 and C++11/17 on its own and next
  # to the usual system headers (in either order), and declares only tw_/TW_ names.
  local h="$INCLUDE/tokenward.h" std tu
  perl "$here/tests/header_names.pl" < "$h" || return 1
  for std in c99 c11 c17; do
    for tu in '#include "tokenward.h"' \
              '#define _GNU_SOURCE
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tokenward.h"' \
              '#include "tokenward.h"
#include <time.h>
#include <pthread.h>'; do
      printf '%s\n' "$tu" | "$CC" -std=$std -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$INCLUDE" -x c - || return 1
    done
  done
  for std in c++11 c++17; do
    printf '#include <ctime>\n#include <memory>\n#include "tokenward.h"\n' \
      | "$CXX" -std=$std -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$INCLUDE" -x c++ - || return 1
  done
  echo "tokenward.h compiles as C99/C11/C17 and C++11/C++17, alone and with system headers"
}
build_shared() { "$CC" "${CFLAGS[@]}" "$here/tests/test_tokenward.c" -o "$out/test_shared" "${SHARED_LINK[@]}"; }
build_static() {
  "$CC" "${CFLAGS[@]}" "$here/tests/test_tokenward.c" -o "$out/test_static" "$STATIC_LIB" $NATIVE_STATIC_LIBS -pthread \
    || return 1
  if ldd "$out/test_static" | grep -q libtokenward; then
    echo "test_static must not depend on libtokenward.so" >&2; return 1
  fi
}
build_asan() {
  "$CC" "${CFLAGS[@]}" -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    "$here/tests/test_tokenward.c" -o "$out/test_asan" "${SHARED_LINK[@]}"
}
build_cpp() { "$CXX" "${CXXFLAGS[@]}" "$here/tests/test_cpp.cpp" -o "$out/test_cpp" "${SHARED_LINK[@]}"; }
build_example() {
  # shellcheck disable=SC2046
  "$CC" "${CFLAGS[@]}" "$here/examples/curl_get.c" -o "$out/curl_get" "${SHARED_LINK[@]}" $(pkg-config --cflags --libs libcurl)
}
build_bench() { "$CC" "${CFLAGS[@]}" "$here/bench_token.c" -o "$out/bench_token" "${SHARED_LINK[@]}"; }

run_shared() { TOKENWARD_MOCK="$MOCK" timeout 150 "$out/test_shared"; }
run_static() { TOKENWARD_MOCK="$MOCK" timeout 150 "$out/test_static"; }
run_valgrind() {
  # valgrind runs threads one at a time: fewer threads, looser elapsed-time bounds.
  TOKENWARD_MOCK="$MOCK" TW_TEST_THREADS=8 TW_TEST_SLOW=10 timeout 300 \
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite "$out/test_shared"
}
run_asan() {
  # LeakSanitizer stays on. No suppressions are needed today (Rust's thread-local and
  # global allocations are reachable, so LSan does not report them); if a toolchain
  # update changes that, add them to tests/lsan.supp with a comment saying why.
  local supp=""
  [ -f "$here/tests/lsan.supp" ] && supp="suppressions=$here/tests/lsan.supp"
  TOKENWARD_MOCK="$MOCK" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS="$supp" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 timeout 150 "$out/test_asan"
}
run_cpp() { timeout 60 "$out/test_cpp" "$MOCK_URL"; }
mock_admin() { # METHOD PATH [JSON]: talk to the mock's /admin endpoints (bash /dev/tcp)
  local port=${MOCK_URL##*:} body=${3:-} reply
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$1" "$2" "${#body}" "$body" >&3
  reply=$(timeout 10 cat <&3)
  exec 3<&-
  [[ $reply == "HTTP/1.1 200"* ]] || { echo "mock $1 $2: $reply" >&2; return 1; }
  printf '%s\n' "${reply#*$'\r\n\r\n'}"
}
run_example() {
  local body rc stats
  local env=(env TOKENWARD_CLIENT_ID=demo-client TOKENWARD_CLIENT_SECRET=demo-secret TOKENWARD_ALLOW_HTTP=1
             TOKENWARD_TENANT_CODE=T1 TOKENWARD_API_VERSION=2)
  mock_admin POST /admin/reset >/dev/null || return 1
  body=$("${env[@]}" timeout 60 "$out/curl_get" "$MOCK_URL/oauth/token" "$MOCK_URL/api/items" 2> "$out/curl_get.err")
  rc=$?
  cat "$out/curl_get.err"; echo "$body"
  if ! { [ $rc -eq 0 ] && grep -q '^HTTP 200$' "$out/curl_get.err" && [[ $body == *'"ok":true'* ]] \
         && [[ $body == *'"tenant_code":"T1"'* ]] && [[ $body == *'"api_version":"2"'* ]]; }; then
    echo "expected exit 0, HTTP 200 and the mock's ok/tenant_code/api_version echo" >&2; return 1
  fi
  # The API rejects the first token once (401): the example invalidates exactly that token
  # and retries once with a fresh one.
  mock_admin POST /admin/reset >/dev/null && mock_admin POST /admin/fault '{"target":"api","status":401,"count":1}' >/dev/null || return 1
  body=$("${env[@]}" timeout 60 "$out/curl_get" "$MOCK_URL/oauth/token" "$MOCK_URL/api/items" 2> "$out/curl_get.err")
  rc=$?
  stats=$(mock_admin GET /admin/stats) || return 1
  echo "after a 401: exit $rc, $(cat "$out/curl_get.err"), mock stats $stats"
  if ! { [ $rc -eq 0 ] && [[ $stats == *'"token_requests":2'* ]] && [[ $stats == *'"api_requests":2'* ]]; }; then
    echo "expected exit 0 after one invalidate + retry (2 token and 2 API requests)" >&2; return 1
  fi
  # Error handling: a wrong secret exits 1 naming the status, never echoing the secret.
  env TOKENWARD_CLIENT_ID=demo-client TOKENWARD_CLIENT_SECRET=wrong-secret-xyz TOKENWARD_ALLOW_HTTP=1 \
    timeout 60 "$out/curl_get" "$MOCK_URL/oauth/token" "$MOCK_URL/api/items" > /dev/null 2> "$out/curl_get.err"
  rc=$?
  cat "$out/curl_get.err"
  if ! { [ $rc -eq 1 ] && grep -q 'TW_ERR_INVALID_CLIENT' "$out/curl_get.err" && ! grep -q 'wrong-secret-xyz' "$out/curl_get.err"; }; then
    echo "expected exit 1 with TW_ERR_INVALID_CLIENT and no secret in the message" >&2; return 1
  fi
  # A configuration error exits 2 with TW_ERR_CONFIG.
  env -u TOKENWARD_CLIENT_ID -u TOKENWARD_TOKEN_URL timeout 60 "$out/curl_get" "$MOCK_URL/api/items" > /dev/null 2> "$out/curl_get.err"
  rc=$?
  cat "$out/curl_get.err"
  [ $rc -eq 2 ] && grep -q 'TW_ERR_CONFIG' "$out/curl_get.err"
}
check_pkgconfig() {
  # Install the libraries under test into a staging prefix with scripts/install.sh, then
  # build against it. (bindings/c/test_install.sh tests the installed copy in full.)
  local stage="$out/stage" version
  version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
  rm -rf "$stage"
  TOKENWARD_LIBRARY="$LIB" TOKENWARD_STATIC_LIBRARY="$STATIC_LIB" bash "$root/scripts/install.sh" --prefix "$stage" \
    > "$out/install.log" 2>&1 || { cat "$out/install.log" >&2; return 1; }
  local pc=(env PKG_CONFIG_PATH="$stage/lib/pkgconfig")
  echo "pkg-config --cflags --libs tokenward: $("${pc[@]}" pkg-config --cflags --libs tokenward)"
  echo "pkg-config --static --libs tokenward: $("${pc[@]}" pkg-config --static --libs tokenward)"
  [ "$("${pc[@]}" pkg-config --modversion tokenward)" = "$version" ] || return 1
  # shellcheck disable=SC2046
  "$CXX" "${CXXFLAGS[@]}" "$here/tests/test_cpp.cpp" -o "$out/test_cpp_pc" \
    $("${pc[@]}" pkg-config --cflags --libs tokenward) -Wl,-rpath,"$stage/lib" || return 1
  # Static: the archive by full name plus Libs.private.
  # shellcheck disable=SC2046
  "$CXX" "${CXXFLAGS[@]}" "$here/tests/test_cpp.cpp" -o "$out/test_cpp_pc_static" \
    $("${pc[@]}" pkg-config --cflags tokenward) "$("${pc[@]}" pkg-config --variable=libdir tokenward)/libtokenward.a" \
    $("${pc[@]}" pkg-config --variable=native_static_libs tokenward) || return 1
  if ldd "$out/test_cpp_pc_static" | grep -q libtokenward; then echo "static build uses the .so" >&2; return 1; fi
  timeout 60 "$out/test_cpp_pc" "$MOCK_URL" && timeout 60 "$out/test_cpp_pc_static" "$MOCK_URL"
}

echo "library: $LIB"
echo "static:  $STATIC_LIB"
echo "header:  $INCLUDE/tokenward.h"
echo "mock:    $MOCK"

step "header: self-contained, C and C++, only tw_/TW_ names" check_header
step "build: C tests (shared library)" build_shared
step "build: C tests (static library: $NATIVE_STATIC_LIBS)" build_static
step "build: C tests with -fsanitize=address,undefined" build_asan
step "build: C++ translation unit (g++ -std=c++17 -pedantic)" build_cpp
step "build: example curl_get (libcurl)" build_example
step "build: bench_token" build_bench

[ -x "$out/test_shared" ] && step "C tests, shared library" run_shared
[ -x "$out/test_static" ] && step "C tests, static library" run_static
[ -x "$out/test_asan" ] && step "C tests under AddressSanitizer + UBSan + LeakSanitizer" run_asan
[ -x "$out/test_shared" ] && step "C tests under valgrind (memcheck, definite leaks)" run_valgrind

start_mock
echo "mock for the C++/example/pkg-config steps: $MOCK_URL"
[ -x "$out/test_cpp" ] && step "C++ test" run_cpp
[ -x "$out/curl_get" ] && step "example curl_get against $MOCK_URL/api/items" run_example
step "pkg-config: generated tokenward.pc builds and links (shared and static)" check_pkgconfig
cleanup

printf '\n'
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
