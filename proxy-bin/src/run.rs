//! `sluice run`: binds every listener, serves until SIGINT or SIGTERM, then shuts down.
//!
//! Shutdown: stop accepting at once, let open sessions finish for up to
//! `shutdown.drain_timeout`, then force-close what remains and exit 0. A second signal during
//! the drain skips to the force-close. (Readiness, accept grace and request-boundary draining
//! arrive with the lifecycle work.)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use proxy_backend::TcpConnector;
use proxy_frontend::{BoundListener, Frontend, Lifecycle};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::wiring;

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

async fn serve(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let plan = wiring::plan(&config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

    let frontend = Arc::new(Frontend::new(plan.router, TcpConnector::new(plan.clusters)));
    let lifecycle = Lifecycle::default();
    let mut bound = Vec::with_capacity(plan.listeners.len());
    for spec in plan.listeners {
        bound.push(BoundListener::bind(spec).await?);
    }
    let listeners = TaskTracker::new();
    for listener in bound {
        listeners.spawn(listener.serve(frontend.clone(), lifecycle.clone()));
    }
    listeners.close();
    info!(version = env!("CARGO_PKG_VERSION"), "sluice started");

    let signal_name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    let drain_timeout = config.shutdown.drain_timeout;
    info!(signal = signal_name, drain_timeout = ?drain_timeout, "shutdown: stop accepting");
    lifecycle.stop_accepting.cancel();
    listeners.wait().await;
    lifecycle.tracker.close();
    info!(
        sessions = frontend.sessions().len(),
        "shutdown: draining sessions"
    );

    let drained = tokio::select! {
        () = lifecycle.tracker.wait() => true,
        () = tokio::time::sleep(drain_timeout) => false,
        _ = interrupt.recv() => false,
        _ = terminate.recv() => false,
    };
    if !drained {
        let remaining = frontend.sessions().len();
        warn!(
            sessions = remaining,
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
    info!("shutdown: complete");
    Ok(())
}
