#!/usr/bin/env bash
# Bounded-time fuzzing of the PROXY-protocol header parser: `fuzz/run.sh [SECONDS]` (default 60).
#
# Fuzzes a scratch copy of fuzz/corpus/proxy_header, so the inputs libFuzzer adds do not land in
# the committed seed corpus. A crash stops the run with a non-zero status and leaves its input in
# fuzz/artifacts/proxy_header/; commit it under fuzz/corpus/proxy_header/ once it is fixed, and
# the stable `proxy_protocol::corpus_tests` unit test keeps it fixed.
#
# Honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS like any cargo build.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

# cargo-fuzz passes nightly-only flags to rustc (`-Zsanitizer=address`, `-Cpasses=sancov-module`,
# ...), and the project's only toolchain is stable (rust-toolchain.toml); no nightly can be
# installed here. RUSTC_BOOTSTRAP=1 lets stable rustc accept them. It is confined to this script
# and the fuzz crate, which is outside the main workspace, so it never reaches a product build.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-corpus.XXXXXX")"
trap 'rm -rf -- "$scratch"' EXIT
cp -- fuzz/corpus/proxy_header/* "$scratch/"

# libFuzzer writes the inputs it finds into the corpus directory it is given: the scratch copy.
cargo fuzz run proxy_header "$scratch" -- \
    -max_total_time="$seconds" -print_final_stats=1
