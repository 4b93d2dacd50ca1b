//! Building the proxy from its config and binding (or adopting) every socket: admin, listeners
//! and the broker ports a predecessor handed over. Nothing accepts yet.

use std::os::fd::AsFd as _;
use std::sync::Arc;

use anyhow::Context as _;
use proxy_backend::health::{self, ClusterHealth};
use proxy_backend::{ChildReaper, Connector};
use proxy_core::route::StaticRouter;
use proxy_frontend::{
    BoundListener, BrokerPortObserver, ConnectionBudget, Frontend, ListenerSpec,
    broker_socket_name, parse_broker_socket_name,
};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::acl_reload;
use crate::admin::{AdminState, KafkaDiscovery, TlsListener};
use crate::audit::AuditWriter;
use crate::config::{AdminConfig, Config};
use crate::descriptors;
use crate::reload_in_place::InPlaceFiles;
use crate::tls_reload;
use crate::upgrade::{Inherited, Offered, OfferedSockets, SocketKind};
use crate::users_reload;
use crate::wiring::{self, Probe};

/// Everything set up before serving; nothing accepts yet.
pub(crate) struct Started {
    pub(super) frontend: Arc<Frontend<StaticRouter, Connector>>,
    /// The `[audit]` sink, written to the end at shutdown.
    pub(super) audit: Option<Arc<AuditWriter>>,
    pub(super) reaper: ChildReaper,
    pub(crate) state: Arc<AdminState>,
    /// Probes, certificate and users-file reloads and the admin endpoint: they live until the very end, since
    /// `/readyz` must answer while draining.
    pub(super) background: TaskTracker,
    pub(super) stop_background: CancellationToken,
    /// The admin listener and its `[admin]` table (its timeouts and cap).
    pub(super) admin: Option<(TcpListener, AdminConfig)>,
    pub(super) listeners: Vec<BoundListener>,
    /// Duplicates of every listening socket, for a successor.
    pub(super) offered: OfferedSockets,
    /// The watchers of the files that reload in place, for SIGHUP.
    pub(super) in_place: InPlaceFiles,
}

/// Builds the proxy and binds (or adopts) every socket, accepting nothing yet.
pub(super) async fn start(config: &Config, mut inherited: Inherited) -> anyhow::Result<Started> {
    let plan = wiring::plan(config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let reaper = ChildReaper::new();
    let connector = Connector::new(plan.clusters.clone(), reaper.clone());
    let backend_connections = connector.connections().clone();
    let admissions = plan
        .listeners
        .iter()
        .map(|spec| (spec.name.to_string(), spec.admission.clone()))
        .collect();
    let max_connections = descriptors::max_connections(config, descriptors::current());
    info!(
        max_connections,
        "connection limit for all listeners together"
    );
    // The Kafka sink's connections are its own, counted apart from the sessions'.
    let audit = config
        .audit
        .as_ref()
        .map(|audit| {
            AuditWriter::start(
                audit,
                &Connector::new(plan.clusters.clone(), reaper.clone()),
            )
        })
        .transpose()?;
    let mut frontend = Frontend::new(plan.router, connector)
        .with_connection_budget(ConnectionBudget::new(max_connections));
    if let Some(audit) = &audit {
        frontend = frontend.with_audit(audit.clone());
    }
    let frontend = Arc::new(frontend);

    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    let cluster_health = start_probes(plan.probes, &background, &stop_background);
    // SIGHUP asks the file watchers to re-read their files at once.
    let mut in_place = InPlaceFiles::default();
    let tls: Vec<_> = plan
        .tls_reloads
        .into_iter()
        .map(|(listener, config)| {
            Arc::new(TlsListener {
                listener,
                config,
                reloads: Arc::default(),
            })
        })
        .collect();
    if !tls.is_empty() {
        background.spawn(tls_reload::watch(
            tls.clone(),
            stop_background.clone(),
            in_place.watcher(),
        ));
    }
    let users_files = plan
        .users_files
        .iter()
        .map(|file| (file.path().to_owned(), file.reloads().clone()))
        .collect();
    if !plan.users_files.is_empty() {
        background.spawn(users_reload::watch(
            plan.users_files,
            stop_background.clone(),
            in_place.watcher(),
        ));
    }
    let rules_files = plan
        .rules_files
        .iter()
        .map(|file| (file.path().to_owned(), file.reloads().clone()))
        .collect();
    if !plan.rules_files.is_empty() {
        background.spawn(acl_reload::watch(
            plan.rules_files,
            stop_background.clone(),
            in_place.watcher(),
        ));
    }
    let state = Arc::new(
        AdminState::new(
            cluster_health,
            frontend.closes().clone(),
            frontend.live_resources().clone(),
            frontend.sessions().clone(),
        )
        .with_kafka_metrics(plan.kafka_metrics)
        .with_quota_metrics(plan.quota_metrics)
        .with_tenant_metrics(plan.tenant_metrics)
        .with_sasl_metrics(plan.sasl_metrics)
        .with_frame_budgets(plan.frame_budgets.clone())
        .with_kafka_discovery(kafka_discovery(&plan.listeners))
        .with_backend_connections(backend_connections)
        .with_admission(frontend.connection_budget().clone(), admissions)
        .with_tls(tls)
        .with_users_files(users_files)
        .with_authorization(plan.authorization_metrics, rules_files)
        .with_audit(audit.as_ref().map(|audit| audit.stats().clone())),
    );
    background.spawn(reopen_on_sigusr1(audit.clone(), stop_background.clone()));

    let offered = OfferedSockets::default();
    let admin = match config.admin {
        None => None,
        Some(admin) => Some((bind_admin(admin, &mut inherited, &offered).await?, admin)),
    };
    let mut listeners = Vec::with_capacity(plan.listeners.len());
    for spec in plan.listeners {
        listeners.push(bind_listener(spec, &mut inherited, &offered).await?);
    }
    adopt_broker_sockets(&mut inherited, &mut listeners);
    inherited.close_unclaimed();
    state.set_listeners_bound();
    Ok(Started {
        frontend,
        audit,
        reaper,
        state,
        background,
        stop_background,
        admin,
        listeners,
        offered,
        in_place,
    })
}

/// SIGUSR1 reopens the audit file (logrotate moved it away). Handled even without `[audit]`:
/// its default action would end the process, and the master forwards it.
async fn reopen_on_sigusr1(audit: Option<Arc<AuditWriter>>, stop: CancellationToken) {
    let mut usr1 = match signal(SignalKind::user_defined1()) {
        Ok(usr1) => usr1,
        Err(err) => {
            warn!(error = %err, "cannot listen for SIGUSR1");
            return;
        }
    };
    // Bounded by the process's life: one round per signal.
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            got = usr1.recv() => {
                if got.is_none() {
                    return;
                }
                match &audit {
                    Some(audit) => audit.reopen(),
                    None => info!("SIGUSR1: no audit file to reopen"),
                }
            }
        }
    }
}

/// Starts probing the clusters readiness depends on; returns their health.
fn start_probes(
    probes: Vec<Probe>,
    background: &TaskTracker,
    stop: &CancellationToken,
) -> Vec<Arc<ClusterHealth>> {
    let mut cluster_health = Vec::new();
    for probe in probes {
        let health = Arc::new(ClusterHealth::new(
            probe.cluster.route.as_str(),
            probe.requirement,
            probe.cluster.backends.iter().map(ToString::to_string),
        ));
        cluster_health.push(health.clone());
        background.spawn(health::probe_until(
            probe.cluster,
            health,
            probe.interval,
            stop.clone(),
        ));
    }
    cluster_health
}

/// The admin listener: inherited, or bound; offered to a successor either way.
async fn bind_admin(
    admin: AdminConfig,
    inherited: &mut Inherited,
    offered: &OfferedSockets,
) -> anyhow::Result<TcpListener> {
    let listener = match inherited.take(SocketKind::Admin, "admin", admin.bind) {
        Some(listener) => {
            listener
                .set_nonblocking(true)
                .context("admin: inherited socket")?;
            TcpListener::from_std(listener).context("admin: inherited socket")?
        }
        None => TcpListener::bind(admin.bind)
            .await
            .with_context(|| format!("admin: cannot bind {}", admin.bind))?,
    };
    let addr = listener.local_addr().unwrap_or(admin.bind);
    offered.push(
        Offered::dup(SocketKind::Admin, "admin", addr, listener.as_fd())
            .context("admin: cannot duplicate the socket")?,
    );
    Ok(listener)
}

/// A listener: its inherited socket, or bound; offered to a successor either way.
async fn bind_listener(
    spec: ListenerSpec,
    inherited: &mut Inherited,
    offered: &OfferedSockets,
) -> anyhow::Result<BoundListener> {
    let name = spec.name.clone();
    let listener = match inherited.take(SocketKind::Listener, &name, spec.bind) {
        Some(socket) => BoundListener::from_std(spec, socket)?,
        None => BoundListener::bind(spec).await?,
    };
    if crate::upgrade::is_sendable_name(&name) {
        offered.push(
            Offered::dup(
                SocketKind::Listener,
                &name,
                listener.local_addr(),
                listener.as_fd(),
            )
            .with_context(|| format!("listener {name}: cannot duplicate the socket"))?,
        );
    } else {
        warn!(listener.name = %name, "a listener whose name holds a tab or newline is bound anew after an upgrade");
    }
    Ok(listener)
}

/// Hands the Kafka broker ports a predecessor served to their listeners, which serve them again
/// (the sockets of brokers whose port moved in the new config are closed).
fn adopt_broker_sockets(inherited: &mut Inherited, listeners: &mut [BoundListener]) {
    let sockets = inherited.take_named(|name| {
        parse_broker_socket_name(name).map(|(listener, node_id)| (listener.to_owned(), node_id))
    });
    for ((name, node_id), addr, socket) in sockets {
        let listener = listeners.iter_mut().find(|l| {
            l.name() == name
                && l.spec()
                    .kafka()
                    .is_some_and(|kafka| kafka.brokers.broker_addr(node_id) == Some(addr))
        });
        match listener {
            Some(listener) => listener.adopt_broker_socket(node_id, socket),
            None => info!(
                listener.name = %name,
                broker.node_id = node_id,
                addr = %addr,
                "closed an inherited broker port the config no longer has"
            ),
        }
    }
}

/// Offers each broker port a Kafka listener opens to the next successor, until it closes.
pub(super) fn offer_broker_ports(offered: &OfferedSockets) -> Arc<dyn BrokerPortObserver> {
    Arc::new(OfferBrokerPorts(offered.clone()))
}

/// Keeps a duplicate of every open broker port among the sockets a successor is handed.
struct OfferBrokerPorts(OfferedSockets);

impl BrokerPortObserver for OfferBrokerPorts {
    fn opened(&self, listener: &str, node_id: i32, socket: &TcpListener) {
        let name = broker_socket_name(listener, node_id);
        let addr = match socket.local_addr() {
            Ok(addr) => addr,
            Err(err) => {
                warn!(listener.name = %name, error = %err, "cannot read a broker port's address; a successor binds it anew");
                return;
            }
        };
        match Offered::dup(SocketKind::Listener, &name, addr, socket.as_fd()) {
            Ok(socket) => self.0.push(socket),
            Err(err) => {
                warn!(listener.name = %name, error = %err, "cannot duplicate a broker port; a successor binds it anew");
            }
        }
    }

    /// A closed port is not handed over: its duplicate would keep it listening, here and in
    /// the successor, with nobody accepting. (A hand-off already under way took its own
    /// duplicates; a successor that adopts a port this process has closed since closes it
    /// after the grace period, as no cluster names its broker.)
    fn closed(&self, listener: &str, node_id: i32) {
        self.0.withdraw(&broker_socket_name(listener, node_id));
    }
}

/// What readiness waits for of each Kafka listener: its clusters discovered.
fn kafka_discovery(listeners: &[ListenerSpec]) -> Vec<KafkaDiscovery> {
    listeners
        .iter()
        .filter_map(|spec| {
            let kafka = spec.kafka()?;
            Some(KafkaDiscovery {
                listener: spec.name.clone(),
                brokers: kafka.brokers.clone(),
                routes: kafka.routes.clone(),
            })
        })
        .collect()
}
