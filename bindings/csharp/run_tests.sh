#!/usr/bin/env bash
# C# binding tests (Mono: mcs + mono) against the mock identity provider.
#
#   bash bindings/csharp/run_tests.sh            build the library, the tests and the benchmark; run the tests
#   bash bindings/csharp/run_tests.sh --bench [hit|window]
#                                                build, then run the GetToken() benchmarks only: the
#                                                memo hit path, the refresh-window scenario, or both
#   bash bindings/csharp/run_tests.sh -- NAME    run only the tests whose name contains NAME
#
# Inputs (environment; defaults in brackets, built with cargo when missing):
#   TOKENWARD_LIBRARY  libtokenward.so     [<repo>/target/release/libtokenward.so]
#   TOKENWARD_MOCK     mock_idp executable [<repo>/target/release/examples/mock_idp]
#
# Builds go to bindings/csharp/out/ (the library is compiled with -warnaserror and its XML
# docs, so an undocumented public member fails the build); libtokenward.so is copied next to
# Tokenward.dll, where Mono's DllImport("tokenward") finds it. One mock (127.0.0.1, free
# port, 300 s lifetime) serves the run and is killed on exit; the test runner resets it
# before each test. Mono, mcs, System.Net.Http and gcc (the ABI-check tests build shim
# libraries with it) are installed from Debian when missing.
# Ends with the runner's "N passed, M failed" line; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/out"
mode=test
filter=()
bench=all
case "${1:-}" in
  --bench) mode=bench; bench=${2:-all} ;;
  --) filter=("${2:-}") ;;
  "") ;;
  *) echo "usage: $0 [--bench [hit|window] | -- TEST_NAME_PART]" >&2; exit 2 ;;
esac
case "$bench" in
  hit|window|all) ;;
  *) echo "usage: $0 [--bench [hit|window] | -- TEST_NAME_PART]" >&2; exit 2 ;;
esac

LIB=${TOKENWARD_LIBRARY:-$root/target/release/libtokenward.so}
MOCK=${TOKENWARD_MOCK:-$root/target/release/examples/mock_idp}

say() { printf '\n==> %s\n' "$*"; }
die() { echo "run_tests.sh: $*" >&2; exit 1; }

# --- inputs -------------------------------------------------------------------------------
if [ ! -f "$LIB" ] || [ ! -x "$MOCK" ]; then
  if [ -n "${TOKENWARD_LIBRARY:-}${TOKENWARD_MOCK:-}" ]; then
    die "TOKENWARD_LIBRARY/TOKENWARD_MOCK point at missing files: $LIB $MOCK"
  fi
  say "building the library and the mock (cargo build --release --lib --example mock_idp)"
  (cd "$root" && cargo build --release --lib --example mock_idp) || die "cargo build failed"
fi
[ -f "$LIB" ] || die "missing $LIB"
[ -x "$MOCK" ] || die "missing mock executable $MOCK"

# --- tools --------------------------------------------------------------------------------
net_http() { [ -f /usr/lib/mono/4.5/System.Net.Http.dll ] || ls /usr/lib/mono/gac/System.Net.Http/*/System.Net.Http.dll >/dev/null 2>&1; }
need=()
command -v mcs >/dev/null || need+=(mono-mcs)
command -v mono >/dev/null || need+=(mono-runtime)
command -v gcc >/dev/null || need+=(gcc libc6-dev)   # the library tests build a shim libtokenward.so
net_http || need+=(libmono-system-net-http4.0-cil)
if [ ${#need[@]} -gt 0 ]; then
  # The rest of what the code uses (corlib, System, System.Core) comes with these.
  need+=(libmono-system4.0-cil libmono-system-core4.0-cil)
  say "installing ${need[*]} (apt-get)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get; install Mono (mcs, mono, System.Net.Http)"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
net_http || die "System.Net.Http.dll for Mono is still missing"

# --- build --------------------------------------------------------------------------------
rm -rf "$out" && mkdir -p "$out" || die "cannot create $out"
cp "$LIB" "$out/libtokenward.so" || die "cannot copy $LIB"
MCS=(mcs -langversion:7 -warnaserror -debug -nologo -r:System.Net.Http.dll)
say "mcs: Tokenward.dll, Tokenward.Tests.exe, Tokenward.Bench.exe"
"${MCS[@]}" -target:library -d:TRACE -doc:"$out/Tokenward.xml" -out:"$out/Tokenward.dll" "$here"/src/Tokenward/*.cs \
  || die "the library does not compile"
"${MCS[@]}" -target:exe -r:"$out/Tokenward.dll" -out:"$out/Tokenward.Tests.exe" "$here"/tests/*.cs || die "the tests do not compile"
"${MCS[@]}" -target:exe -optimize+ -r:"$out/Tokenward.dll" -out:"$out/Tokenward.Bench.exe" "$here"/bench/*.cs || die "the benchmark does not compile"

# --- the mock -----------------------------------------------------------------------------
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null; wait "$mock_pid" 2>/dev/null; fi
  mock_pid=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

"$MOCK" --port 0 --lifetime-secs 300 > "$out/mock.url" 2> "$out/mock.log" &
mock_pid=$!
MOCK_URL=""
for _ in $(seq 1 100); do
  if grep -q '^http' "$out/mock.url" 2>/dev/null; then MOCK_URL=$(head -n1 "$out/mock.url"); break; fi
  kill -0 "$mock_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$MOCK_URL" ] || { cat "$out/mock.log" >&2; die "the mock did not start ($MOCK)"; }
echo "mock: $MOCK_URL (pid $mock_pid)"

export TOKENWARD_MOCK_URL="$MOCK_URL"
export TOKENWARD_REPO="$root"   # the version test reads Cargo.toml and Tokenward.csproj
# Mono resolves DllImport("tokenward") next to the assembly; LD_LIBRARY_PATH is the fallback.
export LD_LIBRARY_PATH="$out${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "$mode" = bench ]; then
  say "bench: mono --optimize=all Tokenward.Bench.exe $bench"
  timeout -k 5 180 mono --optimize=all "$out/Tokenward.Bench.exe" "$MOCK_URL" "$bench"
  exit $?
fi

say "tests: mono Tokenward.Tests.exe"
timeout -k 5 190 mono --debug "$out/Tokenward.Tests.exe" "${filter[@]}" | tee "$out/tests.log"
rc=${PIPESTATUS[0]}
tail -n1 "$out/tests.log" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$' || { echo "0 passed, 1 failed (the runner did not finish: exit $rc)"; exit 1; }
exit "$rc"
