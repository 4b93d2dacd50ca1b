//! Re-authentication in an authenticated session (KIP-368): lifetime, principal, and requests
//! in the middle of an exchange.

use std::time::Duration;

use kafka_protocol::messages::ResponseKind;
use tokio::time::Instant;

use super::*;
use crate::test_support::cx;
use crate::{KafkaCodec, KafkaRefusal};
use proxy_core::close::CloseReason;
use proxy_core::sasl::plain_message;
use proxy_core::stage::Flow;

use super::test_support::*;

#[tokio::test(start_paused = true)]
async fn a_session_past_its_lifetime_closes_unless_it_re_authenticates() {
    let lifetime = Duration::from_secs(10);
    let mut stage =
        SaslReauthenticate::new(termination(Some(lifetime)), "alice".into(), Instant::now());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    forwarded(run_request(&mut stage, metadata(&mut codec), &mut session));
    tokio::time::advance(Duration::from_secs(8)).await;
    // Re-authentication as the same principal, answered by the stage, never forwarded.
    for msg in [
        handshake(&mut codec, "PLAIN", 1),
        authenticate(&mut codec, plain_message("alice", "alice-secret")),
    ] {
        match resolve(run_request(&mut stage, msg, &mut session)).await {
            Flow::Respond(mut answer) => assert!(answer.is_answer() && answer.body().is_ok()),
            other => panic!("{other:?}"),
        }
    }
    tokio::time::advance(Duration::from_secs(8)).await;
    forwarded(run_request(&mut stage, metadata(&mut codec), &mut session));
    tokio::time::advance(Duration::from_secs(3)).await;
    match run_request(&mut stage, metadata(&mut codec), &mut session) {
        Flow::Close(reason) => assert_eq!(reason, CloseReason::SessionExpired),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn re_authentication_cannot_change_the_principal_or_fail_without_ending_the_session() {
    for (user, password) in [("bob", "bob-secret"), ("alice", "wrong")] {
        let mut stage = SaslReauthenticate::new(termination(None), "alice".into(), Instant::now());
        let mut session = cx();
        let mut codec = KafkaCodec::default();
        resolve(run_request(
            &mut stage,
            handshake(&mut codec, "PLAIN", 1),
            &mut session,
        ))
        .await;
        let started = Instant::now();
        match resolve(run_request(
            &mut stage,
            authenticate(&mut codec, plain_message(user, password)),
            &mut session,
        ))
        .await
        {
            Flow::Respond(mut answer) => match answer.body().unwrap() {
                ResponseKind::SaslAuthenticate(body) => {
                    assert_eq!(body.error_code, SASL_AUTHENTICATION_FAILED, "{user}")
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        if password == "wrong" {
            assert!(
                started.elapsed() >= Duration::from_millis(100),
                "a wrong password is slowed down"
            );
        }
        assert!(matches!(
            run_request(&mut stage, metadata(&mut codec), &mut session),
            Flow::Close(CloseReason::AuthenticationFailed { .. })
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn requests_in_the_middle_of_a_re_authentication_close_the_session() {
    let mut stage = SaslReauthenticate::new(termination(None), "alice".into(), Instant::now());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    resolve(run_request(
        &mut stage,
        handshake(&mut codec, "SCRAM-SHA-512", 1),
        &mut session,
    ))
    .await;
    assert!(matches!(
        run_request(&mut stage, metadata(&mut codec), &mut session),
        Flow::Close(reason) if reason == KafkaRefusal::NotAuthenticated { api_key: 3 }.into()
    ));
}
