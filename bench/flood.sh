#!/usr/bin/env bash
# Floods, measured: each unauthenticated endpoint is flooded for SECONDS from one loopback
# address and then from addresses spread over 127.0.0.0/8, against deskgate with the memory
# session store and then with Redis, and deskgate's resident size (and Redis's used_memory)
# is printed before, after each flood, at the end and after the state has expired.
# A measurement, not a test. Loopback only; every flood is bounded in time and connections.
#
#   bash bench/flood.sh [SECONDS] [--release]     (default 60 s per flood, debug build)
#
# Environment: CONNECTIONS (64), MODES ("memory redis"), ENDPOINTS (all of: login
# oidc-start saml-start signup oidc-callback saml-callback session-cookie oidc-roundtrip),
# REDIS_URL (redis://127.0.0.1:6379), REGISTRATION (approval), WINDOW (the rate-limit
# window, 60s here so that counters expire within the run), EXPIRY_WAIT (seconds waited
# before the "after expiry" reading; default the longer of the window and the 600 s a used
# sign-in state is kept, plus the 60 s sweep plus 10 s), RSS_CAP_MB
# (3072: a flood that takes deskgate's RSS past it is stopped, and the line says so).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

seconds=60
profile=debug
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    ''|*[!0-9]*) echo "usage: bash bench/flood.sh [SECONDS] [--release]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done
connections=${CONNECTIONS:-64}
modes=${MODES:-memory redis}
endpoints=${ENDPOINTS:-login oidc-start saml-start signup oidc-callback saml-callback session-cookie oidc-roundtrip}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
registration=${REGISTRATION:-approval}
window=${WINDOW:-60}
expiry_wait=${EXPIRY_WAIT:-$(((window > 600 ? window : 600) + 70))}
rss_cap_mb=${RSS_CAP_MB:-3072}
target_mb=64

if [ "$seconds" -gt 600 ] || [ "$connections" -gt 512 ]; then
  echo "flood.sh: at most 600 s per flood and 512 connections" >&2
  exit 2
fi

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y -qq "$2" >/dev/null; }; }
need python3 python3
need curl curl
if [[ " $modes " == *" redis "* ]]; then need redis-cli redis-tools; fi

if [ "$profile" = release ]; then
  cargo build --quiet --release --bin deskgate --example flood
else
  cargo build --quiet --bin deskgate --example flood
fi
bin=target/$profile
echo "== deskgate flood benchmark: $profile build, ${seconds}s per flood, $connections connections, registration \"$registration\", rate-limit window ${window}s"

dir=$(mktemp -d)
pids=()
prefix="deskgate-flood-$$:"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ " $modes " == *" redis "* ]]; then
    redis-cli -u "$redis_url" --scan --pattern "$prefix*" | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
redis_used() { redis-cli -u "$redis_url" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
delta() { awk -v k="$1" 'BEGIN { printf "%+.1f", k / 1024 }'; }

stub_port=$(free_port)
"$bin/examples/flood" stubs "127.0.0.1:$stub_port" &
pids+=($!)
wait_port "$stub_port"

python3 - <<'EOF' || { echo "cannot bind 127.1.0.1: spread sources need the whole 127.0.0.0/8 on lo" >&2; exit 1; }
import socket; s = socket.socket(); s.bind(("127.1.0.1", 0))
EOF

# One deskgate per endpoint, so each flood's figures are its own (and one that blows up
# spoils no other): started fresh, flooded from one address and then from many, then left
# idle until every state it can hold has expired, when its RSS is read again.
start_gate() {
  local mode=$1 port sessions d
  port=$(free_port)
  case $mode in
    memory) sessions='sessions = "memory"' ;;
    redis) sessions="sessions = \"$redis_url\"
redis_prefix = \"$prefix\"" ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  d="$dir/$mode-$2"
  mkdir -p "$d"
  cat >"$d/deskgate.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"

[upstream]
url = "http://127.0.0.1:$stub_port"

[storage]
accounts = "sqlite://accounts.db"
$sessions

[registration]
mode = "$registration"

[rate_limit]
window = "${window}s"

[everyone]
enabled = true
permissions = ["portal.view"]

[[rules]]
path = "/"
permission = "portal.view"

[providers.oidc.flood]
issuer = "http://127.0.0.1:$stub_port"
client_id = "flood"
client_secret_env = "FLOOD_OIDC_SECRET"

[providers.saml.flood]
idp_metadata_file = "$repo/providers/saml/fuzz/seeds/metadata/simplesamlphp.xml"
EOF
  FLOOD_OIDC_SECRET=flood-secret RUST_LOG=warn "$bin/deskgate" serve --config "$d/deskgate.toml" \
    >"$d/deskgate.log" 2>&1 &
  gate=$!
  pids+=("$gate")
  wait_port "$port"
  base="http://127.0.0.1:$port"
  # Warm up: discovery, metadata, the first page of each kind.
  for path in /.deskgate/login /.deskgate/register /.deskgate/oidc/flood/start /.deskgate/saml/flood/start /; do
    curl -s -o /dev/null "$base$path"
  done
  sleep 2
}

declare -A summary
for mode in $modes; do
  echo
  echo "== $mode mode"
  redis_first=$([ "$mode" = redis ] && redis_used || echo 0)
  declare -A gates=() befores=() ends=() capped=()
  for endpoint in $endpoints; do
    start_gate "$mode" "$endpoint"
    gates[$endpoint]=$gate
    before=$(rss_kb "$gate")
    befores[$endpoint]=$before
    redis_before=$([ "$mode" = redis ] && redis_used || echo 0)
    echo "  $endpoint: deskgate pid $gate, RSS before $(mb "$before") MB"
    for sources in one many; do
      "$bin/examples/flood" run "$base" "$endpoint" "$seconds" "$connections" "$sources" >"$dir/run.out" &
      runner=$!
      # A guard for the shared machine: a flood that takes deskgate past the cap is
      # stopped, and that deskgate with it.
      while kill -0 "$runner" 2>/dev/null; do
        if [ "$(rss_kb "$gate")" -gt $((rss_cap_mb * 1024)) ]; then
          capped[$endpoint]=1
          ends[$endpoint]=$(rss_kb "$gate")
          kill "$runner" 2>/dev/null || true
        fi
        sleep 0.5
      done
      wait "$runner" 2>/dev/null || true
      if [ -n "${capped[$endpoint]:-}" ]; then
        echo "    from $sources address(es): STOPPED, RSS $(mb "${ends[$endpoint]}") MB passed the ${rss_cap_mb} MB cap"
        kill "$gate"
        wait "$gate" 2>/dev/null || true
        break
      fi
      sed 's/^/    /' "$dir/run.out"
      now=$(rss_kb "$gate")
      line="      RSS $(mb "$now") MB ($(delta $((now - before))) MB)"
      if [ "$mode" = redis ]; then line="$line, Redis used_memory $(delta $((($(redis_used) - redis_before) / 1024))) MB"; fi
      echo "$line"
    done
    if [ -z "${capped[$endpoint]:-}" ]; then ends[$endpoint]=$(rss_kb "$gate"); fi
  done
  redis_end=$([ "$mode" = redis ] && redis_used || echo 0)
  echo "  waiting ${expiry_wait}s for the state to expire (rate-limit window ${window}s, used sign-in states 600 s, 60 s sweep)…"
  sleep "$expiry_wait"
  redis_after=$([ "$mode" = redis ] && redis_used || echo 0)
  echo
  echo "  | $mode mode | RSS before | at the end | growth | after expiry | +${target_mb} MB target |"
  echo "  | --- | ---: | ---: | ---: | ---: | --- |"
  missed=0
  for endpoint in $endpoints; do
    b=${befores[$endpoint]} e=${ends[$endpoint]}
    if [ -n "${capped[$endpoint]:-}" ]; then
      after="(stopped)" verdict="MISSED (over the ${rss_cap_mb} MB cap)"
    else
      after="$(mb "$(rss_kb "${gates[$endpoint]}")") MB"
      verdict=$([ $((e - b)) -le $((target_mb * 1024)) ] && echo met || echo MISSED)
      kill "${gates[$endpoint]}"
      wait "${gates[$endpoint]}" 2>/dev/null || true
    fi
    [ "${verdict%% *}" = met ] || missed=$((missed + 1))
    echo "  | $endpoint | $(mb "$b") MB | $(mb "$e") MB | $(delta $((e - b))) MB | $after | $verdict |"
  done
  summary[$mode]="RSS target missed by $missed of $(echo $endpoints | wc -w) endpoints"
  if [ "$mode" = redis ]; then
    rgrowth=$(((redis_end - redis_first) / 1024))
    rverdict=$([ "$rgrowth" -le $((target_mb * 1024)) ] && echo met || echo MISSED)
    echo "  Redis used_memory: before $(mb $((redis_first / 1024))) MB, after every flood $(mb $((redis_end / 1024))) MB ($(delta "$rgrowth") MB), after expiry $(mb $((redis_after / 1024))) MB — target +$target_mb MB: $rverdict"
    echo "  (used_memory is the whole Redis server's: other clients' keys move it too)"
    summary[$mode]="${summary[$mode]}; Redis $(delta "$rgrowth") MB ($rverdict)"
  fi
  unset gates befores ends capped
done

echo
echo "== summary ($profile build, ${seconds}s per flood):"
for mode in $modes; do echo "  $mode: ${summary[$mode]}"; done
