//! SNI passthrough: the proxy reads the ClientHello's server name, routes by it, and leaves the
//! handshake to the backend it names.

use std::time::Duration;

use proxy_core::route::{RouteId, RouteMatch, RouteRule};
use proxy_frontend::ListenerTls;
use sluice_tests::certs::tls_echo_server;
use sluice_tests::openssl::s_client;
use sluice_tests::proxy::{ProxyOptions, TestProxy};

use crate::pki;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_passthrough_reaches_the_backend_named_by_the_client_hello() {
    let pki = pki("passthrough");
    let (a, _a_server) = tls_echo_server(&pki.ca.issue(&["a.example"])).await;
    let (b, _b_server) = tls_echo_server(&pki.ca.issue(&["b.example"])).await;
    let sni = |name: &str| RouteMatch {
        sni: Some(name.into()),
        ..RouteMatch::default()
    };
    let proxy = TestProxy::start(ProxyOptions {
        tls: Some(ListenerTls::Passthrough {
            handshake_timeout: Duration::from_secs(10),
        }),
        other_clusters: vec![("a", vec![a]), ("b", vec![b])],
        rules: vec![
            RouteRule {
                when: sni("a.example"),
                route: RouteId::new("a"),
            },
            RouteRule {
                when: sni("b.example"),
                route: RouteId::new("b"),
            },
        ],
        ..ProxyOptions::to([a])
    })
    .await;
    let addr = proxy.addr();
    for name in ["a.example", "b.example"] {
        let ca_file = pki.ca_file.clone();
        let result = tokio::task::spawn_blocking(move || {
            s_client(addr, Some(name), Some(&ca_file), None, b"passthrough\n")
        })
        .await
        .unwrap();
        assert!(result.verify_ok, "{name}: {}", result.stderr);
        assert!(
            result
                .peer_cert_subject
                .as_deref()
                .unwrap_or("")
                .contains(name),
            "{name}: {result:?}"
        );
        assert!(
            String::from_utf8_lossy(&result.stdout).contains("passthrough"),
            "{name}: {result:?}"
        );
    }
}
