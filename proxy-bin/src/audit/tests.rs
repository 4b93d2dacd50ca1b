//! The writer: lines as the schema says, nothing lost at shutdown, a full queue dropping and
//! reporting its drops once, and a reopen after the file was moved away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::audit::{AuditDetail, AuditKind, AuthOutcome};
use proxy_core::context::{AuthMechanism, AuthState, LiveResources, SessionContext};
use proxy_core::route::Prerequisites;

use super::*;

fn config(path: &std::path::Path, queue: usize, events: &[AuditKind]) -> AuditConfig {
    AuditConfig {
        sink: AuditSinkConfig::File(path.to_path_buf()),
        events: events.to_vec(),
        queue,
    }
}

/// A connector to no cluster: the file sink needs none.
fn no_clusters() -> Connector {
    Connector::new(Vec::new(), proxy_backend::ChildReaper::new())
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("audit.jsonl")
}

fn session(sink: Arc<AuditWriter>) -> SessionContext {
    let client: SocketAddr = "10.1.2.3:4567".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:9092".parse().unwrap();
    let mut cx = SessionContext::new(
        Arc::from("kafka"),
        client,
        local,
        Prerequisites::TCP,
        Arc::new(LiveResources::default()),
    );
    cx.set_audit(sink);
    cx
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn events_are_written_as_versioned_json_lines_and_finish_writes_them_all() {
    let path = temp_file("lines");
    let writer = AuditWriter::start(&config(&path, 100, &AuditKind::ALL), &no_clusters()).unwrap();
    let mut cx = session(writer.clone());
    cx.set_auth(AuthState::Authenticated {
        principal: "alice".into(),
        mechanism: AuthMechanism::ScramSha256,
    });
    cx.audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
    writer.finish();
    let written = lines(&path);
    assert_eq!(written.len(), 2, "{written:?}");
    let auth = &written[0];
    assert_eq!(auth["schema"], "sluice.audit/v1");
    assert_eq!(auth["event"], "authentication");
    assert_eq!(auth["action"], "success");
    assert_eq!(auth["authentication"]["mechanism"], "SCRAM-SHA-256");
    assert_eq!(
        auth["authentication"]["outcome"],
        AuthOutcome::Success.label()
    );
    assert_eq!(auth["session"]["client_addr"], "10.1.2.3:4567");
    assert_eq!(auth["session"]["principal"], "alice");
    let open = &written[1];
    assert_eq!(
        (open["event"].as_str(), open["action"].as_str()),
        (Some("connection"), Some("open"))
    );
    assert!(open["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(writer.stats().events[0].load(Ordering::Relaxed), 1);
}

#[test]
fn kinds_not_wanted_are_not_built() {
    let path = temp_file("wanted");
    let writer =
        AuditWriter::start(&config(&path, 100, &[AuditKind::Admin]), &no_clusters()).unwrap();
    let cx = session(writer.clone());
    cx.audit(
        || panic!("a connection event was built for a sink that does not want it"),
        AuditKind::Connection,
    );
    writer.finish();
    assert!(lines(&path).is_empty());
}

#[test]
fn a_full_queue_drops_counts_and_reports_the_drops_once_it_catches_up() {
    let path = temp_file("drops");
    let (release, hold) = mpsc::channel();
    let writer = AuditWriter::start_held(
        &config(&path, 3, &AuditKind::ALL),
        &no_clusters(),
        Some(hold),
    )
    .unwrap();
    let cx = session(writer.clone());
    for _ in 0..10 {
        cx.audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
    }
    assert_eq!(writer.stats().dropped.load(Ordering::Relaxed), 7);
    release.send(()).unwrap();
    // Bounded: the writer takes the three queued lines and reports the drops within a second.
    for _ in 0..200 {
        if std::fs::read_to_string(&path).is_ok_and(|text| text.lines().count() >= 4) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Now there is room again.
    cx.audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
    writer.finish();
    let written = lines(&path);
    let dropped: Vec<_> = written
        .iter()
        .filter(|line| line["event"] == "audit_dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{written:?}");
    assert_eq!(dropped[0]["audit_dropped"]["count"], 7);
    let opens = written
        .iter()
        .filter(|line| line["event"] == "connection")
        .count();
    assert_eq!(opens, 4, "three queued before the drops, one after");
}

#[test]
fn after_the_file_is_moved_away_a_reopen_writes_to_a_new_one() {
    let path = temp_file("reopen");
    let writer = AuditWriter::start(&config(&path, 100, &AuditKind::ALL), &no_clusters()).unwrap();
    let cx = session(writer.clone());
    cx.audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
    // Bounded: the writer takes the line within a second.
    for _ in 0..100 {
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rotated = path.with_extension("1");
    std::fs::rename(&path, &rotated).unwrap();
    writer.reopen();
    cx.audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
    writer.finish();
    assert_eq!(lines(&rotated).len(), 1);
    assert_eq!(
        lines(&path).len(),
        1,
        "the reopened file has the later line"
    );
}

#[test]
fn a_file_that_cannot_be_opened_is_an_error_naming_it() {
    let path = std::path::Path::new("/nonexistent-dir/audit.jsonl");
    let err = AuditWriter::start(&config(path, 10, &AuditKind::ALL), &no_clusters()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/audit.jsonl"),
        "{err}"
    );
}
