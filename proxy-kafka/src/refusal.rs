//! The ways the Kafka layer refuses a client (or recognises a broker's refusal), as close reasons
//! with their own labels: the core's [`CloseReason`] knows no Kafka.

use proxy_core::close::{CloseReason, Fault, Refusal};
use proxy_core::codec::ClientCaused;

use crate::api_label;

/// A refusal of the Kafka layer's own, or a broker's that it recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaRefusal {
    /// The client connected to a broker the cluster does not list (any more).
    UnknownBroker {
        /// The broker's node id.
        node_id: i32,
    },
    /// The client sent a request other than ApiVersions or SASL before authenticating; a broker
    /// closes such connections too.
    NotAuthenticated {
        /// The API the client asked for.
        api_key: i16,
    },
    /// The broker closed the connection on a request whose API key the proxy does not know:
    /// brokers answer an API key they do not know by closing, so the client sent a request
    /// neither understands. (The proxy passes unknown keys on: a newer broker may serve them.)
    UnknownApiKey {
        /// The key the client sent.
        api_key: i16,
        /// The request's correlation id, to find it in the client's logs.
        correlation_id: i32,
    },
}

impl KafkaRefusal {
    /// The refusal's stable label, as the close line and metrics show it.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownBroker { .. } => "unknown_broker",
            Self::NotAuthenticated { .. } => "not_authenticated",
            Self::UnknownApiKey { .. } => "unknown_api_key",
        }
    }

    /// What happened, for the log.
    pub fn detail(self) -> String {
        match self {
            Self::UnknownBroker { node_id } => {
                format!("the cluster lists no broker with node id {node_id}")
            }
            Self::NotAuthenticated { api_key } => {
                format!("request {} before authentication", api_label(api_key))
            }
            Self::UnknownApiKey {
                api_key,
                correlation_id,
            } => format!(
                "the broker closed on request {api_key} (correlation id {correlation_id}), \
                 an API key the proxy does not know"
            ),
        }
    }
}

/// For the codec: the broker's hang-up on such a request is the client's fault.
impl From<KafkaRefusal> for ClientCaused {
    fn from(refusal: KafkaRefusal) -> Self {
        ClientCaused {
            label: refusal.label(),
            detail: refusal.detail().into(),
        }
    }
}

impl From<KafkaRefusal> for CloseReason {
    fn from(refusal: KafkaRefusal) -> Self {
        Refusal {
            label: refusal.label(),
            fault: Fault::Downstream,
            detail: refusal.detail().into(),
        }
        .into()
    }
}
