#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, then runs
# them. Safe without a terminal (CI sets CI=true and gives no standard input).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Debian installs haproxy in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
# The library crates stay free of module import cycles (docs/architecture.md, Crates).
scripts/module-cycles --self-test
scripts/module-cycles --check proxy-core proxy-kafka proxy-frontend
# cargo ends on per-crate summaries (the last is often a crate without doc-tests); close with
# the workspace's total so the run's outcome is one line.
log=$(mktemp)
# Every test's temporary files (configs, certificates, copies of the binary, image stores) go
# to one directory that is removed when the run ends, whatever the tests left behind.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sluice-test.XXXXXX")
trap 'rm -f "$log"; rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The library examples drive themselves through a real proxy on loopback (README, As a library).
for example in "proxy-core tcp_proxy" "proxy-kafka kafka_proxy"; do
    read -r package name <<<"$example"
    if ! cargo run --locked --quiet -p "$package" --example "$name" -- --self-test; then
        echo "example $name: self-test failed" >&2
        status=1
    fi
done
# Every fuzz target for a short while (fuzz/README.md); skipped, saying why, where cargo-fuzz
# cannot be installed.
if ! scripts/fuzz-smoke.sh; then
    echo "fuzz smoke: failed" >&2
    status=1
fi
set -e
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "workspace: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
