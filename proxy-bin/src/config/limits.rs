//! Checks for connection limits: the `[limits]` table (the whole process) and a listener's
//! `max_connections`, `max_connections_per_source` and `connection_rate_per_source`.

use proxy_frontend::{ConnectionLimits, SourceRate};

use super::raw::{RawLimits, RawListenerLimits};
use super::validate::Validator;
use super::{
    DEFAULT_PROCESS_FRAME_BUDGET, FrameLimits, LimitsConfig, ListenerConfig, ListenerProtocol,
    MAX_THREADS, path, value,
};

/// A budget below this could not hold a Kafka request header.
const MIN_FRAME_BUDGET: usize = 1024;

/// Larger than any descriptor table a kernel allows: a limit above it is a typo.
const MAX_LIMIT: i64 = 1 << 24;

// === impl Validator ===

impl Validator {
    /// The `[limits]` table; every key is optional.
    pub(super) fn limits(&mut self, raw: Option<RawLimits>) -> Option<LimitsConfig> {
        let Some(raw) = raw else {
            return Some(LimitsConfig::default());
        };
        let max_connections = self.count("limits.max_connections".into(), raw.max_connections);
        let frame_budget = self.or_default(
            "limits.frame_budget".into(),
            raw.frame_budget,
            DEFAULT_PROCESS_FRAME_BUDGET,
            |raw| value::byte_size_in(&raw, (MIN_FRAME_BUDGET, usize::MAX)),
        );
        let threads = match raw.threads {
            None => Some(None),
            Some(n) if (1..=MAX_THREADS).contains(&n) => Some(Some(n as usize)),
            Some(n) => {
                self.error(
                    "limits.threads".into(),
                    format!(
                        "{n} is not a thread count: expected a whole number from 1 to \
                         {MAX_THREADS}"
                    ),
                );
                None
            }
        };
        Some(LimitsConfig {
            max_connections: max_connections?,
            frame_budget: frame_budget?,
            threads: threads?,
        })
    }

    /// The process's frame budget must hold the largest frame any Kafka listener accepts.
    pub(super) fn process_frame_budget(
        &mut self,
        listeners: &[(usize, ListenerConfig)],
        limits: Option<&LimitsConfig>,
    ) {
        let Some(limits) = limits else {
            return;
        };
        for (i, listener) in listeners {
            let ListenerProtocol::Kafka(kafka) = &listener.protocol else {
                continue;
            };
            let frames = kafka.frames;
            let largest = FrameLimits::largest(frames.max_frame_size, frames.max_request_size);
            if limits.frame_budget < largest {
                self.error(
                    "limits.frame_budget".into(),
                    format!(
                        "{} bytes cannot hold one frame of listener[{i}]'s max_frame_size \
                         ({largest} bytes with its length prefix): raise frame_budget or lower \
                         that listener's max_frame_size",
                        limits.frame_budget
                    ),
                );
            }
        }
    }

    /// A listener's connection limits.
    pub(super) fn listener_limits(
        &mut self,
        at: &str,
        raw: RawListenerLimits,
    ) -> Option<ConnectionLimits> {
        let max_connections = self.count(path::key(at, "max_connections"), raw.max_connections);
        let per_source = self.count(
            path::key(at, "max_connections_per_source"),
            raw.max_connections_per_source,
        );
        let rate = self.count(
            path::key(at, "connection_rate_per_source"),
            raw.connection_rate_per_source,
        );
        let per_source = per_source?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let rate = rate?.map(|n| {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            SourceRate {
                per_second: n,
                burst: n,
            }
        });
        Some(ConnectionLimits {
            max_connections: max_connections?,
            max_connections_per_source: per_source,
            connection_rate_per_source: rate,
        })
    }

    /// An optional count of at least 1.
    pub(super) fn count(&mut self, at: String, raw: Option<i64>) -> Option<Option<usize>> {
        match raw {
            None => Some(None),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Some(Some(n as usize)),
            Some(n) => {
                self.error(
                    at,
                    format!("{n} is not a limit: expected a whole number from 1 to {MAX_LIMIT}"),
                );
                None
            }
        }
    }
}
