//! Refusals of the session's own APIs: version negotiation, SASL and client telemetry. Each
//! has only a top-level error code.

use kafka_protocol::messages::{
    ApiVersionsResponse, GetTelemetrySubscriptionsResponse, PushTelemetryResponse,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};

/// No API versions listed.
pub(super) fn api_versions(code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(code)
}

/// No mechanisms offered.
pub(super) fn sasl_handshake(code: i16) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(code)
}

/// No auth bytes and no session lifetime.
pub(super) fn sasl_authenticate(code: i16) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

/// No subscription.
pub(super) fn get_telemetry_subscriptions(code: i16) -> GetTelemetrySubscriptionsResponse {
    GetTelemetrySubscriptionsResponse::default().with_error_code(code)
}

pub(super) fn push_telemetry(code: i16) -> PushTelemetryResponse {
    PushTelemetryResponse::default().with_error_code(code)
}
