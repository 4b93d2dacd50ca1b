//! The ways the Kafka layer refuses a client, as close reasons with their own labels: the core's
//! [`CloseReason`] knows no Kafka.

use proxy_core::close::{CloseReason, Fault, Refusal};

use crate::api_label;

/// A refusal of the Kafka layer's own.
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
}

impl KafkaRefusal {
    /// The refusal's stable label, as the close line and metrics show it.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownBroker { .. } => "unknown_broker",
            Self::NotAuthenticated { .. } => "not_authenticated",
        }
    }
}

impl From<KafkaRefusal> for CloseReason {
    fn from(refusal: KafkaRefusal) -> Self {
        let detail = match refusal {
            KafkaRefusal::UnknownBroker { node_id } => {
                format!("the cluster lists no broker with node id {node_id}")
            }
            KafkaRefusal::NotAuthenticated { api_key } => {
                format!("request {} before authentication", api_label(api_key))
            }
        };
        Refusal {
            label: refusal.label(),
            fault: Fault::Downstream,
            detail: detail.into(),
        }
        .into()
    }
}
