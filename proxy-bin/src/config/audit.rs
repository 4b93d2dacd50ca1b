//! The `[audit]` table: where audit events go and which are wanted.

use proxy_core::audit::AuditKind;

use super::raw::RawAudit;
use super::validate::Validator;
use super::{AuditConfig, AuditSinkConfig};

/// Events held for a slow sink, by default; beyond, they are dropped and counted.
const DEFAULT_QUEUE: i64 = 10_000;
const MAX_QUEUE: i64 = 1_000_000;

// === impl Validator ===

impl Validator {
    /// `Some(None)` without an `[audit]` table, `None` when it has errors.
    pub(super) fn audit(&mut self, raw: Option<RawAudit>) -> Option<Option<AuditConfig>> {
        let Some(raw) = raw else { return Some(None) };
        let sink = match (raw.sink.as_deref(), raw.path) {
            (Some("file"), Some(path)) if !path.is_empty() => {
                Some(AuditSinkConfig::File(self.resolve(path)))
            }
            (Some("file"), _) => {
                self.error(
                    "audit.path".into(),
                    "the file sink needs a path (relative to the config file)".into(),
                );
                None
            }
            (Some("stdout"), None) => Some(AuditSinkConfig::Stdout),
            (Some("stdout"), Some(_)) => {
                self.error(
                    "audit.path".into(),
                    "only the file sink takes a path (sink is \"stdout\")".into(),
                );
                None
            }
            (Some(other), _) => {
                self.error(
                    "audit.sink".into(),
                    format!("unknown sink {other:?}: \"file\" or \"stdout\""),
                );
                None
            }
            (None, _) => {
                self.error("audit.sink".into(), "missing required key".into());
                None
            }
        };
        let events = match raw.events {
            None => Some(AuditKind::ALL.to_vec()),
            Some(names) => {
                let mut kinds = Vec::new();
                let mut bad = false;
                for name in &names {
                    match AuditKind::from_label(name) {
                        Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                        Some(_) => {}
                        None => {
                            bad = true;
                            let known: Vec<&str> =
                                AuditKind::ALL.iter().map(|kind| kind.label()).collect();
                            self.error(
                                "audit.events".into(),
                                format!("unknown event kind {name:?}: one of {}", known.join(", ")),
                            );
                        }
                    }
                }
                if kinds.is_empty() && !bad {
                    self.error(
                        "audit.events".into(),
                        "names no event kind: leave out [audit] to audit nothing".into(),
                    );
                    bad = true;
                }
                (!bad).then_some(kinds)
            }
        };
        let queue = match raw.queue.unwrap_or(DEFAULT_QUEUE) {
            n if (1..=MAX_QUEUE).contains(&n) => Some(n as usize),
            n => {
                self.error(
                    "audit.queue".into(),
                    format!("{n} is not a queue length: expected 1 to {MAX_QUEUE}"),
                );
                None
            }
        };
        Some(Some(AuditConfig {
            sink: sink?,
            events: events?,
            queue: queue?,
        }))
    }
}
