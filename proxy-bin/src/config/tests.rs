//! Unit tests for config parsing and validation: sans-IO, on strings.

use std::path::Path;
use std::time::Duration;

use super::*;

const EXAMPLE: &str = include_str!("../../../examples/sluice.toml");

/// A valid listener and cluster that tests extend or break.
const MINIMAL: &str = r#"
[[listener]]
name = "plain"
bind = "127.0.0.1:9192"
protocol = "tcp"
cluster = "local"

[cluster.local]
backends = ["127.0.0.1:9092"]
"#;

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(config) => panic!("expected errors, parsed {config:?}"),
        Err(errors) => errors.0,
    }
}

/// Asserts that exactly one error is at `path` and that its message contains `needle`.
pub(super) fn assert_error(errors: &[ConfigError], path: &str, needle: &str) {
    let at: Vec<_> = errors.iter().filter(|e| e.path == path).collect();
    assert_eq!(at.len(), 1, "want one error at {path}, got {errors:#?}");
    assert!(
        at[0].message.contains(needle),
        "error at {path} should mention {needle:?}: {:?}",
        at[0].message
    );
}

/// MINIMAL with `line` added to the listener table.
fn with_listener_key(line: &str) -> String {
    MINIMAL.replace(
        "cluster = \"local\"\n",
        &format!("cluster = \"local\"\n{line}\n"),
    )
}

#[test]
fn default_config_parses() {
    let config = parse(DEFAULT_CONFIG).unwrap();
    assert_eq!(config.listeners.len(), 1);
    let listener = &config.listeners[0];
    assert_eq!(listener.name, "kafka");
    assert_eq!(listener.bind, "127.0.0.1:9192".parse().unwrap());
    let ListenerProtocol::Kafka(kafka) = &listener.protocol else {
        panic!(
            "the default listener is not a Kafka one: {:?}",
            listener.protocol
        );
    };
    assert_eq!(
        kafka.gateway,
        super::KafkaGatewayConfig::PortPerBroker {
            broker_port_start: 9200,
            max_brokers: 16,
            port_grace: proxy_kafka::broker_map::DEFAULT_BROKER_PORT_GRACE,
        }
    );
    assert_eq!(listener.cluster, "local");
    let local = &config.clusters["local"];
    assert_eq!(
        local.backends,
        vec![BackendAddr {
            host: "127.0.0.1".into(),
            port: 9092
        }]
    );
    assert_eq!(local.connect_timeout, Duration::from_secs(5));
}

#[test]
fn example_parses_with_stage_options_and_ipv6() {
    let config = parse(EXAMPLE).unwrap();
    assert_eq!(config.listeners.len(), 3);
    let behind_lb = &config.listeners[2];
    assert_eq!(behind_lb.routes.len(), 2);
    // The load balancers' own addresses, not their network.
    let trusted = &behind_lb.proxy_protocol.trusted;
    assert!(trusted.contains("10.0.4.10".parse().unwrap()));
    assert!(!trusted.contains("10.1.2.3".parse().unwrap()));
    let v6 = &config.listeners[1];
    assert_eq!(v6.bind, "[::1]:9193".parse().unwrap());
    assert_eq!(v6.read_buffer, 16384);
    assert_eq!(v6.stages.len(), 1);
    let stage = &v6.stages[0];
    assert_eq!(stage.kind, "throttle");
    assert_eq!(stage.path, "listener[1].stage[0]");
    assert_eq!(
        stage.options.get("bytes_per_second"),
        Some(&toml::Value::from("1MiB"))
    );
    assert_eq!(stage.options.len(), 1, "kind is not an option");
    let remote = &config.clusters["remote"];
    assert_eq!(remote.backends[0].to_string(), "app-1.example:8080");
    assert_eq!(
        remote.backends[2],
        BackendAddr {
            host: "::1".into(),
            port: 8081
        }
    );
    assert_eq!(remote.backends[2].to_string(), "[::1]:8081");
    assert_eq!(config.shutdown.drain_timeout, Duration::from_secs(20));
    assert_eq!(
        config.clusters["tool"].exec.as_ref().map(|e| e.argv.len()),
        Some(1)
    );
    let admin = config.admin.unwrap();
    assert_eq!(admin.header_read_timeout, Duration::from_secs(5));
    assert_eq!(admin.idle_timeout, Duration::from_secs(60));
    assert_eq!(admin.max_connections, 64);
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn defaults_are_applied() {
    let config = parse(MINIMAL).unwrap();
    let listener = &config.listeners[0];
    assert_eq!(listener.idle_timeout, Duration::from_secs(3600));
    assert_eq!(listener.read_buffer, 32 * 1024);
    assert_eq!(listener.high_watermark, 256 * 1024);
    assert_eq!(listener.low_watermark, 128 * 1024);
    assert!(listener.stages.is_empty());
    assert_eq!(
        config.clusters["local"].connect_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(config.shutdown.drain_timeout, Duration::from_secs(20));
}

#[test]
fn unknown_keys_everywhere_are_reported_in_one_parse() {
    let text = format!(
        "{}\n[shutdwn]\ndrain_timeout = \"1s\"\n",
        with_listener_key("bidn = \"x\"").replace("backends =", "backend = [\"a:1\"]\nbackends =")
    );
    let errors = errors(&text);
    assert_error(&errors, "listener[0].bidn", "unknown key");
    assert_error(&errors, "cluster.local.backend", "unknown key");
    assert_error(&errors, "shutdwn", "unknown key");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "listener[0].bidn (line 7): unknown key; did you mean bind?",
            "cluster.local.backend (line 10): unknown key; did you mean backends?",
            "shutdwn (line 13): unknown key; did you mean shutdown?",
        ]
    );
}

#[test]
fn semantic_errors_are_all_reported_with_paths() {
    let text = r#"
[[listener]]
name = "a"
bind = "127.0.0.1:99999"
protocol = "udp"
cluster = "missing"
idle_timeout = "soon"
read_buffer = "32 kb"
high_watermark = "64KiB"

[[listener]]
name = "a"
bind = "[::1]:9192"
protocol = "tcp"
cluster = "local"
idle_timeout = "0s"

[[listener]]
name = "b"
bind = "[::1]:9192"
protocol = "tcp"
cluster = "empty"

[cluster.local]
backends = ["127.0.0.1:9092", "10.0.0.256:9092", "host:0", "::1:9092"]
connect_timeout = "-5s"

[cluster.empty]
backends = []
"#;
    let errors = errors(text);
    let bind = "invalid socket address \"127.0.0.1:99999\": expected IP:PORT such as \
                127.0.0.1:9192 or [::1]:9192";
    assert_error(&errors, "listener[0].bind", bind);
    assert_error(
        &errors,
        "listener[0].protocol",
        "unsupported protocol \"udp\"",
    );
    assert_error(
        &errors,
        "listener[0].cluster",
        "no cluster named \"missing\" (defined: \"empty\", \"local\")",
    );
    assert_error(
        &errors,
        "listener[0].idle_timeout",
        "invalid duration \"soon\"",
    );
    assert_error(
        &errors,
        "listener[0].read_buffer",
        "invalid byte size \"32 kb\"",
    );
    assert_error(
        &errors,
        "listener[0].low_watermark",
        "less than high_watermark",
    );
    assert_error(
        &errors,
        "listener[1].name",
        "duplicate listener name \"a\" (also used by listener[0])",
    );
    assert_error(
        &errors,
        "listener[1].idle_timeout",
        "use a positive duration",
    );
    assert_error(
        &errors,
        "listener[2].bind",
        "duplicate bind address \"[::1]:9192\"",
    );
    assert_error(
        &errors,
        "cluster.local.backends[1]",
        "not a valid IPv4 address",
    );
    assert_error(&errors, "cluster.local.backends[2]", "between 1 and 65535");
    assert_error(&errors, "cluster.local.backends[3]", "must be in brackets");
    assert_error(
        &errors,
        "cluster.local.connect_timeout",
        "invalid duration \"-5s\"",
    );
    assert_error(&errors, "cluster.empty.backends", "no backends");
    assert_eq!(errors.len(), 14, "{errors:#?}");
}

#[test]
fn watermarks_must_be_ordered() {
    let errors = errors(&with_listener_key(
        "high_watermark = 1024\nlow_watermark = \"1KiB\"",
    ));
    assert_error(
        &errors,
        "listener[0].low_watermark",
        "low_watermark (1024 bytes) must be less than high_watermark (1024 bytes)",
    );
}

#[test]
fn sizes_are_range_checked_and_never_negative() {
    let errors = errors(&with_listener_key(
        "read_buffer = \"17MiB\"\nhigh_watermark = -1",
    ));
    assert_error(&errors, "listener[0].read_buffer", "out of range");
    assert_error(
        &errors,
        "listener[0].high_watermark",
        "invalid byte size -1: it is negative",
    );
    let errors = super::tests::errors(&with_listener_key("read_buffer = true"));
    assert_error(&errors, "listener[0].read_buffer", "a byte size");
}

#[test]
fn stage_options_are_kept_and_kind_is_required() {
    let text = format!(
        "{MINIMAL}\n[[listener.stage]]\nkind = \"throttle\"\nbytes_per_second = 10\nburst = \"1MiB\"\n"
    );
    let config = parse(&text).unwrap();
    let stage = &config.listeners[0].stages[0];
    assert_eq!(
        stage.options.get("bytes_per_second"),
        Some(&toml::Value::Integer(10))
    );
    assert!(stage.options.get("burst").is_some_and(toml::Value::is_str));

    let errors = errors(&format!("{MINIMAL}\n[[listener.stage]]\nrate = 1\n"));
    assert_error(&errors, "listener[0].stage[0].kind", "missing required key");
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn type_errors_name_their_path_and_line_and_the_rest_is_still_read() {
    let errors = errors(&MINIMAL.replace("bind = \"127.0.0.1:9192\"", "bind = 5\nbidn = 1"));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].path, "listener[0].bind");
    assert_eq!(errors[0].line, Some(4));
    assert_eq!(
        errors[0].message,
        "invalid type: integer `5`, expected a string"
    );
    // Taken out for its type, `bind` is not also reported missing; the typo is still found.
    assert_eq!(errors[1].path, "listener[0].bidn");
    assert_eq!(errors[1].line, Some(5));
    assert_eq!(errors[1].message, "unknown key; did you mean bind?");

    let errors = super::tests::errors(&MINIMAL.replace("[\"127.0.0.1:9092\"]", "[\"a:1\", 2]"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "cluster.local.backends[1]");
    assert_eq!(errors[0].line, Some(9));
}

#[test]
fn every_type_error_is_reported_up_to_a_bound() {
    let mut text = String::new();
    for i in 0..150 {
        text.push_str(&format!("[[listener]]\nname = {i}\n"));
    }
    let errors = super::tests::errors(&text);
    assert_eq!(errors.len(), 100, "{:#?}", &errors[..3]);
    assert_eq!(errors[0].path, "listener[0].name");
    assert_eq!(errors[0].line, Some(2));

    let six = "[[listener]]\nname = 1\nbind = 2\nprotocol = 3\ncluster = [4]\nidle_timeout = 5\n\
               max_connections = \"6\"\n[cluster.x]\nbackends = [\"127.0.0.1:1\"]\n";
    let errors = super::tests::errors(six);
    let at: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        at,
        [
            ("listener[0].name", Some(2)),
            ("listener[0].bind", Some(3)),
            ("listener[0].protocol", Some(4)),
            ("listener[0].cluster", Some(5)),
            ("listener[0].idle_timeout", Some(6)),
            ("listener[0].max_connections", Some(7)),
        ]
    );
}

#[test]
fn a_missing_key_is_at_the_line_of_its_table_header() {
    let errors = errors(&format!("{MINIMAL}\n[admin]\nidle_timeout = \"1s\"\n"));
    assert_error(&errors, "admin.bind", "missing required key");
    assert_eq!(errors[0].line, Some(11));
    assert_eq!(
        errors[0].to_string(),
        "admin.bind (line 11): missing required key"
    );
}

#[test]
fn syntax_error_is_one_pathless_error() {
    let errors = errors("[[listener]\nname = ");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "");
    assert!(
        errors[0].message.starts_with("invalid TOML"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[0].message.contains("line 1"),
        "{}",
        errors[0].message
    );
    assert!(!errors[0].to_string().contains('\n'));
}

#[test]
fn missing_listeners_and_required_keys_are_reported() {
    let errors = errors("[[listener]]\nname = \"\"\n\n[cluster.x]\n");
    assert_error(&errors, "listener[0].name", "must not be empty");
    assert_error(&errors, "listener[0].bind", "missing required key");
    assert_error(&errors, "listener[0].protocol", "missing required key");
    assert_error(&errors, "listener[0].cluster", "missing required key");
    assert_error(&errors, "cluster.x.backends", "missing required key");

    let errors = super::tests::errors("");
    assert_error(&errors, "listener", "no listeners");
}

#[test]
fn errors_display_one_per_line() {
    let errors = ConfigErrors(vec![
        ConfigError::new("listener[0].bind", "bad"),
        ConfigError::new("", "whole file"),
    ]);
    assert_eq!(errors.to_string(), "listener[0].bind: bad\nwhole file");
    let located = ConfigError {
        line: Some(4),
        ..ConfigError::new("listener[0].bind", "bad")
    };
    assert_eq!(located.to_string(), "listener[0].bind (line 4): bad");
}

#[test]
fn odd_cluster_names_are_quoted_in_paths() {
    let errors = errors(&format!(
        "{MINIMAL}\n[cluster.\"eu.west\"]\nbackends = []\n"
    ));
    assert_error(&errors, "cluster.\"eu.west\".backends", "no backends");
}

#[test]
fn load_reports_unreadable_file_by_name() {
    let errors = load(Path::new("/nonexistent/sluice.toml")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].path, "");
    assert!(errors.0[0].message.contains("/nonexistent/sluice.toml"));
}

#[test]
fn bad_stage_kinds_and_options_are_reported_with_the_other_errors() {
    let text = format!(
        "{MINIMAL}\nbidn = 1\n[[listener.stage]]\nkind = \"throttle\"\nbytes_per_second = 10\nburts = 5\n[[listener.stage]]\nkind = \"compress\"\n"
    );
    let errors = errors(&text);
    assert_error(&errors, "cluster.local.bidn", "unknown key");
    assert_error(&errors, "listener[0].stage[0]", "burts: unknown option");
    assert_error(
        &errors,
        "listener[0].stage[1]",
        "unknown stage kind \"compress\" (known: throttle)",
    );
}
