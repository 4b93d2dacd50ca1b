//! Config tests for `[audit]`: each sink's keys, the events, the queue, and errors that name
//! the key.

use proxy_core::audit::AuditKind;

use super::parse;
use super::tests::{assert_error, errors};
use super::{AuditConfig, AuditSinkConfig};

const BASE: &str = "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:9192\"\nprotocol = \"tcp\"\n\
                    cluster = \"local\"\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n\n";

fn with(audit: &str) -> String {
    format!("{BASE}[audit]\n{audit}\n")
}

#[test]
fn no_table_no_audit_and_each_sink_is_read() {
    assert_eq!(parse(BASE).unwrap().audit, None);
    let file = parse(&with(
        "sink = \"file\"\npath = \"/var/log/sluice/audit.jsonl\"",
    ))
    .unwrap();
    assert_eq!(
        file.audit,
        Some(AuditConfig {
            sink: AuditSinkConfig::File("/var/log/sluice/audit.jsonl".into()),
            events: AuditKind::ALL.to_vec(),
            queue: 10_000,
        })
    );
    let stdout = parse(&with("sink = \"stdout\"\nevents = [\"admin\"]\nqueue = 5")).unwrap();
    let audit = stdout.audit.unwrap();
    assert_eq!(audit.sink, AuditSinkConfig::Stdout);
    assert_eq!((audit.events, audit.queue), (vec![AuditKind::Admin], 5));
    let kafka = parse(&with(
        "sink = \"kafka\"\ncluster = \"local\"\ntopic = \"sluice-audit\"\npartition = 2",
    ))
    .unwrap();
    assert_eq!(
        kafka.audit.unwrap().sink,
        AuditSinkConfig::Kafka {
            cluster: "local".into(),
            topic: "sluice-audit".into(),
            partition: 2
        }
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("path = \"a\"", "audit.sink", "missing required key"),
        ("sink = \"syslog\"", "audit.sink", "\"kafka\""),
        ("sink = \"file\"", "audit.path", "needs a path"),
        (
            "sink = \"stdout\"\npath = \"a\"",
            "audit.path",
            "only the file sink",
        ),
        (
            "sink = \"file\"\npath = \"a\"\ntopic = \"t\"",
            "audit.topic",
            "only the kafka sink",
        ),
        (
            "sink = \"kafka\"\ntopic = \"t\"",
            "audit.cluster",
            "missing required key",
        ),
        (
            "sink = \"kafka\"\ncluster = \"nope\"\ntopic = \"t\"",
            "audit.cluster",
            "no [cluster.nope]",
        ),
        (
            "sink = \"kafka\"\ncluster = \"local\"",
            "audit.topic",
            "missing required key",
        ),
        (
            "sink = \"kafka\"\ncluster = \"local\"\ntopic = \"a b\"",
            "audit.topic",
            "not a Kafka topic name",
        ),
        (
            "sink = \"kafka\"\ncluster = \"local\"\ntopic = \"t\"\npartition = -1",
            "audit.partition",
            "not a partition",
        ),
        (
            "sink = \"stdout\"\nevents = [\"conection\"]",
            "audit.events",
            "unknown event kind \"conection\"",
        ),
        (
            "sink = \"stdout\"\nevents = []",
            "audit.events",
            "names no event kind",
        ),
        (
            "sink = \"stdout\"\nqueue = 0",
            "audit.queue",
            "not a queue length",
        ),
    ];
    for (audit, path, needle) in cases {
        assert_error(&errors(&with(audit)), path, needle);
    }
}
