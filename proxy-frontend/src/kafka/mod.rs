//! Kafka listeners: the gateway that keeps clients on the proxy, the stage that rewrites broker
//! addresses, and broker discovery for connections that arrive before any Metadata.

mod discovery;
mod gateway;
mod negotiate;
mod rewrite_stage;
mod sasl;
mod versions;

use std::fmt;
use std::sync::Arc;

use proxy_core::route::RouteId;
use proxy_core::stage::NewStage;
use proxy_kafka::{Kafka, KafkaMetrics};

pub(crate) use self::discovery::{discover, discover_in_background};
pub use self::gateway::{
    BrokerListenerStarter, GatewayMode, HostPattern, KafkaGateway, NODE_ID_PLACEHOLDER,
    RouteBrokers, broker_socket_name, parse_broker_socket_name,
};
pub(crate) use self::negotiate::negotiate;
pub(crate) use self::rewrite_stage::BrokerAddressRewrite;
pub use self::sasl::{ListenerSasl, SaslTerminate};
pub use self::versions::{BrokerVersions, offered_versions};

/// What a Kafka listener adds to a listener.
#[derive(Clone)]
pub struct KafkaListener {
    /// The virtual cluster's gateway, shared by its bootstrap and broker listeners.
    pub gateway: Arc<KafkaGateway>,
    /// The broker this listener serves (port-per-broker), or `None` for the bootstrap port (and
    /// for SNI gateways, where the server name picks the broker).
    pub node_id: Option<i32>,
    /// Frames larger than this close the session.
    pub max_frame_size: usize,
    /// Factories of the configured Kafka stages, in request order.
    pub stages: Vec<Arc<dyn NewStage<Kafka>>>,
    /// Per-API-key counters, shared by the virtual cluster's listeners.
    pub metrics: Arc<KafkaMetrics>,
    /// SASL inspection or termination; `None` passes SASL through untouched.
    pub sasl: Option<ListenerSasl>,
    /// Every route the listener's sessions can take (its cluster and its rules' clusters).
    pub routes: Vec<RouteId>,
}

impl fmt::Debug for KafkaListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaListener")
            .field("gateway", &self.gateway)
            .field("node_id", &self.node_id)
            .field("max_frame_size", &self.max_frame_size)
            .field("stages", &self.stages.len())
            .field("sasl", &self.sasl)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}
