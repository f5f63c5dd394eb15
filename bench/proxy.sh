#!/usr/bin/env bash
# The hot path, measured: one run of wrk against each of
#   1. the upstream alone (nginx answering `return 200`),
#   2. nginx as a plain reverse proxy in front of it,
#   3. deskgate with a signed-in session in the memory store,
#   4. deskgate with the session in Redis,
# with deskgate checking a rule and injecting the identity headers and JWT on every
# request; and, to tell the gate's cost from the transport's, deskgate's upstream client
# behind a bare server (bench/floor.rs: no session, rule, headers or JWT), and the same
# bare server over a minimal per-thread hyper HTTP/1 client instead of the pooled one. Prints req/s, p50/p99 latency and CPU per request, each as a ratio to the nginx
# proxy. A measurement, not a test.
#
#   bash bench/proxy.sh [SECONDS] [CONNECTIONS]     (default 10 s, 64 connections)
# Needs wrk and nginx (Debian: wrk nginx-light), Redis on 127.0.0.1:6379, and builds
# deskgate with the release profile.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench/proxy.sh: $tool is needed (apt-get install wrk nginx-light)" >&2; exit 1; }
done

cargo build --quiet --release --bin deskgate --example proxy-floor
bin=target/release/deskgate
floor_bin=target/release/examples/proxy-floor
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

up=18081 px=18082 mem=18083 red=18084 flo=18085 bare=18086
cat >"$dir/nginx.conf" <<NGINX
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$up; location / { return 200 "ok\n"; } }
  server {
    listen 127.0.0.1:$px;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
NGINX
nginx -c "$dir/nginx.conf" -p "$dir"

config() { # PORT SESSIONS
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
[upstream]
url = "http://127.0.0.1:$up"
[storage]
accounts = "sqlite://accounts.db"
sessions = "$2"
redis_prefix = "deskgate-bench:"
[jwt]
key_file = "jwt.pem"
[everyone]
enabled = false
[registered]
permissions = ["portal.view"]
[[rules]]
path = "/"
permission = "portal.view"
TOML
}
"$bin" keygen >"$dir/jwt.pem"
config "$mem" memory | grep -v redis_prefix >"$dir/memory.toml"
config "$red" redis://127.0.0.1:6379 >"$dir/redis.toml"
echo "bench password 1" | "$bin" accounts add --config "$dir/memory.toml" --email bench@example.org --name Bench >/dev/null

RUST_LOG=warn "$bin" serve --config "$dir/memory.toml" & pids+=($!)
RUST_LOG=warn "$bin" serve --config "$dir/redis.toml" & pids+=($!)
"$floor_bin" "127.0.0.1:$flo" "http://127.0.0.1:$up" "$(nproc)" & pids+=($!)
"$floor_bin" "127.0.0.1:$bare" "http://127.0.0.1:$up" "$(nproc)" conn & pids+=($!)
mem_pid=${pids[0]} red_pid=${pids[1]} floor_pid=${pids[2]} bare_pid=${pids[3]}
for port in $mem $red $up $px $flo $bare; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

signin() { # PORT -> session cookie
  local jar="$dir/jar.$1" page csrf
  page=$(curl -s -c "$jar" "http://127.0.0.1:$1/.deskgate/login")
  csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
  curl -s -b "$jar" -c "$jar" -o /dev/null \
    --data-urlencode "username=bench@example.org" --data-urlencode "password=bench password 1" \
    --data-urlencode "csrf=$csrf" "http://127.0.0.1:$1/.deskgate/login"
  awk '$6 == "deskgate_session" { print "deskgate_session=" $7 }' "$jar"
}
idle_rss=$(awk '/VmRSS/ { print $2 }' /proc/"$mem_pid"/status)
mem_cookie=$(signin $mem)
red_cookie=$(signin $red)
[ -n "$mem_cookie" ] && [ -n "$red_cookie" ] || { echo "bench/proxy.sh: sign-in failed" >&2; exit 1; }
curl -sf -H "Cookie: $mem_cookie" "http://127.0.0.1:$mem/" >/dev/null || { echo "bench/proxy.sh: the signed-in request failed" >&2; exit 1; }

# shellcheck source=bench/cpu.sh
source bench/cpu.sh

results=()
run() { # NAME PORT COOKIE PIDS...
  local name=$1 port=$2 cookie=$3; shift 3
  local before after out
  before=$(cpu "$@")
  # PROFILE=1: sample deskgate's memory mode while wrk runs; the report is printed at the end.
  if [ -n "${PROFILE:-}" ] && [ "$port" = "$mem" ]; then
    perf record -q -F 499 -g -p "$1" -o "$dir/perf.data" -- sleep "$secs" 2>/dev/null &
  fi
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$port/")
  after=$(cpu "$@")
  local rps p50 p99 reqs
  rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ { print $2 }')
  reqs=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
  p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
  local non2xx
  non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
  [ -z "$non2xx" ] || { echo "bench/proxy.sh: $name answered $non2xx non-2xx responses" >&2; exit 1; }
  local cpu_us
  cpu_us=$(awk -v c=$((after - before)) -v t="$tick" -v n="$reqs" 'BEGIN { printf "%.1f", c / t / n * 1e6 }')
  results+=("$name|$rps|$p50|$p99|$cpu_us")
}

ng=$(nginx_pids)
# shellcheck disable=SC2086
run "upstream alone" $up "" $ng
# shellcheck disable=SC2086
run "nginx proxy" $px "" $ng
run "transport floor" $flo "" "$floor_pid"
run "bare hyper conn" $bare "" "$bare_pid"
run "deskgate memory" $mem "$mem_cookie" "$mem_pid"
run "deskgate redis" $red "$red_cookie" "$red_pid" "$(pgrep -x redis-server | head -n1)"

ref_rps=$(echo "${results[1]}" | cut -d'|' -f2)
printf '\n%-16s %10s %8s %9s %9s %12s %14s\n' "" "req/s" "ratio" "p50" "p99" "CPU µs/req" "(x nginx proxy)"
ref_cpu=$(echo "${results[1]}" | cut -d'|' -f5)
for r in "${results[@]}"; do
  IFS='|' read -r name rps p50 p99 cpu_us <<<"$r"
  printf '%-16s %10s %8.2f %9s %9s %12s %14.2f\n' "$name" "$rps" "$(awk -v a="$rps" -v b="$ref_rps" 'BEGIN { print a / b }')" \
    "$p50" "$p99" "$cpu_us" "$(awk -v a="$cpu_us" -v b="$ref_cpu" 'BEGIN { print (b > 0) ? a / b : 0 }')"
done
mem_rps=$(echo "${results[4]}" | cut -d'|' -f2)
red_rps=$(echo "${results[5]}" | cut -d'|' -f2)
printf '\ndeskgate memory / nginx proxy: %.2f   deskgate redis / deskgate memory: %.2f\n' \
  "$(awk -v a="$mem_rps" -v b="$ref_rps" 'BEGIN { print a / b }')" "$(awk -v a="$red_rps" -v b="$mem_rps" 'BEGIN { print a / b }')"
if [ -n "${PROFILE:-}" ] && [ -f "$dir/perf.data" ]; then
  sleep 1
  echo; echo "where deskgate's memory mode spends its CPU (perf, self time):"
  perf report -i "$dir/perf.data" --stdio --no-children -g none --percent-limit 0.7 --sort dso,symbol 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/ +$//' | cut -c1-150 | head -40
  cp "$dir/perf.data" "${TMPDIR:-/tmp}/deskgate-perf.data" && echo "(perf data kept in ${TMPDIR:-/tmp}/deskgate-perf.data)"
fi
printf 'RSS of deskgate (memory mode): %s kB idle after start, %s kB after the run\n' "$idle_rss" \
  "$(awk '/VmRSS/ { print $2 }' /proc/"$mem_pid"/status)"
