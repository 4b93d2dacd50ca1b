//! The `config_file` fuzz target's checks ([`fuzz_checks`](super::fuzz_checks)), run on stable in
//! CI over its committed seed corpus (`fuzz/corpus/config_file/`): the example configurations,
//! which must validate, and one file per refusal, which must not.

use super::fuzz_checks::config_file;

#[test]
fn config_file_seeds_validate_exactly_when_well_formed() {
    let files = proxy_core::fuzz_corpus::read("config_file");
    // Every file, regressions a fuzzing run found included; the test's output names the one
    // whose check failed.
    for (name, input) in &files {
        eprintln!("replaying seed {name}");
        config_file(input);
    }
    let seed = |name: &str| {
        let (_, input) = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no seed {name}"));
        config_file(input)
    };
    for name in [
        "default",
        "minimal_valid",
        "example_sluice",
        "example_kafka",
        "example_kafka_sasl",
        "example_tls",
    ] {
        assert!(seed(name).is_some(), "{name} refused");
    }
    for name in [
        "bad_durations",
        "duplicate_listener",
        "missing_cluster",
        "not_toml",
        "route_missing_cluster",
        "unknown_keys",
        "watermarks_inverted",
    ] {
        assert!(seed(name).is_none(), "{name} validated");
    }
}
