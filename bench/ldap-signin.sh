#!/usr/bin/env bash
# Sign-in latency through deskgate against Samba as an Active Directory DC: p50/p99 at 1
# and 50 concurrent sign-ins. A measurement, not a test: it asserts nothing.
#
#   bash bench/ldap-signin.sh [COUNT]      (default 200 sign-ins per level; needs root for Samba)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200}
ip=127.0.0.2

bash tests/peers/samba.sh start dc1 "$ip" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'Svc-Passw0rd!\n' >"$dir/ldap.pw"
cat >"$dir/bench.toml" <<TOML
[upstream]
url = "http://127.0.0.1:9"

[storage]
accounts = "sqlite://accounts.db"

[registration]
mode = "disabled"

[rate_limit]
per_account = 1000000
per_address = 1000000

[providers.ldap.corp]
kind = "active-directory"
urls = ["ldaps://$ip"]
ca_file = "$PWD/.peers/samba-ca/ca.pem"
bind_dn = "svc-deskgate@corp.example.com"
bind_password_file = "ldap.pw"
base_dn = "DC=corp,DC=example,DC=com"
create_accounts = true
TOML
cargo run --quiet --example signin-bench -- "$dir/bench.toml" ldap.corp alice Passw0rd-alice "$count" 1 50
