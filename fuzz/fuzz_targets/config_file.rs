//! Fuzzes the `sluice` binary's configuration parser (`config::parse_in`): TOML syntax, the
//! typed first pass that records unknown keys, and every validation rule of the second pass. The
//! input is the file's text.
//!
//! `proxy-bin` is a binary-only crate, so its `config` module is compiled into this target from
//! its source file (`#[path]`), unchanged, its `fuzz_checks` included (`--cfg fuzzing`): the
//! module reaches nothing of the binary outside itself (`crate::` paths), only library crates,
//! which this crate depends on too. Should it ever use `crate::`, this target stops building,
//! and the CI smoke (`scripts/fuzz-smoke.sh`) says so.
//!
//! `config::fuzz_checks::config_file` documents the checks; `proxy-bin`'s
//! `config::corpus_tests` runs the same on the seed corpus (`fuzz/corpus/config_file/`) on
//! stable in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../proxy-bin/src/config/mod.rs"]
mod config;

fuzz_target!(|input: &[u8]| {
    config::fuzz_checks::config_file(input);
});
