//! Audit events: who did what, from where, with what outcome. The pipeline reports them to an
//! [`AuditSink`] a session carries (`SessionContext::set_audit`); what a sink does with them
//! (a versioned JSON line to a file, stdout, a Kafka topic) is the embedder's. A sink must never
//! make the data path wait: [`AuditSink::record`] queues or drops.
//!
//! Every event carries the session's facts as they stand when it is reported
//! ([`SessionFacts`]): the real client (the PROXY-header source when trusted) and the TCP peer,
//! the listener, the TLS facts, the principal, the route. `SessionContext::audit` reports one.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// What an event is about; a sink may want only some kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A session opened (it reached its backend) or closed.
    Connection,
    /// A client authenticated, or failed to.
    Authentication,
    /// A request was denied (or allowed, when allows are recorded).
    Authorization,
    /// A state-changing Kafka request (CreateTopics, DeleteTopics, AlterConfigs, ...) and the
    /// broker's outcome for each resource.
    Admin,
    /// A quota throttled an entity.
    Quota,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Connection,
        Self::Authentication,
        Self::Authorization,
        Self::Admin,
        Self::Quota,
    ];

    /// The name in configs and in each event's `event` field.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Authentication => "authentication",
            Self::Authorization => "authorization",
            Self::Admin => "admin",
            Self::Quota => "quota",
        }
    }

    /// The kind named `label`.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.label() == label)
    }
}

/// Where audit events go. Implementations queue (bounded) or drop; they never block.
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// Whether events of `kind` are wanted: callers skip building the others.
    fn wants(&self, kind: AuditKind) -> bool;

    /// Takes one event.
    fn record(&self, event: AuditEvent);
}

/// The session an event happened in, as known when it was reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The session's id (as the logs show it).
    pub id: u64,
    /// The listener that accepted it.
    pub listener: Box<str>,
    /// The real client: the PROXY header's source when trusted, else the TCP peer.
    pub client_addr: SocketAddr,
    /// The TCP peer (a load balancer, when there is one).
    pub peer_addr: SocketAddr,
    /// The server name the client asked for.
    pub sni: Option<Box<str>>,
    /// The TLS version, when Sluice terminates TLS.
    pub tls_version: Option<Box<str>>,
    /// The authenticated principal.
    pub principal: Option<Box<str>>,
    /// The route (cluster) it was given.
    pub route: Option<Box<str>>,
    /// The tenant a multi-tenant stage gave it, if any.
    pub tenant: Option<Box<str>>,
}

/// How an authentication ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The client proved who it is.
    Success,
    /// It did not.
    Failure,
}

impl AuthOutcome {
    /// `success` or `failure`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One resource a state-changing request named, and what the broker answered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResource {
    /// `topic`, `group`, `acl`, `user`, `partition`, `broker`, ...
    pub resource_type: &'static str,
    /// The resource's name (a topic, a group, a user; `TOPIC-PARTITION` for a partition).
    pub name: Box<str>,
    /// The broker's error code for it (0: done), once its answer was seen.
    pub error_code: Option<i16>,
    /// The broker's message, if it gave one.
    pub error_message: Option<Box<str>>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditDetail {
    /// The session reached its backend.
    ConnectionOpen,
    /// The session ended.
    ConnectionClose {
        /// Bytes read from the client.
        bytes_from_client: u64,
        /// Bytes read from the backend.
        bytes_from_backend: u64,
        /// From accept to close.
        duration: Duration,
        /// Why it ended (a stable label).
        reason: &'static str,
        /// The reason in words.
        reason_detail: Box<str>,
        /// Whose fault, if anyone's: `client`, `upstream`, `internal`.
        fault: Option<&'static str>,
    },
    /// An authentication ended.
    Authentication {
        /// The mechanism (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `mTLS`).
        mechanism: Box<str>,
        /// Who the client claimed to be, or proved to be.
        principal: Option<Box<str>>,
        /// How it ended.
        outcome: AuthOutcome,
        /// Why it failed (never a secret).
        reason: Option<Box<str>>,
    },
    /// A state-changing request and the broker's per-resource outcome.
    Admin {
        /// The API, as Kafka names it (`CreateTopics`).
        api: Box<str>,
        /// Its version.
        api_version: i16,
        /// What it named, in request order.
        resources: Vec<AdminResource>,
        /// Set when no answer was seen (the session ended first, or the request expects none).
        unanswered: bool,
    },
    /// A quota throttled an entity.
    Quota {
        /// What an entity is (`principal`, `client_id`, ...).
        per: &'static str,
        /// The entity's name.
        entity: Box<str>,
        /// Which limit: `produce`, `fetch`, `request`.
        quota: &'static str,
        /// For how long.
        throttle: Duration,
    },
    /// An authorization decision: every denial, and allows when configured.
    Authorization {
        /// The API asked for, as Kafka names it (`Produce`).
        api: Box<str>,
        /// The resource type (`topic`, `group`, `transactional_id`, `cluster`).
        resource_type: &'static str,
        /// The resource's name (`kafka-cluster` for the cluster; `*` for "some topic").
        name: Box<str>,
        /// The operation (`write`, `read`, ...).
        operation: &'static str,
        /// Allowed or denied.
        allowed: bool,
        /// The rule that decided it (`rule[3]: ...`), or none when no rule allows it.
        rule: Option<Box<str>>,
    },
}

impl AuditDetail {
    /// The kind of event this detail makes.
    pub fn kind(&self) -> AuditKind {
        match self {
            Self::ConnectionOpen | Self::ConnectionClose { .. } => AuditKind::Connection,
            Self::Authentication { .. } => AuditKind::Authentication,
            Self::Admin { .. } => AuditKind::Admin,
            Self::Quota { .. } => AuditKind::Quota,
            Self::Authorization { .. } => AuditKind::Authorization,
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When it happened.
    pub time: SystemTime,
    /// The session it happened in.
    pub session: SessionFacts,
    /// What happened.
    pub detail: AuditDetail,
}

impl AuditEvent {
    /// The event's kind.
    pub fn kind(&self) -> AuditKind {
        self.detail.kind()
    }
}
