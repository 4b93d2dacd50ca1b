//! Config tests for the PROXY-protocol keys and route rules.

use std::time::Duration;

use proxy_core::proxy_protocol::{ProxyProtocolMode, ProxyProtocolVersion};

use super::parse;
use super::tests::{assert_error, errors};

const BASE: &str = r#"
[[listener]]
name = "lb"
bind = "127.0.0.1:9192"
protocol = "tcp"
cluster = "main"
"#;

const CLUSTERS: &str = r#"
[cluster.main]
backends = ["127.0.0.1:9092"]
send_proxy_protocol = "v2"

[cluster.tenant]
backends = ["127.0.0.1:9093"]
"#;

fn config(listener_keys: &str, tables: &str) -> String {
    format!("{BASE}{listener_keys}\n{tables}{CLUSTERS}")
}

#[test]
fn proxy_protocol_keys_are_read_with_their_defaults() {
    let text = config(
        "proxy_protocol = \"required\"\nproxy_protocol_trusted = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1/128\"]",
        "",
    );
    let parsed = parse(&text).unwrap();
    let listener = &parsed.listeners[0];
    assert_eq!(listener.proxy_protocol.mode, ProxyProtocolMode::Required);
    assert!(
        listener
            .proxy_protocol
            .trusted
            .contains("10.9.9.9".parse().unwrap())
    );
    assert!(
        listener
            .proxy_protocol
            .trusted
            .contains("127.0.0.1".parse().unwrap())
    );
    assert!(
        !listener
            .proxy_protocol
            .trusted
            .contains("127.0.0.2".parse().unwrap())
    );
    assert_eq!(listener.proxy_protocol.timeout, Duration::from_secs(3));
    assert_eq!(
        parsed.clusters["main"].send_proxy_protocol,
        Some(ProxyProtocolVersion::V2)
    );
    assert_eq!(parsed.clusters["tenant"].send_proxy_protocol, None);

    let off = parse(&config("", "")).unwrap();
    assert_eq!(off.listeners[0].proxy_protocol.mode, ProxyProtocolMode::Off);
    assert!(off.listeners[0].proxy_protocol.trusted.is_empty());
}

#[test]
fn enabling_proxy_protocol_without_trusted_networks_is_an_error() {
    let errors = errors(&config("proxy_protocol = \"optional\"", ""));
    assert_error(
        &errors,
        "listener[0].proxy_protocol_trusted",
        "nothing is trusted by default",
    );
}

#[test]
fn bad_proxy_protocol_values_name_their_keys() {
    let text = config(
        "proxy_protocol = \"sometimes\"\nproxy_protocol_trusted = [\"10.0.0.0/33\"]\nproxy_protocol_timeout = \"soon\"",
        "",
    )
    .replace("send_proxy_protocol = \"v2\"", "send_proxy_protocol = \"v3\"");
    let errors = errors(&text);
    assert_error(
        &errors,
        "listener[0].proxy_protocol",
        "unknown PROXY protocol mode \"sometimes\"",
    );
    assert_error(
        &errors,
        "listener[0].proxy_protocol_trusted[0]",
        "invalid network \"10.0.0.0/33\"",
    );
    assert_error(
        &errors,
        "listener[0].proxy_protocol_timeout",
        "invalid duration \"soon\"",
    );
    assert_error(
        &errors,
        "cluster.main.send_proxy_protocol",
        "expected \"v1\" or \"v2\"",
    );
}

#[test]
fn route_rules_are_read_in_order_and_checked() {
    let rules = "[[listener.route]]\ncluster = \"tenant\"\nauthority = \"tenant.example\"\n\n[[listener.route]]\ncluster = \"tenant\"\nsource = \"192.0.2.0/24\"\n";
    let parsed = parse(&config("", rules)).unwrap();
    let routes = &parsed.listeners[0].routes;
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].authority.as_deref(), Some("tenant.example"));
    assert_eq!(routes[1].source, Some("192.0.2.0/24".parse().unwrap()));

    let bad = "[[listener.route]]\ncluster = \"nowhere\"\nsource = \"not-a-net\"\n\n[[listener.route]]\ncluster = \"tenant\"\n";
    let errors = errors(&config("", bad));
    assert_error(
        &errors,
        "listener[0].route[0].cluster",
        "no cluster named \"nowhere\"",
    );
    assert_error(
        &errors,
        "listener[0].route[0].source",
        "invalid network \"not-a-net\"",
    );
    assert_error(&errors, "listener[0].route[1]", "a route needs a condition");
}
