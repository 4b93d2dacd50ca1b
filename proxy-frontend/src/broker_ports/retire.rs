//! Closing the ports of brokers the clusters no longer report: a broker left out of every
//! cluster's latest full list of brokers (Metadata) for the gateway's grace period loses its
//! port. Its listening socket is closed and withdrawn from what a successor would be handed;
//! sessions already on it go on until they end. A broker a cluster names again gets its port
//! back, as any new broker does.
//!
//! A port a predecessor handed over for a broker no cluster has named since counts as
//! unreported from the moment it was adopted.

use std::time::Duration;

use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::Presence;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{BrokerPorts, OpenPort, Port};

/// The shortest pause between two looks at the ports (for the short grace periods of tests).
const MIN_TICK: Duration = Duration::from_millis(10);
/// The longest: a port closes at most this long after its grace period ends.
const MAX_TICK: Duration = Duration::from_secs(30);

impl<R: Router, C: Connect> BrokerPorts<R, C> {
    /// Every so often (a quarter of `grace`, within bounds), closes the ports of brokers
    /// unreported for `grace`; returns once the listener stops accepting.
    pub(super) async fn retire_unreported(self: std::sync::Arc<Self>, grace: Duration) {
        let tick = (grace / 4).clamp(MIN_TICK, MAX_TICK);
        let stop = self.lifecycle.stop_accepting.clone();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            for (node_id, port) in self.unreported_for(grace) {
                self.retire(node_id, port).await;
            }
        }
    }

    /// The open ports whose brokers have gone unreported for `grace`, now marked closing and
    /// forgotten by the map, under one lock: a broker a response names again from here on is
    /// new to the map, and its port is opened again once this one is closed.
    fn unreported_for(&self, grace: Duration) -> Vec<(i32, OpenPort)> {
        let now = Instant::now();
        let mut retired = Vec::new();
        // Lock order: the ports, then the map (`learn` never holds the map's lock while it
        // asks for ports).
        let mut serving = self.serving.lock();
        for (&node_id, port) in serving.iter_mut() {
            let Port::Open(open) = port else { continue };
            let since = match self.brokers.presence(node_id) {
                Presence::Reported => continue,
                Presence::AbsentSince(since) => since,
                Presence::Unknown => open.opened,
            };
            if now.saturating_duration_since(since) < grace
                || !self.brokers.forget_unreported(node_id)
            {
                continue;
            }
            if let Port::Open(open) = std::mem::replace(port, Port::Closing) {
                retired.push((node_id, open));
            }
        }
        retired
    }

    /// Closes `port`: its accept loop ends (closing the socket) and a successor is no longer
    /// offered it; sessions it accepted go on.
    async fn retire(&self, node_id: i32, port: OpenPort) {
        let name = &self.template.name;
        port.close.cancel();
        if let Some(observe) = &self.observe {
            observe.closed(name, node_id);
        }
        if let Err(err) = port.accepting.await {
            warn!(listener.name = %name, broker.node_id = node_id, error = %err, "a broker port's accept loop failed");
        }
        info!(
            listener.name = %name,
            broker.node_id = node_id,
            addr = %port.addr,
            "closed the port of a broker the cluster no longer reports"
        );
        self.serving.lock().remove(&node_id);
        // Named again while its port was closing: the map handed it over as new, and `open`
        // left it alone then.
        if self.brokers.presence(node_id) != Presence::Unknown {
            self.open(node_id, None);
        }
    }
}
