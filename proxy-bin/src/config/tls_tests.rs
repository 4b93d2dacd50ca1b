//! Config tests for `[listener.tls]` and `[cluster.NAME.tls]`.

use std::path::Path;
use std::time::Duration;

use proxy_frontend::{ClientAuth, MinTlsVersion, PrincipalSource};

use super::tests::{assert_error, errors};
use super::{ListenerTlsConfig, parse_in};

/// The keys the TLS issue names as a contract.
const CONTRACT: &str = r#"
[[listener]]
name = "tls"
bind = "127.0.0.1:9443"
protocol = "tcp"
cluster = "local"
[listener.tls]
cert = "server-chain.pem"
key = "server-key.pem"
client_auth = "off"          # "optional" | "required"
client_ca = "clients-ca.pem"

[cluster.local]
backends = ["127.0.0.1:9093"]
[cluster.local.tls]
ca = "backend-ca.pem"
server_name = "backend.example"
"#;

#[test]
fn the_contract_keys_parse_and_paths_resolve_against_the_config_directory() {
    let config = parse_in(CONTRACT, Path::new("/etc/sluice")).unwrap();
    let Some(ListenerTlsConfig::Terminate {
        server,
        principal,
        handshake_timeout,
    }) = &config.listeners[0].tls
    else {
        panic!("expected termination: {:?}", config.listeners[0].tls);
    };
    assert_eq!(
        server.default.cert,
        Path::new("/etc/sluice/server-chain.pem")
    );
    assert_eq!(server.default.key, Path::new("/etc/sluice/server-key.pem"));
    assert_eq!(server.client_auth, ClientAuth::Off);
    assert_eq!(
        server.client_ca.as_deref(),
        Some(Path::new("/etc/sluice/clients-ca.pem"))
    );
    assert_eq!(server.min_version, MinTlsVersion::Tls12);
    assert_eq!(*principal, PrincipalSource::CommonName);
    assert_eq!(*handshake_timeout, Duration::from_secs(10));
    let tls = config.clusters["local"].tls.as_ref().unwrap();
    assert_eq!(
        tls.ca.as_deref(),
        Some(Path::new("/etc/sluice/backend-ca.pem"))
    );
    assert_eq!(tls.server_name.as_deref(), Some("backend.example"));
    assert!(!tls.insecure_skip_verify);
}

#[test]
fn sni_certificates_and_passthrough_are_read() {
    let text = CONTRACT.replace(
        "client_ca = \"clients-ca.pem\"",
        "client_ca = \"/abs/ca.pem\"\nmin_version = \"1.3\"\nalpn = [\"kafka\"]\nprincipal = \"san\"\n\n[[listener.tls.certificate]]\nnames = [\"a.example\", \"*.b.example\"]\ncert = \"a.pem\"\nkey = \"a-key.pem\"",
    );
    let config = parse_in(&text, Path::new("conf")).unwrap();
    let Some(ListenerTlsConfig::Terminate {
        server, principal, ..
    }) = &config.listeners[0].tls
    else {
        panic!("expected termination");
    };
    assert_eq!(server.client_ca.as_deref(), Some(Path::new("/abs/ca.pem")));
    assert_eq!(server.min_version, MinTlsVersion::Tls13);
    assert_eq!(server.alpn, ["kafka"]);
    assert_eq!(*principal, PrincipalSource::SubjectAltName);
    assert_eq!(server.by_name[0].0, ["a.example", "*.b.example"]);
    assert_eq!(server.by_name[0].1.cert, Path::new("conf/a.pem"));

    let passthrough = CONTRACT
        .replace("cert = \"server-chain.pem\"\nkey = \"server-key.pem\"\nclient_auth = \"off\"          # \"optional\" | \"required\"\nclient_ca = \"clients-ca.pem\"", "mode = \"passthrough\"\nhandshake_timeout = \"2s\"");
    let config = parse_in(&passthrough, Path::new(".")).unwrap();
    assert_eq!(
        config.listeners[0].tls,
        Some(ListenerTlsConfig::Passthrough {
            handshake_timeout: Duration::from_secs(2)
        })
    );
}

#[test]
fn bad_tls_settings_name_their_keys() {
    let text = CONTRACT
        .replace(
            "client_auth = \"off\"",
            "client_auth = \"required\"\nmin_version = \"1.0\"\nprincipal = \"email\"",
        )
        .replace("client_ca = \"clients-ca.pem\"", "")
        .replace(
            "ca = \"backend-ca.pem\"",
            "ca = \"backend-ca.pem\"\ncert = \"client.pem\"",
        );
    let found = errors(&text);
    assert_error(
        &found,
        "listener[0].tls.min_version",
        "expected \"1.2\" or \"1.3\"",
    );
    assert_error(
        &found,
        "listener[0].tls.principal",
        "expected \"cn\", \"san\" or \"subject\"",
    );
    assert_error(&found, "cluster.local.tls.key", "needs both cert and key");

    let found = errors(
        &CONTRACT
            .replace("client_auth = \"off\"", "client_auth = \"required\"")
            .replace("client_ca = \"clients-ca.pem\"", ""),
    );
    assert_error(
        &found,
        "listener[0].tls.client_ca",
        "required when client_auth",
    );

    let found = errors(&CONTRACT.replace(
        "cert = \"server-chain.pem\"",
        "mode = \"passthrough\"\ncert = \"server-chain.pem\"",
    ));
    assert_error(
        &found,
        "listener[0].tls.cert",
        "only applies to mode = \"terminate\"",
    );

    let found = errors(&CONTRACT.replace("key = \"server-key.pem\"\n", "mode = \"decrypt\"\n"));
    assert_error(
        &found,
        "listener[0].tls.mode",
        "expected \"terminate\" or \"passthrough\"",
    );
}
