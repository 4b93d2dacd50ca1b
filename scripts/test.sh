#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them. Safe without a terminal (CI sets CI=true and gives no standard input).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests drive as real peers, as "command:debian-package". Raw TCP needs none
# beyond the Rust toolchain; PROXY-protocol and TLS tests will add haproxy and openssl here.
needed=()

missing=()
for entry in "${needed[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo test --workspace --locked
