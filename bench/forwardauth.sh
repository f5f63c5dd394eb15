#!/usr/bin/env bash
# Forward auth, measured: one run of wrk against nginx with `auth_request` in front of a
# fixed upstream (nginx answering `return 200`), asking
#   1. a trivial endpoint: nginx itself, a `map` on the Cookie that answers 204 (the floor:
#      nginx's subrequest machinery and nothing else),
#   2. deskgate's /.deskgate/authz/auth-request, with a signed-in session in the memory
#      store: a host rule decided, every identity header and the JWT answered and copied;
#   3. the HTTP floor: `bench/floor.rs answer`, deskgate's HTTP stack (hyper under axum, the
#      same serving threads) answering what 2 answers with nothing decided.
# Same upstream, same nginx, same cookie. Prints req/s, p50/p99 and the ratios of 2 and 3 to 1.
# A measurement, not a test.
#
#   bash bench/forwardauth.sh [SECONDS] [CONNECTIONS] [--release]
#     (default 10 s, 64 connections, the debug build; --release builds the release profile)
#   WORKERS=N sets deskgate's server.workers (default 1: the two cores are shared with nginx
#   and wrk; WORKERS=default leaves deskgate's own default, a serving thread per core).
#   ROUNDS=N runs the three N times (default 3), one after the other each round, and prints
#   the median of the rounds' ratios. PROFILE=1 samples deskgate with perf while it is asked.
# Needs wrk and nginx (Debian: wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10 conns=64 profile=debug
positional=()
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    ''|*[!0-9]*) echo "usage: bash bench/forwardauth.sh [SECONDS] [CONNECTIONS] [--release]" >&2; exit 2 ;;
    *) positional+=("$arg") ;;
  esac
done
[ "${#positional[@]}" -ge 1 ] && secs=${positional[0]}
[ "${#positional[@]}" -ge 2 ] && conns=${positional[1]}
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "bench/forwardauth.sh: $tool is needed (apt-get install wrk nginx-light curl)" >&2; exit 1; }
done

if [ "$profile" = release ]; then
  cargo build --quiet --release --bin deskgate --example proxy-floor
else
  cargo build --quiet --bin deskgate --example proxy-floor
fi
bin=target/$profile/deskgate
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

up=18181 trivial=18182 dg=18183 via_trivial=18184 via_deskgate=18185 floor=18186 via_floor=18187

workers=${WORKERS:-1}
case $workers in
  default) workers_line="" floor_workers=$(nproc) ;;
  ''|*[!0-9]*) echo "bench/forwardauth.sh: WORKERS is a number or 'default'" >&2; exit 2 ;;
  *) workers_line="workers = $workers" floor_workers=$workers ;;
esac
"$bin" keygen >"$dir/jwt.pem"
cat >"$dir/deskgate.toml" <<TOML
[server]
listen = "127.0.0.1:$dg"
trusted_proxies = ["127.0.0.1"]
$workers_line
[upstream]
url = "http://127.0.0.1:$up"
[storage]
accounts = "sqlite://accounts.db"
[jwt]
key_file = "jwt.pem"
[everyone]
enabled = false
[registered]
permissions = ["portal.view"]
[[rules]]
host = "help.test"
path = "/"
permission = "portal.view"
TOML
echo "bench password 1" | "$bin" accounts add --config "$dir/deskgate.toml" --email bench@example.org --name Bench >/dev/null
RUST_LOG=warn "$bin" serve --config "$dir/deskgate.toml" & pids+=($!)
dg_pid=${pids[0]}
"target/$profile/examples/proxy-floor" "127.0.0.1:$floor" - "$floor_workers" answer & pids+=($!)
floor_pid=${pids[1]}

# Both auth locations copy the same eight headers, so nginx does the same work either way.
copy=""
for h in User Email Email-Verified Name Usergroups Permissions Provider Jwt; do
  var=$(echo "x_deskgate_$h" | tr 'A-Z-' 'a-z_')
  copy="$copy auth_request_set \$dg_$var \$upstream_http_$var; proxy_set_header X-Deskgate-$h \$dg_$var;"
done
# A server asking the auth endpoint at URL (sending EXTRA along) before the upstream.
gated() { # PORT URL [EXTRA]
  cat <<SERVER
  server {
    listen 127.0.0.1:$1;
    location = /_auth { internal; proxy_pass $2; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length ""; ${3:-} }
    location / { auth_request /_auth; $copy
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
SERVER
}
original='proxy_set_header X-Original-URL $scheme://$http_host$request_uri; proxy_set_header X-Original-Method $request_method;'
cat >"$dir/nginx.conf" <<NGINX
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$up; keepalive 128; }
  upstream trivial { server 127.0.0.1:$trivial; keepalive 128; }
  upstream deskgate { server 127.0.0.1:$dg; keepalive 128; }
  upstream floor { server 127.0.0.1:$floor; keepalive 128; }
  map \$http_cookie \$signed_in { ~deskgate_session= 1; default 0; }
  server { listen 127.0.0.1:$up; location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:$trivial; location / { if (\$signed_in) { return 204; } return 401; } }
$(gated $via_trivial http://trivial/)
$(gated $via_deskgate http://deskgate/.deskgate/authz/auth-request "$original")
$(gated $via_floor http://floor/)
}
NGINX
nginx -c "$dir/nginx.conf" -p "$dir"
for port in $dg $floor $up $trivial $via_trivial $via_deskgate $via_floor; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

jar="$dir/jar"
page=$(curl -s -c "$jar" "http://127.0.0.1:$dg/.deskgate/login")
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
curl -s -b "$jar" -c "$jar" -o /dev/null \
  --data-urlencode "username=bench@example.org" --data-urlencode "password=bench password 1" \
  --data-urlencode "csrf=$csrf" "http://127.0.0.1:$dg/.deskgate/login"
cookie=$(awk '$6 == "deskgate_session" { print "deskgate_session=" $7 }' "$jar")
[ -n "$cookie" ] || { echo "bench/forwardauth.sh: sign-in failed" >&2; exit 1; }
for port in $via_trivial $via_deskgate $via_floor; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: help.test" -H "Cookie: $cookie" "http://127.0.0.1:$port/")
  [ "$code" = 200 ] || { echo "bench/forwardauth.sh: port $port answered $code, not 200" >&2; exit 1; }
done

# shellcheck source=bench/cpu.sh
source bench/cpu.sh

results=()
run() { # NAME PORT PID (the auth endpoint's process)
  local out rps p50 p99 non2xx before after reqs
  # shellcheck disable=SC2046
  before="$(cpu $(nginx_pids)) $(cpu "$3")"
  # PROFILE=1: sample deskgate while wrk asks it; the report is printed at the end.
  if [ -n "${PROFILE:-}" ] && [ "$2" = "$via_deskgate" ]; then
    rm -f "$dir/perf.data"
    perf record -q -F 499 -g -p "$dg_pid" -o "$dir/perf.data" -- sleep "$secs" 2>/dev/null &
  fi
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Host: help.test" -H "Cookie: $cookie" "http://127.0.0.1:$2/")
  # shellcheck disable=SC2046
  after="$(cpu $(nginx_pids)) $(cpu "$3")"
  reqs=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
  non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
  [ -z "$non2xx" ] || { echo "bench/forwardauth.sh: $1 answered $non2xx non-2xx responses" >&2; exit 1; }
  rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ { print $2 }')
  p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
  # CPU per request, of nginx (every worker) and of the auth endpoint's process.
  local us
  us=$(awk -v b="$before" -v a="$after" -v t="$tick" -v n="$reqs" 'BEGIN { split(b, x, " "); split(a, y, " ");
    printf "%.1f|%.1f", (y[1] - x[1]) / t / n * 1e6, (y[2] - x[2]) / t / n * 1e6 }')
  results+=("$1|$rps|$p50|$p99|$us")
}
# The machine's speed drifts between runs (other programs, frequency): each round runs the
# three one after the other, and the ratios are taken within each round.
rounds=${ROUNDS:-3}
case $rounds in ''|*[!0-9]*|0) echo "bench/forwardauth.sh: ROUNDS is a positive number" >&2; exit 2 ;; esac
printf '\n%s build, %s s, %s connections, deskgate workers: %s, %s rounds\n' "$profile" "$secs" "$conns" "$workers" "$rounds"
printf '%-5s %-20s %10s %9s %9s %14s %13s %7s\n' "round" "" "req/s" "p50" "p99" "nginx µs/req" "auth µs/req" "ratio"
ratios_dg=() ratios_floor=()
for round in $(seq "$rounds"); do
  results=()
  run "nginx + trivial map" $via_trivial "$(cat "$dir/nginx.pid")"
  run "nginx + deskgate" $via_deskgate "$dg_pid"
  run "nginx + HTTP floor" $via_floor "$floor_pid"
  base=$(echo "${results[0]}" | cut -d'|' -f2)
  for r in "${results[@]}"; do
    IFS='|' read -r name rps p50 p99 ng_us dg_us <<<"$r"
    [ "$name" = "nginx + trivial map" ] && dg_us="(in nginx)"
    ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    printf '%-5s %-20s %10s %9s %9s %14s %13s %7s\n' "$round" "$name" "$rps" "$p50" "$p99" "$ng_us" "$dg_us" "$ratio"
    case $name in
      "nginx + deskgate") ratios_dg+=("$ratio") ;;
      "nginx + HTTP floor") ratios_floor+=("$ratio") ;;
    esac
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\nnginx + deskgate / nginx + trivial map: median %s (rounds: %s)\n' "$(median "${ratios_dg[@]}")" "${ratios_dg[*]}"
printf 'nginx + HTTP floor / nginx + trivial map: median %s (rounds: %s)\n' "$(median "${ratios_floor[@]}")" "${ratios_floor[*]}"
if [ -n "${PROFILE:-}" ] && [ -f "$dir/perf.data" ]; then
  sleep 1
  echo; echo "where deskgate spends its CPU (perf, self time):"
  perf report -i "$dir/perf.data" --stdio --no-children -g none --percent-limit 0.7 --sort dso,symbol 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/ +$//' | cut -c1-150 | head -50
  cp "$dir/perf.data" "${TMPDIR:-/tmp}/deskgate-perf.data" && echo "(perf data kept in ${TMPDIR:-/tmp}/deskgate-perf.data)"
fi
