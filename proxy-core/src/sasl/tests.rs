use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;

// RFC 7677, section 3: user "user", password "pencil".
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn rfc_credential() -> ScramCredential {
    let salt = BASE64.decode(SALT).unwrap();
    ScramCredential::derive(ScramHash::Sha256, "pencil", &salt, iterations(4096))
}

#[test]
fn the_server_side_follows_rfc_7677() {
    let credential = rfc_credential();
    let (server, first) = ScramServer::start(
        ScramHash::Sha256,
        CLIENT_FIRST.as_bytes(),
        |user| (user == "user").then(|| credential.clone()),
        SERVER_NONCE,
    )
    .unwrap();
    assert_eq!(first, SERVER_FIRST);
    assert_eq!(server.username(), "user");
    assert_eq!(
        server.finish(CLIENT_FINAL.as_bytes()).unwrap(),
        SERVER_FINAL
    );
}

#[test]
fn the_client_side_follows_rfc_7677() {
    let (client, first) = ScramClient::start(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
    assert_eq!(first, CLIENT_FIRST);
    let (finishing, last) = client.respond(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(last, CLIENT_FINAL);
    finishing.verify(SERVER_FINAL.as_bytes()).unwrap();
}

#[test]
fn a_client_refuses_a_server_that_cannot_prove_the_password() {
    let (client, _) = ScramClient::start(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
    let (finishing, _) = client.respond(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        finishing.verify(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(ScramError::ServerNotVerified)
    );
    let (client, _) = ScramClient::start(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
    assert_eq!(
        client
            .respond(b"r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap_err(),
        ScramError::ServerNotVerified
    );
    let (client, _) = ScramClient::start(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
    assert_eq!(
        client
            .respond(b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999")
            .unwrap_err(),
        ScramError::Iterations(99_999_999)
    );
}

#[test]
fn both_sides_agree_for_sha_512_and_odd_user_names() {
    let credential = ScramCredential::derive(
        ScramHash::Sha512,
        "s3cret",
        b"0123456789abcdef",
        iterations(4096),
    );
    let (client, first) = ScramClient::start(ScramHash::Sha512, "a,b=c", "s3cret", "clientnonce");
    let (server, server_first) = ScramServer::start(
        ScramHash::Sha512,
        first.as_bytes(),
        |user| (user == "a,b=c").then(|| credential.clone()),
        "servernonce",
    )
    .unwrap();
    assert_eq!(server.username(), "a,b=c");
    let (finishing, last) = client.respond(server_first.as_bytes()).unwrap();
    let server_final = server.finish(last.as_bytes()).unwrap();
    finishing.verify(server_final.as_bytes()).unwrap();
}

#[test]
fn a_wrong_password_and_an_unknown_user_fail_alike() {
    let credential = rfc_credential();
    for (user, password) in [("user", "pen"), ("nobody", "pencil")] {
        let (client, first) = ScramClient::start(ScramHash::Sha256, user, password, "abc");
        let (server, server_first) = ScramServer::start(
            ScramHash::Sha256,
            first.as_bytes(),
            |name| (name == "user").then(|| credential.clone()),
            "def",
        )
        .unwrap();
        // The challenge alone does not reveal whether the user exists.
        assert!(server_first.starts_with("r=abcdef,s="), "{server_first}");
        let (_, last) = client.respond(server_first.as_bytes()).unwrap();
        assert_eq!(server.finish(last.as_bytes()), Err(ScramError::Failed));
    }
}

#[test]
fn malformed_client_messages_are_errors_not_panics() {
    let credential = rfc_credential();
    let lookup = |_: &str| Some(credential.clone());
    for message in [
        &b""[..],
        b"n,",
        b"x,,n=user,r=abc",
        b"n,,r=abc",
        b"n,,n=user",
        b"n,,n=us=er,r=abc",
        b"n,,=,r=abc",
        b"\xff\xfe",
    ] {
        assert!(
            ScramServer::start(ScramHash::Sha256, message, lookup, "x").is_err(),
            "{message:?} was accepted"
        );
    }
    assert_eq!(
        ScramServer::start(
            ScramHash::Sha256,
            b"p=tls-unique,,n=user,r=abc",
            lookup,
            "x"
        )
        .unwrap_err(),
        ScramError::ChannelBinding
    );
    let (server, _) = ScramServer::start(
        ScramHash::Sha256,
        CLIENT_FIRST.as_bytes(),
        lookup,
        SERVER_NONCE,
    )
    .unwrap();
    assert!(server.finish(b"c=biws,r=wrong,p=AAAA").is_err());
}

/// A client-final message whose nonce is `nonce`, with the proof of `password` over it (the
/// RFC 7677 exchange's salt and iterations), computed as any client does: over the message
/// as sent.
fn client_final_with_nonce(password: &str, nonce: &str) -> String {
    let salt = BASE64.decode(SALT).unwrap();
    let mut salted = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(4096),
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let mac = |key: &[u8], data: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        ring::hmac::sign(&key, data).as_ref().to_vec()
    };
    let client_key = mac(&salted, b"Client Key");
    let stored_key = ring::digest::digest(&ring::digest::SHA256, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let client_first_bare = CLIENT_FIRST.strip_prefix("n,,").unwrap();
    let auth_message = format!("{client_first_bare},{SERVER_FIRST},{without_proof}");
    let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", BASE64.encode(proof))
}

#[test]
fn the_doubled_nonce_of_librdkafka_before_2_6_1_is_accepted_and_nothing_else() {
    let credential = rfc_credential();
    let start = || {
        let lookup = |_: &str| Some(credential.clone());
        ScramServer::start(
            ScramHash::Sha256,
            CLIENT_FIRST.as_bytes(),
            lookup,
            SERVER_NONCE,
        )
        .unwrap()
        .0
    };
    let nonce = format!("{CLIENT_NONCE}{SERVER_NONCE}");
    // The helper agrees with RFC 7677's own final message.
    assert_eq!(client_final_with_nonce("pencil", &nonce), CLIENT_FINAL);
    // librdkafka#4895: the client's nonce, then the whole nonce the server sent.
    let doubled = format!("{CLIENT_NONCE}{nonce}");
    assert!(
        start()
            .finish(client_final_with_nonce("pencil", &doubled).as_bytes())
            .is_ok()
    );
    assert_eq!(
        start().finish(client_final_with_nonce("pen", &doubled).as_bytes()),
        Err(ScramError::Failed),
        "the doubled nonce does not spare the proof"
    );
    // Any other prefix, or the server's nonce alone, is still refused, proof or not.
    for other in [
        format!("x{nonce}"),
        format!("{CLIENT_NONCE}x{nonce}"),
        format!("{CLIENT_NONCE}{CLIENT_NONCE}{nonce}"),
        SERVER_NONCE.to_owned(),
        format!("{nonce}{CLIENT_NONCE}"),
    ] {
        assert_eq!(
            start().finish(client_final_with_nonce("pencil", &other).as_bytes()),
            Err(ScramError::Malformed("nonce does not match")),
            "{other}"
        );
    }
}

#[test]
fn plain_messages_parse_strictly() {
    let parsed = parse_plain(b"\0alice\0wonderland").unwrap();
    assert_eq!((parsed.username, parsed.password), ("alice", "wonderland"));
    assert!(parse_plain(b"alice\0alice\0pw").is_some());
    assert!(
        parse_plain(b"bob\0alice\0pw").is_none(),
        "acting as another user"
    );
    assert!(parse_plain(b"\0alice\0").is_none());
    assert!(parse_plain(b"\0\0pw").is_none());
    assert!(parse_plain(b"\0a\0b\0c").is_none());
    assert_eq!(plain_message("alice", "pw"), b"\0alice\0pw");
    assert!(
        !format!("{parsed:?}").contains("wonderland"),
        "a password in Debug"
    );
}

#[test]
fn mechanisms_parse_by_name_ignoring_case() {
    assert_eq!("plain".parse(), Ok(Mechanism::Plain));
    assert_eq!(
        "SCRAM-SHA-512".parse(),
        Ok(Mechanism::Scram(ScramHash::Sha512))
    );
    assert!("GSSAPI".parse::<Mechanism>().is_err());
}

#[test]
fn the_users_file_round_trips_and_checks_plain_logins() {
    let mut store = UserStore::default();
    store.add(
        "alice",
        ScramCredential::derive(
            ScramHash::Sha512,
            "wonderland",
            b"salt-of-alice",
            iterations(4096),
        ),
    );
    store.add("user", rfc_credential());
    store.add(
        "odd name",
        ScramCredential::derive(ScramHash::Sha256, "x", b"salt", iterations(5000)),
    );
    let text = store.to_toml();
    assert!(
        !text.contains("wonderland"),
        "a password was written:\n{text}"
    );
    let parsed = UserStore::parse(&text).unwrap();
    assert_eq!(parsed, store);
    assert!(parsed.verify_plain("alice", "wonderland"));
    assert!(!parsed.verify_plain("alice", "wonderlan"));
    assert!(!parsed.verify_plain("nobody", "wonderland"));
    assert!(parsed.verify_plain("user", "pencil"));
    assert_eq!(
        parsed.credential("user", ScramHash::Sha256),
        Some(&rfc_credential())
    );
    assert_eq!(parsed.credential("user", ScramHash::Sha512), None);
}

#[test]
fn users_are_listed_with_their_mechanisms_and_removed_one_mechanism_or_all() {
    let mut store = store_with(&[
        ("alice", ScramHash::Sha256, 4096),
        ("alice", ScramHash::Sha512, 4096),
        ("bob", ScramHash::Sha512, 4096),
    ]);
    assert_eq!(store.names().collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(
        store.mechanisms("alice"),
        [ScramHash::Sha256, ScramHash::Sha512]
    );
    assert!(store.mechanisms("carol").is_empty());
    assert!(store.remove("carol", None).is_empty());
    assert!(store.remove("bob", Some(ScramHash::Sha256)).is_empty());
    assert_eq!(
        store.remove("alice", Some(ScramHash::Sha256)),
        [ScramHash::Sha256]
    );
    assert_eq!(store.mechanisms("alice"), [ScramHash::Sha512]);
    assert_eq!(store.remove("bob", None), [ScramHash::Sha512]);
    // A user without credentials is gone: the file never holds an empty table.
    assert_eq!(
        store.remove("alice", Some(ScramHash::Sha512)),
        [ScramHash::Sha512]
    );
    assert!(store.is_empty());
    assert_eq!(UserStore::parse(&store.to_toml()).unwrap(), store);
}

#[test]
fn users_file_errors_name_the_key() {
    let cases = [
        ("[users.a.PLAIN]\nsalt = \"AA==\"", "users.a.PLAIN"),
        (
            "[users.a.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 4096\nstored_key = \"AA==\"\nserver_key = \"AA==\"",
            "users.a.SCRAM-SHA-256.stored_key",
        ),
        (
            "[users.a.SCRAM-SHA-256]\nsalt = \"!!\"",
            "users.a.SCRAM-SHA-256",
        ),
        (
            "[users.a.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 10",
            "users.a.SCRAM-SHA-256.iterations",
        ),
        (
            "[users.a.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 1000000",
            "users.a.SCRAM-SHA-256.iterations",
        ),
        (
            "[users.a.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 16385",
            "users.a.SCRAM-SHA-256.iterations",
        ),
        (
            "[users.a.SCRAM-SHA-256]\npassword = \"x\"",
            "users.a.SCRAM-SHA-256.password",
        ),
        ("[people]", "people"),
    ];
    for (text, path) in cases {
        let err = UserStore::parse(text).unwrap_err();
        assert!(err.path.starts_with(path), "{text:?}: {err}");
    }
}

#[test]
fn a_scram_client_never_prints_its_password() {
    let (client, _) = ScramClient::start(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
    let printed = format!("{client:?}");
    assert!(!printed.contains("pencil"), "{printed}");
    assert!(printed.contains("n=user"), "{printed}");
}

/// The parts of a server-first message: (nonce, salt, iterations).
fn challenge(server_first: &str) -> (String, Vec<u8>, u32) {
    let mut parts = server_first.split(',');
    let nonce = parts.next().unwrap().strip_prefix("r=").unwrap().to_owned();
    let salt = BASE64
        .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
        .unwrap();
    let iterations = parts
        .next()
        .unwrap()
        .strip_prefix("i=")
        .unwrap()
        .parse()
        .unwrap();
    (nonce, salt, iterations)
}

fn store_with(users: &[(&str, ScramHash, u32)]) -> UserStore {
    let mut store = UserStore::default();
    for &(name, hash, count) in users {
        let credential = ScramCredential::generate(hash, "secret", iterations(count)).unwrap();
        store.add(name, credential);
    }
    store
}

fn server_first_for(store: &UserStore, hash: ScramHash, user: &str) -> String {
    let first = format!("n,,n={user},r=abc");
    let (_, server_first) = ScramServer::start(
        hash,
        first.as_bytes(),
        |name| Some(store.credential_or_decoy(name, hash)),
        "def",
    )
    .unwrap();
    server_first
}

#[test]
fn unknown_users_get_challenges_shaped_like_real_ones() {
    let sha512 = ScramHash::Sha512;
    let store = store_with(&[
        ("alice", sha512, 8192),
        ("bob", sha512, 8192),
        ("carol", sha512, 4096),
    ]);
    let (_, real_salt, real_iterations) = challenge(&server_first_for(&store, sha512, "alice"));
    let (_, decoy_salt, decoy_iterations) = challenge(&server_first_for(&store, sha512, "mallory"));
    // As long as a real salt, at the count most users have.
    assert_eq!(decoy_salt.len(), real_salt.len());
    assert_eq!((real_iterations, decoy_iterations), (8192, 8192));
    // Stable per name, as a real user's is, so asking twice tells nothing ...
    let (_, again, _) = challenge(&server_first_for(&store, sha512, "mallory"));
    assert_eq!(again, decoy_salt);
    // ... different per name and per mechanism ...
    let (_, other, _) = challenge(&server_first_for(&store, sha512, "trudy"));
    assert_ne!(other, decoy_salt);
    let (_, other_hash, other_count) =
        challenge(&server_first_for(&store, ScramHash::Sha256, "mallory"));
    assert_ne!(other_hash[..], decoy_salt[..]);
    // (no SCRAM-SHA-256 users: Kafka's minimum)
    assert_eq!(other_count, MIN_ITERATIONS);
    // ... and not the public hash of the name that used to tell decoys apart.
    let public = ring::digest::digest(&ring::digest::SHA512, b"mallory");
    assert_ne!(decoy_salt[..], public.as_ref()[..16]);
    // A user without a credential for the mechanism gets a decoy too.
    let (_, bobs_256, _) = challenge(&server_first_for(&store, ScramHash::Sha256, "bob"));
    assert_eq!(bobs_256.len(), 16);
}

#[test]
fn a_decoy_accepts_no_password() {
    let store = store_with(&[("alice", ScramHash::Sha512, 4096)]);
    for password in ["", "secret", "mallory"] {
        assert!(!store.verify_plain("mallory", password));
    }
    let decoy = store.credential_or_decoy("mallory", ScramHash::Sha512);
    for password in ["", "secret"] {
        assert!(!decoy.verify_password(password));
    }
    assert!(store.verify_plain("alice", "secret"));
}

#[test]
fn oversized_or_extended_client_messages_are_refused_before_they_are_read() {
    let credential = rfc_credential();
    let lookup = |_: &str| Some(credential.clone());
    let long = "x".repeat(MAX_NAME_OR_NONCE + 1);
    let huge_nonce = format!("n,,n=user,r={}", "x".repeat(510 * 1024));
    for message in [
        format!("n,,n={long},r=abc"),
        format!("n,,n=user,r={long}"),
        huge_nonce,
        "n,,m=ext,n=user,r=abc".to_owned(),
    ] {
        let refused = ScramServer::start(ScramHash::Sha256, message.as_bytes(), lookup, "x");
        assert!(
            matches!(refused, Err(ScramError::Malformed(_))),
            "{}...: {refused:?}",
            &message[..message.len().min(40)]
        );
    }
    // The longest allowed name and nonce still work.
    let max = "y".repeat(MAX_NAME_OR_NONCE);
    let message = format!("n,,n={max},r={max}");
    assert!(ScramServer::start(ScramHash::Sha256, message.as_bytes(), lookup, "x").is_ok());
    let (server, _) = ScramServer::start(
        ScramHash::Sha256,
        CLIENT_FIRST.as_bytes(),
        lookup,
        SERVER_NONCE,
    )
    .unwrap();
    let final_too_long = format!("c=biws,r={},p=AAAA", "z".repeat(MAX_CLIENT_MESSAGE));
    assert_eq!(
        server.finish(final_too_long.as_bytes()),
        Err(ScramError::Malformed("message too long"))
    );
}
