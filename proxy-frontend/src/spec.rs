//! What a listener is, from configuration: where it listens, what a session must establish,
//! its handshake phases, its limits, and the protocol its sessions speak with their stages.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use proxy_core::codec::RawTcp;
use proxy_core::forward::{ForwardLimits, FrameBudget};
use proxy_core::proxy_protocol::{ProxyProtocolMode, ProxyProtocolPolicy};
use proxy_core::route::{Prerequisites, RouteId};
use proxy_core::stage::NewStage;
use proxy_core::state::Phases;
use proxy_kafka::broker_map::{BrokerMap, GatewayMode};
use proxy_kafka::sasl::{ListenerSasl, Negotiation, SaslTerminate};
use proxy_kafka::{Kafka, KafkaMetrics};

use crate::admission::Admission;
use crate::tls::ListenerTls;

/// Everything a listener needs to know, from configuration.
#[derive(Clone)]
pub struct ListenerSpec {
    /// The listener's name, in logs, metrics and routing.
    pub name: Arc<str>,
    /// Where to listen.
    pub bind: SocketAddr,
    /// What a session must establish before it may forward.
    pub requires: Prerequisites,
    /// Whether connections start with a PROXY header, and whose to believe.
    pub proxy_protocol: ProxyProtocolPolicy,
    /// TLS termination or passthrough, after any PROXY header.
    pub tls: Option<ListenerTls>,
    /// Buffer bounds and timeouts of each session, shared by them.
    pub limits: Arc<ForwardLimits>,
    /// What the listener's messages larger than one read are charged to while they are
    /// assembled (a child of the process's budget); `None` bounds them only by the codec's
    /// maximum.
    pub frame_budget: Option<FrameBudget>,
    /// How many connections the listener, and each source, may hold; shared by the listener's
    /// bootstrap and broker ports.
    pub admission: Arc<Admission>,
    /// The protocol sessions speak, and its stages.
    pub protocol: ListenerProtocol,
}

/// The protocol a listener's sessions speak.
#[derive(Clone)]
pub enum ListenerProtocol {
    /// Bytes, as read.
    Tcp {
        /// Factories of the stages each session runs, in request order.
        stages: Vec<Arc<dyn NewStage<RawTcp>>>,
    },
    /// Kafka, through a virtual cluster's broker map.
    Kafka(KafkaListener),
}

/// What a Kafka listener adds to a listener.
#[derive(Clone)]
pub struct KafkaListener {
    /// The virtual cluster's brokers and the addresses clients are told, shared by its
    /// bootstrap and broker listeners.
    pub brokers: Arc<BrokerMap>,
    /// Frames larger than this close the session.
    pub max_frame_size: usize,
    /// Request frames larger than this close the session (at most `max_frame_size`).
    pub max_request_size: usize,
    /// Requests a session may have awaiting their answers: at this many, reading from the
    /// client pauses ([`proxy_core::PauseReason::InFlightLimit`]) until an answer arrives.
    pub max_in_flight_requests: usize,
    /// Factories of the configured Kafka stages, in request order.
    pub stages: Vec<Arc<dyn NewStage<Kafka>>>,
    /// Per-API-key counters, shared by the virtual cluster's listeners.
    pub metrics: Arc<KafkaMetrics>,
    /// SASL inspection or termination; `None` passes SASL through untouched.
    pub sasl: Option<ListenerSasl>,
    /// Every route the listener's sessions can take (its cluster and its rules' clusters).
    pub routes: Vec<RouteId>,
}

impl fmt::Debug for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerSpec")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("requires", &self.requires)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("frame_budget", &self.frame_budget)
            .field("admission", &self.admission)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl fmt::Debug for ListenerProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { stages } => f
                .debug_struct("Tcp")
                .field("stages", &stages.len())
                .finish(),
            Self::Kafka(kafka) => f.debug_tuple("Kafka").field(kafka).finish(),
        }
    }
}

impl fmt::Debug for KafkaListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaListener")
            .field("brokers", &self.brokers)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_request_size", &self.max_request_size)
            .field("max_in_flight_requests", &self.max_in_flight_requests)
            .field("stages", &self.stages.len())
            .field("sasl", &self.sasl)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

// === impl ListenerSpec ===

impl ListenerSpec {
    /// The Kafka half of the spec, for Kafka listeners.
    pub fn kafka(&self) -> Option<&KafkaListener> {
        match &self.protocol {
            ListenerProtocol::Kafka(kafka) => Some(kafka),
            ListenerProtocol::Tcp { .. } => None,
        }
    }

    /// The phases of the listener's sessions: a PROXY header when it expects one, TLS when it
    /// has it, the SASL negotiation when it terminates SASL.
    pub(crate) fn phases(&self) -> Phases {
        let policy = &self.proxy_protocol;
        Phases {
            proxy_header: (policy.mode != ProxyProtocolMode::Off).then_some(policy.timeout),
            tls: self.tls.as_ref().map(ListenerTls::handshake_timeout),
            negotiation: self.sasl_terminate().map(|terminate| terminate.timeout),
        }
    }

    /// A new session's negotiation, when the listener terminates SASL. Boxed: only such
    /// sessions carry its state, and every session's future holds the machine.
    pub(crate) fn negotiation(&self) -> Option<Box<Negotiation>> {
        self.sasl_terminate()
            .map(|terminate| Box::new(Negotiation::initial(terminate.termination.clone())))
    }

    fn sasl_terminate(&self) -> Option<&SaslTerminate> {
        match self.kafka()?.sasl.as_ref()? {
            ListenerSasl::Terminate(terminate) => Some(terminate),
            ListenerSasl::Inspect { .. } => None,
        }
    }

    /// Whether the listener serves a port per broker (and so opens ports as brokers appear).
    pub(crate) fn serves_broker_ports(&self) -> bool {
        self.kafka()
            .is_some_and(|kafka| matches!(kafka.brokers.mode(), GatewayMode::PortPerBroker { .. }))
    }
}
