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
//!
//! `start.rs` builds and binds, `supervise.rs` serves until a stop, `shutdown.rs` walks the
//! phases.

mod shutdown;
mod start;
mod supervise;

use std::process::ExitCode;

use anyhow::Context as _;
use proxy_frontend::Lifecycle;
use sd_notify::NotifyState;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use self::start::{Started, offer_broker_ports, start};
use self::supervise::{InPlace, StopSignals, supervise};
use crate::admin::{self, Phase};
use crate::config::Config;
use crate::reload_in_place::SuccessorInputs;
use crate::systemd::notify;
use crate::upgrade::{Inherited, Predecessor, Triggers, UpgradeOptions, Upgrades};

/// What a process starts with besides its config.
#[derive(Debug)]
pub(crate) struct Startup {
    pub(crate) options: UpgradeOptions,
    /// Sockets from the predecessor or systemd, taken by listeners with matching names.
    pub(crate) inherited: Inherited,
    /// The process this one replaces, when started by an upgrade.
    pub(crate) predecessor: Option<Predecessor>,
    /// `--reload-on-change`: the config file, watched.
    pub(crate) watch: Option<crate::config_watch::ConfigWatch>,
    /// What a SIGHUP compares to tell an in-place reload from one through a successor.
    pub(crate) inputs: SuccessorInputs,
}

/// Runs the proxy on a multi-threaded runtime; returns the process's exit code.
pub(crate) fn main(config: Config, startup: Startup) -> ExitCode {
    // Before any thread exists; every later socket counts against it.
    let nofile = crate::descriptors::raise();
    let descriptors = crate::descriptors::warning(&config, nofile);
    for warning in config.warnings().into_iter().chain(descriptors) {
        warn!("{warning}");
    }
    let threads = config.limits.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // One thread: the runtime that runs everything on the thread that calls it, with no
    // work-stealing machinery (docs/performance.md, "One thread, one runtime").
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all();
    let runtime = match builder.build() {
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

/// Why serving ended.
#[derive(Debug)]
enum Stop {
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// A successor took over.
    HandedOver,
}

/// Starts (taking over from a predecessor, if there is one), serves until a stop, shuts down.
async fn serve(config: Config, startup: Startup) -> anyhow::Result<()> {
    let Startup {
        options,
        inherited,
        predecessor,
        watch,
        inputs,
    } = startup;
    let mut link = predecessor
        .map(Predecessor::into_link)
        .transpose()
        .context("upgrade: hand-off connection")?;
    // Signals first: the default action of SIGUSR2 and SIGHUP would end the process.
    let mut signals = StopSignals::install()?;
    let mut triggers = Triggers::install(watch)?;
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
    let handed_over = link.is_some();
    // The drain deadline is this process's to enforce: at `drain_timeout` it logs how many
    // sessions are still open and force-closes them (shutdown.rs). A session's own deadline
    // is a backstop behind it, so the count is exact and comes before their close lines.
    let lifecycle = Lifecycle {
        drain_timeout: config.shutdown.drain_timeout + shutdown::FORCE_CLOSE_GRACE,
        ..Lifecycle::default()
    };
    let running = accept(started, &lifecycle);
    if let Some(mut link) = link {
        link.serving().await;
    }
    // Before READY=1: systemd reads PIDFile= when it hears it. After a hand-off, the
    // predecessor has already written our PID.
    if let Some(pid_file) = &options.pid_file
        && !handed_over
        && let Err(err) = crate::upgrade::write_pid(pid_file, std::process::id())
    {
        warn!(error = %err, path = %pid_file.display(), "cannot write the PID file");
    }
    notify(NotifyState::Ready);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "sluice started"
    );
    let pid_file = options.pid_file.clone();
    let mut upgrades = Upgrades::new(
        options,
        config.shutdown.upgrade_timeout,
        running.started.offered.clone(),
        running.started.state.upgrades.clone(),
    );
    let reloads = InPlace {
        files: &running.started.in_place,
        audit: running.started.audit.as_deref(),
        inputs: &inputs,
    };
    let stop = supervise(&mut signals, &mut triggers, &mut upgrades, &reloads).await;
    let audit = running.started.audit.clone();
    shutdown::run(
        running,
        stop,
        &config.shutdown,
        &mut signals,
        &mut upgrades,
        lifecycle,
    )
    .await;
    if let Some(pid_file) = &pid_file {
        crate::upgrade::remove_pid_if_ours(pid_file, std::process::id());
    }
    if let Some(audit) = audit {
        audit.finish();
    }
    info!("shutdown: complete");
    Ok(())
}

/// What is serving: the started proxy, and the tasks accepting on its listeners.
struct Running {
    started: Started,
    /// The accept loops; they end once listeners stop accepting.
    listeners: TaskTracker,
    /// Stops the admin endpoint early (after a hand-off, the successor serves it).
    stop_admin: tokio_util::sync::CancellationToken,
}

/// Starts accepting: the admin endpoint and every listener (with its broker ports).
fn accept(mut started: Started, lifecycle: &Lifecycle) -> Running {
    let stop_admin = started.stop_background.child_token();
    if let Some((listener, config)) = started.admin.take() {
        started.background.spawn(admin::serve(
            listener,
            started.state.clone(),
            config,
            stop_admin.clone(),
        ));
    }
    let listeners = TaskTracker::new();
    for mut listener in std::mem::take(&mut started.listeners) {
        listener.observe_broker_ports(offer_broker_ports(&started.offered));
        listeners.spawn(listener.serve(started.frontend.clone(), lifecycle.clone()));
    }
    listeners.close();
    started.state.set_phase(Phase::Running);
    Running {
        started,
        listeners,
        stop_admin,
    }
}
