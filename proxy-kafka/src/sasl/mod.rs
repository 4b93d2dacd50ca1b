//! SASL on Kafka listeners: what a listener does with SASL, the server side of the exchange
//! (termination) and the sans-IO negotiation built on it, the stage that answers
//! re-authentication in an authenticated session (KIP-368), the stage that only watches
//! an exchange passing through (inspection), and their counters.

mod inspect;
mod listener;
mod metrics;
mod negotiation;
mod reauth;
mod server;
mod termination;

#[cfg(test)]
mod inspect_tests;
#[cfg(test)]
mod negotiation_tests;
#[cfg(test)]
mod reauth_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod test_support;

pub use self::inspect::SaslInspect;
pub use self::listener::{ListenerSasl, SaslTerminate};
pub use self::metrics::{SaslCount, SaslMetrics, SaslPhase, SaslRefusal};
pub use self::negotiation::{
    MAX_UNAUTHENTICATED_FRAME, Negotiation, NegotiationStep, answer_api_versions,
};
pub use self::reauth::SaslReauthenticate;
pub use self::server::{
    ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED, SaslServer, SaslServerConfig, SaslStep,
    UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION, authenticate_error, handshake_response,
};
pub use self::termination::SaslTermination;
