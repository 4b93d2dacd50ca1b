//! Config tests for a port-per-broker listener's broker ports: `max_brokers`,
//! `broker_port_grace`, and the range they make with `broker_port_start`.

use std::time::Duration;

use super::tests::{assert_error, errors};
use super::{KafkaGatewayConfig, ListenerProtocol, parse};

const CLUSTER: &str = "\n[cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n";

/// A port-per-broker listener bound on `bind`, with `keys` added.
fn kafka_on(bind: &str, keys: &str) -> String {
    format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"{bind}\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\ngateway = \"port-per-broker\"\nadvertised_host = \"kafka.example\"\n\
         {keys}\n{CLUSTER}"
    )
}

fn kafka(keys: &str) -> String {
    kafka_on("127.0.0.1:19092", keys)
}

fn gateway(text: &str) -> KafkaGatewayConfig {
    let parsed = parse(text).unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    config.gateway.clone()
}

#[test]
fn max_brokers_and_the_grace_period_are_read_with_defaults() {
    assert_eq!(
        gateway(&kafka("broker_port_start = 19100")),
        KafkaGatewayConfig::PortPerBroker {
            broker_port_start: 19100,
            max_brokers: 256,
            port_grace: Duration::from_secs(600),
        }
    );
    assert_eq!(
        gateway(&kafka(
            "broker_port_start = 19100\nmax_brokers = 6\nbroker_port_grace = \"30s\""
        )),
        KafkaGatewayConfig::PortPerBroker {
            broker_port_start: 19100,
            max_brokers: 6,
            port_grace: Duration::from_secs(30),
        }
    );
    // The range may end on the last port.
    gateway(&kafka("broker_port_start = 65530\nmax_brokers = 6"));
}

#[test]
fn max_brokers_and_the_grace_period_are_checked_and_named() {
    for bad in ["0", "-5", "65536"] {
        assert_error(
            &errors(&kafka(&format!(
                "broker_port_start = 19100\nmax_brokers = {bad}"
            ))),
            "listener[0].max_brokers",
            "not a number of broker ports",
        );
    }
    assert_error(
        &errors(&kafka(
            "broker_port_start = 19100\nbroker_port_grace = \"0s\"",
        )),
        "listener[0].broker_port_grace",
        "zero",
    );
    assert_error(
        &errors(&kafka(
            "broker_port_start = 19100\nbroker_port_grace = \"soon\"",
        )),
        "listener[0].broker_port_grace",
        "",
    );
}

#[test]
fn a_range_past_port_65535_names_both_keys() {
    // Written: the error is at max_brokers.
    let text = kafka("broker_port_start = 65530\nmax_brokers = 7");
    assert_error(
        &errors(&text),
        "listener[0].max_brokers",
        "broker_port_start (65530) + max_brokers (7) - 1 = 65536 is past the last port",
    );
    // The default: at broker_port_start, saying where max_brokers comes from.
    let text = kafka("broker_port_start = 65400");
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "max_brokers (256, the default)",
    );
}

#[test]
fn a_range_holding_the_bootstrap_port_names_both_keys() {
    let text = kafka_on(
        "127.0.0.1:19105",
        "broker_port_start = 19100\nmax_brokers = 8",
    );
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "the broker ports 19100-19107 (broker_port_start = 19100, max_brokers = 8) include the \
         bootstrap port 19105 (bind): broker node id 5 would be served on it",
    );
    // Just past the range is fine.
    gateway(&kafka_on(
        "127.0.0.1:19108",
        "broker_port_start = 19100\nmax_brokers = 8",
    ));
}

#[test]
fn a_range_holding_the_admin_port_names_both_keys() {
    let admin = |bind: &str| format!("[admin]\nbind = \"{bind}\"\n");
    let text = kafka("broker_port_start = 19100\nmax_brokers = 8") + &admin("127.0.0.1:19107");
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "the broker ports 19100-19107 (broker_port_start = 19100, max_brokers = 8) include \
         admin.bind's port 19107",
    );
    // An unspecified address on either side collides with any.
    let text = kafka("broker_port_start = 19100\nmax_brokers = 8") + &admin("0.0.0.0:19100");
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "admin.bind",
    );
    // Another specific address does not.
    let text = kafka("broker_port_start = 19100\nmax_brokers = 8") + &admin("127.0.0.2:19100");
    gateway(&text);
    // Nor does a port past the range.
    let text = kafka("broker_port_start = 19100\nmax_brokers = 8") + &admin("127.0.0.1:19108");
    gateway(&text);
}

#[test]
fn a_range_holding_another_listener_or_its_broker_ports_is_an_error() {
    let second = |bind: &str, keys: &str| {
        format!(
            "\n[[listener]]\nname = \"second\"\nbind = \"{bind}\"\nprotocol = \"kafka\"\n\
             cluster = \"main\"\ngateway = \"port-per-broker\"\nadvertised_host = \"b.example\"\n\
             {keys}\n"
        )
    };
    let first = kafka("broker_port_start = 19100\nmax_brokers = 8");
    let text = first.clone() + &second("0.0.0.0:19103", "broker_port_start = 19200");
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "include listener[1].bind's port 19103",
    );
    let text = first.clone()
        + &second(
            "127.0.0.1:19300",
            "broker_port_start = 19104\nmax_brokers = 8",
        );
    assert_error(
        &errors(&text),
        "listener[0].broker_port_start",
        "overlap listener[1]'s broker ports 19104-19111 (broker_port_start = 19104, max_brokers = 8)",
    );
    let text = first
        + &second(
            "127.0.0.1:19300",
            "broker_port_start = 19108\nmax_brokers = 8",
        );
    gateway(&text);
}

#[test]
fn sni_gateways_take_no_broker_port_keys() {
    let text = "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"kafka\"\n\
                cluster = \"main\"\ngateway = \"sni\"\nbroker_host_pattern = \"b-{node_id}.kafka\"\n\
                max_brokers = 8\nbroker_port_grace = \"1m\"\n[listener.tls]\ncert = \"c.pem\"\n\
                key = \"k.pem\"\n"
        .to_owned()
        + CLUSTER;
    let found = errors(&text);
    for key in ["max_brokers", "broker_port_grace"] {
        assert_error(
            &found,
            &format!("listener[0].{key}"),
            "only for gateway = \"port-per-broker\"",
        );
    }
    let tcp = kafka("broker_port_start = 19100\nmax_brokers = 8")
        .replace("protocol = \"kafka\"", "protocol = \"tcp\"");
    assert_error(
        &errors(&tcp),
        "listener[0].max_brokers",
        "only Kafka listeners",
    );
}
