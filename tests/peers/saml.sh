#!/usr/bin/env bash
# A real SAML 2.0 identity provider (SimpleSAMLphp 1.19, Debian's package) on loopback, for
# deskgate's tests.
#
#   tests/peers/saml.sh start [PORT]   start it on http://127.0.0.1:PORT (default 19480)
#   tests/peers/saml.sh restart        stop and start on the same port
#   tests/peers/saml.sh stop           stop it
#
# Prints the IdP's metadata URL (also its entity id):
#   http://127.0.0.1:PORT/saml2/idp/metadata.php
# Responses carry an emailAddress NameID and basic-format attributes named like OneLogin's:
# email, displayName, memberOf (multi-valued). Signatures are RSA-SHA256 unless said below.
#
# Service providers (deskgate with public URL $SAML_SP_BASE, default http://127.0.0.1:9;
# provider <id> has entity id <base>/.deskgate/saml/<id>/metadata and ACS .../<id>/acs):
#   test               Response and Assertion signed (SAML_SP_ENTITY_ID / SAML_SP_ACS
#                      override this entry's entity id and ACS)
#   assertion-signed   only the Assertion signed
#   response-signed    only the Response signed
#   unsigned           nothing signed
#   sha1               both signed with RSA-SHA1 (which deskgate must refuse)
#   signed-requests    AuthnRequests must be signed with .peers/saml/cert/sp.key (sp.crt)
# People (password "Passw0rd-<local part>"):
#   alice@corp.example.com   memberOf helpdesk-agents, vips
#   bob@corp.example.com     memberOf power-users
#   mallory@evil.example     email (and so NameID) alice@corp.example.com.evil.example
#
# SAML_SP_* are read at start; change them with restart. Everything lives in .peers/saml/
# (config, keys, sessions, log/simplesamlphp.log). Installs
# Debian's simplesamlphp, php-cli, php-xml, php-mbstring, xmlsec1 and openssl when missing
# (as root). The IdP keys are made once and kept, so its metadata stays the same across
# restarts; delete .peers/saml/cert to get new ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC="$ROOT/tests/peers/saml"
DIR="$ROOT/.peers/saml"
WWW=/usr/share/simplesamlphp/www
PACKAGES=(simplesamlphp php-cli php-xml php-mbstring xmlsec1 openssl curl)
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=

say() { echo "saml.sh: $*"; }
die() { echo "saml.sh: error: $*" >&2; exit 1; }

ensure_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "${missing[*]} missing; install them as root: apt-get install ${missing[*]}"
    say "installing ${missing[*]} with apt-get (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    # simplesamlphp depends on a web server (apache2), which Debian would start on port 80;
    # this IdP runs under `php -S` instead, so no service may start during the install.
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && OWN_POLICY=1
        trap 'if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; fi' EXIT
    fi
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q "${missing[@]}" >"$DIR/apt.log" 2>&1 ||
        { tail -20 "$DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed; see $DIR/apt.log"; }
    if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; OWN_POLICY=; fi
    [ -d "$WWW" ] || die "$WWW is missing after installing simplesamlphp"
}

running_pid() {
    local pid
    [ -f "$DIR/server.pid" ] || return 1
    pid=$(tr -dc '0-9' <"$DIR/server.pid")
    [ -n "$pid" ] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == php* ]] || return 1
    echo "$pid"
}

saved_port() {
    [ -f "$DIR/port" ] && tr -dc '0-9' <"$DIR/port"
}

metadata_url() {
    echo "http://127.0.0.1:$1/saml2/idp/metadata.php"
}

# The metadata page answers only once the configuration and the IdP keys are readable.
answers() {
    curl -fsS --max-time 3 "$(metadata_url "$1")" 2>/dev/null | grep -q 'IDPSSODescriptor'
}

make_keys() {
    mkdir -p "$DIR/cert"
    local name subject
    for name in idp sp; do
        [ -s "$DIR/cert/$name.key" ] && [ -s "$DIR/cert/$name.crt" ] && continue
        subject="/CN=deskgate test ${name}"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "$subject" \
            -keyout "$DIR/cert/$name.key" -out "$DIR/cert/$name.crt" >/dev/null 2>&1 ||
            die "openssl could not make the $name key"
    done
    # php -S runs as root here, but keep the keys readable only to their owner anyway.
    chmod 600 "$DIR/cert/"*.key
}

# Copies the configuration and writes what it reads from the environment, so that a start
# with other SAML_SP_* values takes effect.
write_config() {
    local port=$1
    rm -rf "$DIR/config"
    mkdir -p "$DIR/config" "$DIR/log" "$DIR/data" "$DIR/tmp" "$DIR/sessions"
    cp -R "$SRC/." "$DIR/config/"
    php -r '
        [$_, $port, $dir, $base, $entity, $acs, $gateway] = $argv;
        $peer = ["port" => (int) $port, "dir" => $dir, "sp_base" => rtrim($base, "/"),
                 "sp_entity_id" => $entity, "sp_acs" => $acs, "gateway_base" => rtrim($gateway, "/")];
        echo "<?php\n// Written by tests/peers/saml.sh start.\nreturn " . var_export($peer, true) . ";\n";
    ' "$port" "$DIR" "${SAML_SP_BASE:-http://127.0.0.1:9}" "${SAML_SP_ENTITY_ID:-}" "${SAML_SP_ACS:-}" \
        "${SAML_GATEWAY_BASE:-}" \
        >"$DIR/config/peer.php" || die "could not write $DIR/config/peer.php"
    php -l "$DIR/config/peer.php" >/dev/null || die "$DIR/config/peer.php is not valid PHP"
}

cmd_start() {
    local port=${1:-$(saved_port || true)} pid i
    port=${port:-19480}
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, not '$port'"
    mkdir -p "$DIR"
    if pid=$(running_pid); then
        say "already running (pid $pid)"
        say "metadata $(metadata_url "$(saved_port)")"
        return 0
    fi
    ensure_packages
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null &&
        die "something already answers on http://127.0.0.1:$port"
    make_keys
    write_config "$port"
    echo "$port" >"$DIR/port"
    : >"$DIR/server.log"
    SIMPLESAMLPHP_CONFIG_DIR="$DIR/config" setsid php -S "127.0.0.1:$port" -t "$WWW" \
        >>"$DIR/server.log" 2>&1 </dev/null &
    echo $! >"$DIR/server.pid"
    for i in $(seq 1 100); do
        answers "$port" && break
        kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || break
        sleep 0.1
    done
    if ! answers "$port"; then
        tail -20 "$DIR/server.log" >&2
        [ -f "$DIR/log/simplesamlphp.log" ] && tail -20 "$DIR/log/simplesamlphp.log" >&2
        die "no metadata answer on port $port; see $DIR/server.log and $DIR/log/"
    fi
    say "running (pid $(running_pid)), logs $DIR/server.log and $DIR/log/simplesamlphp.log"
    say "metadata $(metadata_url "$port")"
}

cmd_stop() {
    local pid i
    if ! pid=$(running_pid); then
        rm -f "$DIR/server.pid"
        say "not running"
        return 0
    fi
    say "stopping the IdP (pid $pid)"
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
