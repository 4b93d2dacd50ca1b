//! The checks of the SASL fuzz targets (`fuzz/fuzz_targets/{sasl_scram,sasl_plain,users_file}.rs`),
//! here so that each target and its stable replay over the seed corpus (`corpus_tests`) run the
//! same ones. Compiled only for tests and for cargo-fuzz builds (`--cfg fuzzing`).
//!
//! Each function is one target: it takes the fuzzer's input, panics when a property fails, and
//! returns how the input ended, for the replay to check the seeds reach what they were written for.
#![expect(
    clippy::panic,
    reason = "assertions of a checker: a failed property panics"
)]

use std::num::NonZeroU32;
use std::sync::LazyLock;

use super::{
    MAX_ITERATIONS, MAX_NAME_OR_NONCE, MIN_ITERATIONS, ScramClient, ScramCredential, ScramError,
    ScramHash, ScramServer, UserStore, client_first_username, parse_plain, plain_message,
};

// === sasl_scram ===

/// RFC 7677, section 3.
const USER: &str = "user";
const PASSWORD: &str = "pencil";
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
/// `W22ZaJ0SNY7soEsUEjb6gQ==`.
const SALT: [u8; 16] = [
    91, 109, 153, 104, 157, 18, 53, 142, 236, 160, 75, 20, 18, 54, 250, 129,
];
const ITERATIONS: NonZeroU32 = NonZeroU32::new(4096).unwrap();

/// A broker may ask for up to `MAX_ITERATIONS` (a million) PBKDF2 rounds, which the client then
/// spends: correct, but a second per input. Inputs asking for more than this are skipped so the
/// fuzzer keeps its pace; the bounds check itself is cheap and runs for the rest.
const FUZZ_MAX_ITERATIONS: u32 = 16_384;

/// The stored credentials of `user`, derived once.
static CREDENTIALS: LazyLock<[ScramCredential; 2]> = LazyLock::new(|| {
    [ScramHash::Sha256, ScramHash::Sha512]
        .map(|hash| ScramCredential::derive(hash, PASSWORD, &SALT, ITERATIONS))
});

/// How a `sasl_scram` input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramOutcome {
    /// The exchange succeeded on the side the input drove.
    Succeeded,
    /// A message was refused.
    Refused,
    /// An empty input, or a client input asking for more PBKDF2 rounds than the target spends.
    Skipped,
}

/// The `sasl_scram` fuzz target: SCRAM-SHA-256/512 (RFC 5802) message parsing on both sides of
/// the proxy, as the server that verifies a Kafka client (the client's first and final messages)
/// and as the client that authenticates to a cluster (the broker's first and final messages; a
/// broker can lie).
///
/// The first input byte steers the run: bit 0 picks the hash (SHA-256, SHA-512), and the rest of
/// it, modulo 3, the side:
///
/// - *server*: the rest is `client-first \n client-final`, read by `ScramServer::start` and
///   `finish` with RFC 7677's user (`user`, password `pencil`) known and the server nonce fixed,
///   so the RFC's exchange (a seed) succeeds and mutations of it reach every check;
/// - *client*: the rest is `server-first \n server-final`, answered by a `ScramClient` that sent
///   RFC 7677's client-first and checked by its `ScramClientFinal::verify`;
/// - *round trip*: the rest is a user name; an honest client and server must agree.
///
/// For any input nothing panics, and: the user name the server reads is the one
/// `client_first_username` (the inspector of a proxy that only watches) reads; the server's
/// first message carries the client's nonce followed by its own; a server only ends an exchange
/// successfully for a known user; the client's answer extends the nonce it sent; and an honest
/// exchange succeeds for any user name, which reaches the server as it was written.
pub fn scram(input: &[u8]) -> ScramOutcome {
    let Some((&control, rest)) = input.split_first() else {
        return ScramOutcome::Skipped;
    };
    let hash = if control & 1 == 0 {
        ScramHash::Sha256
    } else {
        ScramHash::Sha512
    };
    match (control >> 1) % 3 {
        0 => {
            let (first, last) = split_line(rest);
            scram_server(hash, first, last)
        }
        1 => {
            let (first, last) = split_line(rest);
            scram_client(hash, first, last)
        }
        _ => scram_round_trip(hash, &String::from_utf8_lossy(rest)),
    }
}

/// The bytes before the first `\n` and after it (empty without one).
fn split_line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&b| b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[]),
    }
}

fn credential(hash: ScramHash) -> ScramCredential {
    let [sha256, sha512] = &*CREDENTIALS;
    match hash {
        ScramHash::Sha256 => sha256.clone(),
        ScramHash::Sha512 => sha512.clone(),
    }
}

/// Sluice as the server a Kafka client authenticates to.
fn scram_server(hash: ScramHash, client_first: &[u8], client_final: &[u8]) -> ScramOutcome {
    let watched = client_first_username(client_first);
    let Ok((server, server_first)) = ScramServer::start(
        hash,
        client_first,
        |name| (name == USER).then(|| credential(hash)),
        SERVER_NONCE,
    ) else {
        return ScramOutcome::Refused;
    };
    assert_eq!(
        watched.as_deref(),
        Some(server.username()),
        "the inspector and the server read different user names"
    );
    let known = server.username() == USER;
    let nonce = server_first
        .split(',')
        .next()
        .and_then(|attr| attr.strip_prefix("r="))
        .unwrap_or_else(|| panic!("server-first without a nonce first: {server_first:?}"));
    assert!(
        nonce.len() > SERVER_NONCE.len() && nonce.ends_with(SERVER_NONCE),
        "the server nonce does not extend the client's: {server_first:?}"
    );
    match server.finish(client_final) {
        Ok(server_final) => {
            assert!(known, "an unknown user was let in");
            assert!(server_final.starts_with("v="), "{server_final:?}");
            ScramOutcome::Succeeded
        }
        Err(_) => ScramOutcome::Refused,
    }
}

/// Sluice as the client that authenticates to a cluster.
fn scram_client(hash: ScramHash, server_first: &[u8], server_final: &[u8]) -> ScramOutcome {
    if asks_too_many_iterations(server_first) {
        return ScramOutcome::Skipped;
    }
    let (client, _) = ScramClient::start(hash, USER, PASSWORD, CLIENT_NONCE);
    let (finishing, client_final) = match client.respond(server_first) {
        Ok(answer) => answer,
        Err(ScramError::Iterations(n)) => {
            assert!(
                !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n),
                "iteration count {n} in bounds refused"
            );
            return ScramOutcome::Refused;
        }
        Err(_) => return ScramOutcome::Refused,
    };
    let nonce = client_final
        .strip_prefix("c=biws,r=")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("malformed client-final: {client_final:?}"));
    assert!(
        nonce.len() > CLIENT_NONCE.len() && nonce.starts_with(CLIENT_NONCE),
        "answered a nonce that does not extend ours: {client_final:?}"
    );
    if finishing.verify(server_final).is_err() {
        return ScramOutcome::Refused;
    }
    let text = String::from_utf8_lossy(server_final);
    assert!(
        !text.split(',').any(|attr| attr.starts_with("e=")),
        "accepted a server-final carrying an error: {text:?}"
    );
    ScramOutcome::Succeeded
}

/// Whether any `i=` attribute of `server_first` asks for more than [`FUZZ_MAX_ITERATIONS`].
fn asks_too_many_iterations(server_first: &[u8]) -> bool {
    String::from_utf8_lossy(server_first)
        .split(',')
        .filter_map(|attr| attr.strip_prefix("i="))
        .any(|n| n.parse::<u32>().is_ok_and(|n| n > FUZZ_MAX_ITERATIONS))
}

/// An honest client and server, the user name from the input: it succeeds, unless the name
/// is longer (as sent, escaped) than a server accepts, which is refused as such.
fn scram_round_trip(hash: ScramHash, username: &str) -> ScramOutcome {
    let (client, client_first) = ScramClient::start(hash, username, PASSWORD, CLIENT_NONCE);
    assert_eq!(
        client_first_username(client_first.as_bytes()).as_deref(),
        Some(username),
        "the inspector misread {client_first:?}"
    );
    let sent = username.replace('=', "=3D").replace(',', "=2C");
    if sent.len() > MAX_NAME_OR_NONCE {
        let refused = ScramServer::start(hash, client_first.as_bytes(), |_| None, SERVER_NONCE);
        assert!(
            matches!(refused, Err(ScramError::Malformed(_))),
            "a {}-byte name was not refused: {refused:?}",
            sent.len()
        );
        return ScramOutcome::Refused;
    }
    let (server, server_first) = ScramServer::start(
        hash,
        client_first.as_bytes(),
        |name| {
            assert_eq!(name, username, "the server looked up another user");
            Some(credential(hash))
        },
        SERVER_NONCE,
    )
    .unwrap_or_else(|err| panic!("{client_first:?} refused: {err}"));
    assert_eq!(server.username(), username);
    let (finishing, client_final) = client
        .respond(server_first.as_bytes())
        .unwrap_or_else(|err| panic!("{server_first:?} refused: {err}"));
    let server_final = server
        .finish(client_final.as_bytes())
        .unwrap_or_else(|err| panic!("{client_final:?} refused: {err}"));
    finishing
        .verify(server_final.as_bytes())
        .unwrap_or_else(|err| panic!("{server_final:?} refused: {err}"));
    ScramOutcome::Succeeded
}

// === sasl_plain ===

/// The `sasl_plain` fuzz target: the SASL PLAIN (RFC 4616) message parser, which reads a Kafka
/// client's credentials. Returns whether `input` parsed.
///
/// For any input nothing panics, and a message that parses is exactly its three parts joined by
/// NUL, with a user name and a password and an authzid that is empty or the user name; what the
/// client side writes for those credentials (`plain_message`) parses back to them. The input is
/// also read as `user \n password` for the client side: its message parses back to them unless
/// one is empty or holds a NUL.
pub fn plain(input: &[u8]) -> bool {
    let parsed = parse_plain(input);
    if let Some(message) = &parsed {
        let joined = format!(
            "{}\0{}\0{}",
            message.authzid, message.username, message.password
        );
        assert_eq!(joined.as_bytes(), input, "parts lost or invented");
        assert!(!message.username.is_empty() && !message.password.is_empty());
        assert!(message.authzid.is_empty() || message.authzid == message.username);
        let written = plain_message(message.username, message.password);
        let reread = parse_plain(&written)
            .unwrap_or_else(|| panic!("{written:?} written for {message:?} does not parse"));
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

// === users_file ===

/// The `users_file` fuzz target: the users-file parser (`UserStore::parse`), which reads the
/// salted SCRAM credentials that `sluice user add` writes and every SASL listener reads at start
/// and on reload. The file is an operator's, but it is edited by hand and by tools, and a parser
/// must refuse, not panic. Returns the number of users when `input` parsed.
///
/// For any text nothing panics, and a store that parses is written back (`to_toml`, what
/// `sluice user add` saves) as a file that parses to the same store.
pub fn users_file(input: &[u8]) -> Option<usize> {
    // The file is read as UTF-8 text; other bytes never reach the parser.
    let text = std::str::from_utf8(input).ok()?;
    let store = UserStore::parse(text).ok()?;
    let written = store.to_toml();
    match UserStore::parse(&written) {
        Ok(reread) => assert_eq!(reread, store, "written back as another store:\n{written}"),
        Err(err) => panic!("written back as a file that does not parse ({err}):\n{written}"),
    }
    Some(store.len())
}
