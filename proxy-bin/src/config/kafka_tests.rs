//! Config tests for Kafka listeners' keys.

use super::tests::{assert_error, errors};
use super::{KafkaGatewayConfig, ListenerProtocol, parse};

const CLUSTER: &str = "\n[cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n";

fn kafka(keys: &str) -> String {
    format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\n{keys}\n{CLUSTER}"
    )
}

#[test]
fn the_documented_port_per_broker_listener_parses_with_defaults() {
    let parsed = parse(&kafka(
        "gateway = \"port-per-broker\"\nadvertised_host = \"kafka.example\"\nbroker_port_start = 19100",
    ))
    .unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    assert_eq!(
        config.gateway,
        KafkaGatewayConfig::PortPerBroker {
            broker_port_start: 19100,
            max_brokers: 256,
            port_grace: std::time::Duration::from_secs(600),
        }
    );
    assert_eq!(config.advertised_host, "kafka.example");
    assert_eq!(config.frames.max_frame_size, 100 * 1024 * 1024);
    assert_eq!(config.max_in_flight_requests, 1024);
}

#[test]
fn advertised_host_defaults_to_a_specific_bind_address_only() {
    let parsed = parse(&kafka(
        "gateway = \"port-per-broker\"\nbroker_port_start = 19100",
    ))
    .unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    assert_eq!(config.advertised_host, "127.0.0.1");
    let text = kafka("gateway = \"port-per-broker\"\nbroker_port_start = 19100")
        .replace("127.0.0.1:19092", "0.0.0.0:19092");
    assert_error(
        &errors(&text),
        "listener[0].advertised_host",
        "missing required key",
    );
}

#[test]
fn gateway_keys_are_checked_and_named() {
    assert_error(
        &errors(&kafka("")),
        "listener[0].gateway",
        "missing required key",
    );
    assert_error(
        &errors(&kafka("gateway = \"per-broker\"")),
        "listener[0].gateway",
        "expected \"port-per-broker\" or \"sni\"",
    );
    assert_error(
        &errors(&kafka("gateway = \"port-per-broker\"")),
        "listener[0].broker_port_start",
        "missing required key",
    );
    assert_error(
        &errors(&kafka(
            "gateway = \"port-per-broker\"\nbroker_port_start = 70000",
        )),
        "listener[0].broker_port_start",
        "not a port",
    );
    assert_error(
        &errors(&kafka(
            "gateway = \"port-per-broker\"\nbroker_port_start = 19092",
        )),
        "listener[0].broker_port_start",
        "bootstrap port",
    );
    assert_error(
        &errors(&kafka(
            "gateway = \"port-per-broker\"\nbroker_port_start = 19100\nmax_frame_size = \"12\"",
        )),
        "listener[0].max_frame_size",
        "",
    );
}

#[test]
fn sni_gateways_need_tls_and_a_pattern_with_the_node_id() {
    assert_error(
        &errors(&kafka(
            "gateway = \"sni\"\nbroker_host_pattern = \"b-{node_id}.kafka\"",
        )),
        "listener[0].gateway",
        "needs a [listener.tls] table",
    );
    assert_error(
        &errors(&kafka(
            "gateway = \"sni\"\nbroker_host_pattern = \"broker.kafka\"",
        )),
        "listener[0].broker_host_pattern",
        "{node_id}",
    );
    assert_error(
        &errors(&kafka(
            "gateway = \"sni\"\nbroker_host_pattern = \"b-{node_id}.kafka\"\nbroker_port_start = 1",
        )),
        "listener[0].broker_port_start",
        "only for gateway = \"port-per-broker\"",
    );
}

#[test]
fn kafka_keys_on_a_tcp_listener_and_tcp_stages_on_kafka_are_errors() {
    let tcp =
        kafka("broker_port_start = 19100").replace("protocol = \"kafka\"", "protocol = \"tcp\"");
    assert_error(
        &errors(&tcp),
        "listener[0].broker_port_start",
        "only Kafka listeners",
    );
    let throttled = kafka(
        "gateway = \"port-per-broker\"\nbroker_port_start = 19100\n\n[[listener.stage]]\nkind = \"throttle\"\nbytes_per_second = 1000",
    );
    assert_error(
        &errors(&throttled),
        "listener[0].stage[0]",
        "unknown stage kind",
    );
    let denied = kafka(
        "gateway = \"port-per-broker\"\nbroker_port_start = 19100\n\n[[listener.stage]]\nkind = \"deny_api\"\napis = [\"DropEverything\"]",
    );
    assert_error(
        &errors(&denied),
        "listener[0].stage[0]",
        "unknown Kafka API",
    );
}

const PORTS: &str = "gateway = \"port-per-broker\"\nbroker_port_start = 19100";

#[test]
fn max_in_flight_requests_is_read_and_its_errors_name_the_key() {
    let parsed = parse(&kafka(&format!("{PORTS}\nmax_in_flight_requests = 5"))).unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    assert_eq!(config.max_in_flight_requests, 5);
    for bad in ["0", "-1", "1000001"] {
        assert_error(
            &errors(&kafka(&format!("{PORTS}\nmax_in_flight_requests = {bad}"))),
            "listener[0].max_in_flight_requests",
            &format!("{bad} is not a request count: expected a whole number from 1 to 1000000"),
        );
    }
    let tcp =
        kafka("max_in_flight_requests = 5").replace("protocol = \"kafka\"", "protocol = \"tcp\"");
    assert_error(
        &errors(&tcp),
        "listener[0].max_in_flight_requests",
        "only Kafka listeners",
    );
}
