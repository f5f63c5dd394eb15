#!/usr/bin/env bash
# Proves README command 1 on a fresh machine: removes what the image lacks (clang,
# libclang-dev, libclang1-14), builds into an empty target folder, runs `bash
# examples/demo.sh` and waits until the login page it prints is served. Takes minutes (a
# cold build); not part of `bash tests/run`. Needs root (it removes and installs packages).
#
#   bash tests/fresh-machine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/fresh-machine.sh: run as root (it removes and installs Debian packages)" >&2
  exit 1
fi

target=$(mktemp -d)
log=$(mktemp)
demo=
cleanup() {
  [ -n "$demo" ] && kill "$demo" 2>/dev/null && wait "$demo" 2>/dev/null || true
  rm -rf "$target" "$log"
}
trap cleanup EXIT

echo "== removing clang, libclang-dev and libclang1-14"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq clang libclang-dev libclang1-14 >/dev/null
for pkg in clang libclang-dev libclang1-14; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "still installed: $pkg" >&2
    exit 1
  fi
done
echo "   none of them is installed; target folder $target is empty"

echo "== README command 1: bash examples/demo.sh"
began=$(date +%s)
CARGO_TARGET_DIR="$target" bash examples/demo.sh >"$log" 2>&1 &
demo=$!
url=
while [ -z "$url" ]; do
  if ! kill -0 "$demo" 2>/dev/null; then
    echo "the demo stopped before serving; its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ $(( $(date +%s) - began )) -gt 3600 ]; then
    echo "no URL after an hour" >&2
    exit 1
  fi
  url=$(sed -n 's/.*sign in or register at \([^ ]*\).*/\1/p' "$log" | head -n 1)
  sleep 2
done
elapsed=$(( $(date +%s) - began ))
grep -E "tests/build-deps: installing" "$log" || true
status=$(curl -s -o "$target/login.html" -w '%{http_code}' "$url")
if [ "$status" = 200 ] && grep -q "Sign in" "$target/login.html"; then
  echo "   $url answered 200 with the sign-in form, ${elapsed} s after the command started"
  echo "fresh machine: ok"
else
  echo "$url answered $status" >&2
  exit 1
fi
