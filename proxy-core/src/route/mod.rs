//! Routing: which cluster a session goes to, and the gate that lets it forward.
//!
//! A [`Router`] looks at the session context and names a route. The [`ForwardingGate`] is the
//! only way to obtain a [`ForwardPermit`], which the frontend state machine demands before it
//! enters `Forwarding`: the listener's prerequisites (TLS, authentication) must hold and the
//! route's backend must be `Ready`.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;

mod gate;

#[cfg(test)]
mod tests;

pub use self::gate::{ForwardPermit, ForwardingGate, GateClosed};
use crate::context::SessionContext;
pub use crate::value::{Prerequisites, RouteId};

/// The router found no route for a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no route for listener {listener}")]
pub struct NoRoute {
    /// The listener the session came in on.
    pub listener: String,
}

/// Picks a route for a session from what its context knows.
///
/// [`StaticRouter`] routes from configuration; a router of your own needs one method:
///
/// ```
/// use proxy_core::SessionContext;
/// use proxy_core::route::{NoRoute, RouteId, Router};
///
/// /// Sends clients that asked for a TLS server name to the cluster of that name.
/// struct BySni;
///
/// impl Router for BySni {
///     fn route(&self, cx: &SessionContext) -> Result<RouteId, NoRoute> {
///         cx.sni().map(RouteId::new).ok_or_else(|| NoRoute {
///             listener: cx.listener().to_owned(),
///         })
///     }
/// }
/// ```
pub trait Router: Send + Sync + 'static {
    /// The route for the session, or why there is none.
    fn route(&self, cx: &SessionContext) -> Result<RouteId, NoRoute>;
}

/// A condition on a session; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMatch {
    /// The authority (host name) from the load balancer's PROXY header, compared ignoring case.
    pub authority: Option<Box<str>>,
    /// A network the real client's address must be in.
    pub source: Option<IpNet>,
    /// The server name from the client's TLS ClientHello, compared ignoring case.
    pub sni: Option<Box<str>>,
    /// The authenticated principal (mTLS, later SASL), compared exactly.
    pub principal: Option<Box<str>>,
}

impl RouteMatch {
    fn holds(&self, cx: &SessionContext) -> bool {
        let sni_holds = self
            .sni
            .as_deref()
            .is_none_or(|wanted| cx.sni().is_some_and(|got| got.eq_ignore_ascii_case(wanted)));
        let principal_holds = self
            .principal
            .as_deref()
            .is_none_or(|wanted| cx.auth().principal() == Some(wanted));
        sni_holds && principal_holds && self.proxied_holds(cx)
    }

    fn proxied_holds(&self, cx: &SessionContext) -> bool {
        let authority_holds = self.authority.as_deref().is_none_or(|wanted| {
            cx.proxied_authority()
                .is_some_and(|got| got.eq_ignore_ascii_case(wanted))
        });
        let source_holds = self
            .source
            .is_none_or(|net| net.contains(&cx.client_addr().ip().to_canonical()));
        authority_holds && source_holds
    }
}

/// Sends sessions that match `when` to `route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// The condition.
    pub when: RouteMatch,
    /// Where matching sessions go.
    pub route: RouteId,
}

/// One listener's rules, tried in order, and where everything else goes.
#[derive(Debug, Clone)]
struct ListenerRoutes {
    rules: Vec<RouteRule>,
    default: RouteId,
}

/// Routes from configuration: per listener, the first matching rule wins, else the listener's
/// default cluster.
///
/// ```
/// use std::sync::Arc;
/// use proxy_core::SessionContext;
/// use proxy_core::route::{Prerequisites, RouteId, RouteMatch, RouteRule, Router, StaticRouter};
///
/// let router = StaticRouter::new().with_rules(
///     "kafka",
///     vec![RouteRule {
///         when: RouteMatch {
///             source: Some("10.1.0.0/16".parse()?),
///             ..RouteMatch::default()
///         },
///         route: RouteId::new("tenant-a"),
///     }],
///     RouteId::new("shared"),
/// );
/// let local = "10.0.0.1:9092".parse()?;
/// let session = |listener: &str, peer| {
///     SessionContext::new(listener.into(), peer, local, Prerequisites::TCP, Arc::default())
/// };
///
/// let from_a = session("kafka", "10.1.2.3:40000".parse()?);
/// assert_eq!(router.route(&from_a)?, RouteId::new("tenant-a"));
/// let from_elsewhere = session("kafka", "192.0.2.1:40000".parse()?);
/// assert_eq!(router.route(&from_elsewhere)?, RouteId::new("shared"));
/// // A listener the router has no routes for gets none.
/// assert!(router.route(&session("admin", "10.1.2.3:40000".parse()?)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticRouter {
    listeners: HashMap<Arc<str>, ListenerRoutes>,
}

impl StaticRouter {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends sessions of `listener` to `route`.
    pub fn with_route(self, listener: impl Into<Arc<str>>, route: RouteId) -> Self {
        self.with_rules(listener, Vec::new(), route)
    }

    /// Sends sessions of `listener` to the first of `rules` that matches, else to `default`.
    pub fn with_rules(
        mut self,
        listener: impl Into<Arc<str>>,
        rules: Vec<RouteRule>,
        default: RouteId,
    ) -> Self {
        self.listeners
            .insert(listener.into(), ListenerRoutes { rules, default });
        self
    }
}

impl Router for StaticRouter {
    fn route(&self, cx: &SessionContext) -> Result<RouteId, NoRoute> {
        let routes = self.listeners.get(cx.listener()).ok_or_else(|| NoRoute {
            listener: cx.listener().to_owned(),
        })?;
        let chosen = routes
            .rules
            .iter()
            .find(|rule| rule.when.holds(cx))
            .map_or(&routes.default, |rule| &rule.route);
        Ok(chosen.clone())
    }
}
