#!/usr/bin/env bash
# Installs what the Python and Go SDK tests need, from Debian packages, only when missing.
# Idempotent: with everything present it changes nothing and needs no network.
#   python3 (Debian's /usr/bin/python3) + python3-websockets
#   go (golang-go) + github.com/gorilla/websocket (golang-github-gorilla-websocket-dev)
set -euo pipefail

PY=/usr/bin/python3
GORILLA_DIR=/usr/share/gocode/src/github.com/gorilla/websocket
missing=()

[ -x "$PY" ] || missing+=(python3)
if [ -x "$PY" ] && ! "$PY" -c 'import websockets' 2>/dev/null; then missing+=(python3-websockets); fi
command -v go >/dev/null 2>&1 || [ -x /usr/lib/go/bin/go ] || missing+=(golang-go)
[ -f "$GORILLA_DIR/go.mod" ] || missing+=(golang-github-gorilla-websocket-dev)

if [ ${#missing[@]} -eq 0 ]; then
  echo "sdk deps: all present"
  exit 0
fi

echo "sdk deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "sdk deps: need root (or sudo) to apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "sdk deps: installed ${missing[*]}"
