//! Broker-address rewriting: every broker address a response carries is replaced by the address
//! the proxy serves that broker on, so a client never learns a way around the proxy.
//!
//! Addresses travel in Metadata, FindCoordinator and DescribeCluster responses, and (KIP-951)
//! in the `node_endpoints` of Produce (v10+) and Fetch (v16+) responses, which are sent only
//! when leadership moved: those are scanned for the tag (`tagged_scan`) and decoded
//! only when it is there. ApiVersions responses are capped so clients use only versions of these
//! APIs that this proxy can decode and re-encode.

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

/// Where clients are told to find each broker.
pub trait BrokerAddressMap {
    /// Takes note of brokers a response revealed. It runs before the rewritten response
    /// reaches the client, so a gateway can start serving a new broker before the client
    /// connects to it.
    fn learn(&self, brokers: &[UpstreamBroker]);

    /// The host and port clients must use to reach `node_id`.
    fn advertised(&self, node_id: i32) -> (String, u16);
}

/// What a rewrite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewritten {
    /// Broker addresses replaced.
    pub addresses: usize,
    /// ApiVersions entries capped or removed.
    pub versions_capped: usize,
}

/// Produce responses carry `node_endpoints` from this version (KIP-951).
const PRODUCE_NODE_ENDPOINTS: i16 = 10;
/// Fetch responses carry `node_endpoints` from this version (KIP-951).
const FETCH_NODE_ENDPOINTS: i16 = 16;

/// The APIs whose responses carry broker addresses, with the versions this proxy can rewrite
/// (where the request and response schemas of the `kafka-protocol` crate agree).
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
        ApiKey::Fetch => both(FetchRequest::VERSIONS, FetchResponse::VERSIONS),
        ApiKey::ApiVersions => ApiVersionsResponse::VERSIONS,
        _ => return None,
    })
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
    let mut endpoints: Vec<Endpoint<'_>> = Vec::new();
    match response.body_mut()? {
        ResponseKind::Metadata(body) => {
            for broker in &mut body.brokers {
                endpoints.push(Endpoint {
                    node_id: broker.node_id.0,
                    host: &mut broker.host,
                    port: &mut broker.port,
                });
            }
        }
        ResponseKind::FindCoordinator(body) => {
            if body.coordinators.is_empty() {
                // v0–v3: one coordinator, at the top level, when there is no error.
                if body.node_id.0 >= 0 && body.error_code == 0 {
                    endpoints.push(Endpoint {
                        node_id: body.node_id.0,
                        host: &mut body.host,
                        port: &mut body.port,
                    });
                }
            }
            for coordinator in &mut body.coordinators {
                if coordinator.node_id.0 >= 0 && coordinator.error_code == 0 {
                    endpoints.push(Endpoint {
                        node_id: coordinator.node_id.0,
                        host: &mut coordinator.host,
                        port: &mut coordinator.port,
                    });
                }
            }
        }
        ResponseKind::DescribeCluster(body) => {
            for broker in &mut body.brokers {
                endpoints.push(Endpoint {
                    node_id: broker.broker_id.0,
                    host: &mut broker.host,
                    port: &mut broker.port,
                });
            }
        }
        ResponseKind::Produce(body) => {
            for node in &mut body.node_endpoints {
                endpoints.push(Endpoint {
                    node_id: node.node_id.0,
                    host: &mut node.host,
                    port: &mut node.port,
                });
            }
        }
        ResponseKind::Fetch(body) => {
            for node in &mut body.node_endpoints {
                endpoints.push(Endpoint {
                    node_id: node.node_id.0,
                    host: &mut node.host,
                    port: &mut node.port,
                });
            }
        }
        _ => {}
    }
    let upstream: Vec<UpstreamBroker> = endpoints
        .iter()
        .filter_map(|e| {
            Some(UpstreamBroker {
                node_id: e.node_id,
                host: e.host.as_str().to_owned(),
                port: u16::try_from(*e.port).ok()?,
            })
        })
        .collect();
    map.learn(&upstream);
    for endpoint in &mut endpoints {
        let (host, port) = map.advertised(endpoint.node_id);
        *endpoint.host = StrBytes::from_string(host);
        *endpoint.port = i32::from(port);
    }
    Ok(Rewritten {
        addresses: endpoints.len(),
        versions_capped: 0,
    })
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

/// A broker address inside a decoded response.
struct Endpoint<'a> {
    node_id: i32,
    host: &'a mut StrBytes,
    port: &'a mut i32,
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
        addresses: 0,
        versions_capped: capped,
    })
}
