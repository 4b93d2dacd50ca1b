#!/usr/bin/env bash
# Bounded-time fuzzing of one of Sluice's wire parsers: `fuzz/run.sh [TARGET] [SECONDS]`.
#
#   fuzz/run.sh                      the PROXY-protocol header parser (proxy_header), 60 s
#   fuzz/run.sh 30                   the same, 30 s (the original usage)
#   fuzz/run.sh kafka_frames [120]   the Kafka codec (kafka_frames)
#   fuzz/run.sh sasl_scram [120]     SCRAM messages, server and client side (sasl_scram)
#   fuzz/run.sh sasl_plain [120]     SASL PLAIN messages (sasl_plain)
#   fuzz/run.sh users_file [120]     the users file of SASL listeners (users_file)
#   fuzz/run.sh config_file [120]    the sluice config file (config_file)
#
# Targets are the `[[bin]]`s of fuzz/Cargo.toml (files in fuzz/fuzz_targets/). Fuzzes a scratch
# copy of fuzz/corpus/TARGET (an empty corpus if that directory does not exist), so the inputs
# libFuzzer adds do not land in the committed seed corpus. A crash stops the run with a non-zero
# status and leaves its input in fuzz/artifacts/TARGET/; commit it under fuzz/corpus/TARGET/
# once it is fixed (the stable corpus replay tests, which run the same checks, then keep it
# fixed: proxy-core's `proxy_protocol::corpus_tests` and `sasl::corpus_tests`, proxy-kafka's
# `corpus_tests`, proxy-bin's `config::corpus_tests`; see fuzz/README.md). CI runs every target
# briefly through scripts/fuzz-smoke.sh.
#
# Honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS like any cargo build.
set -euo pipefail

usage() {
    echo "usage: $0 [TARGET] [SECONDS]   (TARGET: proxy_header (default), kafka_frames," \
        "sasl_scram, sasl_plain, users_file, config_file)" >&2
    exit 2
}

target="proxy_header"
if [[ $# -gt 0 && ! "$1" =~ ^[0-9]+$ ]]; then
    target="$1"
    shift
fi
[[ $# -le 1 ]] || usage
seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ "$target" =~ ^[a-z0-9_]+$ && -f "$fuzz_dir/fuzz_targets/$target.rs" ]] || usage
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
if [[ -d "fuzz/corpus/$target" ]]; then
    find "fuzz/corpus/$target" -maxdepth 1 -type f ! -name '.*' -exec cp -- {} "$scratch/" \;
fi

# libFuzzer writes the inputs it finds into the corpus directory it is given: the scratch copy.
cargo fuzz run "$target" "$scratch" -- \
    -max_total_time="$seconds" -print_final_stats=1
