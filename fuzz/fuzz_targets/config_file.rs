//! Fuzzes the `sluice` binary's configuration parser (`config::parse`): TOML syntax, the typed
//! first pass that records unknown keys, and every validation rule of the second pass.
//!
//! `proxy-bin` is a binary-only crate, so its `config` module is compiled into this target from
//! its source file (`#[path]`), unchanged: the module reaches nothing of the binary outside
//! itself (`crate::` paths), only library crates, which this crate depends on too. Should it
//! ever use `crate::`, this target stops building, and the CI smoke (`scripts/fuzz-smoke.sh`)
//! says so.
//!
//! For any text nothing panics; an error lists at least one problem; and a configuration that
//! validates keeps the promises `Config` documents: every listener and route names a cluster
//! that exists, listener names and bind addresses are unique, and each low watermark is below
//! its high one.
//!
//! A file path in the text is resolved against a directory that does not exist; an absolute one
//! is opened as it is (a cluster's `password_file`, at most 4 KiB read), which a fuzzer is
//! welcome to.
//!
//! No stable replay of this corpus runs in CI: that would be a test inside `proxy-bin`; its own
//! unit tests (`config::tests`) cover the seeds' shapes.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../proxy-bin/src/config/mod.rs"]
mod config;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let config = match config::parse_in(text, Path::new("/nonexistent/sluice-fuzz")) {
        Ok(config) => config,
        Err(errors) => {
            assert!(!errors.errors().is_empty(), "refused without a reason");
            let _ = errors.to_string();
            return;
        }
    };
    let mut names = BTreeSet::new();
    let mut binds = BTreeSet::new();
    for listener in &config.listeners {
        assert!(
            config.clusters.contains_key(&listener.cluster),
            "listener {:?} forwards to a missing cluster {:?}",
            listener.name,
            listener.cluster
        );
        for route in &listener.routes {
            assert!(
                config.clusters.contains_key(&route.cluster),
                "a route of {:?} goes to a missing cluster {:?}",
                listener.name,
                route.cluster
            );
        }
        assert!(
            names.insert(&listener.name),
            "two listeners named {:?}",
            listener.name
        );
        assert!(
            binds.insert(listener.bind),
            "two listeners on {}",
            listener.bind
        );
        assert!(
            listener.low_watermark < listener.high_watermark,
            "listener {:?}: low watermark not below the high one",
            listener.name
        );
    }
});
