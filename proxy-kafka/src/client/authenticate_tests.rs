//! `authenticate` against the fake broker over an in-memory duplex.

use std::time::Duration;

use kafka_protocol::ResponseError;
use proxy_core::sasl::{Mechanism, ScramError, ScramHash};
use tokio::time::Instant;

use super::fake_broker::{FakeBroker, REJECTED, Seen};
use super::*;

fn sasl(mechanism: Mechanism, password: &str) -> ClusterSasl {
    ClusterSasl {
        mechanism,
        username: "proxy".into(),
        password: Password::new(password.into()),
    }
}

/// Runs `authenticate` against `broker`; returns both sides' results.
async fn run(
    broker: FakeBroker,
    sasl: &ClusterSasl,
) -> (Result<Authenticated, SaslClientError>, Seen) {
    let (mut client, server) = tokio::io::duplex(4096);
    let broker = tokio::spawn(async move { broker.serve(server).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    let result = authenticate(&mut client, sasl, deadline).await;
    drop(client);
    (result, broker.await.unwrap())
}

#[tokio::test]
async fn every_mechanism_authenticates_and_the_broker_sees_the_user() {
    for mechanism in Mechanism::ALL {
        let (result, seen) = run(
            FakeBroker::new("proxy", "s3cret"),
            &sasl(mechanism, "s3cret"),
        )
        .await;
        assert_eq!(
            result.unwrap(),
            Authenticated {
                session_lifetime_ms: 0
            },
            "{mechanism}"
        );
        assert_eq!(
            seen,
            Seen {
                asked: Some(mechanism.name().into()),
                authenticated: Some("proxy".into()),
            }
        );
    }
}

#[tokio::test]
async fn the_session_lifetime_of_the_last_round_is_returned() {
    for mechanism in [Mechanism::Plain, Mechanism::Scram(ScramHash::Sha512)] {
        let mut broker = FakeBroker::new("proxy", "s3cret");
        broker.session_lifetime_ms = 60_000;
        let (result, _) = run(broker, &sasl(mechanism, "s3cret")).await;
        assert_eq!(result.unwrap().session_lifetime_ms, 60_000, "{mechanism}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_rejected_with_the_brokers_message() {
    for mechanism in Mechanism::ALL {
        let (result, seen) = run(
            FakeBroker::new("proxy", "s3cret"),
            &sasl(mechanism, "wrong"),
        )
        .await;
        let err = result.unwrap_err();
        let SaslClientError::Rejected {
            error, ref message, ..
        } = err
        else {
            panic!("{mechanism}: {err:?}");
        };
        assert_eq!(error, ResponseError::SaslAuthenticationFailed);
        assert_eq!(message.as_deref(), Some(REJECTED));
        let text = err.to_string();
        assert!(
            text.contains(REJECTED) && text.contains("\"proxy\""),
            "{text}"
        );
        assert!(!text.contains("wrong"), "the password leaked: {text}");
        assert_eq!(seen.authenticated, None);
    }
}

#[tokio::test]
async fn an_unsupported_mechanism_names_the_ones_the_broker_offers() {
    let mut broker = FakeBroker::new("proxy", "s3cret");
    broker.offered = vec![Mechanism::Scram(ScramHash::Sha256), Mechanism::Plain];
    let (result, seen) = run(broker, &sasl(Mechanism::Scram(ScramHash::Sha512), "s3cret")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            &err,
            SaslClientError::UnsupportedMechanism { mechanism, offered }
                if *mechanism == Mechanism::Scram(ScramHash::Sha512)
                    && offered == &["SCRAM-SHA-256", "PLAIN"]
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the broker does not offer SCRAM-SHA-512 (it offers: SCRAM-SHA-256, PLAIN)"
    );
    assert_eq!(seen.authenticated, None);
}

#[tokio::test]
async fn a_broker_that_cannot_prove_it_knows_the_credential_fails() {
    let mut broker = FakeBroker::new("proxy", "s3cret");
    broker.forge_server_signature = true;
    let (result, _) = run(broker, &sasl(Mechanism::Scram(ScramHash::Sha256), "s3cret")).await;
    assert!(
        matches!(
            result,
            Err(SaslClientError::Scram(ScramError::ServerNotVerified))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_broker_that_hangs_up_or_stays_silent_is_an_exchange_error() {
    let (mut client, server) = tokio::io::duplex(4096);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = authenticate(&mut client, &sasl(Mechanism::Plain, "x"), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SaslClientError::Exchange(ExchangeError::Io(_))),
        "{err:?}"
    );

    tokio::time::pause();
    let (mut client, _server) = tokio::io::duplex(4096);
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = authenticate(&mut client, &sasl(Mechanism::Plain, "x"), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SaslClientError::Exchange(ExchangeError::TimedOut)),
        "{err:?}"
    );
}

#[test]
fn passwords_never_print() {
    let sasl = sasl(Mechanism::Plain, "s3cret");
    let printed = format!("{sasl:?}");
    assert!(
        printed.contains("***") && !printed.contains("s3cret"),
        "{printed}"
    );
}

#[test]
fn a_brokers_words_cannot_break_the_line_they_are_logged_on() {
    let rejected = SaslClientError::Rejected {
        username: "proxy".to_owned(),
        mechanism: Mechanism::Plain,
        error: ResponseError::SaslAuthenticationFailed,
        message: Some("denied\r\nFORGED level=ERROR".to_owned()),
    };
    let offers = SaslClientError::UnsupportedMechanism {
        mechanism: Mechanism::Plain,
        offered: vec!["SCRAM-SHA-256\nFORGED".to_owned()],
    };
    for err in [rejected, offers] {
        let text = err.to_string();
        assert!(!text.contains(['\r', '\n']), "{text}");
        assert!(text.contains(r"\nFORGED"), "{text}");
    }
}
