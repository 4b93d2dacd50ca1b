//! The `proxy_header` fuzz target's checks ([`fuzz_checks`](super::fuzz_checks)), run on stable
//! in CI over the committed seed corpus (`fuzz/corpus/proxy_header/`, written by
//! `fuzz/make_corpus.py`) and a fixed set of mutations of it. No fuzzer, no `rand`: a bounded,
//! deterministic smoke test of the header parser, split at more places than the target splits.

use super::fuzz_checks::{first_byte_split, proxy_header_splits};
use crate::fuzz_corpus::{self, Replaying, XorShift};

/// Seeds split at every position below this length; longer ones only where their first byte says.
const SPLIT_EVERYWHERE_BELOW: usize = 200;
/// Mutations of each seed.
const MUTATIONS: usize = 300;
/// The bytes the v1 and v2 parsers branch on (v2's are mostly lengths, reached by random bytes).
const SPECIAL: &[u8] = b"\r\n ";

fn corpus() -> Vec<(String, Vec<u8>)> {
    let files = fuzz_corpus::read("proxy_header");
    assert!(files.len() >= 10, "expected at least 10 seeds");
    files
}

#[test]
fn corpus_seeds_decode_consistently_whole_and_split() {
    for (name, input) in corpus() {
        let _replaying = Replaying::seed(&name, &input);
        let at_most = if input.len() < SPLIT_EVERYWHERE_BELOW {
            input.len()
        } else {
            0
        };
        proxy_header_splits(&input, (0..=at_most).chain(first_byte_split(&input)));
    }
}

#[test]
fn corpus_mutations_decode_consistently_whole_and_split() {
    for (index, (name, seed)) in corpus().into_iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        for round in 0..MUTATIONS {
            let input = fuzz_corpus::mutate(&seed, SPECIAL, &mut rng);
            let _replaying = Replaying::mutation(&name, round, &input);
            let random_split = rng.below(input.len() + 1);
            proxy_header_splits(
                &input,
                first_byte_split(&input).into_iter().chain([random_split]),
            );
        }
    }
}
