//! Log output: text or JSON lines on standard error, level from `RUST_LOG` (default `info`).
//!
//! Text is coloured only when standard error is a terminal: a file, a pipe or journald gets
//! plain lines. JSON lines are flat ([`flat_json`]): every field at the top level, the
//! session's fields merged in, and `pid` and `generation` on every line, so that two
//! generations writing to one stream during an upgrade can be told apart.

mod flat_json;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::cli::LogFormat;
use crate::generation;

/// Installs the global subscriber.
pub(crate) fn init(format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new("info"))
        .map_err(|err| err.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(flat_json::FlatJson::new(
                std::process::id(),
                generation::current(),
            ))
            .try_init(),
    };
    installed.map_err(|err| err.to_string())
}
