//! Fuzzes the users-file parser (`UserStore::parse`): the salted SCRAM credentials that
//! `sluice user add` writes and every SASL listener reads at start and on reload. The file is an
//! operator's, but it is edited by hand and by tools, and a parser must refuse, not panic. The
//! input is the file's text.
//!
//! `proxy_core::sasl::fuzz_checks::users_file` documents the checks; `proxy-core`'s
//! `sasl::corpus_tests` runs the same on the seed corpus (`fuzz/corpus/users_file/`) on stable
//! in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    proxy_core::sasl::fuzz_checks::users_file(input);
});
