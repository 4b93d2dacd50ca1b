//! Discovery: connecting to a cluster on the proxy's own behalf to learn its API versions and
//! its brokers, recorded in a [`BrokerMap`].

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use proxy_core::close::CloseReason;
use proxy_core::route::RouteId;
use proxy_core::upstream::{Connect, ConnectRequest};
use tokio::time::Instant;

use super::{ask_brokers, ask_versions};
use crate::broker_map::BrokerMap;
use crate::rewrite::Listing;

/// How long asking a cluster for its versions and brokers may take, once connected.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a discovery learnt that the map did not know.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// Node ids of brokers that are new to the map, or moved: a port-per-broker gateway opens
    /// their ports.
    pub new_brokers: Vec<i32>,
    /// The cluster's API versions (recorded in the map too).
    pub versions: Arc<[ApiVersion]>,
}

/// Connects to `route`'s cluster (its bootstrap servers) with a connection of the proxy's own,
/// asks for its API versions and its brokers, and records both in `map`.
pub async fn discover<C: Connect>(
    connector: &C,
    route: &RouteId,
    map: &BrokerMap,
) -> Result<Discovered, CloseReason> {
    let mut connected = connector.connect(ConnectRequest::for_proxy(route)).await?;
    let deadline = Instant::now() + DISCOVERY_TIMEOUT;
    let versions: Arc<[ApiVersion]> = ask_versions(&mut connected.io, deadline).await?.into();
    map.versions().record(route, versions.clone());
    let brokers = ask_brokers(&mut connected.io, deadline).await?;
    Ok(Discovered {
        new_brokers: map.learn(route, &brokers, Listing::Full),
        versions,
    })
}
