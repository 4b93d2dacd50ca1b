//! `sluice`: a protocol-aware TCP proxy.
//!
//! `main` only parses the command line, loads configuration, sets up logging, and hands over to
//! `run` or `check`; the proxy itself lives in the library crates.

use std::process::ExitCode;

use clap::Parser;

mod acl_cli;
mod acl_reload;
mod admin;
mod audit;
mod cli;
pub mod config;
mod config_watch;
mod descriptors;
mod file_stamp;
mod generation;
mod logging;
mod master;
mod reload_in_place;
mod run;
mod systemd;
mod tls_reload;
mod upgrade;
mod users_cli;
mod users_reload;
mod wiring;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => cli::check(&config),
        Command::Acl {
            action:
                cli::AclCommand::Test {
                    rules,
                    principal,
                    source,
                    sni,
                    listener,
                    resource,
                    operation,
                },
        } => acl_cli::test(&acl_cli::Question {
            rules: &rules,
            principal: principal.as_deref(),
            source,
            sni: sni.as_deref(),
            listener: &listener,
            resource: &resource,
            operation: &operation,
        }),
        Command::MasterResumeProbe => {
            use std::io::Write as _;
            match writeln!(std::io::stdout(), "{}", master::PROBE_ANSWER) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Command::User { action } => match action {
            cli::UserCommand::Add {
                users,
                mechanism,
                iterations,
                min_password_length,
                name,
            } => users_cli::add(&users, &mechanism, iterations, min_password_length, &name),
            cli::UserCommand::List { users } => users_cli::list(&users),
            cli::UserCommand::Remove {
                users,
                mechanism,
                name,
            } => users_cli::remove(&users, mechanism.as_deref(), &name),
        },
        Command::Upgrade {
            pid_file,
            reload,
            timeout,
        } => upgrade::client(&pid_file, reload, timeout),
        Command::Run {
            config,
            log_format,
            pid_file,
            upgrade_binary,
            master,
            reload_on_change,
        } => {
            if let Err(err) = logging::init(log_format) {
                report(&format!("sluice: cannot set up logging: {err}"));
                return ExitCode::FAILURE;
            }
            if master::wanted(master) {
                let Ok(binary) = std::env::current_exe() else {
                    report("sluice: the master cannot tell its executable's path");
                    return ExitCode::FAILURE;
                };
                return master::main(master::MasterOptions {
                    binary,
                    args: std::env::args_os().skip(1).collect(),
                    pid_file,
                });
            }
            let pid_file = master::worker_pid_file(pid_file);
            generation::start_session_ids();
            // Sockets first: from the process being replaced, else from systemd.
            let (predecessor, inherited) = match inherited_sockets() {
                Ok(found) => found,
                Err(err) => {
                    report(&format!("sluice: {err:#}"));
                    return ExitCode::FAILURE;
                }
            };
            // Read before the config is: a change racing the load shows as a change.
            let watch = config
                .as_deref()
                .filter(|_| reload_on_change)
                .map(config_watch::ConfigWatch::new);
            let inputs = reload_in_place::SuccessorInputs::before_load(config.as_deref());
            let config = match cli::load(config.as_deref()) {
                Ok(config) => config,
                Err(message) => {
                    if let Some(predecessor) = predecessor {
                        predecessor.fail(&message);
                    }
                    report(&message);
                    return ExitCode::FAILURE;
                }
            };
            let inputs = inputs.after_load(&config);
            let options = upgrade::UpgradeOptions {
                pid_file,
                binary: upgrade_binary.or_else(|| std::env::current_exe().ok()),
                args: std::env::args_os().skip(1).collect(),
            };
            run::main(
                config,
                run::Startup {
                    options,
                    inherited,
                    predecessor,
                    watch,
                    inputs,
                },
            )
        }
    }
}

/// The predecessor's sockets when started by an upgrade, else systemd's (if any).
fn inherited_sockets() -> anyhow::Result<(Option<upgrade::Predecessor>, upgrade::Inherited)> {
    if let Some((predecessor, inherited)) = upgrade::Predecessor::from_env()? {
        return Ok((Some(predecessor), inherited));
    }
    let sockets = upgrade::systemd_sockets()?;
    if sockets.is_empty() {
        return Ok((None, upgrade::Inherited::none()));
    }
    Ok((
        None,
        upgrade::Inherited::new(upgrade::Origin::Systemd, sockets),
    ))
}

/// Writes `message` and its newline to standard error in one `write`: during an upgrade two
/// processes share standard error, and `eprintln!`'s separate writes could interleave with the
/// other process's log lines.
fn report(message: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("{message}\n").as_bytes());
}
