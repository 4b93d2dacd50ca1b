//! The SASL server: SCRAM and PLAIN against salted credentials, and Kafka's error codes for
//! protocol mistakes.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::KafkaCodec;
use proxy_core::sasl::{Mechanism, ScramHash, plain_message};

use super::test_support::*;

#[test]
fn scram_sha_256_and_512_authenticate_and_prove_the_server() {
    for hash in [ScramHash::Sha256, ScramHash::Sha512] {
        let mut server = SaslServer::new(config(Some(Duration::from_secs(60))));
        let step = scram(&mut server, hash, "alice", "alice-secret");
        let SaslStep::Authenticated {
            principal,
            mechanism,
            ..
        } = &step
        else {
            panic!("{hash:?}: {step:?}");
        };
        assert_eq!(
            (principal.as_str(), *mechanism),
            ("alice", Mechanism::Scram(hash))
        );
        assert_eq!(authenticate_response(&step).session_lifetime_ms, 60_000);
        assert!(!server.in_progress());
    }
}

#[test]
fn scram_with_a_wrong_password_or_an_unknown_user_fails_the_same_way() {
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut server = SaslServer::new(config(None));
        let step = scram(&mut server, ScramHash::Sha512, user, password);
        let SaslStep::Failed {
            credentials_rejected,
            mechanism,
            ..
        } = &step
        else {
            panic!("{user}: {step:?}");
        };
        assert!(credentials_rejected);
        assert_eq!(*mechanism, Some(Mechanism::Scram(ScramHash::Sha512)));
        let body = authenticate_response(&step);
        assert_eq!(body.error_code, SASL_AUTHENTICATION_FAILED);
        assert_eq!(
            body.error_message.as_deref(),
            Some("Authentication failed: Invalid username or password")
        );
    }
}

#[test]
fn a_user_without_a_credential_for_the_hash_cannot_use_it() {
    // bob has only SCRAM-SHA-512 keys.
    let mut server = SaslServer::new(config(None));
    let step = scram(&mut server, ScramHash::Sha256, "bob", "bob-secret");
    assert!(matches!(step, SaslStep::Failed { .. }), "{step:?}");
}

#[test]
fn plain_is_checked_against_the_salted_keys() {
    let mut codec = KafkaCodec::default();
    let mut server = SaslServer::new(config(None));
    assert_eq!(
        handshake_code(
            &server
                .on_request(&mut handshake(&mut codec, "plain", 1))
                .unwrap()
        ),
        0,
        "mechanism names are case-insensitive"
    );
    let step = server
        .on_request(&mut authenticate(
            &mut codec,
            plain_message("bob", "bob-secret"),
        ))
        .unwrap();
    let step = checked(&mut server, step);
    assert!(
        matches!(&step, SaslStep::Authenticated { principal, .. } if principal == "bob"),
        "{step:?}"
    );
    assert_eq!(authenticate_response(&step).session_lifetime_ms, 0);

    let mut server = SaslServer::new(config(None));
    server
        .on_request(&mut handshake(&mut codec, "PLAIN", 1))
        .unwrap();
    let step = server
        .on_request(&mut authenticate(&mut codec, plain_message("bob", "nope")))
        .unwrap();
    assert!(
        matches!(&step, SaslStep::CheckPassword(check) if check.username() == "bob"),
        "a PLAIN password is checked off the runtime: {step:?}"
    );
    let step = checked(&mut server, step);
    assert!(matches!(
        step,
        SaslStep::Failed {
            credentials_rejected: true,
            ref username,
            ..
        } if username.as_deref() == Some("bob")
    ));
}

#[test]
fn replaced_users_are_seen_by_authentications_that_had_not_yet_sent_their_token() {
    let config = config(None);
    let mut codec = KafkaCodec::default();
    // A handshake before the users change, its token after: the new users decide.
    let mut server = SaslServer::new(config.clone());
    server
        .on_request(&mut handshake(&mut codec, "PLAIN", 1))
        .unwrap();
    let mut without_bob = proxy_core::sasl::UserStore::clone(&config.users.current());
    assert_eq!(without_bob.remove("bob", None), [ScramHash::Sha512]);
    config.users.replace(without_bob);
    let step = server
        .on_request(&mut authenticate(
            &mut codec,
            plain_message("bob", "bob-secret"),
        ))
        .unwrap();
    let step = checked(&mut server, step);
    assert!(
        matches!(
            step,
            SaslStep::Failed {
                credentials_rejected: true,
                ..
            }
        ),
        "{step:?}"
    );
    let mut server = SaslServer::new(config);
    let step = scram(&mut server, ScramHash::Sha512, "bob", "bob-secret");
    assert!(matches!(step, SaslStep::Failed { .. }), "{step:?}");
    let step = scram(
        &mut SaslServer::new(server.config().clone()),
        ScramHash::Sha512,
        "alice",
        "alice-secret",
    );
    assert!(matches!(step, SaslStep::Authenticated { .. }), "{step:?}");
}

#[test]
fn protocol_mistakes_get_kafka_error_codes() {
    let mut codec = KafkaCodec::default();
    let only_scram = Arc::new(SaslServerConfig {
        mechanisms: vec![Mechanism::Scram(ScramHash::Sha512)],
        users: users(),
        session_lifetime: None,
    });
    let mut server = SaslServer::new(only_scram.clone());
    let step = server
        .on_request(&mut handshake(&mut codec, "PLAIN", 1))
        .unwrap();
    assert_eq!(handshake_code(&step), UNSUPPORTED_SASL_MECHANISM);
    let SaslStep::Failed {
        response: ResponseKind::SaslHandshake(body),
        ..
    } = &step
    else {
        panic!()
    };
    assert_eq!(
        body.mechanisms,
        vec![StrBytes::from_static_str("SCRAM-SHA-512")]
    );

    let mut server = SaslServer::new(only_scram.clone());
    let step = server
        .on_request(&mut handshake(&mut codec, "SCRAM-SHA-512", 0))
        .unwrap();
    assert_eq!(handshake_code(&step), UNSUPPORTED_VERSION);

    let mut server = SaslServer::new(only_scram);
    let step = server
        .on_request(&mut authenticate(&mut codec, &b"n,,n=alice,r=x"[..]))
        .unwrap();
    assert_eq!(authenticate_response(&step).error_code, ILLEGAL_SASL_STATE);
    let step = server
        .on_request(&mut handshake(&mut codec, "SCRAM-SHA-512", 1))
        .unwrap();
    assert_eq!(handshake_code(&step), 0);
    let step = server
        .on_request(&mut authenticate(&mut codec, &b"garbage"[..]))
        .unwrap();
    assert!(matches!(
        step,
        SaslStep::Failed {
            credentials_rejected: false,
            ..
        }
    ));
}

// === stages ===
