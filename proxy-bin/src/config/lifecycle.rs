//! Lifecycle keys: `[admin]`, `[shutdown]` (with the upgrade's `upgrade_timeout`), and a cluster's `exec`, `child_stop_timeout`,
//! `ready_requires` and `probe_interval`; and the warning `sluice check` gives when the
//! shutdown phases do not fit in the orchestrator's grace period.

use std::time::Duration;

use super::raw::{RawAdmin, RawShutdown};
use super::validate::Validator;
use super::{AdminConfig, Config, ExecConfig, ReadyRequires, ShutdownConfig, addr, path, value};

const DEFAULT_ACCEPT_GRACE: Duration = Duration::from_secs(5);
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);
/// Probes and scrapers send their request as soon as they connect: 5 s is ample on a slow
/// network, and a client that sends nothing, or a few bytes, holds a connection no longer.
const DEFAULT_ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer than the usual scrape intervals (15 s, 30 s), so Prometheus reuses its connection.
const DEFAULT_ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Normal use needs a handful (three kubelet probes without keep-alive, a scraper or two, an
/// operator's curl); 64 leaves a wide margin and stays within the descriptors kept in reserve
/// for everything that is not a session (`descriptors::RESERVED`, 128).
const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;

// === impl Validator ===

impl Validator {
    pub(super) fn shutdown(&mut self, raw: Option<RawShutdown>) -> Option<ShutdownConfig> {
        let (accept_grace, drain_timeout, termination, upgrade) = match raw {
            Some(raw) => (
                raw.accept_grace,
                raw.drain_timeout,
                raw.termination_grace_period,
                raw.upgrade_timeout,
            ),
            None => (None, None, None, None),
        };
        // accept_grace may be zero: a preStop sleep can do its job.
        let accept_grace = self.or_default(
            path::key("shutdown", "accept_grace"),
            accept_grace,
            DEFAULT_ACCEPT_GRACE,
            |text| proxy_core::units::parse_duration(&text).map_err(|e| e.to_string()),
        );
        let drain_timeout = self.or_default(
            path::key("shutdown", "drain_timeout"),
            drain_timeout,
            DEFAULT_DRAIN_TIMEOUT,
            |text| value::duration(&text),
        );
        let termination_grace_period = self.or_default(
            path::key("shutdown", "termination_grace_period"),
            termination,
            DEFAULT_TERMINATION_GRACE,
            |text| value::duration(&text),
        );
        let upgrade_timeout = self.or_default(
            path::key("shutdown", "upgrade_timeout"),
            upgrade,
            DEFAULT_UPGRADE_TIMEOUT,
            |text| value::duration(&text),
        );
        Some(ShutdownConfig {
            accept_grace: accept_grace?,
            drain_timeout: drain_timeout?,
            termination_grace_period: termination_grace_period?,
            upgrade_timeout: upgrade_timeout?,
        })
    }

    /// `Some(None)` when there is no `[admin]` table, `None` when it has errors.
    pub(super) fn admin(&mut self, raw: Option<RawAdmin>) -> Option<Option<AdminConfig>> {
        let Some(raw) = raw else { return Some(None) };
        let at = path::key("admin", "bind");
        let bind = self.required(&at, raw.bind).and_then(|text| {
            let bind = addr::parse_bind(&text);
            if bind.is_none() {
                self.error(
                    at,
                    format!(
                        "invalid socket address {text:?}: expected IP:PORT such as 127.0.0.1:9190"
                    ),
                );
            }
            bind
        });
        let header_read_timeout = self.or_default(
            path::key("admin", "header_read_timeout"),
            raw.header_read_timeout,
            DEFAULT_ADMIN_HEADER_READ_TIMEOUT,
            |text| value::duration(&text),
        );
        let idle_timeout = self.or_default(
            path::key("admin", "idle_timeout"),
            raw.idle_timeout,
            DEFAULT_ADMIN_IDLE_TIMEOUT,
            |text| value::duration(&text),
        );
        let max_connections =
            self.count(path::key("admin", "max_connections"), raw.max_connections);
        Some(Some(AdminConfig {
            bind: bind?,
            header_read_timeout: header_read_timeout?,
            idle_timeout: idle_timeout?,
            max_connections: max_connections?.unwrap_or(DEFAULT_ADMIN_MAX_CONNECTIONS),
        }))
    }

    /// `Some(None)` for a cluster of addresses, `None` when `exec` has errors.
    pub(super) fn exec(
        &mut self,
        at: &str,
        argv: Option<Vec<String>>,
        stop_timeout: Option<String>,
    ) -> Option<Option<ExecConfig>> {
        let stop_at = path::key(at, "child_stop_timeout");
        let stop_timeout = self.or_default(
            stop_at.clone(),
            stop_timeout,
            DEFAULT_CHILD_STOP_TIMEOUT,
            |text| value::duration(&text),
        )?;
        let Some(argv) = argv else { return Some(None) };
        let exec_at = path::key(at, "exec");
        if argv.first().is_none_or(String::is_empty) {
            self.error(
                exec_at,
                "exec needs a program: [\"/path/to/program\", \"arg\", ...]".into(),
            );
            return None;
        }
        Some(Some(ExecConfig { argv, stop_timeout }))
    }

    pub(super) fn ready_requires(
        &mut self,
        at: &str,
        raw: Option<String>,
        exec: bool,
    ) -> Option<ReadyRequires> {
        let at = path::key(at, "ready_requires");
        let requires = self.or_default(at.clone(), raw, ReadyRequires::None, |text| match text
            .as_str()
        {
            "none" => Ok(ReadyRequires::None),
            "any" => Ok(ReadyRequires::Any),
            "all" => Ok(ReadyRequires::All),
            _ => Err(format!(
                "unknown readiness requirement {text:?}: expected \"none\", \"any\" or \"all\""
            )),
        })?;
        if exec && requires != ReadyRequires::None {
            self.error(
                at,
                "a child-process cluster has no backends to probe: use \"none\"".into(),
            );
            return None;
        }
        Some(requires)
    }

    pub(super) fn probe_interval(&mut self, at: &str, raw: Option<String>) -> Option<Duration> {
        self.or_default(
            path::key(at, "probe_interval"),
            raw,
            DEFAULT_PROBE_INTERVAL,
            |text| value::duration(&text),
        )
    }
}

// === impl Config ===

impl Config {
    /// The shutdown phases not fitting in the orchestrator's grace period, after which the
    /// process is killed mid-drain.
    pub(super) fn shutdown_warning(&self) -> Option<String> {
        let shutdown = &self.shutdown;
        let child_stop = self
            .clusters
            .values()
            .filter_map(|c| c.exec.as_ref().map(|e| e.stop_timeout * 2))
            .max()
            .unwrap_or_default();
        let needed = shutdown.accept_grace + shutdown.drain_timeout + child_stop;
        if needed <= shutdown.termination_grace_period {
            return None;
        }
        Some(format!(
            "shutdown: accept_grace ({}) + drain_timeout ({}) + child stop time ({}) = {} exceeds \
             termination_grace_period ({}): the orchestrator may kill Sluice before it has drained",
            humantime::format_duration(shutdown.accept_grace),
            humantime::format_duration(shutdown.drain_timeout),
            humantime::format_duration(child_stop),
            humantime::format_duration(needed),
            humantime::format_duration(shutdown.termination_grace_period),
        ))
    }
}
