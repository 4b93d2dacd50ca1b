//! SASL on Kafka listeners: the server side of the exchange (termination), the stage that
//! answers re-authentication in an authenticated session (KIP-368), the stage that only watches
//! an exchange passing through (inspection), and their counters.

mod inspect;
mod metrics;
mod reauth;
mod server;
mod termination;

#[cfg(test)]
mod tests;

pub use self::inspect::SaslInspect;
pub use self::metrics::{SaslCount, SaslMetrics, SaslPhase};
pub use self::reauth::SaslReauthenticate;
pub use self::server::{
    ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED, SaslServer, SaslServerConfig, SaslStep,
    UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION, authenticate_error, handshake_response,
};
pub use self::termination::SaslTermination;
