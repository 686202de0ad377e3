#!/usr/bin/env bash
# Runs the Python and Go SDK test suites against real servers started here:
#   - a plain server (rate limits off), for the main suites;
#   - a strict one (PANTHERS_REQUIRE_SIGNED_REQUESTS=true, a low "other" rate limit), for
#     request signing and RATE_LIMITED retries.
# Needs a built CLI (npm run build, or PANTHERS_CLI=/path/to/dist/bin/panthers.js) and the
# Debian packages of sdk/install-deps.sh. Each suite is bounded by `timeout`.
# Usage: sdk/run-tests.sh [python|go]...   (default: both)
set -euo pipefail
SDK="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$SDK")"
export PANTHERS_CLI="${PANTHERS_CLI:-$ROOT/dist/bin/panthers.js}"
[ -f "$PANTHERS_CLI" ] || { echo "run-tests: no CLI at $PANTHERS_CLI (run npm run build)" >&2; exit 2; }
suites=("$@"); [ ${#suites[@]} -gt 0 ] || suites=(python go)

work="$(mktemp -d "${TMPDIR:-/tmp}/panthers-sdk-tests.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_server <name> [ENV=VALUE...]: starts `panthers serve` (or "${SERVE[@]}"), waits for
# /v1/health; sets URL_<name>.
SERVE=(node "$PANTHERS_CLI" serve)
start_server() {
  local name=$1; shift
  local port dir
  port="$(free_port)"; dir="$work/$name"; mkdir -p "$dir"
  env HOST=127.0.0.1 PORT="$port" PANTHERS_DATA_DIR="$dir" LOG_LEVEL=warn PANTHERS_SCRIPTED_DELAY_MS=0 \
    PANTHERS_PUBLIC_URL="http://127.0.0.1:$port" "$@" "${SERVE[@]}" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    if /usr/bin/python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/v1/health', timeout=1)" 2>/dev/null; then
      printf -v "URL_$name" '%s' "http://127.0.0.1:$port"; printf -v "DIR_$name" '%s' "$dir"; return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  echo "run-tests: server $name did not start:" >&2; cat "$work/$name.log" >&2; return 1
}

# Grace window off: the suites check what a client does when its refresh token is spent (with the
# default 30 s window the immediately previous token is still answered; test/refresh-grace covers it).
start_server main PANTHERS_RATE_LIMITS=off PANTHERS_REFRESH_GRACE_MS=0
start_server strict PANTHERS_REQUIRE_SIGNED_REQUESTS=true PANTHERS_RATE_LIMITS=auth=1000,deployment=1000,chat=1000,other=4
# Remote agents: provider `akash` starts a real `panthers agent` process (agent tokens of 3 s, so
# the suites see the SDK renew them).
SERVE=(node "$SDK/testing/remote-orchestrator.mjs")
start_server remote PANTHERS_RATE_LIMITS=off PANTHERS_AGENT_TOKEN_TTL_SEC=3 PANTHERS_HEALTH_INTERVAL_MS=60000

export PANTHERS_TEST_URL="$URL_main" PANTHERS_TEST_DATA_DIR="$DIR_main"
export PANTHERS_TEST_STRICT_URL="$URL_strict" PANTHERS_TEST_STRICT_DATA_DIR="$DIR_strict"
export PANTHERS_TEST_REMOTE_URL="$URL_remote" PANTHERS_TEST_REMOTE_DATA_DIR="$DIR_remote"
export PANTHERS_TEST_ASSIGN="$SDK/testing/assign-nft.sh" PANTHERS_TEST_MINT="$SDK/testing/mint-expired-token.mjs"

status=0
for suite in "${suites[@]}"; do
  case "$suite" in
    python)
      echo "== Python SDK tests"
      (cd "$SDK/python" && timeout 120 /usr/bin/python3 -m unittest discover -s tests -t . -v) || status=1
      ;;
    go)
      echo "== Go SDK tests"
      # Go modules come from Debian's packages (no module proxy): a throwaway workspace points
      # the SDK's requirements at /usr/share/gocode.
      gowork="$work/go.work"
      gocache="${GOCACHE:-${HOME:+$HOME/.cache/go-build}}"; gocache="${gocache:-$work/gocache}"
      printf 'go 1.19\n\nuse %s\n\nreplace github.com/gorilla/websocket v1.5.0 => /usr/share/gocode/src/github.com/gorilla/websocket\n' "$SDK/go" >"$gowork"
      (cd "$SDK/go" && GOWORK="$gowork" GOPROXY=off GOTOOLCHAIN=local GOCACHE="$gocache" \
        timeout 150 go test -count=1 -v ./... 2>&1) || status=1
      ;;
    *) echo "run-tests: unknown suite $suite" >&2; status=2 ;;
  esac
done
if [ $status -ne 0 ]; then
  echo "run-tests: FAILED (server logs follow)"; tail -n 40 "$work"/*.log || true
fi
exit $status
