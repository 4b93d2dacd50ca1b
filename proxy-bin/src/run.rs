//! `sluice run`: binds (or adopts) everything, serves until SIGINT or SIGTERM, then shuts down
//! in phases sized for Kubernetes (see docs/operations.md):
//!
//! 1. readiness fails at once (and systemd hears `STOPPING=1`);
//! 2. listeners keep accepting for `accept_grace`, while endpoints are removed elsewhere;
//! 3. listeners close;
//! 4. open sessions drain until `drain_timeout`;
//! 5. what remains is force-closed;
//! 6. child-process backends are stopped; the process exits 0.
//!
//! A second signal during 2–4 jumps to 5. There is no `process::exit` on this path, so every
//! close line is written and every child is reaped.
//!
//! SIGUSR2 and SIGHUP start a successor instead ([`crate::upgrade`]). Once it has taken over,
//! this process skips steps 1–2: it stops serving admin, closes its listeners and drains.
//! A successor itself waits for its predecessor's `go` before it accepts anything.

use std::os::fd::AsFd as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use proxy_backend::health::{self, ClusterHealth};
use proxy_backend::{ChildReaper, Connector};
use proxy_frontend::{
    BoundListener, BrokerPortObserver, Frontend, Lifecycle, broker_socket_name,
    parse_broker_socket_name,
};
use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::admin::{self, AdminState, Phase};
use crate::config::Config;
use crate::upgrade::{
    Attempt, Inherited, Offered, OfferedSockets, Predecessor, SocketKind, Triggers, UpgradeOptions,
    Upgrades,
};
use crate::{tls_reload, wiring};

/// How long force-closed sessions get to write their close lines before the process exits.
const FORCE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What a process starts with besides its config.
#[derive(Debug)]
pub(crate) struct Startup {
    pub(crate) options: UpgradeOptions,
    /// Sockets from the predecessor or systemd, taken by listeners with matching names.
    pub(crate) inherited: Inherited,
    /// The process this one replaces, when started by an upgrade.
    pub(crate) predecessor: Option<Predecessor>,
}

/// Runs the proxy on a multi-threaded runtime; returns the process's exit code.
pub(crate) fn main(config: Config, startup: Startup) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, startup)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = format!("{err:#}"), "sluice stopped");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, either of which asks for shutdown.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Waits for the next one; cancel safe.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Why serving ended.
#[derive(Debug)]
enum Stop {
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// A successor took over.
    HandedOver,
}

/// Everything set up before serving; nothing accepts yet.
struct Started {
    frontend: Arc<Frontend<proxy_core::route::StaticRouter, Connector>>,
    reaper: ChildReaper,
    state: Arc<AdminState>,
    background: TaskTracker,
    stop_background: CancellationToken,
    admin: Option<tokio::net::TcpListener>,
    listeners: Vec<BoundListener>,
    offered: OfferedSockets,
}

async fn serve(config: Config, startup: Startup) -> anyhow::Result<()> {
    let Startup {
        options,
        inherited,
        predecessor,
    } = startup;
    let mut link = predecessor
        .map(Predecessor::into_link)
        .transpose()
        .context("upgrade: hand-off connection")?;
    // Signals first: the default action of SIGUSR2 and SIGHUP would end the process.
    let mut signals = StopSignals::install()?;
    let mut triggers = Triggers::install()?;
    let started = match start(&config, inherited).await {
        Ok(started) => started,
        Err(err) => {
            if let Some(link) = link.as_mut() {
                link.fail(&format!("{err:#}")).await;
            }
            return Err(err);
        }
    };
    if let Some(link) = link.as_mut() {
        link.take_over(&started.state).await?;
    }
    let Started {
        frontend,
        reaper,
        state,
        background,
        stop_background,
        admin,
        listeners: bound,
        offered,
    } = started;
    let stop_admin = stop_background.child_token();
    if let Some(listener) = admin {
        background.spawn(admin::serve(listener, state.clone(), stop_admin.clone()));
    }
    let lifecycle = Lifecycle::default();
    let listeners = TaskTracker::new();
    for listener in bound {
        proxy_frontend::serve_broker_ports(
            listener.spec(),
            frontend.clone(),
            lifecycle.clone(),
            Some(offer_broker_ports(&offered)),
        );
        listeners.spawn(listener.serve(frontend.clone(), lifecycle.clone()));
    }
    listeners.close();
    state.set_phase(Phase::Running);
    // Before READY=1: systemd reads PIDFile= when it hears it. After a hand-off, the
    // predecessor has already written our PID.
    let pid_file = options.pid_file.clone();
    if let Some(pid_file) = &pid_file
        && link.is_none()
        && let Err(err) = crate::upgrade::write_pid(pid_file, std::process::id())
    {
        warn!(error = %err, path = %pid_file.display(), "cannot write the PID file");
    }
    notify(NotifyState::Ready);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "sluice started"
    );
    drop(link);

    let mut upgrades = Upgrades::new(options, config.shutdown.upgrade_timeout, offered.clone());
    let stop = supervise(&mut signals, &mut triggers, &mut upgrades).await;
    let shutdown = &config.shutdown;

    let mut forced = match stop {
        Stop::Signal(signal_name) => {
            state.set_phase(Phase::AcceptGrace);
            notify(NotifyState::Stopping);
            info!(signal = signal_name, accept_grace = ?shutdown.accept_grace, "shutdown: readiness failing");
            tokio::select! {
                () = tokio::time::sleep(shutdown.accept_grace) => false,
                signal = signals.next() => {
                    info!(signal, "shutdown: second signal, skipping the drain");
                    true
                }
            }
        }
        Stop::HandedOver => {
            // The successor accepts on the same sockets, admin included: no grace needed.
            stop_admin.cancel();
            info!("shutdown: handed over to the successor");
            false
        }
    };

    info!("shutdown: stop accepting");
    // Our spare copies too, or the kernel would keep queueing connections nobody accepts.
    upgrades.release_sockets();
    lifecycle.stop_accepting.cancel();
    listeners.wait().await;
    lifecycle.tracker.close();

    if !forced {
        state.set_phase(Phase::Draining);
        info!(sessions = frontend.sessions().len(), drain_timeout = ?shutdown.drain_timeout, "shutdown: draining");
        forced = tokio::select! {
            () = lifecycle.tracker.wait() => false,
            () = tokio::time::sleep(shutdown.drain_timeout) => true,
            signal = signals.next() => {
                info!(signal, "shutdown: second signal, ending the drain");
                true
            }
        };
    }
    if forced && !lifecycle.tracker.is_empty() {
        state.set_phase(Phase::ForceClosing);
        warn!(
            sessions = frontend.sessions().len(),
            "shutdown: force-closing sessions still open"
        );
        lifecycle.force_close.cancel();
        if tokio::time::timeout(FORCE_CLOSE_GRACE, lifecycle.tracker.wait())
            .await
            .is_err()
        {
            warn!("shutdown: sessions did not finish closing in time");
        }
    }

    state.set_phase(Phase::StoppingChildren);
    info!(
        children = reaper.live(),
        "shutdown: stopping child backends"
    );
    reaper.stop_all().await;

    stop_background.cancel();
    background.close();
    background.wait().await;
    if let Some(pid_file) = &pid_file {
        crate::upgrade::remove_pid_if_ours(pid_file, std::process::id());
    }
    info!("shutdown: complete");
    Ok(())
}

/// Builds the proxy and binds (or adopts) every socket, accepting nothing yet.
async fn start(config: &Config, mut inherited: Inherited) -> anyhow::Result<Started> {
    let plan = wiring::plan(config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let reaper = ChildReaper::new();
    let connector = Connector::new(plan.clusters.clone(), reaper.clone());
    let backend_connections = connector.connections().clone();
    let frontend = Arc::new(Frontend::new(plan.router, connector));

    // Probes and the admin listener live until the very end: /readyz must answer while draining.
    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    let mut cluster_health = Vec::new();
    for probe in plan.probes {
        let health = Arc::new(ClusterHealth::new(
            probe.cluster.route.as_str(),
            probe.requirement,
            probe.cluster.backends.len(),
        ));
        cluster_health.push(health.clone());
        background.spawn(health::probe_until(
            probe.cluster,
            health,
            probe.interval,
            stop_background.clone(),
        ));
    }
    if !plan.tls_reloads.is_empty() {
        background.spawn(tls_reload::watch(plan.tls_reloads, stop_background.clone()));
    }
    let state = Arc::new(
        AdminState::new(
            cluster_health,
            frontend.closes().clone(),
            frontend.live_resources().clone(),
            frontend.sessions().clone(),
        )
        .with_kafka_metrics(plan.kafka_metrics)
        .with_sasl_metrics(plan.sasl_metrics)
        .with_backend_connections(backend_connections),
    );

    let offered = OfferedSockets::default();
    let admin = match config.admin {
        None => None,
        Some(admin) => {
            let listener = match inherited.take(SocketKind::Admin, "admin", admin.bind) {
                Some(listener) => {
                    listener
                        .set_nonblocking(true)
                        .context("admin: inherited socket")?;
                    tokio::net::TcpListener::from_std(listener)
                        .context("admin: inherited socket")?
                }
                None => tokio::net::TcpListener::bind(admin.bind)
                    .await
                    .with_context(|| format!("admin: cannot bind {}", admin.bind))?,
            };
            let addr = listener.local_addr().unwrap_or(admin.bind);
            offered.push(
                Offered::dup(SocketKind::Admin, "admin", addr, listener.as_fd())
                    .context("admin: cannot duplicate the socket")?,
            );
            Some(listener)
        }
    };
    let mut listeners = Vec::with_capacity(plan.listeners.len());
    for spec in plan.listeners {
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
            warn!(listener = %name, "a listener whose name holds a tab or newline is bound anew after an upgrade");
        }
        listeners.push(listener);
    }
    adopt_broker_sockets(&mut inherited, &listeners);
    inherited.close_unclaimed();
    state.set_listeners_bound();
    Ok(Started {
        frontend,
        reaper,
        state,
        background,
        stop_background,
        admin,
        listeners,
        offered,
    })
}

/// Hands the Kafka broker ports a predecessor served to their gateways, which serve them again
/// (the sockets of brokers whose port moved in the new config are closed).
fn adopt_broker_sockets(inherited: &mut Inherited, listeners: &[BoundListener]) {
    let sockets = inherited.take_named(|name| {
        parse_broker_socket_name(name).map(|(listener, node_id)| (listener.to_owned(), node_id))
    });
    for ((listener, node_id), addr, socket) in sockets {
        let gateway = listeners
            .iter()
            .filter(|l| l.name() == listener)
            .find_map(|l| l.spec().kafka.as_ref())
            .map(|kafka| &kafka.gateway)
            .filter(|gateway| gateway.broker_addr(node_id) == Some(addr));
        match gateway {
            Some(gateway) => gateway.adopt_broker_socket(node_id, socket),
            None => info!(
                listener = %listener,
                broker.node_id = node_id,
                addr = %addr,
                "closed an inherited broker port the config no longer has"
            ),
        }
    }
}

/// Offers each broker port a Kafka gateway opens to the next successor.
fn offer_broker_ports(offered: &OfferedSockets) -> BrokerPortObserver {
    let offered = offered.clone();
    Arc::new(move |node_id, listener: &BoundListener| {
        let name = broker_socket_name(listener.name(), node_id);
        match Offered::dup(
            SocketKind::Listener,
            &name,
            listener.local_addr(),
            listener.as_fd(),
        ) {
            Ok(socket) => offered.push(socket),
            Err(err) => {
                warn!(listener = %name, error = %err, "cannot duplicate a broker port; a successor binds it anew");
            }
        }
    })
}

/// Serves until a stop signal or a successful hand-off; runs upgrades one at a time meanwhile.
async fn supervise(
    signals: &mut StopSignals,
    triggers: &mut Triggers,
    upgrades: &mut Upgrades,
) -> Stop {
    let mut attempt: Option<Attempt> = None;
    loop {
        tokio::select! {
            signal = signals.next() => {
                if attempt.take().is_some() {
                    // Dropping the attempt kills the successor.
                    upgrades.finish(Err(format!("{signal} arrived during the upgrade")));
                }
                return Stop::Signal(signal);
            }
            trigger = triggers.next() => {
                if let Some(started) = upgrades.begin(trigger) {
                    attempt = Some(started);
                }
            }
            result = async {
                match attempt.as_mut() {
                    Some(attempt) => attempt.await,
                    None => std::future::pending().await,
                }
            } => {
                attempt = None;
                let handed = match result {
                    Ok(ready) => {
                        let pid = ready.pid();
                        ready.go().await.map(|()| pid)
                    }
                    Err(reason) => Err(reason),
                };
                match handed {
                    Ok(pid) => {
                        info!(successor.pid = pid, "upgrade: handed over to the successor");
                        upgrades.finish(Ok(pid));
                        notify(NotifyState::MainPid(pid));
                        return Stop::HandedOver;
                    }
                    Err(reason) => {
                        warn!(reason = %reason, "upgrade failed; still serving");
                        upgrades.finish(Err(reason));
                        notify(NotifyState::Ready);
                    }
                }
            }
        }
    }
}

/// Tells systemd about a state change when running under it; a no-op elsewhere.
fn notify(state: NotifyState<'_>) {
    if let Err(err) = sd_notify::notify(false, &[state]) {
        debug!(error = %err, "could not notify systemd");
    }
}

/// Tells systemd a reload began (`RELOADING=1` with the time, as `Type=notify-reload` needs).
pub(crate) fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => {
            if let Err(err) = sd_notify::notify(false, &[NotifyState::Reloading, now]) {
                debug!(error = %err, "could not notify systemd");
            }
        }
        Err(err) => debug!(error = %err, "cannot read the monotonic clock"),
    }
}
