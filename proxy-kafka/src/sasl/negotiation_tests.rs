//! The sans-IO negotiation of a SASL-terminating listener, before a session has a route: what
//! it answers, what it refuses, and what it records in the session's context.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::Message;
use proxy_core::close::CloseReason;
use proxy_core::codec::Codec;
use proxy_core::context::{AuthMechanism, AuthState};
use proxy_core::io::WriteQueue;
use proxy_core::sasl::plain_message;

use super::test_support::*;
use super::*;
use crate::KafkaCodec;
use crate::test_support::{cx, request_frame};

fn negotiation() -> Negotiation {
    Negotiation::initial(termination(None))
}

#[tokio::test]
async fn plain_authenticates_and_records_the_principal() {
    let mut negotiation = negotiation();
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    let step = negotiation.on_request(handshake(&mut codec, "PLAIN", 1), &mut session);
    assert!(matches!(step, NegotiationStep::Answer(_)), "{step:?}");
    assert!(
        matches!(session.auth(), AuthState::InProgress { .. }),
        "{:?}",
        session.auth()
    );
    assert!(negotiation.in_progress());
    let token = plain_message("alice", "alice-secret");
    let step = negotiation.on_request(authenticate(&mut codec, token), &mut session);
    assert!(
        matches!(step, NegotiationStep::CheckPassword { .. }),
        "{step:?}"
    );
    match negotiated(&mut negotiation, step, &mut session).await {
        NegotiationStep::Authenticated(response) => {
            assert_eq!(response.api(), Some(ApiKey::SaslAuthenticate));
        }
        other => panic!("not authenticated: {other:?}"),
    }
    assert_eq!(
        session.auth(),
        &AuthState::Authenticated {
            principal: "alice".into(),
            mechanism: AuthMechanism::Plain,
        }
    );
    assert!(!negotiation.in_progress());
}

#[tokio::test]
async fn a_wrong_password_is_answered_then_closes_as_auth_failed() {
    let mut negotiation = negotiation();
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    negotiation.on_request(handshake(&mut codec, "PLAIN", 1), &mut session);
    let token = plain_message("alice", "wrong");
    let step = negotiation.on_request(authenticate(&mut codec, token), &mut session);
    match negotiated(&mut negotiation, step, &mut session).await {
        NegotiationStep::Refuse {
            response: Some(response),
            reason,
            ..
        } => {
            assert_eq!(response.api(), Some(ApiKey::SaslAuthenticate));
            assert_eq!(
                reason,
                CloseReason::AuthenticationFailed {
                    mechanism: "PLAIN".into()
                }
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    assert!(matches!(session.auth(), AuthState::Failed { .. }));
}

#[test]
fn any_other_request_before_authentication_is_refused_unanswered() {
    let mut negotiation = negotiation();
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    match negotiation.on_request(metadata(&mut codec), &mut session) {
        NegotiationStep::Refuse {
            response: None,
            reason,
            ..
        } => {
            assert_eq!(reason.label(), "not_authenticated");
            assert_eq!(reason.to_string(), "request Metadata before authentication");
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(session.auth(), &AuthState::Unauthenticated);
}

#[test]
fn api_versions_is_handed_to_the_driver_and_answered_in_the_clients_version() {
    let mut negotiation = negotiation();
    let mut session = cx();
    let mut codec = KafkaCodec::default();
    let ask = |codec: &mut KafkaCodec, version| {
        request(
            codec,
            ApiKey::ApiVersions,
            version,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
    };
    let NegotiationStep::ApiVersions(request) =
        negotiation.on_request(ask(&mut codec, 2), &mut session)
    else {
        panic!("ApiVersions was not handed over");
    };
    let offered = vec![
        ApiVersion::default()
            .with_api_key(ApiKey::Produce as i16)
            .with_min_version(3)
            .with_max_version(9),
    ];
    let mut answer = answer_api_versions(&request, offered.clone());
    assert_eq!(answer.api_version(), 2);
    match answer.body().unwrap() {
        ResponseKind::ApiVersions(body) => {
            assert_eq!(body.error_code, 0);
            assert_eq!(body.api_keys, offered);
        }
        other => panic!("{other:?}"),
    }
    // A version newer than the proxy knows: an error in v0, with the versions, as a broker
    // answers, so the client retries with one it has.
    let newer = ApiVersionsResponse::VERSIONS.max + 1;
    let current = ApiVersionsResponse::VERSIONS.max;
    let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
    let mut frame = BytesMut::from(&request_frame(ApiKey::ApiVersions, current, 9, &body)[..]);
    // The same header and body, claiming a version this proxy has never heard of.
    frame[6..8].copy_from_slice(&newer.to_be_bytes());
    let from_the_future = codec.decode_request(&mut frame).unwrap().unwrap();
    assert_eq!(from_the_future.api_version(), newer);
    let mut answer = answer_api_versions(&from_the_future, offered.clone());
    assert_eq!(answer.api_version(), 0);
    match answer.body().unwrap() {
        ResponseKind::ApiVersions(body) => {
            assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
            assert_eq!(body.api_keys.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // A negative version (a hostile client's) is answered the same way, in a version the
    // answer can be encoded in, not failed as the proxy's own error.
    let mut frame = BytesMut::from(&request_frame(ApiKey::ApiVersions, current, 10, &body)[..]);
    frame[6..8].copy_from_slice(&(-1i16).to_be_bytes());
    let from_nowhere = codec.decode_request(&mut frame).unwrap().unwrap();
    assert_eq!(from_nowhere.api_version(), -1);
    let answer = answer_api_versions(&from_nowhere, offered);
    assert_eq!(answer.api_version(), 0);
    let mut out = WriteQueue::default();
    codec
        .encode_response(answer, &mut out)
        .expect("the answer to a negative version encodes");
    assert!(!out.is_empty());
}
