//! Broker discovery: a client may connect to a broker's port (or name) before this process has
//! seen a Metadata response naming that broker (after a restart, say). The session then asks
//! the cluster itself, with a Metadata request of the proxy's own, and learns every broker (and,
//! first, the cluster's API versions, which a SASL-terminating listener answers clients with).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind};
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::gate::Side;
use proxy_core::route::{Prerequisites, RouteId, Router};
use proxy_core::upstream::Connect;
use proxy_kafka::exchange::{ExchangeError, exchange};
use proxy_kafka::rewrite::rewrite_response;
use proxy_kafka::{KafkaCodec, KafkaRequest, PROXY_CLIENT_ID};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::versions::ask_for_versions;
use super::{KafkaGateway, RouteBrokers};
use crate::frontend::{Frontend, Lifecycle};
use crate::listener::ListenerSpec;

/// How long discovering a cluster's brokers may take, once connected.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Metadata v4: old enough for any broker since Kafka 0.11, new enough to ask for no topics.
const METADATA_VERSION: i16 = 4;

/// Connects to `route`'s cluster (its bootstrap servers, or the backend `cx` is pinned to),
/// asks it for its brokers, and teaches them to `gateway`.
pub(crate) async fn discover<C: Connect>(
    connector: &C,
    route: &RouteId,
    cx: &mut SessionContext,
    gateway: &KafkaGateway,
) -> Result<(), CloseReason> {
    let mut connected = connector.connect(route, cx).await?;
    let deadline = Instant::now() + DISCOVERY_TIMEOUT;
    let versions = ask_for_versions(&mut connected.io, deadline).await?;
    gateway.versions().record(route, versions);
    ask_for_brokers(&mut connected.io, &gateway.for_route(route), deadline).await
}

/// A context for a connection of the proxy's own (discovery), counted in no session gauge.
pub(crate) fn own_context(
    listener: Arc<str>,
    addr: SocketAddr,
    requires: Prerequisites,
) -> SessionContext {
    SessionContext::new(listener, addr, addr, requires, Arc::default())
}

/// The close reason for a failed exchange of the proxy's own while `doing` something.
pub(crate) fn exchange_error(doing: &str, err: ExchangeError) -> CloseReason {
    match err {
        ExchangeError::Io(err) => CloseReason::BackendIo(err.kind()),
        ExchangeError::Closed => CloseReason::BackendClosed,
        other => CloseReason::Protocol {
            side: Side::Backend,
            detail: format!("{doing}: {other}").into(),
        },
    }
}

/// Asks the broker at the other end of `io` for the cluster's brokers, and teaches them to
/// `gateway`.
async fn ask_for_brokers<Io>(
    io: &mut Io,
    brokers: &RouteBrokers<'_>,
    deadline: Instant,
) -> Result<(), CloseReason>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let request = KafkaRequest::originate(
        ApiKey::Metadata,
        METADATA_VERSION,
        PROXY_CLIENT_ID,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new()))),
    );
    let mut codec = KafkaCodec::default();
    let mut response = exchange(io, &mut codec, request, deadline)
        .await
        .map_err(|err| exchange_error("broker discovery", err))?;
    rewrite_response(&mut response, brokers).map_err(|err| CloseReason::Protocol {
        side: Side::Backend,
        detail: format!("broker discovery: {err}").into(),
    })?;
    Ok(())
}

/// The longest wait between start-up discovery attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Learns the cluster's brokers as soon as the listener starts (so a port-per-broker gateway
/// opens every broker's port before any client asks): retried with backoff until it succeeds
/// or the listener stops accepting.
pub(crate) fn discover_in_background<R: Router, C: Connect>(
    spec: &ListenerSpec,
    frontend: Arc<Frontend<R, C>>,
    lifecycle: Lifecycle,
) {
    let Some(kafka) = &spec.kafka else {
        return;
    };
    let gateway = kafka.gateway.clone();
    let (name, bind, requires) = (spec.name.clone(), spec.bind, spec.requires);
    let stop = lifecycle.stop_accepting.clone();
    lifecycle.tracker.spawn(async move {
        let mut wait = Duration::from_millis(500);
        for attempt in 1u32.. {
            let mut cx = own_context(name.clone(), bind, requires);
            let result = async {
                let route = frontend
                    .router
                    .route(&cx)
                    .map_err(|_| CloseReason::NoRoute)?;
                discover(&frontend.connector, &route, &mut cx, &gateway).await
            };
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = result => result,
            };
            match result {
                Ok(()) => {
                    info!(listener = %name, attempt, "discovered the cluster's brokers");
                    return;
                }
                Err(reason) if attempt == 1 => {
                    warn!(listener = %name, reason = %reason, "cannot discover the cluster's brokers yet; retrying")
                }
                Err(reason) => debug!(listener = %name, reason = %reason, attempt, "broker discovery failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_RETRY);
        }
    });
}
