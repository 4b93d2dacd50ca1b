//! The checks of the `config_file` fuzz target (`fuzz/fuzz_targets/config_file.rs`), here so that
//! the target and its stable replay over the seed corpus (`corpus_tests`) run the same ones.
//! Compiled only for tests and for cargo-fuzz builds (`--cfg fuzzing`), which compile this
//! module, with the rest of `config`, into the fuzz target from its source file.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Config, parse_in};

/// The `config_file` fuzz target: the `sluice` binary's configuration parser (`parse_in`): TOML
/// syntax, the typed first pass that records unknown keys, and every validation rule of the
/// second pass. Returns the configuration when `input` validated.
///
/// For any text nothing panics; an error lists at least one problem; and a configuration that
/// validates keeps the promises [`Config`] documents: every listener and route names a cluster
/// that exists, listener names and bind addresses are unique, and each low watermark is below
/// its high one.
///
/// A file path in the text is resolved against a directory that does not exist; an absolute one
/// is opened as it is (a cluster's `password_file`, at most 4 KiB read), which a fuzzer is
/// welcome to.
pub fn config_file(input: &[u8]) -> Option<Config> {
    let text = std::str::from_utf8(input).ok()?;
    let config = match parse_in(text, Path::new("/nonexistent/sluice-fuzz")) {
        Ok(config) => config,
        Err(errors) => {
            assert!(!errors.errors().is_empty(), "refused without a reason");
            let _ = errors.to_string();
            return None;
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
    Some(config)
}
