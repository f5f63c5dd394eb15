#!/usr/bin/env bash
# A real OpenID Connect provider (npm oidc-provider 9) on loopback, for deskgate's tests.
#
#   tests/peers/oidc.sh start [PORT]   start it on http://127.0.0.1:PORT (default 19380)
#   tests/peers/oidc.sh restart        stop and start on the same port: new signing keys
#   tests/peers/oidc.sh stop           stop it
#
# Prints the issuer URL. Clients (secret "deskgate-test-secret", redirect URI
# http://127.0.0.1:9/callback; override with OIDC_CLIENT_SECRET / OIDC_REDIRECT_URIS):
#   deskgate-test (ID tokens RS256), deskgate-test-es256, deskgate-test-eddsa
# People (password "Passw0rd-<local part>"):
#   alice@corp.example.com   hd corp.example.com, groups [helpdesk-agents, vips]
#   bob@gmail.example        a personal account: no hd, no groups
#   carol@corp.example.com   email_verified false
#   dave@other.example.com   hd other.example.com, groups "other-staff" (a single string)
#   erin@corp.example.com    groups [helpdesk-agents]; her ID tokens carry amr [pwd, otp, mfa]
# Test controls (POST): /test/groups?email=E&group=G… sets a person's groups, /test/revoke?email=E
# destroys their grants (refreshes then get invalid_grant), /test/outage?on=1|0 answers every
# other request 503 while on.
# Needs Node.js 20 or later and npm; installs the locked packages with `npm ci` when
# node_modules is missing. Runs as any user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC="$ROOT/tests/peers/oidc"
DIR="$ROOT/.peers/oidc"

say() { echo "oidc.sh: $*"; }
die() { echo "oidc.sh: error: $*" >&2; exit 1; }

running_pid() {
    local pid
    [ -f "$DIR/server.pid" ] || return 1
    pid=$(tr -dc '0-9' <"$DIR/server.pid")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = node ] || return 1
    echo "$pid"
}

saved_port() {
    [ -f "$DIR/port" ] && tr -dc '0-9' <"$DIR/port"
}

answers() {
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$1/.well-known/openid-configuration" 2>/dev/null
}

ensure_packages() {
    command -v node >/dev/null || die "node is missing (apt-get install nodejs npm, Node 20 or later)"
    command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
    command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
    [ -d "$SRC/node_modules/oidc-provider" ] && return 0
    say "installing the locked packages with npm ci"
    (cd "$SRC" && npm ci --no-audit --no-fund --loglevel=error) >"$DIR/npm.log" 2>&1 ||
        { tail -20 "$DIR/npm.log" >&2; die "npm ci failed; see $DIR/npm.log"; }
}

cmd_start() {
    local port=${1:-$(saved_port || true)} pid i
    port=${port:-19380}
    if pid=$(running_pid); then
        say "already running (pid $pid)"
        say "issuer http://127.0.0.1:$(saved_port)"
        return 0
    fi
    answers "$port" && die "something already answers on http://127.0.0.1:$port"
    mkdir -p "$DIR"
    ensure_packages
    echo "$port" >"$DIR/port"
    : >"$DIR/server.log"
    setsid node "$SRC/server.mjs" "$port" >>"$DIR/server.log" 2>&1 </dev/null &
    echo $! >"$DIR/server.pid"
    # A cold start (packages just installed, a busy machine) can take many seconds.
    for i in $(seq 1 600); do
        answers "$port" && break
        kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || break
        sleep 0.1
    done
    answers "$port" || { kill "$(cat "$DIR/server.pid")" 2>/dev/null; tail -20 "$DIR/server.log" >&2; die "no discovery answer on port $port; see $DIR/server.log"; }
    say "running (pid $(running_pid)), log $DIR/server.log"
    say "issuer http://127.0.0.1:$port"
}

cmd_stop() {
    local pid i
    if ! pid=$(running_pid); then
        say "not running"
        return 0
    fi
    say "stopping the provider (pid $pid)"
    kill "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "it did not stop within 10 s; killing it"
        kill -9 "$pid"
    fi
    rm -f "$DIR/server.pid"
    say "stopped"
}

case "${1:-}" in
start) cmd_start "${2:-}" ;;
stop) cmd_stop ;;
restart)
    cmd_stop
    cmd_start
    ;;
*)
    echo "usage: $0 start [PORT] | restart | stop" >&2
    exit 2
    ;;
esac
