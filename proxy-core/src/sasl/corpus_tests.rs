//! The SASL fuzz targets' checks, run on stable in CI over their committed seed corpora
//! (`fuzz/corpus/{sasl_scram,sasl_plain,users_file}/`) and a fixed set of mutations of them. No
//! fuzzer, no `rand`: a bounded, deterministic replay, so an input a fuzzing run found (and that
//! was fixed) stays fixed once it is committed to the corpus.
//!
//! Keep `scram_server`, `scram_client`, `scram_round_trip`, `plain` and `users_file` in step with
//! `fuzz/fuzz_targets/{sasl_scram,sasl_plain,users_file}.rs`, which document the input formats.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::LazyLock;

use super::*;

/// Mutations of each seed (SCRAM's cost a PBKDF2 each when they get far, so fewer).
const MUTATIONS: usize = 200;
const SCRAM_MUTATIONS: usize = 40;

/// Every file of `fuzz/corpus/TARGET`, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
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
    assert!(files.len() >= 5, "expected seeds in {}", dir.display());
    files
}

/// The seed named `name` of `files`.
fn seed<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, input)| input.as_slice())
        .unwrap_or_else(|| panic!("no seed {name}"))
}

// === sasl_scram ===

/// RFC 7677, section 3; the fuzz target's constants.
const USER: &str = "user";
const PASSWORD: &str = "pencil";
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SALT: [u8; 16] = [
    91, 109, 153, 104, 157, 18, 53, 142, 236, 160, 75, 20, 18, 54, 250, 129,
];
const FUZZ_MAX_ITERATIONS: u32 = 16_384;

static CREDENTIALS: LazyLock<[ScramCredential; 2]> = LazyLock::new(|| {
    let iterations = NonZeroU32::new(4096).unwrap();
    [ScramHash::Sha256, ScramHash::Sha512]
        .map(|hash| ScramCredential::derive(hash, PASSWORD, &SALT, iterations))
});

fn credential(hash: ScramHash) -> ScramCredential {
    let [sha256, sha512] = &*CREDENTIALS;
    match hash {
        ScramHash::Sha256 => sha256.clone(),
        ScramHash::Sha512 => sha512.clone(),
    }
}

/// How a `sasl_scram` input ended.
#[derive(Debug, PartialEq, Eq)]
enum ScramOutcome {
    /// The exchange succeeded on the side the input drove.
    Succeeded,
    /// A message was refused.
    Refused,
    /// A client input asking for more PBKDF2 rounds than the target spends.
    Skipped,
}

/// What the fuzz target does with `input`.
fn scram(input: &[u8]) -> ScramOutcome {
    let Some((&control, rest)) = input.split_first() else {
        return ScramOutcome::Skipped;
    };
    let hash = if control & 1 == 0 {
        ScramHash::Sha256
    } else {
        ScramHash::Sha512
    };
    let (first, last) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    match (control >> 1) % 3 {
        0 => scram_server(hash, first, last),
        1 => scram_client(hash, first, last),
        _ => scram_round_trip(hash, &String::from_utf8_lossy(rest)),
    }
}

fn scram_server(hash: ScramHash, client_first: &[u8], client_final: &[u8]) -> ScramOutcome {
    let watched = client_first_username(client_first);
    let lookup = |name: &str| (name == USER).then(|| credential(hash));
    let Ok((server, server_first)) = ScramServer::start(hash, client_first, lookup, SERVER_NONCE)
    else {
        return ScramOutcome::Refused;
    };
    assert_eq!(watched.as_deref(), Some(server.username()));
    let known = server.username() == USER;
    let nonce = server_first
        .split(',')
        .next()
        .and_then(|attr| attr.strip_prefix("r="))
        .unwrap();
    assert!(nonce.len() > SERVER_NONCE.len() && nonce.ends_with(SERVER_NONCE));
    match server.finish(client_final) {
        Ok(server_final) => {
            assert!(known, "an unknown user was let in");
            assert!(server_final.starts_with("v="));
            ScramOutcome::Succeeded
        }
        Err(_) => ScramOutcome::Refused,
    }
}

fn scram_client(hash: ScramHash, server_first: &[u8], server_final: &[u8]) -> ScramOutcome {
    let asks_too_many = String::from_utf8_lossy(server_first)
        .split(',')
        .filter_map(|attr| attr.strip_prefix("i="))
        .any(|n| n.parse::<u32>().is_ok_and(|n| n > FUZZ_MAX_ITERATIONS));
    if asks_too_many {
        return ScramOutcome::Skipped;
    }
    let (client, _) = ScramClient::start(hash, USER, PASSWORD, CLIENT_NONCE);
    let (finishing, client_final) = match client.respond(server_first) {
        Ok(answer) => answer,
        Err(ScramError::Iterations(n)) => {
            assert!(!(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n));
            return ScramOutcome::Refused;
        }
        Err(_) => return ScramOutcome::Refused,
    };
    let nonce = client_final
        .strip_prefix("c=biws,r=")
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    assert!(nonce.len() > CLIENT_NONCE.len() && nonce.starts_with(CLIENT_NONCE));
    if finishing.verify(server_final).is_err() {
        return ScramOutcome::Refused;
    }
    let text = String::from_utf8_lossy(server_final);
    assert!(!text.split(',').any(|attr| attr.starts_with("e=")));
    ScramOutcome::Succeeded
}

fn scram_round_trip(hash: ScramHash, username: &str) -> ScramOutcome {
    let (client, client_first) = ScramClient::start(hash, username, PASSWORD, CLIENT_NONCE);
    assert_eq!(
        client_first_username(client_first.as_bytes()).as_deref(),
        Some(username)
    );
    let lookup = |name: &str| {
        assert_eq!(name, username);
        Some(credential(hash))
    };
    let (server, server_first) =
        ScramServer::start(hash, client_first.as_bytes(), lookup, SERVER_NONCE).unwrap();
    assert_eq!(server.username(), username);
    let (finishing, client_final) = client.respond(server_first.as_bytes()).unwrap();
    let server_final = server.finish(client_final.as_bytes()).unwrap();
    finishing.verify(server_final.as_bytes()).unwrap();
    ScramOutcome::Succeeded
}

#[test]
fn scram_seeds_reach_success_and_every_refusal() {
    let files = corpus("sasl_scram");
    for name in ["server_rfc7677", "client_rfc7677", "round_trip_escapes"] {
        assert_eq!(scram(seed(&files, name)), ScramOutcome::Succeeded, "{name}");
    }
    for name in [
        "server_unknown_user",
        "server_channel_binding",
        "client_server_error",
    ] {
        assert_eq!(scram(seed(&files, name)), ScramOutcome::Refused, "{name}");
    }
    for (name, input) in &files {
        let outcome = scram(input);
        if name.starts_with("round_trip") {
            assert_eq!(outcome, ScramOutcome::Succeeded, "{name}");
        }
    }
}

#[test]
fn scram_mutations_never_panic() {
    for (index, (_, input)) in corpus("sasl_scram").into_iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        for _ in 0..SCRAM_MUTATIONS {
            scram(&mutate(&input, &mut rng));
        }
    }
}

// === sasl_plain ===

/// What the fuzz target does with `input`: whether it parsed.
fn plain(input: &[u8]) -> bool {
    let parsed = parse_plain(input);
    if let Some(message) = &parsed {
        let joined = format!(
            "{}\0{}\0{}",
            message.authzid, message.username, message.password
        );
        assert_eq!(joined.as_bytes(), input);
        assert!(!message.username.is_empty() && !message.password.is_empty());
        assert!(message.authzid.is_empty() || message.authzid == message.username);
        let written = plain_message(message.username, message.password);
        let reread = parse_plain(&written).unwrap();
        assert_eq!(
            (reread.authzid, reread.username, reread.password),
            ("", message.username, message.password)
        );
    }
    let text = String::from_utf8_lossy(input);
    if let Some((username, password)) = text.split_once('\n') {
        let written = plain_message(username, password);
        let valid = !username.is_empty()
            && !password.is_empty()
            && !username.contains('\0')
            && !password.contains('\0');
        match parse_plain(&written) {
            Some(reread) => {
                assert!(valid, "{written:?} parsed");
                assert_eq!((reread.username, reread.password), (username, password));
            }
            None => assert!(!valid, "{written:?} refused"),
        }
    }
    parsed.is_some()
}

#[test]
fn plain_seeds_parse_exactly_when_well_formed() {
    let files = corpus("sasl_plain");
    for name in ["valid", "authzid_is_user", "unicode"] {
        assert!(plain(seed(&files, name)), "{name} refused");
    }
    for name in [
        "authzid_other",
        "empty_user",
        "empty_password",
        "four_parts",
        "not_utf8",
    ] {
        assert!(!plain(seed(&files, name)), "{name} parsed");
    }
    for (index, (_, input)) in files.iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        plain(input);
        for _ in 0..MUTATIONS {
            plain(&mutate(input, &mut rng));
        }
    }
}

// === users_file ===

/// What the fuzz target does with `input`: the number of users, when it parsed.
fn users_file(input: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(input).ok()?;
    let store = UserStore::parse(text).ok()?;
    let written = store.to_toml();
    let reread = UserStore::parse(&written).unwrap_or_else(|err| {
        panic!("written back as a file that does not parse ({err}):\n{written}")
    });
    assert_eq!(reread, store, "written back as another store:\n{written}");
    Some(store.len())
}

#[test]
fn users_file_seeds_parse_and_round_trip() {
    let files = corpus("users_file");
    for (name, users) in [
        ("example", 1),
        ("two_users", 2),
        ("quoted_name", 2),
        ("no_users", 0),
        ("empty", 0),
    ] {
        assert_eq!(users_file(seed(&files, name)), Some(users), "{name}");
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
        assert_eq!(users_file(seed(&files, name)), None, "{name} parsed");
    }
    for (index, (_, input)) in files.iter().enumerate() {
        let mut rng = XorShift::new(index as u64);
        for _ in 0..MUTATIONS {
            users_file(&mutate(input, &mut rng));
        }
    }
}

// === mutations ===

/// One to four byte flips, insertions or deletions of `seed`, biased towards the bytes the
/// SASL and TOML parsers branch on.
fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    const SPECIAL: &[u8] = b",=\0\n\"[].";
    let mut input = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(3) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] = if rng.below(2) == 0 {
                    SPECIAL[rng.below(SPECIAL.len())]
                } else {
                    rng.next() as u8
                };
            }
            1 => {
                let at = rng.below(input.len() + 1);
                input.insert(at, SPECIAL[rng.below(SPECIAL.len())]);
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
