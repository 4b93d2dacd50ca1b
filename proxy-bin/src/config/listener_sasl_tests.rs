//! Config tests for a Kafka listener's `[listener.sasl]` table.

use std::time::Duration;

use proxy_core::sasl::{Mechanism, ScramHash};

use super::tests::{assert_error, errors};
use super::{KafkaSaslConfig, ListenerProtocol, parse};

const GATEWAY: &str = "gateway = \"port-per-broker\"\nbroker_port_start = 19100";

fn kafka(sasl: &str, extra_tables: &str) -> String {
    format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\n{GATEWAY}\n[listener.sasl]\n{sasl}\n{extra_tables}\n\
         [cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n"
    )
}

fn sasl_of(text: &str) -> Option<KafkaSaslConfig> {
    let parsed = parse(text).unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    config.sasl.clone()
}

#[test]
fn the_contract_keys_parse_with_defaults() {
    let sasl = sasl_of(&kafka(
        "mode = \"terminate\"\nmechanisms = [\"PLAIN\", \"scram-sha-256\", \"SCRAM-SHA-512\"]\n\
         users = \"users.toml\"\nallow_plain_without_tls = true",
        "",
    ));
    let Some(KafkaSaslConfig::Terminate {
        mechanisms,
        users,
        timeout,
        session_lifetime,
        accept_mtls_principal,
        failure_delay,
        max_unauthenticated,
        max_unauthenticated_per_source,
    }) = sasl
    else {
        panic!("{sasl:?}");
    };
    assert_eq!(
        mechanisms,
        [
            Mechanism::Plain,
            Mechanism::Scram(ScramHash::Sha256),
            Mechanism::Scram(ScramHash::Sha512)
        ]
    );
    assert!(users.ends_with("users.toml"));
    assert_eq!(timeout, Duration::from_secs(10));
    assert_eq!(session_lifetime, None);
    assert!(!accept_mtls_principal);
    assert_eq!(failure_delay, Duration::from_millis(100));
    assert_eq!(
        (max_unauthenticated, max_unauthenticated_per_source),
        (1024, 128)
    );

    let sasl = sasl_of(&kafka(
        "mode = \"terminate\"\nmechanisms = [\"SCRAM-SHA-512\"]\nusers = \"u.toml\"\n\
         session_lifetime = \"15m\"\ntimeout = \"3s\"\nmax_unauthenticated = 10\n\
         max_unauthenticated_per_source = 2",
        "",
    ));
    let Some(KafkaSaslConfig::Terminate {
        session_lifetime,
        timeout,
        max_unauthenticated: 10,
        max_unauthenticated_per_source: 2,
        ..
    }) = sasl
    else {
        panic!("{sasl:?}");
    };
    assert_eq!(session_lifetime, Some(Duration::from_secs(900)));
    assert_eq!(timeout, Duration::from_secs(3));
    assert_eq!(
        sasl_of(&kafka(
            "mode = \"inspect\"\nmechanisms = [\"SCRAM-SHA-256\"]",
            ""
        )),
        Some(KafkaSaslConfig::Inspect {
            mechanisms: vec![Mechanism::Scram(ScramHash::Sha256)]
        })
    );
    assert_eq!(sasl_of(&kafka("mode = \"passthrough\"", "")), None);
}

#[test]
fn plain_without_tls_needs_to_be_allowed_in_so_many_words() {
    for mode in ["terminate\"\nusers = \"u.toml", "inspect"] {
        let text = kafka(&format!("mode = \"{mode}\"\nmechanisms = [\"PLAIN\"]"), "");
        assert_error(
            &errors(&text),
            "listener[0].sasl.mechanisms",
            "allow_plain_without_tls = true",
        );
    }
}

#[test]
fn bad_values_are_named_by_key() {
    let cases = [
        ("mode = \"verify\"", "listener[0].sasl.mode", "unknown mode"),
        (
            "mechanisms = [\"PLAIN\"]",
            "listener[0].sasl.mode",
            "missing required key",
        ),
        (
            "mode = \"terminate\"\nmechanisms = [\"SCRAM-SHA-512\"]",
            "listener[0].sasl.users",
            "missing required key",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"",
            "listener[0].sasl.mechanisms",
            "missing required key",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = []",
            "listener[0].sasl.mechanisms",
            "at least one",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = [\"GSSAPI\"]",
            "listener[0].sasl.mechanisms[0]",
            "unknown SASL mechanism",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = [\"SCRAM-SHA-512\", \"scram-sha-512\"]",
            "listener[0].sasl.mechanisms[1]",
            "listed twice",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = [\"SCRAM-SHA-512\"]\nsession_lifetime = \"200ms\"",
            "listener[0].sasl.session_lifetime",
            "too short",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = [\"SCRAM-SHA-512\"]\ntimeout = \"0s\"",
            "listener[0].sasl.timeout",
            "is zero",
        ),
        (
            "mode = \"terminate\"\nusers = \"u.toml\"\nmechanisms = [\"SCRAM-SHA-512\"]\naccept_mtls_principal = true",
            "listener[0].sasl.accept_mtls_principal",
            "client_auth",
        ),
        (
            "mode = \"inspect\"\nmechanisms = [\"SCRAM-SHA-512\"]\nusers = \"u.toml\"",
            "listener[0].sasl.users",
            "only for mode = \"terminate\"",
        ),
        (
            "mode = \"passthrough\"\nmechanisms = [\"SCRAM-SHA-512\"]",
            "listener[0].sasl.mechanisms",
            "takes no other key",
        ),
        (
            "mode = \"inspect\"\nmechanisms = [\"SCRAM-SHA-512\"]\nrealm = \"x\"",
            "listener[0].sasl.realm",
            "unknown key",
        ),
    ];
    for (sasl, at, message) in cases {
        assert_error(&errors(&kafka(sasl, "")), at, message);
    }
}

#[test]
fn principal_routes_need_the_proxy_to_authenticate_first() {
    let route = "[[listener.route]]\nprincipal = \"bob\"\ncluster = \"main\"";
    let inspect = kafka(
        "mode = \"inspect\"\nmechanisms = [\"SCRAM-SHA-512\"]",
        route,
    );
    assert_error(
        &errors(&inspect),
        "listener[0].route[0].principal",
        "mode = \"terminate\"",
    );
    let terminate = kafka(
        "mode = \"terminate\"\nmechanisms = [\"SCRAM-SHA-512\"]\nusers = \"u.toml\"",
        route,
    );
    assert!(parse(&terminate).is_ok());
}

#[test]
fn only_kafka_listeners_take_sasl() {
    let text = "[[listener]]\nname = \"tcp\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"tcp\"\ncluster = \"main\"\n\
                [listener.sasl]\nmode = \"inspect\"\nmechanisms = [\"SCRAM-SHA-512\"]\n\
                [cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n";
    assert_error(&errors(text), "listener[0].sasl", "only Kafka listeners");
}
