#!/usr/bin/env bash
# Memory, measured: the resident size of 1 million sessions in the memory store, unused and
# just used (each then keeps its JWT's signature), and deskgate's idle resident size right
# after start. A measurement, not a test. Targets: 1,000,000 used sessions within 1 GiB,
# idle deskgate within 30 MiB.
#
#   bash bench/memory.sh [COUNT]     (default 1000000; builds with the release profile)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
cargo build --quiet --release --example session-memory --bin deskgate
target/release/examples/session-memory "$count" idle
target/release/examples/session-memory "$count" used

dir=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[server]\nlisten = "127.0.0.1:%s"\n[upstream]\nurl = "http://127.0.0.1:9"\n[storage]\naccounts = "sqlite://a.db"\n' "$port" >"$dir/c.toml"
RUST_LOG=warn target/release/deskgate serve --config "$dir/c.toml" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
sleep 0.5
echo "deskgate idle after start: $(awk '/VmRSS/ { print $2 }' /proc/$pid/status) KiB resident (limit 30 MiB)"
