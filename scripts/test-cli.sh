#!/usr/bin/env bash
# End-to-end test of the `tokenward` command line against the mock identity provider, the way
# a shell script uses it: token, headers, request, inspect and doctor, their --json output
# read back by a JSON tool (jq when installed, else python3), and their exit statuses.
#
#   bash scripts/test-cli.sh
#
# Uses $TOKENWARD_BIN and $TOKENWARD_MOCK when set; otherwise builds both (release). Needs
# bash and python3 (for the mock's admin calls, and as the JSON tool when jq is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${TOKENWARD_BIN:-}" || -z "${TOKENWARD_MOCK:-}" ]]; then
  cargo build --release --quiet --bin tokenward --example mock_idp
fi
tw=${TOKENWARD_BIN:-$PWD/target/release/tokenward}
mock=${TOKENWARD_MOCK:-$PWD/target/release/examples/mock_idp}

work=$(mktemp -d)
mock_pid=
cleanup() {
  if [[ -n "$mock_pid" ]]; then kill "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Read one field of a JSON document on stdin (a jq path such as .a.b). JSON_TOOL=python3
# forces the fallback.
if [[ "${JSON_TOOL:-}" != python3 ]] && command -v jq >/dev/null 2>&1; then
  field() { jq -er "$1"; }
  json_tool=jq
else
  field() {
    python3 -c 'import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].strip(".").split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if isinstance(value, str) else json.dumps(value))' "$1"
  }
  json_tool="python3 -m json.tool"
fi
valid_json() { $json_tool >/dev/null; }

failures=0
pass() { printf '  ok   %s\n' "$1"; }
fail() { printf '  FAIL %s\n' "$1"; failures=$((failures + 1)); }
check() { # check NAME COMMAND...: the command must succeed
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
expect_status() { # expect_status NAME STATUS COMMAND...
  local name=$1 want=$2; shift 2
  local got=0
  "$@" >"$work/out" 2>"$work/err" || got=$?
  if [[ $got -eq $want ]]; then pass "$name (exit $got)"; else
    fail "$name: exit $got, expected $want"; sed 's/^/       /' "$work/err" >&2
  fi
}

"$mock" --lifetime-secs 300 >"$work/url" &
mock_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$work/url" ]] && break
  sleep 0.05
done
base=$(head -n 1 "$work/url")
[[ "$base" == http://127.0.0.1:* ]] || { echo "the mock did not start" >&2; exit 1; }
admin() { python3 -c 'import sys, urllib.request
r = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                           headers={"Content-Type": "application/json"})
urllib.request.urlopen(r).read()' "$base/admin/$1" "${2:-{\}}"; }

export TOKENWARD_TOKEN_URL="$base/oauth/token"
export TOKENWARD_CLIENT_ID=demo-client
export TOKENWARD_CLIENT_SECRET=demo-secret
export TOKENWARD_SCOPE=EventsApi
export TOKENWARD_TENANT_CODE=T1
export TOKENWARD_API_VERSION=2
export TOKENWARD_ALLOW_HTTP=true
unset ALL_PROXY all_proxy HTTPS_PROXY https_proxy HTTP_PROXY http_proxy NO_PROXY no_proxy TOKENWARD_ENVIRONMENT || true

echo "tokenward command line against $base (JSON tool: $json_tool)"

# token
token=$("$tw" token)
check "token prints a JWT" test "$(tr -cd . <<<"$token")" = ".."
"$tw" token --json >"$work/token.json"
check "token --json is JSON" valid_json <"$work/token.json"
check "token --json: token_type Bearer" test "$(field .token_type <"$work/token.json")" = Bearer
check "token --json: scope" test "$(field .scope <"$work/token.json")" = EventsApi
check "token --json: expires_in > 0" test "$(field .expires_in <"$work/token.json")" -gt 0
status=$(python3 -c 'import sys, urllib.request
r = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2],
                           "tenant-code": "T1", "api-version": "2"})
print(urllib.request.urlopen(r).status)' "$base/api/items" "$token")
check "the printed token works against the API" test "$status" = 200

# headers
"$tw" headers >"$work/headers"
check "headers: Authorization first" bash -c "head -n 1 '$work/headers' | grep -q '^Authorization: Bearer [^ ]*$'"
check "headers: static headers in order" bash -c "tail -n 2 '$work/headers' | tr '\n' '|' | grep -qx 'tenant-code: T1|api-version: 2|'"
"$tw" --json headers >"$work/headers.json"
check "headers --json is JSON" valid_json <"$work/headers.json"
check "headers --json: tenant-code" test "$(field '.["tenant-code"]' <"$work/headers.json" 2>/dev/null || field .tenant-code <"$work/headers.json")" = T1
check "headers --json: Authorization" bash -c "grep -q '\"Authorization\":\"Bearer ' '$work/headers.json'"

# request
"$tw" request "$base/api/items?page=2" >"$work/get.json"
check "request GET prints the body" test "$(field .ok <"$work/get.json")" = true
check "request GET: query and tenant" test "$(field .query <"$work/get.json")/$(field .tenant_code <"$work/get.json")" = "page=2/T1"
printf '{"order":42}' >"$work/body.json"
"$tw" request -X PUT -H 'Content-Type: application/json' -d @"$work/body.json" "$base/api/orders/7" >"$work/put.json"
check "request -X PUT -d @file" test "$(field .method <"$work/put.json") $(field .body <"$work/put.json")" = 'PUT {"order":42}'
echo 'from stdin' | "$tw" request -d @- "$base/api/notes" >"$work/post.json"
check "request -d @- posts standard input" test "$(field .method <"$work/post.json")" = POST
"$tw" request -i "$base/api/items" >"$work/include"
check "request -i prints the status line first" bash -c "head -n 1 '$work/include' | grep -qx 'HTTP 200'"
"$tw" request --json "$base/api/items" >"$work/request.json"
check "request --json is JSON" valid_json <"$work/request.json"
check "request --json: status" test "$(field .status <"$work/request.json")" = 200
check "request --json: body" bash -c "grep -q '\\\\\"ok\\\\\":true' '$work/request.json'"
admin revoke
"$tw" request "$base/api/items" >"$work/after-revoke.json"
check "request recovers from a 401 with one refresh" test "$(field .ok <"$work/after-revoke.json")" = true
expect_status "request: 403 is the API refusing the token" 9 "$tw" request "$base/api/forbidden"
expect_status "request: HTTP 404 is status 11" 11 "$tw" request "$base/nowhere"
admin fault '{"target":"api","status":503,"body":"down"}'
expect_status "request: HTTP 503 is status 12" 12 "$tw" request -X POST "$base/api/items"

# inspect
"$tw" inspect >"$work/inspect"
check "inspect describes the token" grep -q '^fingerprint  [0-9a-f]\{8\} (Bearer)$' "$work/inspect"
check "inspect shows the JWT claims" grep -q "^iss          $base$" "$work/inspect"
check "inspect never prints the token" bash -c "! grep -q 'eyJ' '$work/inspect'"
"$tw" inspect --json >"$work/inspect.json"
check "inspect --json is JSON" valid_json <"$work/inspect.json"
check "inspect --json: jwt.iss" test "$(field .jwt.iss <"$work/inspect.json")" = "$base"
check "inspect --json: granted scope" test "$(field .granted_scope <"$work/inspect.json")" = EventsApi
check "inspect --json never has the token" bash -c "! grep -q 'eyJ' '$work/inspect.json'"

# doctor
expect_status "doctor on a working setup" 0 "$tw" doctor --probe "$base/api/items"
check "doctor: verdict line" grep -q '^verdict: ✓ all 8 checks passed$' "$work/out"
"$tw" doctor --json >"$work/doctor.json"
check "doctor --json is JSON" valid_json <"$work/doctor.json"
check "doctor --json: ok" test "$(field .ok <"$work/doctor.json")" = true

# other sources: a JSON file, and the Cognito-style .env with --prefix API_
cat >"$work/config.json" <<EOF
{"token_url": "$base/oauth/token", "client_id": "demo-client", "client_secret": "demo-secret",
 "allow_http": true, "environments": {"sandbox": {"scope": "sandbox.read"}}}
EOF
check "--config FILE" bash -c "'$tw' --config '$work/config.json' token | grep -q '\\.'"
check "TOKENWARD_ENVIRONMENT chooses an environment" test \
  "$(TOKENWARD_ENVIRONMENT=sandbox "$tw" --config "$work/config.json" inspect --json | field .granted_scope)" = sandbox.read
check "--prefix API_ with a bare AUTH_URL" test "$(env -i PATH="$PATH" API_CLIENT_ID=demo-client \
  API_CLIENT_SECRET=demo-secret API_SCOPE=EventsApi API_BASE_URL="$base" AUTH_URL="$base/oauth/token" \
  API_ALLOW_HTTP=true "$tw" --prefix API_ inspect --json | field .granted_scope)" = EventsApi

# failures: statuses and messages
expect_status "wrong secret: status 6" 6 env TOKENWARD_CLIENT_SECRET=wr0ng-s3cret "$tw" token
check "wrong secret: the message names invalid_client" grep -q 'invalid_client' "$work/err"
check "wrong secret: the secret is not printed" bash -c "! grep -q wr0ng-s3cret '$work/err'"
expect_status "wrong secret --json: status 6" 6 env TOKENWARD_CLIENT_SECRET=wr0ng-s3cret "$tw" token --json
check "wrong secret --json: the error is JSON" test "$(field .error.kind <"$work/err")" = invalid_client
expect_status "no configuration: status 3" 3 env -i PATH="$PATH" "$tw" token
expect_status "an unknown command: status 2" 2 "$tw" tokens
expect_status "an unknown option: status 2" 2 "$tw" token --jsno
expect_status "doctor with a wrong secret: status 6" 6 env TOKENWARD_CLIENT_SECRET=wr0ng-s3cret "$tw" doctor
check "doctor with a wrong secret: verdict" grep -q '^verdict: ✗ token request: ' "$work/out"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "All command-line checks passed."
