//! Sockets taking one another's port ([`super::ports`]), and the warnings of
//! [`super::warnings`].

use super::tests::{assert_error, errors};
use super::*;

/// Listeners binding `binds`, all TCP to one cluster, and `admin` when given.
fn config(binds: &[&str], admin: Option<&str>) -> String {
    let mut text = String::new();
    for (i, bind) in binds.iter().enumerate() {
        text.push_str(&format!(
            "[[listener]]\nname = \"l{i}\"\nbind = \"{bind}\"\nprotocol = \"tcp\"\ncluster = \"c\"\n\n"
        ));
    }
    text.push_str("[cluster.c]\nbackends = [\"127.0.0.1:8080\"]\n");
    if let Some(admin) = admin {
        text.push_str(&format!("[admin]\nbind = \"{admin}\"\n"));
    }
    text
}

#[test]
fn listeners_on_one_port_collide_when_an_address_is_unspecified_or_equal() {
    for (first, second) in [
        ("0.0.0.0:9192", "127.0.0.1:9192"),
        ("127.0.0.1:9192", "0.0.0.0:9192"),
        ("[::]:9192", "127.0.0.1:9192"),
    ] {
        let errors = errors(&config(&[first, second], None));
        assert_error(
            &errors,
            "listener[1].bind",
            "takes port 9192 of listener[0]",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
    }
    let errors = errors(&config(&["127.0.0.1:9192", "127.0.0.1:9192"], None));
    assert_error(&errors, "listener[1].bind", "duplicate bind address");

    for binds in [
        ["127.0.0.1:9192", "127.0.0.2:9192"],
        ["0.0.0.0:9192", "127.0.0.1:9193"],
        ["0.0.0.0:0", "127.0.0.1:0"],
    ] {
        let text = config(&binds, None);
        assert!(parse(&text).is_ok(), "{binds:?}: {:?}", parse(&text));
    }
}

#[test]
fn the_admin_endpoint_may_not_take_a_listeners_port() {
    let errors = errors(&config(&["0.0.0.0:9192"], Some("127.0.0.1:9192")));
    assert_error(&errors, "admin.bind", "takes the port of listener[0]");
    assert!(parse(&config(&["0.0.0.0:9192"], Some("127.0.0.1:9190"))).is_ok());
    assert!(parse(&config(&["127.0.0.2:9192"], Some("127.0.0.1:9192"))).is_ok());
    // Port 0 on both: the kernel gives each its own port.
    assert!(parse(&config(&["127.0.0.1:0"], Some("127.0.0.1:0"))).is_ok());

    // Reported even when the listener has other errors.
    let text = config(&["0.0.0.0:9192"], Some("127.0.0.1:9192")).replace("cluster = \"c\"", "");
    let errors = super::tests::errors(&text);
    assert_error(&errors, "admin.bind", "takes the port of listener[0]");
    assert_error(&errors, "listener[0].cluster", "missing required key");
}

const KAFKA: &str = r#"
[[listener]]
name = "kafka"
bind = "127.0.0.1:19092"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
broker_port_start = 19100
max_brokers = 4

[cluster.main]
backends = ["10.0.0.1:29092"]
ready_requires = "any"
"#;

#[test]
fn a_tcp_listener_forwarding_to_kafka_ports_is_a_warning() {
    for port in [9092, 9093, 9094] {
        let text = config(&["127.0.0.1:9192"], None).replace("8080", &port.to_string());
        let warnings = parse(&text).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!(
                "listener[0] (\"l0\") is protocol = \"tcp\" but forwards to port(s) {port} of Kafka brokers"
            )),
            "{warnings:?}"
        );
    }
    // A port a Kafka listener's cluster uses, through a route too.
    let text = format!(
        "{KAFKA}\n[[listener]]\nname = \"raw\"\nbind = \"127.0.0.1:8000\"\nprotocol = \"tcp\"\n\
         cluster = \"web\"\n[[listener.route]]\nsource = \"10.0.0.0/8\"\ncluster = \"side\"\n\
         [cluster.web]\nbackends = [\"127.0.0.1:8080\"]\n[cluster.side]\nbackends = [\"10.1.1.1:29092\"]\n"
    );
    let warnings = parse(&text).unwrap().warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("listener[1] (\"raw\")"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("port(s) 29092"), "{warnings:?}");

    assert_eq!(
        parse(&config(&["127.0.0.1:9192"], None))
            .unwrap()
            .warnings(),
        Vec::<String>::new()
    );
}

#[test]
fn a_kafka_listener_whose_cluster_readiness_ignores_is_a_warning() {
    assert_eq!(parse(KAFKA).unwrap().warnings(), Vec::<String>::new());
    let text = KAFKA.replace("ready_requires = \"any\"\n", "");
    let warnings = parse(&text).unwrap().warnings();
    assert_eq!(
        warnings,
        [
            "listener[0] (\"kafka\") is a Kafka listener but cluster \"main\" has no \
             ready_requires: once its brokers are discovered, /readyz will not reflect whether \
             they still answer; set ready_requires = \"any\" in its [cluster] table"
        ]
    );
}
