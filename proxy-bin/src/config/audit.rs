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
    pub(super) fn audit(
        &mut self,
        raw: Option<RawAudit>,
        clusters: &[String],
    ) -> Option<Option<AuditConfig>> {
        let Some(raw) = raw else { return Some(None) };
        let kafka = raw.sink.as_deref() == Some("kafka");
        for (key, set) in [
            ("cluster", raw.cluster.is_some()),
            ("topic", raw.topic.is_some()),
            ("partition", raw.partition.is_some()),
        ] {
            if set && !kafka {
                self.error(
                    format!("audit.{key}"),
                    "only the kafka sink takes it".into(),
                );
            }
        }
        let sink = match (raw.sink.as_deref(), raw.path) {
            (Some("kafka"), None) => {
                self.kafka_sink(raw.cluster, raw.topic, raw.partition, clusters)
            }
            (Some("kafka"), Some(_)) => {
                self.error(
                    "audit.path".into(),
                    "only the file sink takes a path (sink is \"kafka\")".into(),
                );
                None
            }
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
                    format!("unknown sink {other:?}: \"file\", \"stdout\" or \"kafka\""),
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

    fn kafka_sink(
        &mut self,
        cluster: Option<String>,
        topic: Option<String>,
        partition: Option<i64>,
        clusters: &[String],
    ) -> Option<AuditSinkConfig> {
        let cluster = self.required("audit.cluster", cluster);
        let cluster = cluster.filter(|name| {
            let known = clusters.contains(name);
            if !known {
                self.error(
                    "audit.cluster".into(),
                    format!("no [cluster.{name}] table: the kafka sink needs one to produce to"),
                );
            }
            known
        });
        let topic = self.required("audit.topic", topic).filter(|topic| {
            // Kafka's own rule for topic names.
            let valid = !topic.is_empty()
                && topic.len() <= 249
                && topic != "."
                && topic != ".."
                && topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                self.error(
                    "audit.topic".into(),
                    format!("{topic:?} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)"),
                );
            }
            valid
        });
        let partition = match partition.unwrap_or(0) {
            n if (0..=i64::from(i32::MAX)).contains(&n) => Some(n as i32),
            n => {
                self.error(
                    "audit.partition".into(),
                    format!("{n} is not a partition number"),
                );
                None
            }
        };
        Some(AuditSinkConfig::Kafka {
            cluster: cluster?,
            topic: topic?,
            partition: partition?,
        })
    }
}
