//! Config tests for `[limits]` and a listener's connection limits, and the descriptor check
//! `sluice check` and the start-up log make of them.

use proxy_frontend::SourceRate;

use super::parse;
use super::tests::{assert_error, errors};
use crate::descriptors;

const CLUSTER: &str = "[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n";

fn listener(extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:9192\"\nprotocol = \"tcp\"\n\
         cluster = \"local\"\n{extra}\n"
    )
}

#[test]
fn limits_are_optional_and_read_where_given() {
    let parsed = parse(&format!("{}{CLUSTER}", listener(""))).unwrap();
    assert_eq!(parsed.limits.max_connections, None);
    assert_eq!(parsed.listeners[0].connection_limits, Default::default());

    let parsed = parse(&format!(
        "{}{CLUSTER}\n[limits]\nmax_connections = 5000\n",
        listener(
            "max_connections = 1000\nmax_connections_per_source = 50\n\
             connection_rate_per_source = 20"
        )
    ))
    .unwrap();
    assert_eq!(parsed.limits.max_connections, Some(5000));
    let limits = parsed.listeners[0].connection_limits;
    assert_eq!(limits.max_connections, Some(1000));
    assert_eq!(limits.max_connections_per_source, Some(50));
    assert_eq!(
        limits.connection_rate_per_source,
        Some(SourceRate {
            per_second: 20,
            burst: 20
        })
    );
}

#[test]
fn a_limit_that_is_not_a_positive_count_names_its_key() {
    let errors = errors(&format!(
        "{}{CLUSTER}\n[limits]\nmax_connections = 0\nmax_conections = 5\n",
        listener("max_connections = -1\nmax_connections_per_source = 0")
    ));
    assert_error(&errors, "limits.max_connections", "expected a whole number");
    assert_error(&errors, "limits.max_conections", "unknown key");
    assert_error(&errors, "listener[0].max_connections", "-1 is not a limit");
    assert_error(
        &errors,
        "listener[0].max_connections_per_source",
        "0 is not a limit",
    );
}

#[test]
fn limits_beyond_the_descriptor_limit_are_warned_about_and_the_default_fits() {
    let parsed = parse(&format!(
        "{}{CLUSTER}\n[limits]\nmax_connections = 1000\n",
        listener("")
    ))
    .unwrap();
    let warning = descriptors::warning(&parsed, 200).unwrap();
    assert!(
        warning.contains("limits.max_connections is 1000"),
        "{warning}"
    );
    assert!(warning.contains("holds 36 connections"), "{warning}");
    assert_eq!(descriptors::warning(&parsed, 4096), None);
    // Without a configured limit, the default is what fits.
    let parsed = parse(&format!("{}{CLUSTER}", listener(""))).unwrap();
    assert_eq!(descriptors::warning(&parsed, 200), None);
    assert_eq!(descriptors::max_connections(&parsed, 200), 36);
    assert_eq!(descriptors::max_connections(&parsed, 1_048_576), 524_224);
    // Listeners that add up to less than the global limit are what counts.
    let parsed = parse(&format!(
        "{}{CLUSTER}\n[limits]\nmax_connections = 1000\n",
        listener("max_connections = 30")
    ))
    .unwrap();
    assert_eq!(descriptors::warning(&parsed, 200), None);
}

#[test]
fn threads_default_to_the_cpus_and_a_count_out_of_range_names_its_key() {
    let parsed = parse(&format!("{}{CLUSTER}", listener(""))).unwrap();
    assert_eq!(parsed.limits.threads, None);
    let parsed = parse(&format!(
        "{}{CLUSTER}\n[limits]\nthreads = 3\n",
        listener("")
    ))
    .unwrap();
    assert_eq!(parsed.limits.threads, Some(3));
    for bad in ["0", "-2", "1025"] {
        let errors = errors(&format!(
            "{}{CLUSTER}\n[limits]\nthreads = {bad}\n",
            listener("")
        ));
        assert_error(&errors, "limits.threads", "is not a thread count");
    }
}
