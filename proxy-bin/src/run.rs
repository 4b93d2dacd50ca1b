//! `sluice run`: binds everything, serves until SIGINT or SIGTERM, then shuts down in phases
//! sized for Kubernetes (see docs/operations.md):
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

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use proxy_backend::health::{self, ClusterHealth};
use proxy_backend::{ChildReaper, Connector};
use proxy_frontend::{BoundListener, Frontend, Lifecycle, ReloadableServerConfig};
use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::admin::{self, AdminState, Phase};
use crate::config::Config;
use crate::wiring;

/// How often certificate files are checked for changes.
const TLS_FILE_CHECK: Duration = Duration::from_secs(2);

/// How long force-closed sessions get to write their close lines before the process exits.
const FORCE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Runs the proxy on a multi-threaded runtime; returns the process's exit code.
pub(crate) fn main(config: Config) -> ExitCode {
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
    match runtime.block_on(serve(config)) {
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let plan = wiring::plan(&config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let mut signals = StopSignals::install()?;
    let reaper = ChildReaper::new();
    let connector = Connector::new(plan.clusters.clone(), reaper.clone());
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
        background.spawn(reload_tls(plan.tls_reloads, stop_background.clone()));
    }
    let state = Arc::new(
        AdminState::new(
            cluster_health,
            frontend.closes().clone(),
            frontend.live_resources().clone(),
            frontend.sessions().clone(),
        )
        .with_kafka_metrics(plan.kafka_metrics),
    );
    if let Some(admin) = config.admin {
        let listener = tokio::net::TcpListener::bind(admin.bind)
            .await
            .with_context(|| format!("admin: cannot bind {}", admin.bind))?;
        background.spawn(admin::serve(
            listener,
            state.clone(),
            stop_background.clone(),
        ));
    }

    let lifecycle = Lifecycle::default();
    let mut bound = Vec::with_capacity(plan.listeners.len());
    for spec in plan.listeners {
        proxy_frontend::serve_broker_ports(&spec, frontend.clone(), lifecycle.clone());
        bound.push(BoundListener::bind(spec).await?);
    }
    let listeners = TaskTracker::new();
    for listener in bound {
        listeners.spawn(listener.serve(frontend.clone(), lifecycle.clone()));
    }
    listeners.close();
    state.set_listeners_bound();
    state.set_phase(Phase::Running);
    notify(NotifyState::Ready);
    info!(version = env!("CARGO_PKG_VERSION"), "sluice started");

    let signal_name = signals.next().await;
    let shutdown = &config.shutdown;

    state.set_phase(Phase::AcceptGrace);
    notify(NotifyState::Stopping);
    info!(signal = signal_name, accept_grace = ?shutdown.accept_grace, "shutdown: readiness failing");
    let mut forced = tokio::select! {
        () = tokio::time::sleep(shutdown.accept_grace) => false,
        signal = signals.next() => {
            info!(signal, "shutdown: second signal, skipping the drain");
            true
        }
    };

    info!("shutdown: stop accepting");
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
    info!("shutdown: complete");
    Ok(())
}

/// Reloads terminating listeners' certificates on SIGHUP and when their files change, until
/// `stop`. New handshakes use the new certificates; established sessions are untouched. A
/// reload that fails keeps the previous certificates and is logged once per distinct error.
async fn reload_tls(configs: Vec<(String, Arc<ReloadableServerConfig>)>, stop: CancellationToken) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            warn!(error = %err, "cannot listen for SIGHUP; certificates reload only when files change");
            None
        }
    };
    let mut tick = tokio::time::interval(TLS_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Vec<Option<String>> = vec![None; configs.len()];
    loop {
        let forced = tokio::select! {
            () = stop.cancelled() => return,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
            _ = tick.tick() => false,
        };
        for ((listener, config), last_error) in configs.iter().zip(last_error.iter_mut()) {
            let result = if forced {
                config.reload().map(|()| true)
            } else {
                config.reload_if_changed()
            };
            match result {
                Ok(true) => {
                    let trigger = if forced { "SIGHUP" } else { "files changed" };
                    info!(listener = %listener, trigger, "tls certificates reloaded");
                    *last_error = None;
                }
                Ok(false) => {}
                Err(err) => {
                    let message = err.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        warn!(listener = %listener, error = %message, "tls reload failed; keeping the previous certificates");
                        *last_error = Some(message);
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
