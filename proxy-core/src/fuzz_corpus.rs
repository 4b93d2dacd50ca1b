//! The committed fuzz seed corpora (`fuzz/corpus/TARGET/`) and deterministic mutations of them,
//! for the stable replays (`corpus_tests` modules) that run each fuzz target's checks in
//! `cargo test`, without a fuzzer. No `rand`: the same inputs on every run, so a failure
//! reproduces.
//!
//! Compiled for this crate's tests and, through the `test-util` feature, for other crates'
//! (`proxy-kafka`'s dev-dependency enables it); never into a product build.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test helper: a corpus it cannot read fails the test that asked for it"
)]

use std::path::{Path, PathBuf};

/// `fuzz/corpus/TARGET` of the repository.
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of `fuzz/corpus/TARGET`, with its name, sorted by name so that failures and
/// mutations are reproducible. Panics when the directory cannot be read or holds fewer than five
/// files (a wrong path more likely than a small corpus).
pub fn read(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected at least 5 seeds in {}, found {}",
        dir.display(),
        files.len()
    );
    files
}

/// Names the input being replayed in the test's output when a check panics while this is alive:
/// the shared checks take only the input, so the replay says which seed or mutation it was.
#[derive(Debug)]
pub struct Replaying<'a> {
    seed: &'a str,
    /// `None` for the seed itself.
    mutation: Option<usize>,
    input: &'a [u8],
}

impl<'a> Replaying<'a> {
    /// The seed `seed` itself.
    pub fn seed(seed: &'a str, input: &'a [u8]) -> Self {
        Self {
            seed,
            mutation: None,
            input,
        }
    }

    /// Mutation number `mutation` of the seed `seed`.
    pub fn mutation(seed: &'a str, mutation: usize, input: &'a [u8]) -> Self {
        Self {
            seed,
            mutation: Some(mutation),
            input,
        }
    }
}

impl Drop for Replaying<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let input = self.input.escape_ascii();
            match self.mutation {
                Some(round) => eprintln!("replaying seed {}, mutation {round}: {input}", self.seed),
                None => eprintln!("replaying seed {}: {input}", self.seed),
            }
        }
    }
}

/// One to four byte replacements, insertions or deletions of `seed`. A replacement flips a bit
/// or writes a byte of `special` or a random one; an insertion writes a byte of `special` or a
/// random one. `special` (not empty) holds the bytes the parser under test branches on.
pub fn mutate(seed: &[u8], special: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(3) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] = match rng.below(3) {
                    0 => input[at] ^ (1 << rng.below(8)),
                    1 => special[rng.below(special.len())],
                    _ => rng.next_u64() as u8,
                };
            }
            1 => {
                let at = rng.below(input.len() + 1);
                let byte = if rng.below(2) == 0 {
                    special[rng.below(special.len())]
                } else {
                    rng.next_u64() as u8
                };
                input.insert(at, byte);
            }
            _ if !input.is_empty() => {
                let at = rng.below(input.len());
                input.remove(at);
            }
            _ => {}
        }
    }
    input
}

// === impl XorShift ===

/// Marsaglia's xorshift64: enough to spread mutations, and the same on every run.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// The generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        // Never zero, which xorshift cannot leave.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
