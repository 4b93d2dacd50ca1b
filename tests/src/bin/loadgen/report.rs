//! Output: one `RESULT mode=... key=value ...` line per run for scripts (`bench/run.sh` greps
//! it), followed by one line for people; and the byte sizes the command line accepts.

use std::fmt::Display;
use std::io::{self, Write};

use hdrhistogram::Histogram;

use crate::failures::Failures;

/// A run's results, in the order they are printed.
#[derive(Debug)]
pub(crate) struct Report {
    fields: Vec<(&'static str, String)>,
}

impl Report {
    /// A report for `mode`.
    pub(crate) fn new(mode: &'static str) -> Self {
        Self {
            fields: vec![("mode", mode.to_owned())],
        }
    }

    /// Adds `key=value`; values never contain spaces, so a line splits on whitespace.
    pub(crate) fn field(mut self, key: &'static str, value: impl Display) -> Self {
        let value = value.to_string().replace(char::is_whitespace, "_");
        self.fields.push((key, value));
        self
    }

    /// Adds `cpu_s`, another process's CPU seconds in the measured window, when sampled.
    pub(crate) fn cpu(self, seconds: Option<f64>) -> Self {
        match seconds {
            Some(seconds) => self.field("cpu_s", format!("{seconds:.3}")),
            None => self,
        }
    }

    /// Adds the failure counts: `errors` (the total), then each kind.
    pub(crate) fn failures(self, failures: &Failures) -> Self {
        self.field("errors", failures.total())
            .field("refused", failures.refused)
            .field("reset", failures.reset)
            .field("timeout", failures.timeout)
            .field("other", failures.other)
    }

    /// Adds `p50_us`, `p99_us` and `p999_us` from a histogram of microseconds (0 when empty).
    pub(crate) fn latency(self, histogram: &Histogram<u64>) -> Self {
        let at = |q: f64| {
            if histogram.is_empty() {
                0
            } else {
                histogram.value_at_quantile(q)
            }
        };
        self.field("p50_us", at(0.50))
            .field("p99_us", at(0.99))
            .field("p999_us", at(0.999))
    }

    /// Writes the `RESULT` line, then `human`, to standard output.
    pub(crate) fn emit(self, human: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        write!(out, "RESULT")?;
        for (key, value) in &self.fields {
            write!(out, " {key}={value}")?;
        }
        writeln!(out)?;
        writeln!(out, "{human}")?;
        out.flush()
    }
}

/// An empty histogram of latencies in microseconds, from 1 µs to 60 s, to 3 significant
/// digits; connections each record into a clone, merged at the end.
pub(crate) fn latency_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
}

/// Parses a size as the proxy's config does (`"64KiB"`, `"1MiB"`, or bytes); at least one byte.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let bytes = proxy_core::units::parse_byte_size(text).map_err(|err| err.to_string())?;
    match usize::try_from(bytes) {
        Ok(0) => Err(format!("{text:?}: must be at least one byte")),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(format!("{text:?} is too large")),
    }
}
