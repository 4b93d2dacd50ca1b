//! The command line: `sluice run`, `sluice check`, `sluice upgrade`, `sluice user`,
//! `--version`, `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, ConfigErrors};
use crate::wiring;

/// Sluice: a protocol-aware TCP proxy.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "Sluice: a protocol-aware TCP proxy")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the proxy until SIGINT or SIGTERM; SIGUSR2 upgrades and SIGHUP reloads it without
    /// downtime (see docs/operations.md).
    Run {
        /// The TOML config file; without it, the embedded default (a Kafka gateway: clients
        /// bootstrap from 127.0.0.1:9192, broker node N is on 9200 + N, in front of a broker on
        /// 127.0.0.1:9092).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How log lines are written (to standard error); the level comes from RUST_LOG.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Write the process id here once ready; an upgrade rewrites it with the successor's,
        /// and the outcome of each upgrade goes to FILE.status (read by `sluice upgrade`).
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// The executable an upgrade starts; by default this executable's path (which may
        /// have been replaced by a new version since).
        #[arg(long, value_name = "PATH")]
        upgrade_binary: Option<PathBuf>,
        /// Run as a master that starts the proxy in a worker process, forwards signals to it,
        /// reaps orphans and outlives upgrades (the default when running as PID 1, as in a
        /// container; see docs/operations.md).
        #[arg(long)]
        master: bool,
        /// Reload (as SIGHUP does) whenever the contents of the --config file change, as when
        /// Kubernetes updates a mounted ConfigMap; a config that fails to load is reported
        /// and the running one kept. The file is read every 2 s.
        #[arg(long, requires = "config")]
        reload_on_change: bool,
    },
    /// Upgrade (or, with --reload, reload the config of) the `sluice run` named by a PID file,
    /// wait for the outcome, and exit 0 when the successor took over.
    Upgrade {
        /// The `--pid-file` the running process was started with.
        #[arg(long, value_name = "FILE")]
        pid_file: PathBuf,
        /// Send SIGHUP (reload) instead of SIGUSR2 (upgrade).
        #[arg(long)]
        reload: bool,
        /// How long to wait for the outcome.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Check a config file and every file it names: exit 0 when it is valid (printing any
    /// warnings), otherwise print every error, each with its key and line, and exit 1.
    Check {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Manage the users file of SASL-terminating Kafka listeners.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Ask an ACL rules file what it decides.
    Acl {
        #[command(subcommand)]
        action: AclCommand,
    },
    /// Asked by a running master of a replaced binary, before it re-executes itself from this
    /// one: whether this version can resume it.
    #[command(name = "master-resume-probe", hide = true)]
    MasterResumeProbe,
}

/// `sluice acl ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AclCommand {
    /// Print what the rules decide for one request and the rule that decided it; exit 0 when
    /// allowed, 1 when denied, 2 when the rules file or the question is wrong.
    Test {
        /// The rules file.
        #[arg(long, value_name = "FILE")]
        rules: PathBuf,
        /// The authenticated principal; without it, an unauthenticated client (ANONYMOUS).
        #[arg(long)]
        principal: Option<String>,
        /// The client's address; rules with a `source` match only when it is given.
        #[arg(long)]
        source: Option<std::net::IpAddr>,
        /// The server name the client asked for.
        #[arg(long)]
        sni: Option<String>,
        /// The listener the client came in on.
        #[arg(long, default_value = "kafka")]
        listener: String,
        /// TYPE:NAME (`topic:orders`, `group:payments`, `transactional_id:tx-1`) or `cluster`.
        resource: String,
        /// read, write, create, delete, alter, describe, describe_configs, alter_configs,
        /// idempotent_write, cluster_action or all.
        operation: String,
    },
}

/// `sluice user ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user, or replace their credential for one mechanism; the password is typed
    /// without echo on a terminal, or read from the first line of standard input otherwise,
    /// and only a salted SCRAM credential is stored.
    Add {
        /// The users file (created, readable by its owner only, when missing).
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// scram-sha-256 or scram-sha-512 (PLAIN logins are checked against either).
        #[arg(long, default_value = "scram-sha-512")]
        mechanism: String,
        /// PBKDF2 iterations, 4096 to 16384 (Kafka's bounds; each PLAIN login costs one
        /// derivation of that many).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
        /// Shorter passwords are refused.
        #[arg(long, value_name = "CHARACTERS", default_value_t = 8)]
        min_password_length: usize,
        /// The user name.
        name: String,
    },
    /// List the users, each with the mechanisms it has a credential for (never salts or keys).
    List {
        /// The users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
    /// Remove a user, or only their credential for one mechanism.
    Remove {
        /// The users file (its permissions are kept).
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// scram-sha-256 or scram-sha-512: remove only this credential (the user stays while
        /// they have another); without it, the user goes.
        #[arg(long)]
        mechanism: Option<String>,
        /// The user name.
        name: String,
    },
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Loads and validates the config at `path` (or the embedded default), including every file
/// it names and the options of every stage; the error text lists every problem, one per line,
/// each with its key and line.
pub(crate) fn load(path: Option<&Path>) -> Result<Config, String> {
    let (origin, loaded) = match path {
        Some(path) => (path.display().to_string(), config::load(path)),
        None => (
            "<embedded default>".to_owned(),
            config::parse(config::DEFAULT_CONFIG).map(|config| config::Loaded {
                config,
                lines: config::KeyLines::of(config::DEFAULT_CONFIG),
            }),
        ),
    };
    let config::Loaded { config, lines } = loaded.map_err(|errors| describe(&origin, &errors))?;
    wiring::plan(&config).map_err(|mut errors| {
        lines.locate(&mut errors.0);
        describe(&origin, &errors)
    })?;
    Ok(config)
}

fn describe(origin: &str, errors: &ConfigErrors) -> String {
    let count = errors.errors().len();
    let mut text = format!("sluice: {origin}: {count} configuration error(s):");
    for error in errors.errors() {
        text.push_str("\n  ");
        text.push_str(&error.to_string());
    }
    text
}

/// `sluice check`.
pub(crate) fn check(path: &Path) -> ExitCode {
    match load(Some(path)) {
        Ok(config) => {
            let descriptors = crate::descriptors::warning(&config, crate::descriptors::available());
            for warning in config.warnings().into_iter().chain(descriptors) {
                eprintln!("sluice: {}: warning: {warning}", path.display());
            }
            let summary = format!(
                "{}: OK ({} listener(s), {} cluster(s))",
                path.display(),
                config.listeners.len(),
                config.clusters.len()
            );
            // A closed stdout is no reason to fail a check that passed.
            let _ = writeln!(std::io::stdout(), "{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
