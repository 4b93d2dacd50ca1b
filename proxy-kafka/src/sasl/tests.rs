use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestKind, ResponseKind, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::*;
use crate::test_support::cx;
use crate::tests::{request_frame, response_frame};
use crate::{KafkaCodec, KafkaRefusal, KafkaRequest, KafkaResponse};
use proxy_core::close::CloseReason;
use proxy_core::codec::Codec;
use proxy_core::context::{AuthMechanism, AuthState};
use proxy_core::io::WriteQueue;
use proxy_core::sasl::{
    FailureThrottle, Mechanism, ScramClient, ScramCredential, ScramHash, UserStore, plain_message,
};
use proxy_core::stage::{Flow, Stage, StageContext};

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn users() -> Arc<UserStore> {
    let mut users = UserStore::default();
    let iterations = NonZeroU32::new(4096).unwrap();
    for hash in [ScramHash::Sha256, ScramHash::Sha512] {
        users.add(
            "alice",
            ScramCredential::generate(hash, "alice-secret", iterations).unwrap(),
        );
    }
    users.add(
        "bob",
        ScramCredential::generate(ScramHash::Sha512, "bob-secret", iterations).unwrap(),
    );
    Arc::new(users)
}

fn config(lifetime: Option<Duration>) -> Arc<SaslServerConfig> {
    Arc::new(SaslServerConfig {
        mechanisms: Mechanism::ALL.to_vec(),
        users: users(),
        session_lifetime: lifetime,
    })
}

/// A request as a client sends it, read by the codec.
fn request(codec: &mut KafkaCodec, api: ApiKey, version: i16, body: RequestKind) -> KafkaRequest {
    let mut buf = BytesMut::from(&request_frame(api, version, 7, &body)[..]);
    codec.decode_request(&mut buf).unwrap().unwrap()
}

fn handshake(codec: &mut KafkaCodec, mechanism: &str, version: i16) -> KafkaRequest {
    let body =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_owned()));
    request(
        codec,
        ApiKey::SaslHandshake,
        version,
        RequestKind::SaslHandshake(body),
    )
}

fn authenticate(codec: &mut KafkaCodec, token: impl Into<Bytes>) -> KafkaRequest {
    let body = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    request(
        codec,
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(body),
    )
}

fn authenticate_response(step: &SaslStep) -> &SaslAuthenticateResponse {
    let response = match step {
        SaslStep::Continue(r) => r,
        SaslStep::Authenticated { response, .. } | SaslStep::Failed { response, .. } => response,
    };
    match response {
        ResponseKind::SaslAuthenticate(body) => body,
        other => panic!("not a SaslAuthenticate response: {other:?}"),
    }
}

fn handshake_code(step: &SaslStep) -> i16 {
    match step {
        SaslStep::Continue(ResponseKind::SaslHandshake(body))
        | SaslStep::Failed {
            response: ResponseKind::SaslHandshake(body),
            ..
        } => body.error_code,
        other => panic!("not a handshake answer: {other:?}"),
    }
}

/// Runs a whole SCRAM exchange against `server`; returns the last step.
fn scram(server: &mut SaslServer, hash: ScramHash, user: &str, password: &str) -> SaslStep {
    let mut codec = KafkaCodec::default();
    let step = server
        .on_request(&mut handshake(&mut codec, hash.mechanism(), 1))
        .unwrap();
    assert_eq!(handshake_code(&step), 0);
    let (client, first) = ScramClient::start(hash, user, password, "clientnonce");
    let step = server
        .on_request(&mut authenticate(&mut codec, first.into_bytes()))
        .unwrap();
    let SaslStep::Continue(ResponseKind::SaslAuthenticate(server_first)) = step else {
        panic!("no server-first message: {step:?}");
    };
    let (client_final, final_message) = client.respond(&server_first.auth_bytes).unwrap();
    let step = server
        .on_request(&mut authenticate(&mut codec, final_message.into_bytes()))
        .unwrap();
    if let SaslStep::Authenticated { .. } = &step {
        client_final
            .verify(&authenticate_response(&step).auth_bytes)
            .unwrap();
    }
    step
}

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
    assert!(matches!(
        step,
        SaslStep::Failed {
            credentials_rejected: true,
            ..
        }
    ));
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

fn run_request(
    stage: &mut dyn Stage<crate::Kafka>,
    msg: KafkaRequest,
    session: &mut proxy_core::context::SessionContext,
) -> Flow<KafkaRequest, KafkaResponse> {
    stage.on_request(msg, &mut StageContext::new(session))
}

/// The broker's answer to `msg`, as the codec reads it after forwarding `msg`.
fn broker_answer(codec: &mut KafkaCodec, msg: KafkaRequest, body: ResponseKind) -> KafkaResponse {
    let (api, version, correlation) = (msg.api().unwrap(), msg.api_version(), msg.correlation_id());
    codec
        .encode_request(msg, &mut WriteQueue::default())
        .unwrap();
    let mut buf = BytesMut::from(&response_frame(api, version, correlation, &body)[..]);
    codec.decode_response(&mut buf).unwrap().unwrap()
}

fn forwarded(flow: Flow<KafkaRequest, KafkaResponse>) -> KafkaRequest {
    match flow {
        Flow::Forward(msg) => msg,
        other => panic!("not forwarded: {other:?}"),
    }
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
        let msg = forwarded(run_request(
            &mut stage,
            authenticate(&mut codec, token),
            &mut session,
        ));
        let answer = broker_answer(
            &mut codec,
            msg,
            ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default()),
        );
        assert!(matches!(
            stage.on_response(answer, &mut StageContext::new(&mut session)),
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

fn termination(lifetime: Option<Duration>) -> SaslTermination {
    SaslTermination {
        config: config(lifetime),
        metrics: Arc::new(SaslMetrics::default()),
        throttle: Arc::new(FailureThrottle::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )),
    }
}

fn metadata(codec: &mut KafkaCodec) -> KafkaRequest {
    request(
        codec,
        ApiKey::Metadata,
        4,
        RequestKind::Metadata(MetadataRequest::default()),
    )
}

async fn resolve(flow: Flow<KafkaRequest, KafkaResponse>) -> Flow<KafkaRequest, KafkaResponse> {
    match flow {
        Flow::Defer(future) => future.await,
        other => other,
    }
}

#[tokio::test(start_paused = true)]
async fn a_session_past_its_lifetime_closes_unless_it_re_authenticates() {
    let lifetime = Duration::from_secs(10);
    let mut stage = SaslReauthenticate::new(
        termination(Some(lifetime)),
        "alice".into(),
        CLIENT,
        Instant::now(),
    );
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
        let mut stage =
            SaslReauthenticate::new(termination(None), "alice".into(), CLIENT, Instant::now());
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
    let mut stage =
        SaslReauthenticate::new(termination(None), "alice".into(), CLIENT, Instant::now());
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
