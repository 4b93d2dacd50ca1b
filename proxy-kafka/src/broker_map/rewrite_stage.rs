//! The stage every Kafka session runs next to the backend: broker addresses in responses are
//! replaced by the ones the proxy serves them on, brokers the map did not know are served
//! before the response naming them leaves, and ApiVersions is capped to versions the proxy can
//! rewrite.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::gate::{Direction, Side};
use proxy_core::route::RouteId;
use proxy_core::stage::{Flow, Stage, StageContext};
use tracing::debug;

use super::BrokerMap;
use crate::rewrite::{
    BrokerAddressMap, Listing, Rewritten, UpstreamBroker, may_rewrite, rewrite_response,
};
use crate::{Kafka, KafkaHead, KafkaRequest, KafkaResponse};

/// Serves brokers a [`BrokerMap`] has just learnt: a port-per-broker gateway opens a listening
/// port per broker. Called on the session's task, before the response naming the brokers is
/// written, so the client can never connect to a port that is not open yet.
pub trait BrokerListeners: Send + Sync + 'static {
    /// Starts serving `node_ids` (new to the map, or moved).
    fn serve(&self, node_ids: &[i32]);
}

/// Rewrites responses through the listener's broker map, for the cluster of the session's
/// route.
pub struct BrokerAddressRewrite {
    map: Arc<BrokerMap>,
    route: RouteId,
    /// Where newly learnt brokers are served (port-per-broker); `None` for SNI gateways.
    listeners: Option<Arc<dyn BrokerListeners>>,
}

impl fmt::Debug for BrokerAddressRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAddressRewrite")
            .field("route", &self.route)
            .field("serves_brokers", &self.listeners.is_some())
            .finish_non_exhaustive()
    }
}

impl BrokerAddressRewrite {
    /// The stage for a session of `route`.
    pub fn new(
        map: Arc<BrokerMap>,
        route: RouteId,
        listeners: Option<Arc<dyn BrokerListeners>>,
    ) -> Self {
        Self {
            map,
            route,
            listeners,
        }
    }
}

/// The map as one response sees it: what it learns is noted, to be served afterwards.
struct Learning<'a> {
    map: &'a BrokerMap,
    route: &'a RouteId,
    new: RefCell<Vec<i32>>,
}

impl BrokerAddressMap for Learning<'_> {
    fn learn(&self, brokers: &[UpstreamBroker], listing: Listing) {
        let new = self.map.learn(self.route, brokers, listing);
        self.new.borrow_mut().extend(new);
    }

    fn advertised(&self, node_id: i32) -> Option<(String, u16)> {
        self.map.advertised(node_id)
    }
}

impl Stage<Kafka> for BrokerAddressRewrite {
    fn kind(&self) -> &'static str {
        "broker_address_rewrite"
    }

    /// Responses that can carry broker addresses, and ApiVersions; no request.
    fn needs(&self, direction: Direction, head: &KafkaHead, _cx: &SessionContext) -> bool {
        direction == Direction::Response && may_rewrite(head.api_key, head.api_version)
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        let learning = Learning {
            map: &self.map,
            route: &self.route,
            new: RefCell::default(),
        };
        match rewrite_response(&mut msg, &learning) {
            Ok(done) => {
                if done != Rewritten::default() {
                    debug!(
                        api = msg.api_key(),
                        addresses = done.addresses,
                        withheld = done.withheld,
                        versions_capped = done.versions_capped,
                        "rewrote response"
                    );
                }
                let new = learning.new.into_inner();
                if let Some(listeners) = &self.listeners
                    && !new.is_empty()
                {
                    listeners.serve(&new);
                }
                Flow::Forward(msg)
            }
            // A response whose addresses cannot be rewritten must not reach the client: it
            // would lead the client around the proxy.
            Err(err) => Flow::Close(CloseReason::Protocol {
                side: Side::Backend,
                detail: format!("cannot rewrite broker addresses: {err}").into(),
            }),
        }
    }
}
