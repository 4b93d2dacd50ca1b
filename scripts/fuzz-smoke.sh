#!/usr/bin/env bash
# CI's fuzz smoke (issue 15): every cargo-fuzz target in fuzz/fuzz_targets/ runs for a short
# time, each on a scratch copy of its seed corpus (fuzz/corpus/TARGET, as fuzz/run.sh does), so
# a change that makes a wire or file parser panic on a nearby input fails the build.
#
#   scripts/fuzz-smoke.sh                    every target, FUZZ_SMOKE_SECONDS (default 15) each
#   scripts/fuzz-smoke.sh sasl_plain ...     only the targets named
#
# Exit status: 0 when every target ran its time without a crash, and also when cargo-fuzz cannot
# be installed (the smoke is then skipped and says why, on a line starting "fuzz smoke: skipped");
# 1 when a target crashed, hung or ran out of memory (its input is left in fuzz/artifacts/TARGET/
# and its log is printed from the panic on) or when the fuzz crate does not fetch or build.
#
# Built without a sanitizer (`-s none`): the crates deny `unsafe`, so AddressSanitizer would find
# little here, and it makes the build a third longer and runs a fifth as many inputs (measured on
# the 2-core machine); fuzz/run.sh, for longer runs by hand, keeps it. The build goes to its own
# target directory (fuzz/target/smoke, or $CARGO_TARGET_DIR/fuzz-smoke) so the two flavours do
# not rebuild each other.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SMOKE_SECONDS:-15}"
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz smoke: FUZZ_SMOKE_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
fi

skip() {
    echo "fuzz smoke: skipped: $*"
    exit 0
}

# cargo-fuzz passes nightly-only flags to rustc (`-Cpasses=sancov-module`, `-Zsanitizer`, ...)
# and the project's toolchain is stable (rust-toolchain.toml). RUSTC_BOOTSTRAP=1 lets stable
# rustc accept them; it is confined to this script and to the fuzz crate, which is outside the
# main workspace, so it never reaches a product build.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    if ! cargo install cargo-fuzz --locked; then
        skip "cargo-fuzz could not be installed (cargo's error above)"
    fi
    cargo fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz was installed but does not run"
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for file in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi
for target in "${targets[@]}"; do
    if [[ ! "$target" =~ ^[a-z0-9_]+$ || ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        echo "fuzz smoke: no fuzz target '$target' in fuzz/fuzz_targets/" >&2
        exit 2
    fi
done

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir="$CARGO_TARGET_DIR/fuzz-smoke"
else
    target_dir="$PWD/fuzz/target/smoke"
fi
fuzz_flags=(--sanitizer none --target-dir "$target_dir")

# The fuzz crate has its own lock file, kept in step with the workspace's crates: a stale one
# is a failure here, as `--locked` makes it one for the workspace.
if ! cargo fetch --locked --manifest-path fuzz/Cargo.toml; then
    echo "fuzz smoke: FAILED: fuzz/Cargo.lock is out of date or its crates cannot be fetched;" \
        "if the former, run 'cargo update --workspace' in fuzz/" >&2
    exit 1
fi
# Every target at once (even when only some are run): one cargo build shares the dependencies'
# compilation.
echo "fuzz smoke: building the fuzz targets"
build_start=$SECONDS
if ! cargo fuzz build "${fuzz_flags[@]}"; then
    echo "fuzz smoke: FAILED: the fuzz targets do not build (cargo's errors above)" >&2
    exit 1
fi
echo "fuzz smoke: built in $((SECONDS - build_start)) s; running each target for ${seconds} s"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-smoke.XXXXXX")"
trap 'rm -rf -- "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
    corpus="$scratch/$target"
    mkdir -p "$corpus"
    if [[ -d "fuzz/corpus/$target" ]]; then
        find "fuzz/corpus/$target" -maxdepth 1 -type f ! -name '.*' -exec cp -- {} "$corpus/" \;
    fi
    log="$scratch/$target.log"
    # -timeout: an input taking this long is a hang, reported like a crash. libFuzzer's own
    # -rss_limit_mb (2 GiB) and malloc limit catch unbounded allocation. libFuzzer writes the
    # inputs it finds into the scratch corpus, never the committed one.
    if cargo fuzz run "${fuzz_flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 </dev/null >"$log" 2>&1; then
        runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
        echo "fuzz smoke: $target: clean, ${runs:-?} inputs in ${seconds} s," \
            "$(find "$corpus" -type f | wc -l) in its corpus"
    else
        echo "fuzz smoke: $target: CRASHED; the input is in fuzz/artifacts/$target/; its log:" >&2
        # From the panic (or libFuzzer's timeout / out-of-memory report) on, else the end.
        if grep -qE 'panicked at|ERROR: libFuzzer' "$log"; then
            awk '/panicked at|ERROR: libFuzzer/ { shown = 1 } shown && n++ < 50' "$log" >&2
        else
            tail -n 50 "$log" >&2
        fi
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz smoke: FAILED: ${failed[*]} (reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run" \
        "-s none TARGET fuzz/artifacts/TARGET/INPUT)" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets clean, ${seconds} s each"
