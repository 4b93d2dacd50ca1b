//! The SASL fuzz targets' checks ([`fuzz_checks`](super::fuzz_checks)), run on stable in CI over
//! their committed seed corpora (`fuzz/corpus/{sasl_scram,sasl_plain,users_file}/`) and a fixed
//! set of mutations of them. No fuzzer, no `rand`: a bounded, deterministic replay, so an input a
//! fuzzing run found (and that was fixed) stays fixed once it is committed to the corpus. Each
//! seed is also checked to end as it was written to (accepted or refused).

use super::fuzz_checks::{ScramOutcome, plain, scram, users_file};
use crate::fuzz_corpus::{self, Replaying, XorShift};

/// Mutations of each seed (SCRAM's cost a PBKDF2 each when they get far, so fewer).
const MUTATIONS: usize = 200;
const SCRAM_MUTATIONS: usize = 40;
/// The bytes the SASL and TOML parsers branch on.
const SPECIAL: &[u8] = b",=\0\n\"[].";

/// `check` of the seed named `name` of `files`.
fn replay_seed<T>(files: &[(String, Vec<u8>)], name: &str, check: impl Fn(&[u8]) -> T) -> T {
    let input = files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, input)| input.as_slice())
        .unwrap_or_else(|| panic!("no seed {name}"));
    let _replaying = Replaying::seed(name, input);
    check(input)
}

/// Runs `check` on every seed of `files` and on `mutations` mutations of each.
fn replay_with_mutations<T>(
    files: &[(String, Vec<u8>)],
    mutations: usize,
    check: impl Fn(&[u8]) -> T,
) {
    for (index, (name, input)) in files.iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        {
            let _replaying = Replaying::seed(name, input);
            check(input);
        }
        for round in 0..mutations {
            let input = fuzz_corpus::mutate(input, SPECIAL, &mut rng);
            let _replaying = Replaying::mutation(name, round, &input);
            check(&input);
        }
    }
}

// === sasl_scram ===

#[test]
fn scram_seeds_reach_success_and_every_refusal() {
    let files = fuzz_corpus::read("sasl_scram");
    for name in ["server_rfc7677", "client_rfc7677", "round_trip_escapes"] {
        assert_eq!(
            replay_seed(&files, name, scram),
            ScramOutcome::Succeeded,
            "{name}"
        );
    }
    for name in [
        "server_unknown_user",
        "server_channel_binding",
        "client_server_error",
        // Found by the fuzz smoke: an honest client's name beyond the server's limit.
        "long_name_refused",
    ] {
        assert_eq!(
            replay_seed(&files, name, scram),
            ScramOutcome::Refused,
            "{name}"
        );
    }
    for (name, input) in &files {
        let _replaying = Replaying::seed(name, input);
        let outcome = scram(input);
        if name.starts_with("round_trip") {
            assert_eq!(outcome, ScramOutcome::Succeeded, "{name}");
        }
    }
}

#[test]
fn scram_mutations_never_panic() {
    replay_with_mutations(&fuzz_corpus::read("sasl_scram"), SCRAM_MUTATIONS, scram);
}

// === sasl_plain ===

#[test]
fn plain_seeds_parse_exactly_when_well_formed() {
    let files = fuzz_corpus::read("sasl_plain");
    for name in ["valid", "authzid_is_user", "unicode"] {
        assert!(replay_seed(&files, name, plain), "{name} refused");
    }
    for name in [
        "authzid_other",
        "empty_user",
        "empty_password",
        "four_parts",
        "not_utf8",
    ] {
        assert!(!replay_seed(&files, name, plain), "{name} parsed");
    }
    replay_with_mutations(&files, MUTATIONS, plain);
}

// === users_file ===

#[test]
fn users_file_seeds_parse_and_round_trip() {
    let files = fuzz_corpus::read("users_file");
    for (name, users) in [
        ("example", 1),
        ("two_users", 2),
        ("quoted_name", 2),
        ("no_users", 0),
        ("empty", 0),
    ] {
        assert_eq!(replay_seed(&files, name, users_file), Some(users), "{name}");
    }
    for name in [
        "unknown_top_key",
        "unknown_field",
        "plain_mechanism",
        "key_wrong_length",
        "iterations_low",
        "iterations_huge",
        "bad_base64",
        "missing_key",
        "users_not_table",
        "control_in_name",
        "not_toml",
    ] {
        assert_eq!(replay_seed(&files, name, users_file), None, "{name} parsed");
    }
    replay_with_mutations(&files, MUTATIONS, users_file);
}
