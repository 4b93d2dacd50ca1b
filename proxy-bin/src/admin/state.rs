//! What the admin endpoints report: the lifecycle phase, readiness, and the counters behind
//! the metrics. Written by `run` and the probes, read by scrapes, never locked on a hot path.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use proxy_backend::BackendConnections;
use proxy_backend::health::ClusterHealth;
use proxy_core::context::LiveResources;
use proxy_core::route::RouteId;
use proxy_frontend::{Admission, CloseCounts, ConnectionBudget, ReloadableServerConfig, Sessions};
use proxy_kafka::KafkaMetrics;
use proxy_kafka::authorization::AuthorizationMetrics;
use proxy_kafka::broker_map::BrokerMap;
use proxy_kafka::quota::QuotaMetrics;
use proxy_kafka::sasl::SaslMetrics;
use proxy_kafka::tenant::TenantMetrics;

use super::clock::Expiry;
use super::outcomes::Outcomes;
use crate::wiring::FrameBudgets;

/// Where the process stands in its life; exported as `sluice_lifecycle_phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Running,
    AcceptGrace,
    Draining,
    ForceClosing,
    StoppingChildren,
}

impl Phase {
    pub(crate) const ALL: [Phase; 6] = [
        Self::Starting,
        Self::Running,
        Self::AcceptGrace,
        Self::Draining,
        Self::ForceClosing,
        Self::StoppingChildren,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::AcceptGrace => "accept_grace",
            Self::Draining => "draining",
            Self::ForceClosing => "force_closing",
            Self::StoppingChildren => "stopping_children",
        }
    }
}

/// A Kafka listener's broker map and the clusters it routes to.
#[derive(Debug)]
pub(crate) struct KafkaDiscovery {
    pub(crate) listener: Arc<str>,
    pub(crate) brokers: Arc<BrokerMap>,
    pub(crate) routes: Vec<RouteId>,
}

/// A TLS-terminating listener: its certificates and what their reloads came to.
#[derive(Debug)]
pub(crate) struct TlsListener {
    pub(crate) listener: String,
    pub(crate) config: Arc<ReloadableServerConfig>,
    pub(crate) reloads: Arc<Outcomes>,
}

/// Shared between `run`, the probes and the admin listener.
#[derive(Debug)]
pub(crate) struct AdminState {
    phase: AtomicU8,
    listeners_bound: AtomicBool,
    pub(crate) clusters: Vec<Arc<ClusterHealth>>,
    pub(crate) closes: CloseCounts,
    pub(crate) live: Arc<LiveResources>,
    pub(crate) sessions: Sessions,
    /// Kafka listeners' per-API counters, by listener name.
    pub(crate) kafka: Vec<(String, Arc<KafkaMetrics>)>,
    /// `quota` stages' counters, by listener name.
    pub(crate) quotas: Vec<(String, Arc<QuotaMetrics>)>,
    /// Kafka listeners' `tenant` stages, by listener name.
    pub(crate) tenants: Vec<(String, Arc<TenantMetrics>)>,
    /// The `[audit]` sink's counters, when there is one.
    pub(crate) audit: Option<Arc<crate::audit::AuditStats>>,
    /// SASL outcome counters of Kafka listeners that inspect or terminate SASL, by listener.
    pub(crate) sasl: Vec<(String, Arc<SaslMetrics>)>,
    /// The process's frame budget and each Kafka listener's.
    pub(crate) frame_budgets: Option<FrameBudgets>,
    /// Each Kafka listener's broker map and the clusters it routes to: a listener is not
    /// ready to serve clients until each of those clusters has told it its brokers.
    kafka_discovery: Vec<KafkaDiscovery>,
    /// The connector's TCP connections to each cluster's backends.
    pub(crate) backend_connections: Arc<BackendConnections>,
    /// Each listener's connection limits and what they paused or refused.
    pub(crate) admissions: Vec<(String, Arc<Admission>)>,
    /// The process-wide connection limit.
    pub(crate) budget: ConnectionBudget,
    /// The admin endpoint's own connections.
    pub(crate) admin_connections: AdminConnectionCounts,
    /// TLS-terminating listeners (shared with the certificate reloads).
    pub(crate) tls: Vec<Arc<TlsListener>>,
    /// Each users file and what its reloads came to.
    pub(crate) users_files: Vec<(PathBuf, Arc<Outcomes>)>,
    /// Kafka listeners' authorization decisions, by listener name.
    pub(crate) authorization: Vec<(String, Arc<AuthorizationMetrics>)>,
    /// Each ACL rules file and what its reloads came to.
    pub(crate) rules_files: Vec<(PathBuf, Arc<Outcomes>)>,
    /// What upgrades and reloads through a successor came to.
    pub(crate) upgrades: Arc<Outcomes>,
}

/// The admin endpoint's connections: open now, and closed by its timeouts or its cap.
#[derive(Debug, Default)]
pub(crate) struct AdminConnectionCounts {
    pub(super) open: AtomicU64,
    /// By [`Expiry`] (see `index`).
    closed: [AtomicU64; 3],
}

// === impl AdminConnectionCounts ===

impl AdminConnectionCounts {
    pub(super) fn closed(&self, expiry: Expiry) {
        self.closed[Self::index(expiry)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn closed_count(&self, expiry: Expiry) -> u64 {
        self.closed[Self::index(expiry)].load(Ordering::Relaxed)
    }

    pub(super) fn open_count(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    fn index(expiry: Expiry) -> usize {
        match expiry {
            Expiry::HeaderTimeout => 0,
            Expiry::IdleTimeout => 1,
            Expiry::Evicted => 2,
        }
    }
}

// === impl AdminState ===

impl AdminState {
    pub(crate) fn new(
        clusters: Vec<Arc<ClusterHealth>>,
        closes: CloseCounts,
        live: Arc<LiveResources>,
        sessions: Sessions,
    ) -> Self {
        Self {
            phase: AtomicU8::new(0),
            listeners_bound: AtomicBool::new(false),
            clusters,
            closes,
            live,
            sessions,
            kafka: Vec::new(),
            quotas: Vec::new(),
            tenants: Vec::new(),
            audit: None,
            sasl: Vec::new(),
            frame_budgets: None,
            kafka_discovery: Vec::new(),
            backend_connections: Arc::default(),
            admissions: Vec::new(),
            budget: ConnectionBudget::unlimited(),
            admin_connections: AdminConnectionCounts::default(),
            tls: Vec::new(),
            users_files: Vec::new(),
            authorization: Vec::new(),
            rules_files: Vec::new(),
            upgrades: Arc::default(),
        }
    }

    /// Exports TLS-terminating listeners' handshake failures, certificates and reloads.
    pub(crate) fn with_tls(mut self, tls: Vec<Arc<TlsListener>>) -> Self {
        self.tls = tls;
        self
    }

    /// Exports users-file reloads.
    pub(crate) fn with_users_files(mut self, files: Vec<(PathBuf, Arc<Outcomes>)>) -> Self {
        self.users_files = files;
        self
    }

    /// Exports authorization decisions and ACL rules reloads.
    pub(crate) fn with_authorization(
        mut self,
        metrics: Vec<(String, Arc<AuthorizationMetrics>)>,
        files: Vec<(PathBuf, Arc<Outcomes>)>,
    ) -> Self {
        self.authorization = metrics;
        self.rules_files = files;
        self
    }

    /// Every listener's name, in config order.
    pub(crate) fn listener_names(&self) -> Vec<String> {
        self.admissions
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Each Kafka listener's broker map and the clusters it routes to.
    pub(crate) fn kafka_discovery(&self) -> &[KafkaDiscovery] {
        &self.kafka_discovery
    }

    /// Exports connection limits: the process-wide budget and each listener's admission.
    pub(crate) fn with_admission(
        mut self,
        budget: ConnectionBudget,
        admissions: Vec<(String, Arc<Admission>)>,
    ) -> Self {
        self.budget = budget;
        self.admissions = admissions;
        self
    }

    /// Exports the connector's per-cluster connection counts too.
    pub(crate) fn with_backend_connections(mut self, counts: Arc<BackendConnections>) -> Self {
        self.backend_connections = counts;
        self
    }

    /// Exports these Kafka listeners' counters too.
    pub(crate) fn with_sasl_metrics(mut self, sasl: Vec<(String, Arc<SaslMetrics>)>) -> Self {
        self.sasl = sasl;
        self
    }

    /// Makes readiness wait for these Kafka listeners' clusters to be discovered.
    pub(crate) fn with_kafka_discovery(mut self, discovery: Vec<KafkaDiscovery>) -> Self {
        self.kafka_discovery = discovery;
        self
    }

    /// Exports the frame budgets' use too.
    pub(crate) fn with_frame_budgets(mut self, budgets: FrameBudgets) -> Self {
        self.frame_budgets = Some(budgets);
        self
    }

    pub(crate) fn with_kafka_metrics(mut self, kafka: Vec<(String, Arc<KafkaMetrics>)>) -> Self {
        self.kafka = kafka;
        self
    }

    /// Exports `tenant` stages' per-tenant counters.
    pub(crate) fn with_tenant_metrics(
        mut self,
        tenants: Vec<(String, Arc<TenantMetrics>)>,
    ) -> Self {
        self.tenants = tenants;
        self
    }

    pub(crate) fn with_quota_metrics(mut self, quotas: Vec<(String, Arc<QuotaMetrics>)>) -> Self {
        self.quotas = quotas;
        self
    }

    pub(crate) fn with_audit(mut self, audit: Option<Arc<crate::audit::AuditStats>>) -> Self {
        self.audit = audit;
        self
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phase.store(index as u8, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::ALL
            .get(usize::from(self.phase.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(Phase::Starting)
    }

    pub(crate) fn set_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::Relaxed);
    }

    /// Ready only while running, with every listener bound and every cluster's requirement met.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        match self.phase() {
            Phase::Running => {}
            Phase::Starting => return Err("starting".into()),
            _ => return Err("shutting down".into()),
        }
        self.ready_to_serve()?;
        self.kafka_discovered()
    }

    /// Every Kafka listener's clusters have told it their brokers. Not part of
    /// [`ready_to_serve`](Self::ready_to_serve): a cluster that is down must not hold up a
    /// reload that may be what fixes it.
    fn kafka_discovered(&self) -> Result<(), String> {
        for discovery in &self.kafka_discovery {
            if let Some(route) = discovery
                .routes
                .iter()
                .find(|route| !discovery.brokers.is_discovered(route))
            {
                return Err(format!(
                    "listener {}: cluster {route} not discovered yet (no Metadata answer from \
                     its brokers)",
                    discovery.listener
                ));
            }
        }
        Ok(())
    }

    /// Readiness without the phase: listeners bound and every cluster's requirement met. A
    /// successor reports ready to its predecessor on this, before its phase is `running`.
    pub(crate) fn ready_to_serve(&self) -> Result<(), String> {
        if !self.listeners_bound.load(Ordering::Relaxed) {
            return Err("listeners not bound".into());
        }
        self.clusters.iter().try_for_each(|health| health.check())
    }
}
