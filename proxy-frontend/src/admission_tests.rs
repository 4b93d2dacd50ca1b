//! Per-source limits: concurrent connections counted per address and released with the
//! session, a token bucket per address, and a source table that forgets idle addresses.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::close::CloseReason;
use tokio::time::Instant;

use crate::admission::{
    Admission, ConnectionBudget, ConnectionLimits, SOURCE_TABLE_SWEEP, SourceGuard, SourceRate,
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn label(result: Result<Option<SourceGuard>, CloseReason>) -> &'static str {
    match result {
        Ok(_) => "admitted",
        Err(reason) => reason.label(),
    }
}

#[test]
fn a_source_at_its_maximum_is_refused_until_one_of_its_sessions_ends() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        max_connections_per_source: Some(2),
        ..ConnectionLimits::default()
    }));
    let now = Instant::now();
    let a = ip("192.0.2.1");
    let first = admission.admit_source(a, now).unwrap();
    let _second = admission.admit_source(a, now).unwrap();
    assert_eq!(
        label(admission.admit_source(a, now)),
        "source_connection_limit"
    );
    // Another source is counted on its own.
    assert_eq!(
        label(admission.admit_source(ip("192.0.2.2"), now)),
        "admitted"
    );
    drop(first);
    assert_eq!(label(admission.admit_source(a, now)), "admitted");
    let counts = admission.counts();
    assert_eq!(
        counts
            .refused_source_connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_source_opening_connections_too_fast_is_refused_and_recovers_at_the_rate() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        connection_rate_per_source: Some(SourceRate {
            per_second: 10,
            burst: 3,
        }),
        ..ConnectionLimits::default()
    }));
    let start = Instant::now();
    let a = ip("2001:db8::1");
    for _ in 0..3 {
        assert_eq!(label(admission.admit_source(a, start)), "admitted");
    }
    assert_eq!(label(admission.admit_source(a, start)), "source_rate_limit");
    // A tenth of a second later, one more token.
    let later = start + Duration::from_millis(100);
    assert_eq!(label(admission.admit_source(a, later)), "admitted");
    assert_eq!(label(admission.admit_source(a, later)), "source_rate_limit");
}

#[test]
fn idle_sources_are_forgotten_so_the_table_stays_bounded() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        connection_rate_per_source: Some(SourceRate {
            per_second: 1000,
            burst: 1,
        }),
        ..ConnectionLimits::default()
    }));
    let start = Instant::now();
    for i in 0..(SOURCE_TABLE_SWEEP as u32 + 10) {
        let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        drop(admission.admit_source(source, start).unwrap());
    }
    // Well after every bucket refilled, the next new source sweeps the idle ones away.
    let later = start + Duration::from_secs(1);
    drop(admission.admit_source(ip("198.51.100.1"), later).unwrap());
    assert!(
        admission.tracked_sources() < 100,
        "{} sources still tracked",
        admission.tracked_sources()
    );
}

#[tokio::test]
async fn at_the_listener_limit_a_slot_is_only_had_once_a_session_ends() {
    let admission = Admission::new(ConnectionLimits {
        max_connections: Some(1),
        ..ConnectionLimits::default()
    });
    let process = ConnectionBudget::new(10);
    let first = admission.slot(&process).await;
    assert_eq!(admission.open(), 1);
    assert_eq!(process.in_use(), 1);
    let second = tokio::time::timeout(Duration::from_millis(50), admission.slot(&process)).await;
    assert!(second.is_err(), "a second slot was handed out at the limit");
    assert_eq!(
        admission
            .counts()
            .accept_paused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(first);
    let _second = tokio::time::timeout(Duration::from_secs(5), admission.slot(&process))
        .await
        .expect("a slot once the first session ended");
    assert_eq!(process.in_use(), 1);
}

#[test]
fn an_ipv6_source_is_its_64_so_fresh_addresses_share_its_limit() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        max_connections_per_source: Some(2),
        ..ConnectionLimits::default()
    }));
    let now = Instant::now();
    // A host rotating through the addresses of its own /64.
    let _first = admission.admit_source(ip("2001:db8:1:2::1"), now).unwrap();
    let _second = admission
        .admit_source(ip("2001:db8:1:2:ffff::9"), now)
        .unwrap();
    match admission.admit_source(ip("2001:db8:1:2:abcd::7"), now) {
        Err(reason) => {
            assert_eq!(reason.label(), "source_connection_limit");
            assert!(
                reason.to_string().contains("2001:db8:1:2::/64"),
                "the refusal names the /64: {reason}"
            );
        }
        Ok(_) => panic!("a third address of the same /64 was admitted"),
    }
    // The next /64 is another client.
    assert_eq!(
        label(admission.admit_source(ip("2001:db8:1:3::1"), now)),
        "admitted"
    );
    assert_eq!(admission.tracked_sources(), 2);
}

#[test]
fn many_sources_with_connections_open_cost_a_sweep_now_and_then_not_one_per_connection() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        max_connections_per_source: Some(1),
        ..ConnectionLimits::default()
    }));
    let now = Instant::now();
    // Every source holds its connection: a sweep can drop none of them.
    let held: Vec<_> = (0..(SOURCE_TABLE_SWEEP as u32 + 1000))
        .map(|i| {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            admission.admit_source(source, now).unwrap()
        })
        .collect();
    assert_eq!(admission.tracked_sources(), SOURCE_TABLE_SWEEP + 1000);
    assert_eq!(
        admission.source_sweeps(),
        1,
        "the table was swept once it reached its size, then not again for each new source"
    );
    drop(held);
}
