//! The fuzz target's invariants, run on stable in CI over the committed seed corpus
//! (`fuzz/corpus/proxy_header/`, written by `fuzz/make_corpus.py`) and a fixed set of mutations
//! of it. No fuzzer, no `rand`: a bounded, deterministic smoke test of the header parser.
//!
//! Keep `check` and `assert_split_agrees` in step with `fuzz/fuzz_targets/proxy_header.rs`.

use std::path::{Path, PathBuf};

use bytes::BytesMut;

use super::*;

/// Seeds split at every position below this length; longer ones only where their first byte says.
const SPLIT_EVERYWHERE_BELOW: usize = 200;
/// Mutations of each seed.
const MUTATIONS: usize = 300;

/// What decoding left: the header's raw bytes and the bytes after it, `None` for "need more",
/// or the error.
type Outcome = Result<Option<(Vec<u8>, Vec<u8>)>, ProxyHeaderError>;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/proxy_header")
}

/// Every corpus file, by name, so failures and mutations are reproducible.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir();
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
        files.len() >= 10,
        "expected at least 10 seeds in {}, found {}",
        dir.display(),
        files.len()
    );
    files
}

#[test]
fn corpus_seeds_decode_consistently_whole_and_split() {
    for (name, input) in corpus() {
        let at_most = if input.len() < SPLIT_EVERYWHERE_BELOW {
            input.len()
        } else {
            0
        };
        let whole = decode_whole(&name, &input);
        for at in (0..=at_most).chain(first_byte_split(&input)) {
            assert_split_agrees(&name, &input, &whole, at);
        }
    }
}

#[test]
fn corpus_mutations_decode_consistently_whole_and_split() {
    for (index, (name, seed)) in corpus().into_iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        for round in 0..MUTATIONS {
            let input = mutate(&seed, &mut rng);
            let what = format!(
                "{name} mutation {round} {:?}",
                input.escape_ascii().to_string()
            );
            let whole = decode_whole(&what, &input);
            let random_split = rng.below(input.len() + 1);
            for at in first_byte_split(&input).into_iter().chain([random_split]) {
                assert_split_agrees(&what, &input, &whole, at);
            }
        }
    }
}

/// The fuzz target's split point: where the first byte says.
fn first_byte_split(input: &[u8]) -> Option<usize> {
    input
        .first()
        .map(|&first| usize::from(first) % (input.len() + 1))
}

/// Decodes `input` in one buffer and checks the invariants.
fn decode_whole(what: &str, input: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(input);
    let result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
    check(what, input, &buf, &result);
    result.map(|header| header.map(|h| (h.raw().to_vec(), buf.to_vec())))
}

/// Decodes `input[..at]`; if that needs more, appends the rest and decodes again, as a driver
/// does when a header spans two reads. It must agree with decoding `input` whole.
fn assert_split_agrees(what: &str, input: &[u8], whole: &Outcome, at: usize) {
    let (head, tail) = input.split_at(at);
    let mut buf = BytesMut::from(head);
    let mut result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
    check(what, head, &buf, &result);
    if matches!(result, Ok(None)) {
        buf.extend_from_slice(tail);
        result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
        check(what, input, &buf, &result);
    } else {
        buf.extend_from_slice(tail);
    }
    let split: Outcome = result.map(|header| header.map(|h| (h.raw().to_vec(), buf.to_vec())));
    // Errors need only agree that it is an error: a prefix may be refused for a different reason
    // than the whole (the v1 parser judges only as much of the line as it has).
    assert_eq!(
        whole.as_ref().map(Option::is_some).ok(),
        split.as_ref().map(Option::is_some).ok(),
        "{what}: split at {at} decodes differently: whole {whole:?}, split {split:?}"
    );
    if let (Ok(Some(whole)), Ok(Some(split))) = (whole, &split) {
        assert_eq!(
            whole, split,
            "{what}: split at {at} decodes a different header"
        );
    }
}

/// The invariants of one `decode` of all of `input`, leaving `remaining` in the buffer.
fn check(
    what: &str,
    input: &[u8],
    remaining: &[u8],
    result: &Result<Option<ProxyHeader>, ProxyHeaderError>,
) {
    let _ = detect(input);
    match result {
        Ok(Some(header)) => {
            let raw = header.raw();
            assert_eq!(
                raw.len() + remaining.len(),
                input.len(),
                "{what}: bytes lost or invented"
            );
            assert_eq!(
                &raw[..],
                &input[..raw.len()],
                "{what}: raw is not the input's prefix"
            );
            assert_eq!(
                remaining,
                &input[raw.len()..],
                "{what}: the bytes after the header changed"
            );
            assert!(
                raw.len() <= DEFAULT_MAX_HEADER_LEN,
                "{what}: header over the limit"
            );
            assert_eq!(
                detect(input),
                Detection::Present,
                "{what}: decoded a header detect missed"
            );
            touch_accessors(header);
        }
        Ok(None) => {
            assert!(
                input.len() < DEFAULT_MAX_HEADER_LEN,
                "{what}: needs more past the limit"
            );
            assert_eq!(remaining, input, "{what}: Ok(None) consumed bytes");
        }
        Err(err) => {
            let _ = err.label();
        }
    }
}

/// Every typed accessor must be total over whatever TLVs a peer sends.
fn touch_accessors(header: &ProxyHeader) {
    let _ = header.addrs();
    for tlv in header.tlvs() {
        assert_eq!(header.tlv(tlv.kind).map(|t| t.kind), Some(tlv.kind));
    }
    let _ = header.authority();
    let _ = header.alpn();
    let _ = header.unique_id();
    let _ = header.ssl();
    let _ = header.aws_vpc_endpoint_id();
    let _ = header.azure_private_link_id();
}

/// One to four byte flips, insertions or deletions of `seed`.
fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(3) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                // Flip one bit, or replace the byte outright: both reach the parser's branches.
                input[at] = if rng.below(2) == 0 {
                    input[at] ^ (1 << rng.below(8))
                } else {
                    rng.next() as u8
                };
            }
            1 => {
                let at = rng.below(input.len() + 1);
                // Bias towards the bytes the parsers branch on.
                let byte = match rng.below(4) {
                    0 => b'\r',
                    1 => b'\n',
                    2 => b' ',
                    _ => rng.next() as u8,
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

/// Marsaglia's xorshift64: enough to spread mutations, and the same on every run.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Never zero, which xorshift cannot leave.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`; `n` must not be zero.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
