//! Log lines as a pipeline receives them: text to a pipe without colour codes, JSON lines with
//! `pid` and `generation` on every line, session ids that carry on past an earlier generation's,
//! abnormal closes at WARN with a rate limit, and the address a client dialled in the close
//! line, on a listener bound to one address or to all.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{Running, refused_port, write_config};

use crate::SLUICE;

/// One TCP listener in front of a backend that refuses every connection.
fn dead_backend_config() -> String {
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n\
         cluster = \"down\"\n\n[cluster.down]\nbackends = [\"127.0.0.1:{}\"]\n\n[shutdown]\n\
         accept_grace = \"0s\"\n",
        refused_port()
    )
}

/// A session that the dead backend ends at once; waits until the proxy closes it.
fn refused_session(addr: std::net::SocketAddr) {
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let _ = client.read(&mut [0; 16]);
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let sluice = SLUICE.run_text(&dead_backend_config(), "logs-text.toml", "info");
    let listening = sluice.wait_for_text("listening");
    let addr = listening
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .unwrap()
        .parse()
        .unwrap();
    refused_session(addr);
    sluice.wait_for_text("session closed");
    let lines = sluice.text_lines();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
    // The close line names each field once (not again in a span prefix).
    let close = lines.iter().find(|l| l.contains("session closed")).unwrap();
    assert_eq!(close.matches("listener.name=").count(), 1, "{close}");
    assert_eq!(close.matches("session.id=").count(), 1, "{close}");
}

#[test]
fn json_lines_name_their_process_and_generation_and_ids_carry_on_across_generations() {
    // Started as an upgrade's third generation would be.
    let path = write_config("logs-generation.toml", &dead_backend_config());
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("SLUICE_GENERATION", "3")
        .stdin(Stdio::null());
    let sluice = Running::spawn(command);
    let addr = sluice.listening_addr();
    refused_session(addr);
    let close = sluice.wait_for("session closed");
    assert_eq!(close["session.id"], 2_000_000_001_u64, "{close}");
    for message in ["sluice started", "listening", "session closed"] {
        let line = sluice.find(message);
        assert_eq!(line["pid"], sluice.pid(), "{line}");
        assert_eq!(line["generation"], 3, "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn abnormal_closes_are_warnings_and_a_flood_of_them_is_rate_limited() {
    const SESSIONS: usize = 25;
    let sluice = SLUICE.run(&dead_backend_config(), "logs-warn.toml");
    let addr = sluice.listening_addr();
    let mut levels = Vec::new();
    for _ in 0..SESSIONS {
        refused_session(addr);
        let close = sluice.wait_for("session closed");
        assert_eq!(close["fault"], "upstream", "{close}");
        levels.push(close["level"].as_str().unwrap().to_owned());
    }
    let warnings = levels.iter().filter(|l| *l == "WARN").count();
    let infos = levels.iter().filter(|l| *l == "INFO").count();
    assert_eq!(levels[0], "WARN");
    assert_eq!(warnings + infos, SESSIONS, "{levels:?}");
    // 10 per 10 s window: 25 closes in well under 20 s reach at most two windows' worth.
    assert!((10..=20).contains(&warnings), "{levels:?}");
}

#[test]
fn the_close_line_names_the_address_the_client_dialled_on_a_wildcard_listener_too() {
    let config = dead_backend_config().replacen(
        "[cluster.down]",
        "[[listener]]\nname = \"wildcard\"\nbind = \"0.0.0.0:0\"\nprotocol = \"tcp\"\n\
         cluster = \"down\"\n\n[cluster.down]",
        1,
    );
    let sluice = SLUICE.run(&config, "logs-local-addr.toml");
    let mut ports = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let listening = sluice.wait_for("listening");
        let addr: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
        ports.insert(
            listening["listener.name"].as_str().unwrap().to_owned(),
            addr,
        );
    }
    assert!(ports["wildcard"].ip().is_unspecified(), "{ports:?}");
    for name in ["plain", "wildcard"] {
        let dialled = std::net::SocketAddr::from(([127, 0, 0, 1], ports[name].port()));
        refused_session(dialled);
        let close = sluice.wait_for("session closed");
        assert_eq!(close["listener.name"], name, "{close}");
        assert_eq!(close["listener.addr"], dialled.to_string(), "{close}");
    }
}
