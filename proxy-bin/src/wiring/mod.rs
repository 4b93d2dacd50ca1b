//! Turns a validated [`Config`] into what the library crates run: listener specs with their
//! stage factories, cluster specs, the router and the readiness probes. Stage options, users
//! files and certificates are read here, so `sluice check` reports a bad one with its key path
//! like any other config error.

mod cluster;
mod listener;
mod sasl;

pub(crate) use listener::FrameBudgets;

use std::sync::Arc;
use std::time::Duration;

use proxy_backend::ClusterSpec;
use proxy_backend::health::Requirement;
use proxy_core::route::StaticRouter;
use proxy_frontend::{ListenerSpec, ReloadableServerConfig};
use proxy_kafka::KafkaMetrics;
use proxy_kafka::authorization::AuthorizationMetrics;
use proxy_kafka::quota::QuotaMetrics;
use proxy_kafka::sasl::SaslMetrics;
use proxy_kafka::tenant::TenantMetrics;

use crate::acl_reload::RulesFile;
use crate::config::{Config, ConfigError, ConfigErrors, ReadyRequires};
use crate::users_reload::UsersFile;

/// Everything the proxy runs, built from configuration.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) listeners: Vec<ListenerSpec>,
    pub(crate) clusters: Vec<ClusterSpec>,
    pub(crate) router: StaticRouter,
    /// The clusters readiness depends on, and how to probe them.
    pub(crate) probes: Vec<Probe>,
    /// Terminating listeners' TLS configurations, reloaded on SIGHUP and when files change.
    pub(crate) tls_reloads: Vec<(String, Arc<ReloadableServerConfig>)>,
    /// Kafka listeners' per-API counters, by listener name.
    pub(crate) kafka_metrics: Vec<(String, Arc<KafkaMetrics>)>,
    /// Kafka listeners' `quota` stages' counters, by listener name.
    pub(crate) quota_metrics: Vec<(String, Arc<QuotaMetrics>)>,
    /// Kafka listeners' `tenant` stages' counters, by listener name.
    pub(crate) tenant_metrics: Vec<(String, Arc<TenantMetrics>)>,
    /// SASL-inspecting and -terminating listeners' outcome counters, by listener name.
    pub(crate) sasl_metrics: Vec<(String, Arc<SaslMetrics>)>,
    /// The process's frame budget and each Kafka listener's.
    pub(crate) frame_budgets: FrameBudgets,
    /// SASL-terminating listeners' users files, reloaded on SIGHUP and when they change.
    pub(crate) users_files: Vec<UsersFile>,
    /// Kafka listeners' ACL rules files, reloaded on SIGHUP and when they change.
    pub(crate) rules_files: Vec<RulesFile>,
    /// Kafka listeners' authorization decision counters, by listener name.
    pub(crate) authorization_metrics: Vec<(String, Arc<AuthorizationMetrics>)>,
}

/// A cluster whose reachability readiness requires.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) cluster: ClusterSpec,
    pub(crate) requirement: Requirement,
    pub(crate) interval: Duration,
}

/// Builds the plan, or every error found while building it.
pub(crate) fn plan(config: &Config) -> Result<Plan, ConfigErrors> {
    let mut errors = Vec::new();
    let listeners = listener::Listeners::build(config, &mut errors);
    let clusters: Vec<ClusterSpec> = config
        .clusters
        .iter()
        .filter_map(|(name, cluster)| cluster::spec(name, cluster, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let probes = probes(config, &clusters);
    Ok(Plan {
        listeners: listeners.specs,
        clusters,
        router: listeners.router,
        probes,
        tls_reloads: listeners.tls_reloads,
        kafka_metrics: listeners.kafka_metrics,
        quota_metrics: listeners.quota_metrics,
        tenant_metrics: listeners.tenant_metrics,
        sasl_metrics: listeners.sasl_metrics,
        frame_budgets: listeners.frame_budgets,
        users_files: listeners.users_files,
        rules_files: listeners.rules_files,
        authorization_metrics: listeners.authorization_metrics,
    })
}

/// The clusters whose `ready_requires` makes readiness depend on them.
fn probes(config: &Config, clusters: &[ClusterSpec]) -> Vec<Probe> {
    clusters
        .iter()
        .filter_map(|spec| {
            let config = config.clusters.get(spec.route.as_str())?;
            let requirement = match config.ready_requires {
                ReadyRequires::None => return None,
                ReadyRequires::Any => Requirement::Any,
                ReadyRequires::All => Requirement::All,
            };
            Some(Probe {
                cluster: spec.clone(),
                requirement,
                interval: config.probe_interval,
            })
        })
        .collect()
}

/// Records `err`, with its causes, against the config key `path`.
fn error(errors: &mut Vec<ConfigError>, path: impl Into<String>, err: &dyn std::error::Error) {
    errors.push(ConfigError::new(
        path.into(),
        crate::config::with_causes(err),
    ));
}
