//! Broker-address rewriting: every broker address a response carries is replaced by the address
//! the proxy serves that broker on, so a client never learns a way around the proxy. A broker
//! the proxy does not serve (a node id outside a gateway's range) is left out, so a client is
//! never told an address nobody listens on.
//!
//! Addresses travel in Metadata, FindCoordinator and DescribeCluster responses, and (KIP-951)
//! in the `node_endpoints` of Produce (v10+) and Fetch (v16+) responses, which are sent only
//! when leadership moved: those are scanned for the tag (`tagged_scan`) and decoded
//! only when it is there. ApiVersions responses are capped so clients use only versions of these
//! APIs that this proxy can decode and re-encode, and Fetch below v16, whose responses stream
//! past the proxy instead of being held whole for the endpoints a v16 one may end with.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, DescribeClusterResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, ResponseKind,
};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use tracing::trace;

use super::tagged_scan::node_endpoints_present;
use super::{KafkaError, KafkaResponse};

/// A broker as the cluster itself advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamBroker {
    /// The broker's node id.
    pub node_id: i32,
    /// Its host, as the cluster advertises it.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// Whether a response lists every broker of the cluster or only some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every broker the cluster has: Metadata and (when it has no error) DescribeCluster. A
    /// broker such a list leaves out is no longer part of the cluster, or not for now.
    Full,
    /// Some brokers: a coordinator, or the leaders in KIP-951 `node_endpoints`.
    Partial,
}

/// Where clients are told to find each broker.
pub trait BrokerAddressMap {
    /// Takes note of brokers a response revealed, and whether it named them all. It runs
    /// before the rewritten response reaches the client, so a gateway can start serving a new
    /// broker before the client connects to it.
    fn learn(&self, brokers: &[UpstreamBroker], listing: Listing);

    /// The host and port clients must use to reach `node_id`; `None` when the proxy does not
    /// serve that broker (a node id outside a gateway's range): the response then leaves the
    /// broker out rather than name an address nobody listens on.
    fn advertised(&self, node_id: i32) -> Option<(String, u16)>;
}

/// What a rewrite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewritten {
    /// Broker addresses replaced.
    pub addresses: usize,
    /// Brokers left out (or, for a coordinator, answered as not available) because the proxy
    /// does not serve them.
    pub withheld: usize,
    /// ApiVersions entries capped or removed.
    pub versions_capped: usize,
}

/// Produce responses carry `node_endpoints` from this version (KIP-951).
const PRODUCE_NODE_ENDPOINTS: i16 = 10;
/// Fetch responses carry `node_endpoints` from this version (KIP-951).
const FETCH_NODE_ENDPOINTS: i16 = 16;
/// The newest Fetch version clients are offered. A v16+ response may carry `node_endpoints`
/// after its records, which a rewrite must be able to reach and change, so such a response is
/// held whole, up to the consumer's `fetch.max.bytes` (50 MiB by default); a v15 response
/// carries none and streams past the stages. v16 asks the broker nothing v15 does not (the
/// request schemas are the same): a client offered v15 loses only KIP-951's leader hint and
/// refreshes its metadata when leadership moves, as it did before.
const FETCH_OFFERED_MAX: i16 = FETCH_NODE_ENDPOINTS - 1;

/// The APIs whose responses carry broker addresses, with the versions this proxy offers
/// clients: those it can rewrite (where the request and response schemas of the
/// `kafka-protocol` crate agree), and for Fetch those whose responses can stream past it.
pub fn rewritable_versions(api: ApiKey) -> Option<VersionRange> {
    let both = |a: VersionRange, b: VersionRange| VersionRange {
        min: a.min.max(b.min),
        max: a.max.min(b.max),
    };
    Some(match api {
        ApiKey::Metadata => both(MetadataRequest::VERSIONS, MetadataResponse::VERSIONS),
        ApiKey::FindCoordinator => both(
            FindCoordinatorRequest::VERSIONS,
            FindCoordinatorResponse::VERSIONS,
        ),
        ApiKey::DescribeCluster => DescribeClusterResponse::VERSIONS,
        ApiKey::Produce => both(ProduceRequest::VERSIONS, ProduceResponse::VERSIONS),
        ApiKey::Fetch => both(
            both(FetchRequest::VERSIONS, FetchResponse::VERSIONS),
            VersionRange {
                min: 0,
                max: FETCH_OFFERED_MAX,
            },
        ),
        ApiKey::ApiVersions => ApiVersionsResponse::VERSIONS,
        _ => return None,
    })
}

/// Whether [`rewrite_response`] may change a response of `api_key` at `version`: the others
/// pass it unread, so they may stream past it.
pub fn may_rewrite(api_key: i16, version: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster) => true,
        Ok(ApiKey::ApiVersions) => true,
        Ok(ApiKey::Produce) => version >= PRODUCE_NODE_ENDPOINTS,
        Ok(ApiKey::Fetch) => version >= FETCH_NODE_ENDPOINTS,
        _ => false,
    }
}

/// Rewrites the broker addresses in `response` through `map` (and caps an ApiVersions
/// response). Responses of other APIs are not decoded.
pub fn rewrite_response(
    response: &mut KafkaResponse,
    map: &dyn BrokerAddressMap,
) -> Result<Rewritten, KafkaError> {
    let Some(api) = response.api() else {
        return Ok(Rewritten::default());
    };
    let version = response.api_version();
    if !may_rewrite(api as i16, version) {
        return Ok(Rewritten::default());
    }
    // The common Produce and Fetch responses carry no endpoints: look before changing, so
    // they are written on as read.
    let needs_change = match api {
        ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster => true,
        ApiKey::ApiVersions => return cap_api_versions(response),
        ApiKey::Produce if version >= PRODUCE_NODE_ENDPOINTS => carries_node_endpoints(response)?,
        ApiKey::Fetch if version >= FETCH_NODE_ENDPOINTS => carries_node_endpoints(response)?,
        _ => false,
    };
    if !needs_change {
        return Ok(Rewritten::default());
    }
    let mut done = Rewritten::default();
    match response.body_mut()? {
        ResponseKind::Metadata(body) => {
            let listed = body.brokers.iter().map(|b| (b.node_id.0, &b.host, b.port));
            map.learn(&upstream(listed), Listing::Full);
            body.brokers
                .retain_mut(|b| done.readdress(map, b.node_id.0, &mut b.host, &mut b.port));
            body.controller_id.0 = done.controller(map, body.controller_id.0);
        }
        ResponseKind::FindCoordinator(body) => {
            // v0–v3: one coordinator, at the top level, when there is no error.
            let top_level =
                body.coordinators.is_empty() && body.node_id.0 >= 0 && body.error_code == NO_ERROR;
            let listed = body
                .coordinators
                .iter()
                .filter(|c| c.node_id.0 >= 0 && c.error_code == NO_ERROR)
                .map(|c| (c.node_id.0, &c.host, c.port));
            let top = top_level.then_some((body.node_id.0, &body.host, body.port));
            map.learn(&upstream(top.into_iter().chain(listed)), Listing::Partial);
            if top_level && !done.readdress(map, body.node_id.0, &mut body.host, &mut body.port) {
                body.error_code = COORDINATOR_NOT_AVAILABLE;
                (body.node_id.0, body.host, body.port) = (-1, StrBytes::default(), -1);
            }
            for c in &mut body.coordinators {
                if c.node_id.0 < 0 || c.error_code != NO_ERROR {
                    continue;
                }
                if !done.readdress(map, c.node_id.0, &mut c.host, &mut c.port) {
                    c.error_code = COORDINATOR_NOT_AVAILABLE;
                    (c.node_id.0, c.host, c.port) = (-1, StrBytes::default(), -1);
                }
            }
        }
        ResponseKind::DescribeCluster(body) => {
            // A response with an error names no brokers: it does not say they are gone.
            let listing = if body.error_code == NO_ERROR {
                Listing::Full
            } else {
                Listing::Partial
            };
            let listed = body
                .brokers
                .iter()
                .map(|b| (b.broker_id.0, &b.host, b.port));
            map.learn(&upstream(listed), listing);
            body.brokers
                .retain_mut(|b| done.readdress(map, b.broker_id.0, &mut b.host, &mut b.port));
            body.controller_id.0 = done.controller(map, body.controller_id.0);
        }
        ResponseKind::Produce(body) => {
            let listed = body
                .node_endpoints
                .iter()
                .map(|n| (n.node_id.0, &n.host, n.port));
            map.learn(&upstream(listed), Listing::Partial);
            body.node_endpoints
                .retain_mut(|n| done.readdress(map, n.node_id.0, &mut n.host, &mut n.port));
        }
        ResponseKind::Fetch(body) => {
            let listed = body
                .node_endpoints
                .iter()
                .map(|n| (n.node_id.0, &n.host, n.port));
            map.learn(&upstream(listed), Listing::Partial);
            body.node_endpoints
                .retain_mut(|n| done.readdress(map, n.node_id.0, &mut n.host, &mut n.port));
        }
        _ => {}
    }
    Ok(done)
}

/// Kafka's "no error".
const NO_ERROR: i16 = 0;
/// COORDINATOR_NOT_AVAILABLE: clients look the coordinator up again a little later.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// The brokers a response names, as the cluster advertises them (a port that is not one is
/// left out).
fn upstream<'a>(listed: impl Iterator<Item = (i32, &'a StrBytes, i32)>) -> Vec<UpstreamBroker> {
    listed
        .filter_map(|(node_id, host, port)| {
            Some(UpstreamBroker {
                node_id,
                host: host.as_str().to_owned(),
                port: u16::try_from(port).ok()?,
            })
        })
        .collect()
}

// === impl Rewritten ===

impl Rewritten {
    /// Replaces one broker's address with the one `map` advertises; `false` (and counted as
    /// withheld) when the proxy does not serve it, for the caller to leave it out.
    fn readdress(
        &mut self,
        map: &dyn BrokerAddressMap,
        node_id: i32,
        host: &mut StrBytes,
        port: &mut i32,
    ) -> bool {
        match map.advertised(node_id) {
            Some((advertised_host, advertised_port)) => {
                *host = StrBytes::from_string(advertised_host);
                *port = i32::from(advertised_port);
                self.addresses += 1;
                true
            }
            None => {
                self.withheld += 1;
                false
            }
        }
    }

    /// The controller id clients are told: -1 ("no controller known", as a broker says) for
    /// one the proxy does not serve, since its address was left out.
    fn controller(&self, map: &dyn BrokerAddressMap, controller_id: i32) -> i32 {
        if controller_id >= 0 && map.advertised(controller_id).is_none() {
            -1
        } else {
            controller_id
        }
    }
}

/// Whether a Produce or Fetch response names brokers in `node_endpoints` (KIP-951). Its bytes
/// are scanned for the tag first, without a decode; only when the tag is there, or the scan
/// cannot tell, is the body decoded to look.
fn carries_node_endpoints(response: &mut KafkaResponse) -> Result<bool, KafkaError> {
    if let (Some(api), Some(body)) = (response.api(), response.undecoded_body()) {
        match node_endpoints_present(api, response.api_version(), body) {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(err) => {
                trace!(error = %err, "cannot scan the response for node endpoints; decoding it")
            }
        }
    }
    Ok(match response.body()? {
        ResponseKind::Produce(body) => !body.node_endpoints.is_empty(),
        ResponseKind::Fetch(body) => !body.node_endpoints.is_empty(),
        _ => false,
    })
}

/// Caps the versions an ApiVersions response offers for the APIs whose addresses the proxy
/// rewrites, to the versions it can decode; an API left with no version is removed.
fn cap_api_versions(response: &mut KafkaResponse) -> Result<Rewritten, KafkaError> {
    // A broker that did not know the client's ApiVersions version answers in v0 with an
    // error; the client retries with an older version, and that answer is capped.
    let needs_cap = match response.body() {
        Ok(ResponseKind::ApiVersions(body)) => body.api_keys.iter().any(|entry| {
            ApiKey::try_from(entry.api_key)
                .ok()
                .and_then(rewritable_versions)
                .is_some_and(|range| entry.max_version > range.max || entry.min_version < range.min)
        }),
        Ok(_) => false,
        Err(_) => return Ok(Rewritten::default()),
    };
    if !needs_cap {
        return Ok(Rewritten::default());
    }
    let mut capped = 0;
    if let ResponseKind::ApiVersions(body) = response.body_mut()? {
        body.api_keys.retain_mut(|entry| {
            let Some(range) = ApiKey::try_from(entry.api_key)
                .ok()
                .and_then(rewritable_versions)
            else {
                return true;
            };
            if entry.max_version > range.max || entry.min_version < range.min {
                capped += 1;
                entry.max_version = entry.max_version.min(range.max);
                entry.min_version = entry.min_version.max(range.min);
            }
            entry.min_version <= entry.max_version
        });
    }
    Ok(Rewritten {
        versions_capped: capped,
        ..Rewritten::default()
    })
}
