//! Routing: which cluster a session goes to, and the gate that lets it forward.
//!
//! A [`Router`] looks at the session context and names a route. The [`ForwardingGate`] is the
//! only way to obtain a [`ForwardPermit`], which the frontend state machine demands before it
//! enters `Forwarding`: the listener's prerequisites (TLS, authentication) must hold and the
//! route's backend must be `Ready`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;

use crate::context::SessionContext;
use crate::state::BackendState;

/// The name of a route: the cluster a session is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(Arc<str>);

impl RouteId {
    /// A route named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The route's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The router found no route for a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no route for listener {listener}")]
pub struct NoRoute {
    /// The listener the session came in on.
    pub listener: String,
}

/// Picks a route for a session from what its context knows.
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

/// What a listener requires of a session before it may forward. TCP is always required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prerequisites {
    bits: u8,
}

impl Prerequisites {
    /// Only an accepted TCP connection.
    pub const TCP: Self = Self { bits: 0 };
    /// A completed TLS handshake.
    pub const TLS: Self = Self { bits: 1 };
    /// A successful authentication (SASL, or an accepted mTLS principal).
    pub const AUTHENTICATED: Self = Self { bits: 2 };

    /// Both sets of requirements.
    pub const fn and(self, other: Self) -> Self {
        Self {
            bits: self.bits | other.bits,
        }
    }

    /// True when every requirement of `other` is part of this set.
    pub const fn contains(self, other: Self) -> bool {
        self.bits & other.bits == other.bits
    }
}

/// Why the forwarding gate stayed shut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateClosed {
    /// The session has not been routed.
    #[error("the session has no route")]
    NotRouted,
    /// The listener requires TLS and the session has none.
    #[error("the listener requires TLS and the session has not completed a handshake")]
    TlsMissing,
    /// The listener requires authentication and the client is not authenticated.
    #[error("the listener requires authentication and the client is not authenticated")]
    NotAuthenticated,
    /// The route's backend is not `Ready`.
    #[error("the backend is {state}, not Ready")]
    BackendNotReady {
        /// The backend's state.
        state: &'static str,
    },
}

/// Proof that the forwarding gate was open for a route. Only [`ForwardingGate::check`] makes one.
#[derive(Debug)]
pub struct ForwardPermit {
    route: RouteId,
}

impl ForwardPermit {
    pub(crate) fn into_route(self) -> RouteId {
        self.route
    }
}

/// Decides whether a session may move to `Forwarding`.
#[derive(Debug, Clone, Copy)]
pub struct ForwardingGate;

impl ForwardingGate {
    /// Checks the listener's prerequisites against what the session has established, and that
    /// the backend is `Ready`.
    pub fn check(cx: &SessionContext, backend: &BackendState) -> Result<ForwardPermit, GateClosed> {
        let route = cx.route().ok_or(GateClosed::NotRouted)?;
        let requires = cx.requires();
        if requires.contains(Prerequisites::TLS) && cx.tls().is_none() {
            return Err(GateClosed::TlsMissing);
        }
        if requires.contains(Prerequisites::AUTHENTICATED) && cx.auth().principal().is_none() {
            return Err(GateClosed::NotAuthenticated);
        }
        if !backend.is_ready() {
            return Err(GateClosed::BackendNotReady {
                state: backend.name(),
            });
        }
        Ok(ForwardPermit {
            route: route.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::context::{AuthMechanism, AuthState, TlsFacts};
    use crate::upstream::BackendTarget;

    fn cx(listener: &str, requires: Prerequisites) -> SessionContext {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        SessionContext::new(Arc::from(listener), addr, addr, requires, Arc::default())
    }

    fn ready() -> BackendState {
        BackendState::Ready {
            target: BackendTarget::Addr("127.0.0.1:9092".parse().unwrap()),
        }
    }

    #[test]
    fn static_router_maps_listener_to_cluster() {
        let router = StaticRouter::new().with_route("plain", RouteId::new("local"));
        assert_eq!(
            router.route(&cx("plain", Prerequisites::TCP)),
            Ok(RouteId::new("local"))
        );
        assert_eq!(
            router.route(&cx("other", Prerequisites::TCP)),
            Err(NoRoute {
                listener: "other".into()
            })
        );
    }

    #[test]
    fn rules_route_on_the_proxied_authority_and_the_client_network() {
        use bytes::Bytes;

        use crate::context::{ProxiedAddrs, ProxyHeader, Tlv};
        use crate::proxy_protocol::TLV_AUTHORITY;

        let router = StaticRouter::new().with_rules(
            "lb",
            vec![
                RouteRule {
                    when: RouteMatch {
                        authority: Some("tenant-a.example".into()),
                        source: None,
                        ..RouteMatch::default()
                    },
                    route: RouteId::new("a"),
                },
                RouteRule {
                    when: RouteMatch {
                        authority: None,
                        source: Some("10.0.0.0/8".parse().unwrap()),
                        ..RouteMatch::default()
                    },
                    route: RouteId::new("internal"),
                },
            ],
            RouteId::new("default"),
        );
        let proxied = |source: &str, authority: Option<&'static [u8]>| {
            let mut cx = cx("lb", Prerequisites::TCP);
            let tlvs = authority.map(|a| Tlv {
                kind: TLV_AUTHORITY,
                value: Bytes::from_static(a),
            });
            cx.set_proxy_header(ProxyHeader::new(
                Bytes::new(),
                Some(ProxiedAddrs {
                    source: source.parse().unwrap(),
                    destination: "192.0.2.1:9192".parse().unwrap(),
                }),
                tlvs,
            ));
            cx
        };
        assert_eq!(
            router.route(&proxied("192.0.2.9:1", Some(b"TENANT-A.example"))),
            Ok(RouteId::new("a"))
        );
        assert_eq!(
            router.route(&proxied("10.1.1.1:1", Some(b"other.example"))),
            Ok(RouteId::new("internal"))
        );
        assert_eq!(
            router.route(&proxied("192.0.2.9:1", None)),
            Ok(RouteId::new("default"))
        );
        // The authority is kept after the header is released.
        let mut cx = proxied("192.0.2.9:1", Some(b"tenant-a.example"));
        cx.release_proxy_header();
        assert_eq!(router.route(&cx), Ok(RouteId::new("a")));
    }

    #[test]
    fn rules_route_on_sni_and_on_the_authenticated_principal() {
        let router = StaticRouter::new().with_rules(
            "tls",
            vec![
                RouteRule {
                    when: RouteMatch {
                        principal: Some("batch-jobs".into()),
                        ..RouteMatch::default()
                    },
                    route: RouteId::new("batch"),
                },
                RouteRule {
                    when: RouteMatch {
                        sni: Some("A.example".into()),
                        ..RouteMatch::default()
                    },
                    route: RouteId::new("a"),
                },
            ],
            RouteId::new("default"),
        );
        let mut cx = cx("tls", Prerequisites::TLS);
        assert_eq!(router.route(&cx), Ok(RouteId::new("default")));
        cx.set_sni(Some("a.example".into()));
        assert_eq!(router.route(&cx), Ok(RouteId::new("a")));
        cx.set_auth(AuthState::Authenticated {
            principal: "batch-jobs".into(),
            mechanism: AuthMechanism::Mtls,
        });
        assert_eq!(
            router.route(&cx),
            Ok(RouteId::new("batch")),
            "the first matching rule wins"
        );
        cx.set_auth(AuthState::Authenticated {
            principal: "batch-jobs-2".into(),
            mechanism: AuthMechanism::Mtls,
        });
        assert_eq!(
            router.route(&cx),
            Ok(RouteId::new("a")),
            "principals match exactly"
        );
    }

    #[test]
    fn gate_needs_a_route_and_a_ready_backend() {
        let mut cx = cx("plain", Prerequisites::TCP);
        assert_eq!(
            ForwardingGate::check(&cx, &ready()).err(),
            Some(GateClosed::NotRouted)
        );
        cx.set_route(RouteId::new("local"));
        assert_eq!(
            ForwardingGate::check(&cx, &BackendState::Idle).err(),
            Some(GateClosed::BackendNotReady { state: "Idle" })
        );
        assert!(ForwardingGate::check(&cx, &ready()).is_ok());
    }

    #[test]
    fn gate_holds_until_tls_and_authentication_are_done() {
        let mut cx = cx(
            "secure",
            Prerequisites::TLS.and(Prerequisites::AUTHENTICATED),
        );
        cx.set_route(RouteId::new("local"));
        assert_eq!(
            ForwardingGate::check(&cx, &ready()).err(),
            Some(GateClosed::TlsMissing)
        );
        cx.set_tls(TlsFacts::default());
        assert_eq!(
            ForwardingGate::check(&cx, &ready()).err(),
            Some(GateClosed::NotAuthenticated)
        );
        cx.set_auth(AuthState::InProgress {
            mechanism: AuthMechanism::Plain,
        });
        assert_eq!(
            ForwardingGate::check(&cx, &ready()).err(),
            Some(GateClosed::NotAuthenticated)
        );
        cx.set_auth(AuthState::Authenticated {
            principal: "alice".into(),
            mechanism: AuthMechanism::Plain,
        });
        assert!(ForwardingGate::check(&cx, &ready()).is_ok());
    }

    #[test]
    fn prerequisites_compose() {
        let both = Prerequisites::TLS.and(Prerequisites::AUTHENTICATED);
        assert!(both.contains(Prerequisites::TLS));
        assert!(both.contains(Prerequisites::TCP));
        assert!(!Prerequisites::TLS.contains(Prerequisites::AUTHENTICATED));
    }
}
