//! `sluice`: a protocol-aware TCP proxy.
//!
//! `main` only parses the command line, loads configuration, sets up logging, and hands over to
//! `run` or `check`; the proxy itself lives in the library crates.

use std::process::ExitCode;

use clap::Parser;

mod admin;
mod cli;
pub mod config;
mod logging;
mod run;
mod wiring;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => cli::check(&config),
        Command::Run { config, log_format } => {
            if let Err(err) = logging::init(log_format) {
                eprintln!("sluice: cannot set up logging: {err}");
                return ExitCode::FAILURE;
            }
            let config = match cli::load(config.as_deref()) {
                Ok(config) => config,
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::FAILURE;
                }
            };
            run::main(config)
        }
    }
}
