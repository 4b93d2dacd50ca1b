//! The stage every Kafka session runs first: broker addresses in responses are replaced by the
//! gateway's, and ApiVersions is capped to versions the proxy can rewrite.

use std::sync::Arc;

use proxy_core::close::CloseReason;
use proxy_core::gate::Side;
use proxy_core::route::RouteId;
use proxy_core::stage::{Flow, Stage, StageContext};
use proxy_kafka::rewrite::rewrite_response;
use proxy_kafka::{Kafka, KafkaRequest, KafkaResponse};
use tracing::debug;

use super::KafkaGateway;

/// Rewrites responses through the session's gateway, for the cluster of its route.
pub(crate) struct BrokerAddressRewrite {
    gateway: Arc<KafkaGateway>,
    route: RouteId,
}

impl BrokerAddressRewrite {
    pub(crate) fn new(gateway: Arc<KafkaGateway>, route: RouteId) -> Self {
        Self { gateway, route }
    }
}

impl Stage<Kafka> for BrokerAddressRewrite {
    fn kind(&self) -> &'static str {
        "broker_address_rewrite"
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        match rewrite_response(&mut msg, &self.gateway.for_route(&self.route)) {
            Ok(done) => {
                if done.addresses > 0 || done.versions_capped > 0 {
                    debug!(
                        api = msg.api_key(),
                        addresses = done.addresses,
                        versions_capped = done.versions_capped,
                        "rewrote response"
                    );
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
