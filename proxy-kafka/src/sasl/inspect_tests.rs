//! The inspection stage: the principal and the broker's verdict learnt from an exchange that
//! passes through.

use std::sync::Arc;

use kafka_protocol::messages::{ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::test_support::cx;
use crate::{KafkaCodec, KafkaRequest, KafkaResponse};
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::gate::Side;
use proxy_core::sasl::{Mechanism, plain_message};
use proxy_core::stage::{Flow, Stage, StageContext};

use super::test_support::*;

/// A SaslHandshake for `mechanism` through the stage, and the broker's acceptance back.
fn accepted_handshake(
    stage: &mut SaslInspect,
    codec: &mut KafkaCodec,
    session: &mut SessionContext,
    mechanism: &str,
) {
    let msg = forwarded(run_request(stage, handshake(codec, mechanism, 1), session));
    let answer = broker_answer(
        codec,
        msg,
        ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
    );
    assert!(matches!(
        stage.on_response(answer, &mut StageContext::new(session)),
        Flow::Forward(_)
    ));
}

/// A SaslAuthenticate carrying `token` through the stage, and what the stage makes of the
/// broker accepting it.
fn accepted_step(
    stage: &mut SaslInspect,
    codec: &mut KafkaCodec,
    session: &mut SessionContext,
    token: &[u8],
) -> Flow<KafkaResponse, KafkaRequest> {
    let msg = forwarded(run_request(
        stage,
        authenticate(codec, token.to_vec()),
        session,
    ));
    let answer = broker_answer(
        codec,
        msg,
        ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default()),
    );
    stage.on_response(answer, &mut StageContext::new(session))
}

#[test]
fn inspection_learns_the_scram_principal_and_the_brokers_verdict() {
    let metrics = Arc::new(SaslMetrics::default());
    let mut stage = SaslInspect::new(Mechanism::ALL.into(), metrics.clone());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    let msg = forwarded(run_request(
        &mut stage,
        handshake(&mut codec, "SCRAM-SHA-256", 1),
        &mut session,
    ));
    assert_eq!(
        *session.auth(),
        AuthState::InProgress {
            mechanism: AuthMechanism::ScramSha256
        }
    );
    let response = broker_answer(
        &mut codec,
        msg,
        ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
    );
    assert!(matches!(
        stage.on_response(response, &mut StageContext::new(&mut session)),
        Flow::Forward(_)
    ));
    for (round, token) in [
        &b"n,,n=carol=2Cthe=3Dfirst,r=abc"[..],
        b"c=biws,r=abcdef,p=AAAA",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(matches!(
            accepted_step(&mut stage, &mut codec, &mut session, token),
            Flow::Forward(_)
        ));
        if round == 0 {
            assert!(
                session.auth().principal().is_none(),
                "one SCRAM round is not the end"
            );
        }
    }
    assert_eq!(session.auth().principal(), Some("carol,the=first"));
    let counted: u64 = metrics
        .snapshot()
        .iter()
        .filter(|c| {
            c.mechanism == "SCRAM-SHA-256" && c.outcome == "success" && c.phase == "initial"
        })
        .map(|c| c.count)
        .sum();
    assert_eq!(counted, 1);
}

#[test]
fn inspection_records_a_refused_plain_login_and_refuses_unlisted_mechanisms() {
    let metrics = Arc::new(SaslMetrics::default());
    let mut stage = SaslInspect::new(vec![Mechanism::Plain].into(), metrics.clone());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    match run_request(
        &mut stage,
        handshake(&mut codec, "SCRAM-SHA-512", 1),
        &mut session,
    ) {
        Flow::Respond(mut answer) => match answer.body().unwrap() {
            ResponseKind::SaslHandshake(body) => {
                assert_eq!(body.error_code, UNSUPPORTED_SASL_MECHANISM)
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let msg = forwarded(run_request(
        &mut stage,
        handshake(&mut codec, "PLAIN", 1),
        &mut session,
    ));
    let response = broker_answer(
        &mut codec,
        msg,
        ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
    );
    stage.on_response(response, &mut StageContext::new(&mut session));
    let msg = forwarded(run_request(
        &mut stage,
        authenticate(&mut codec, plain_message("dave", "x")),
        &mut session,
    ));
    let refusal = SaslAuthenticateResponse::default()
        .with_error_code(SASL_AUTHENTICATION_FAILED)
        .with_error_message(Some(StrBytes::from_static_str("bad")));
    let answer = broker_answer(&mut codec, msg, ResponseKind::SaslAuthenticate(refusal));
    assert!(matches!(
        stage.on_response(answer, &mut StageContext::new(&mut session)),
        Flow::Forward(_)
    ));
    assert_eq!(
        *session.auth(),
        AuthState::Failed {
            mechanism: AuthMechanism::Plain
        }
    );
    let failures: u64 = metrics
        .snapshot()
        .iter()
        .filter(|c| c.outcome == "failure")
        .map(|c| c.count)
        .sum();
    assert_eq!(failures, 2, "the unlisted mechanism and the refused login");
}

#[test]
fn a_client_that_pipelines_a_second_login_behind_the_first_is_closed_before_either_counts() {
    // Handshake, a login the broker will accept, then a second handshake and a login as
    // someone else, all before any answer: the broker's "yes" to the first must never be
    // recorded for the name in the second.
    let mut stage = SaslInspect::new(vec![Mechanism::Plain].into(), Arc::default());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    let first = forwarded(run_request(
        &mut stage,
        handshake(&mut codec, "PLAIN", 1),
        &mut session,
    ));
    match run_request(
        &mut stage,
        authenticate(&mut codec, plain_message("mallory", "right")),
        &mut session,
    ) {
        Flow::Close(CloseReason::Protocol { side, detail }) => {
            assert_eq!(side, Side::Client);
            assert!(detail.contains("before the previous one"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.auth().principal(), None);
    assert!(matches!(*session.auth(), AuthState::Failed { .. }));
    // Whatever the broker answers to what did reach it, nobody is authenticated.
    let answer = broker_answer(
        &mut codec,
        first,
        ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
    );
    stage.on_response(answer, &mut StageContext::new(&mut session));
    assert_eq!(session.auth().principal(), None);
}

#[test]
fn a_login_whose_name_the_proxy_cannot_read_is_closed_not_recorded_as_nobody() {
    // A SCRAM client-first with an extension (a delegation token's `tokenauth`): the user name
    // is the token's id, not a principal, and the message does not parse as a plain login.
    let mut stage = SaslInspect::new(Mechanism::ALL.into(), Arc::default());
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    accepted_handshake(&mut stage, &mut codec, &mut session, "SCRAM-SHA-256");
    let mut verdict = None;
    for token in [
        &b"n,,n=token-id,r=abc,tokenauth=true"[..],
        b"c=biws,r=abcdef,p=AAAA",
    ] {
        verdict = Some(accepted_step(&mut stage, &mut codec, &mut session, token));
    }
    match verdict {
        Some(Flow::Close(CloseReason::Protocol { side, detail })) => {
            assert_eq!(side, Side::Client);
            assert!(detail.contains("cannot read"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.auth().principal(), None);
}
