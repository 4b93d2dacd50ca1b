//! Fuzzes the users-file parser (`UserStore::parse`): the salted SCRAM credentials that
//! `sluice user add` writes and every SASL listener reads at start and on reload. The file is an
//! operator's, but it is edited by hand and by tools, and a parser must refuse, not panic.
//!
//! For any text nothing panics, and a store that parses is written back (`to_toml`, what
//! `sluice user add` saves) as a file that parses to the same store.
//!
//! `proxy-core`'s `sasl::corpus_tests` replays the seed corpus (`fuzz/corpus/users_file/`) with
//! the same checks on stable in CI; keep the two in step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_core::sasl::UserStore;

fuzz_target!(|input: &[u8]| {
    // The file is read as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(store) = UserStore::parse(text) else {
        return;
    };
    let written = store.to_toml();
    match UserStore::parse(&written) {
        Ok(reread) => assert_eq!(reread, store, "written back as another store:\n{written}"),
        Err(err) => panic!("written back as a file that does not parse ({err}):\n{written}"),
    }
});
