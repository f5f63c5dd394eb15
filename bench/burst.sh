#!/usr/bin/env bash
# A burst of simultaneous correct sign-ins to one account, each from its own loopback
# address, against `deskgate serve` (memory sessions, SQLite accounts): prints how each was
# answered and deskgate's resident size (VmRSS) idle, at the peak of the burst, right after
# it and 12 s later. Target: the peak stays under idle + 256 MB, and every sign-in is either
# let in (303) or told to try again (503). A measurement, not a test; loopback only.
#
#   bash bench/burst.sh [COUNT] [--release]      (default 64 sign-ins, debug build)
set -euo pipefail
cd "$(dirname "$0")/.."

count=64
profile=debug
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    ''|*[!0-9]*) echo "usage: bash bench/burst.sh [COUNT] [--release]" >&2; exit 2 ;;
    *) count=$arg ;;
  esac
done
[ "$count" -le 250 ] || { echo "burst.sh: at most 250 sign-ins" >&2; exit 2; }
command -v curl >/dev/null || { echo "burst.sh: curl is needed" >&2; exit 1; }
if [ "$profile" = release ]; then cargo build --quiet --release --bin deskgate; else cargo build --quiet --bin deskgate; fi
bin=$PWD/target/$profile/deskgate

dir=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/deskgate.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[upstream]
url = "http://127.0.0.1:9"
[storage]
accounts = "sqlite://accounts.db"
[everyone]
enabled = true
permissions = ["portal.view"]
[[rules]]
path = "/"
permission = "portal.view"
TOML
echo "long enough password" | (cd "$dir" && "$bin" accounts add --config deskgate.toml --email burst@example.org --name Burst >/dev/null)
(cd "$dir" && exec "$bin" serve --config deskgate.toml >/dev/null 2>&1) &
pid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/.deskgate/healthz" && break; sleep 0.1; done
rss() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
sleep 1
idle=$(rss)
echo "== $count simultaneous correct sign-ins, $profile build: idle RSS $idle MB"

# Each sign-in from its own address: its CSRF cookie and token first, then all posts at once.
for i in $(seq "$count"); do
  src="127.0.1.$i"
  curl -s --interface "$src" -c "$dir/jar$i" -o "$dir/form$i" "http://127.0.0.1:$port/.deskgate/login"
done
peak=$idle
for i in $(seq "$count"); do
  token=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$dir/form$i" | head -n 1)
  curl -s --interface "127.0.1.$i" -b "$dir/jar$i" -o /dev/null -w '%{http_code}\n' \
    --data-urlencode "username=burst@example.org" --data-urlencode "password=long enough password" \
    --data-urlencode "csrf=$token" "http://127.0.0.1:$port/.deskgate/login" >"$dir/status$i" &
done
while [ "$(jobs -rp | grep -vc "^$pid\$")" -gt 0 ]; do
  now=$(rss)
  peak=$(awk -v a="$peak" -v b="$now" 'BEGIN { print (b > a) ? b : a }')
  sleep 0.05
done
after=$(rss)
sleep 12
later=$(rss)
statuses=$(cat "$dir"/status* | sort | uniq -c | awk '{ printf "%s×%s ", $2, $1 }')
echo "   answers: $statuses"
echo "   RSS idle $idle MB, peak $peak MB, right after $after MB, 12 s later $later MB"
awk -v i="$idle" -v p="$peak" 'BEGIN { d = p - i; printf "   peak growth +%.1f MB — target +256 MB: %s\n", d, (d <= 256) ? "met" : "missed" }'
if cat "$dir"/status* | grep -qvE '^(303|503)$'; then
  echo "   some sign-ins were answered otherwise than 303 or 503" >&2
  exit 1
fi
