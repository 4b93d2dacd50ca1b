//! `[[listener.route]]` rules: send matching sessions to another cluster than the listener's.

use super::proxy::parse_network;
use super::raw::RawRoute;
use super::validate::Validator;
use super::{RouteConfig, path};

// === impl Validator ===

impl Validator {
    /// The listener's route rules; each needs a known `cluster` and at least one condition.
    pub(super) fn routes(
        &mut self,
        at: &str,
        raw: Vec<RawRoute>,
        clusters: &[String],
    ) -> Option<Vec<RouteConfig>> {
        let mut routes = Some(Vec::with_capacity(raw.len()));
        for (i, rule) in raw.into_iter().enumerate() {
            let at = path::index(&path::key(at, "route"), i);
            let cluster = self.cluster_ref(&at, rule.cluster, clusters);
            let source = match rule.source.as_deref().map(parse_network) {
                None => Some(None),
                Some(Ok(net)) => Some(Some(net)),
                Some(Err(message)) => {
                    self.error(path::key(&at, "source"), message);
                    None
                }
            };
            if rule.authority.is_none()
                && rule.source.is_none()
                && rule.sni.is_none()
                && rule.principal.is_none()
            {
                self.error(
                    at.clone(),
                    "a route needs a condition: authority, source, sni or principal".into(),
                );
                routes = None;
                continue;
            }
            match (cluster, source, routes.as_mut()) {
                (Some(cluster), Some(source), Some(routes)) => routes.push(RouteConfig {
                    cluster,
                    authority: rule.authority,
                    source,
                    sni: rule.sni,
                    principal: rule.principal,
                }),
                _ => routes = None,
            }
        }
        routes
    }
}
