//! Advice `sluice check` prints without failing: a valid config that probably does not do
//! what its author meant.
//!
//! - The shutdown phases do not fit in the orchestrator's grace period ([`super::lifecycle`]).
//! - A TCP listener forwards to what looks like Kafka brokers: Kafka clients connect to the
//!   brokers the first Metadata response names, bypassing a TCP proxy from then on; a Kafka
//!   listener (`protocol = "kafka"`) keeps them on the proxy.
//! - A users or password file others can read ([`super::secret_file`]).
//! - A Kafka listener's cluster has no `ready_requires`: `/readyz` (and an upgrade waiting for
//!   its successor to be ready) does not reflect whether the brokers answer.

use std::collections::BTreeSet;

use super::{Config, ListenerConfig, ListenerProtocol, ReadyRequires};

/// Kafka's usual broker ports.
const KAFKA_PORTS: [u16; 3] = [9092, 9093, 9094];

// === impl Config ===

impl Config {
    /// Advice that does not make the config invalid, one sentence each.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.shutdown_warning().into_iter().collect();
        warnings.extend(self.tcp_to_kafka_warnings());
        warnings.extend(self.readiness_warnings());
        warnings.extend(self.secret_file_warnings());
        warnings
    }

    /// TCP listeners whose clusters' backends are on Kafka's usual ports, or on a port a
    /// Kafka listener's cluster uses.
    fn tcp_to_kafka_warnings(&self) -> Vec<String> {
        let kafka_ports: BTreeSet<u16> = self
            .listeners
            .iter()
            .filter(|listener| matches!(listener.protocol, ListenerProtocol::Kafka(_)))
            .flat_map(|listener| self.backend_ports(listener))
            .chain(KAFKA_PORTS)
            .collect();
        self.listeners
            .iter()
            .enumerate()
            .filter(|(_, listener)| listener.protocol == ListenerProtocol::Tcp)
            .filter_map(|(i, listener)| {
                let ports: BTreeSet<u16> = self
                    .backend_ports(listener)
                    .filter(|port| kafka_ports.contains(port))
                    .collect();
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                (!ports.is_empty()).then(|| {
                    format!(
                        "listener[{i}] ({:?}) is protocol = \"tcp\" but forwards to port(s) {} \
                         of Kafka brokers: Kafka clients connect to the brokers the first \
                         Metadata response names and bypass a TCP proxy from then on; use \
                         protocol = \"kafka\" to keep them on Sluice",
                        listener.name,
                        ports.join(", ")
                    )
                })
            })
            .collect()
    }

    /// Kafka listeners sending to a cluster that readiness does not depend on.
    fn readiness_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, listener) in self.listeners.iter().enumerate() {
            if !matches!(listener.protocol, ListenerProtocol::Kafka(_)) {
                continue;
            }
            for name in clusters_of(listener) {
                let Some(cluster) = self.clusters.get(name) else {
                    continue;
                };
                if cluster.ready_requires == ReadyRequires::None {
                    warnings.push(format!(
                        "listener[{i}] ({:?}) is a Kafka listener but cluster {name:?} has no \
                         ready_requires: once its brokers are discovered, /readyz will not \
                         reflect whether they still answer; set ready_requires = \"any\" in its \
                         [cluster] table",
                        listener.name
                    ));
                }
            }
        }
        warnings
    }

    /// The ports of the backends of every cluster `listener` may send to.
    fn backend_ports<'a>(&'a self, listener: &'a ListenerConfig) -> impl Iterator<Item = u16> + 'a {
        clusters_of(listener)
            .filter_map(|name| self.clusters.get(name))
            .flat_map(|cluster| cluster.backends.iter().map(|backend| backend.port))
    }
}

/// The clusters `listener` may send to: its own, then its routes', each once.
fn clusters_of(listener: &ListenerConfig) -> impl Iterator<Item = &str> {
    let mut seen = BTreeSet::new();
    std::iter::once(listener.cluster.as_str())
        .chain(listener.routes.iter().map(|route| route.cluster.as_str()))
        .filter(move |name| seen.insert(*name))
}
