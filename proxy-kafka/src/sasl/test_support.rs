//! What the SASL tests share: users, requests of every SASL kind, and running a stage.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestKind, ResponseKind, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::test_support::{request_frame, response_frame};
use crate::{KafkaCodec, KafkaRequest, KafkaResponse};
use proxy_core::codec::Codec;
use proxy_core::context::SessionContext;
use proxy_core::io::WriteQueue;
use proxy_core::sasl::{
    FailureThrottle, Mechanism, PasswordVerifier, PendingLimit, ReloadableUsers, ScramClient,
    ScramCredential, ScramHash, UserStore,
};
use proxy_core::stage::{Flow, Stage, StageContext};

pub(super) fn users() -> Arc<ReloadableUsers> {
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
    Arc::new(ReloadableUsers::new(users))
}

pub(super) fn config(lifetime: Option<Duration>) -> Arc<SaslServerConfig> {
    Arc::new(SaslServerConfig {
        mechanisms: Mechanism::ALL.to_vec(),
        users: users(),
        session_lifetime: lifetime,
    })
}

/// A request as a client sends it, read by the codec.
pub(super) fn request(
    codec: &mut KafkaCodec,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> KafkaRequest {
    let mut buf = BytesMut::from(&request_frame(api, version, 7, &body)[..]);
    codec.decode_request(&mut buf).unwrap().unwrap()
}

pub(super) fn handshake(codec: &mut KafkaCodec, mechanism: &str, version: i16) -> KafkaRequest {
    let body =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_owned()));
    request(
        codec,
        ApiKey::SaslHandshake,
        version,
        RequestKind::SaslHandshake(body),
    )
}

pub(super) fn authenticate(codec: &mut KafkaCodec, token: impl Into<Bytes>) -> KafkaRequest {
    let body = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    request(
        codec,
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(body),
    )
}

/// `step`, or, when it asks for a password check, the step after running it here.
pub(super) fn checked(server: &mut SaslServer, step: SaslStep) -> SaslStep {
    match step {
        SaslStep::CheckPassword(check) => server.on_password_checked(Ok(check.run())),
        other => other,
    }
}

/// `step`, or, when it asks for a password check, the step after running it through the
/// termination's verifier (recording the new auth state in `session`).
pub(super) async fn negotiated(
    negotiation: &mut Negotiation,
    step: NegotiationStep,
    session: &mut SessionContext,
) -> NegotiationStep {
    let NegotiationStep::CheckPassword { request, check } = step else {
        return step;
    };
    let checked = negotiation.termination().check_password(check).await;
    let ip = session.client_addr().ip();
    let (step, auth) = negotiation.on_password_checked(&request, checked, ip);
    if let Some(auth) = auth {
        session.set_auth(auth);
    }
    step
}

pub(super) fn authenticate_response(step: &SaslStep) -> &SaslAuthenticateResponse {
    let response = match step {
        SaslStep::Continue(r) => r,
        SaslStep::Authenticated { response, .. } | SaslStep::Failed { response, .. } => response,
        SaslStep::CheckPassword(_) => panic!("a password check, not an answer"),
    };
    match response {
        ResponseKind::SaslAuthenticate(body) => body,
        other => panic!("not a SaslAuthenticate response: {other:?}"),
    }
}

pub(super) fn handshake_code(step: &SaslStep) -> i16 {
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
pub(super) fn scram(
    server: &mut SaslServer,
    hash: ScramHash,
    user: &str,
    password: &str,
) -> SaslStep {
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

pub(super) fn run_request(
    stage: &mut dyn Stage<crate::Kafka>,
    msg: KafkaRequest,
    session: &mut proxy_core::context::SessionContext,
) -> Flow<KafkaRequest, KafkaResponse> {
    stage.on_request(msg, &mut StageContext::new(session))
}

/// The broker's answer to `msg`, as the codec reads it after forwarding `msg`.
pub(super) fn broker_answer(
    codec: &mut KafkaCodec,
    msg: KafkaRequest,
    body: ResponseKind,
) -> KafkaResponse {
    let (api, version, correlation) = (msg.api().unwrap(), msg.api_version(), msg.correlation_id());
    codec
        .encode_request(msg, &mut WriteQueue::default())
        .unwrap();
    let mut buf = BytesMut::from(&response_frame(api, version, correlation, &body)[..]);
    codec.decode_response(&mut buf).unwrap().unwrap()
}

pub(super) fn forwarded(flow: Flow<KafkaRequest, KafkaResponse>) -> KafkaRequest {
    match flow {
        Flow::Forward(msg) => msg,
        other => panic!("not forwarded: {other:?}"),
    }
}

pub(super) fn termination(lifetime: Option<Duration>) -> SaslTermination {
    SaslTermination {
        config: config(lifetime),
        metrics: Arc::new(SaslMetrics::default()),
        throttle: Arc::new(FailureThrottle::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )),
        pending: Arc::new(PendingLimit::new(64, 16)),
        verifier: Arc::new(PasswordVerifier::new(1)),
    }
}

pub(super) fn metadata(codec: &mut KafkaCodec) -> KafkaRequest {
    request(
        codec,
        ApiKey::Metadata,
        4,
        RequestKind::Metadata(MetadataRequest::default()),
    )
}

pub(super) async fn resolve(
    flow: Flow<KafkaRequest, KafkaResponse>,
) -> Flow<KafkaRequest, KafkaResponse> {
    match flow {
        Flow::Defer(future) => future.await,
        other => other,
    }
}
