#!/usr/bin/env bash
# README command 1: the example helpdesk with deskgate in front of it, on the embedded
# defaults (SQLite accounts, in-memory sessions). Installs the build libraries it needs when
# they are missing (tests/build-deps: libxmlsec1 and clang for SAML, as root), then builds and
# runs the demo. Arguments go to the demo (another config file of the same shape).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "examples/demo.sh: cargo is needed (https://rustup.rs)" >&2
  exit 1
fi
bash tests/build-deps
exec cargo run --example demo -- "$@"
