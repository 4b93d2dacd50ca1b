//! Config tests for a Kafka listener's frame limits: `max_frame_size`, `frame_budget`,
//! `frame_timeout`, and `[limits] frame_budget`.

use std::time::Duration;

use super::tests::{assert_error, errors};
use super::{FrameLimits, ListenerProtocol, parse};

const MIB: usize = 1024 * 1024;

fn listener(keys: &str, sasl: &str, limits: &str) -> String {
    format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\ngateway = \"port-per-broker\"\nbroker_port_start = 19100\n{keys}\n\
         {sasl}\n[cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n{limits}\n"
    )
}

fn frames(text: &str) -> FrameLimits {
    let parsed = parse(text).unwrap();
    let ListenerProtocol::Kafka(config) = &parsed.listeners[0].protocol else {
        panic!("not a Kafka listener");
    };
    config.frames
}

const TERMINATE: &str = "[listener.sasl]\nmode = \"terminate\"\nmechanisms = [\"SCRAM-SHA-512\"]\n\
                         users = \"users.toml\"";

#[test]
fn anonymous_requests_default_to_a_smaller_frame_than_responses() {
    let limits = frames(&listener("", "", ""));
    assert_eq!(
        limits,
        FrameLimits {
            max_frame_size: 100 * MIB,
            max_request_size: 16 * MIB,
            budget: 256 * MIB,
            timeout: Duration::from_secs(60),
        }
    );
}

#[test]
fn a_listener_that_authenticates_first_takes_requests_of_the_full_default_size() {
    assert_eq!(
        frames(&listener("", TERMINATE, "")).max_request_size,
        100 * MIB
    );
}

#[test]
fn max_frame_size_when_set_bounds_both_directions() {
    let limits = frames(&listener("max_frame_size = \"32MiB\"", "", ""));
    assert_eq!(
        (limits.max_frame_size, limits.max_request_size),
        (32 * MIB, 32 * MIB)
    );
}

#[test]
fn budget_and_timeout_are_read() {
    let limits = frames(&listener(
        "frame_budget = \"1GiB\"\nframe_timeout = \"5s\"",
        "",
        "",
    ));
    assert_eq!(limits.budget, 1024 * MIB);
    assert_eq!(limits.timeout, Duration::from_secs(5));
}

#[test]
fn a_budget_that_cannot_hold_one_largest_frame_is_refused_naming_the_key() {
    assert_error(
        &errors(&listener("frame_budget = \"64MiB\"", "", "")),
        "listener[0].frame_budget",
        "cannot hold one frame of max_frame_size",
    );
    assert_error(
        &errors(&listener("", "", "[limits]\nframe_budget = \"50MiB\"")),
        "limits.frame_budget",
        "listener[0]'s max_frame_size",
    );
    assert_error(
        &errors(&listener("frame_timeout = \"soon\"", "", "")),
        "listener[0].frame_timeout",
        "",
    );
}

#[test]
fn tcp_listeners_take_no_frame_keys() {
    let text = "[[listener]]\nname = \"tcp\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"tcp\"\ncluster = \"main\"\n\
                frame_budget = \"1GiB\"\n[cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n";
    assert_error(
        &errors(text),
        "listener[0].frame_budget",
        "only Kafka listeners",
    );
}
