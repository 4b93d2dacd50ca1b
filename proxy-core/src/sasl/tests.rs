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
