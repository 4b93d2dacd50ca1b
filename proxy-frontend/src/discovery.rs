//! Broker discovery in the background: as soon as a Kafka listener starts, the proxy asks each
//! cluster it routes to for its API versions and brokers (so a port-per-broker gateway opens
//! every broker's port before any client asks, and a SASL-terminating listener can answer
//! ApiVersions at once), retrying with backoff until each cluster has answered or the listener
//! stops accepting. Sessions discover on demand through the same [`discover_and_serve`].

use std::sync::Arc;
use std::time::Duration;

use proxy_core::close::CloseReason;
use proxy_core::route::RouteId;
use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::{BrokerListeners, BrokerMap};
use proxy_kafka::client::{Discovered, discover};
use tracing::{debug, info, warn};

use crate::frontend::{Frontend, Lifecycle};
use crate::spec::KafkaListener;

/// The first wait between attempts; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// The longest wait between start-up discovery attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Asks `route`'s cluster for its versions and brokers on a connection of the proxy's own,
/// records them in `brokers`, and serves the brokers that are new through `listeners`
/// (port-per-broker), before the caller goes on.
pub(crate) async fn discover_and_serve<C: Connect>(
    connector: &C,
    route: &RouteId,
    brokers: &BrokerMap,
    listeners: Option<&Arc<dyn BrokerListeners>>,
) -> Result<Discovered, CloseReason> {
    let discovered = discover(connector, route, brokers).await?;
    if let Some(listeners) = listeners {
        listeners.serve(&discovered.new_brokers);
    }
    Ok(discovered)
}

/// Discovers every route of `kafka`, each on a task of `lifecycle`'s (a cluster that is down
/// does not hold up the others), serving new brokers through `listeners` (port-per-broker).
pub(crate) fn discover_in_background<R: Router, C: Connect>(
    name: &Arc<str>,
    kafka: &KafkaListener,
    listeners: Option<&Arc<dyn BrokerListeners>>,
    frontend: &Arc<Frontend<R, C>>,
    lifecycle: &Lifecycle,
) {
    for route in &kafka.routes {
        let task = DiscoveryTask {
            name: name.clone(),
            route: route.clone(),
            brokers: kafka.brokers.clone(),
            listeners: listeners.cloned(),
            frontend: frontend.clone(),
        };
        let stop = lifecycle.stop_accepting.clone();
        lifecycle.tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task.run() => {}
            }
        });
    }
}

/// Discovering one route's cluster until it answers.
struct DiscoveryTask<R, C> {
    name: Arc<str>,
    route: RouteId,
    brokers: Arc<BrokerMap>,
    listeners: Option<Arc<dyn BrokerListeners>>,
    frontend: Arc<Frontend<R, C>>,
}

impl<R: Router, C: Connect> DiscoveryTask<R, C> {
    async fn run(self) {
        let (name, route) = (&self.name, &self.route);
        let mut wait = FIRST_RETRY;
        for attempt in 1u32.. {
            let listeners = self.listeners.as_ref();
            match discover_and_serve(&self.frontend.connector, route, &self.brokers, listeners)
                .await
            {
                Ok(_) => {
                    info!(listener.name = %name, route = %route, attempt, "discovered the cluster's brokers");
                    return;
                }
                Err(reason) if attempt == 1 => {
                    warn!(listener.name = %name, route = %route, reason.detail = %reason, "cannot discover the cluster's brokers yet; retrying");
                }
                Err(reason) => {
                    debug!(listener.name = %name, route = %route, reason.detail = %reason, attempt, "broker discovery failed");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
    }
}
