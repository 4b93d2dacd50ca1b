//! What the Kafka fault tests share: a Sluice with one port-per-broker listener in front of a
//! broker, its admin endpoint, and a fresh client's ApiVersions round trip through it.

use std::net::SocketAddr;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::kafka_wire::frame;
use sluice_tests::process::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::block_in_place;
use tokio::time::timeout;

/// One Kafka listener `kafka` (port-per-broker, broker ports from `bootstrap + 1`, two of them)
/// in front of `broker` as cluster `main`, with an admin endpoint; `listener_keys` are added to
/// the listener's table and `tables` before it (a `[limits]` table, say).
pub(crate) fn config(
    bootstrap: u16,
    broker: SocketAddr,
    listener_keys: &str,
    tables: &str,
) -> String {
    format!(
        r#"
[admin]
bind = "127.0.0.1:0"
{tables}
[[listener]]
name = "kafka"
bind = "127.0.0.1:{bootstrap}"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = {start}
max_brokers = 2
{listener_keys}

[cluster.main]
backends = ["{broker}"]
"#,
        start = bootstrap + 1
    )
}

/// The admin endpoint's address, once `sluice` is serving.
pub(crate) fn admin(sluice: &Running) -> SocketAddr {
    block_in_place(|| {
        sluice.find("sluice started");
        sluice.admin_addr()
    })
}

/// A new client's ApiVersions request through `proxy` is answered, with its correlation id.
pub(crate) async fn api_versions_answered(proxy: SocketAddr, correlation_id: i32) {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client
        .write_all(&frame(ApiKey::ApiVersions as i16, 0, correlation_id, &[]))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    timeout(STEP_TIMEOUT, async {
        while buf.len() < 8 {
            assert!(client.read_buf(&mut buf).await.unwrap() > 0, "closed");
        }
    })
    .await
    .expect("an answer in time");
    assert_eq!(
        i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        correlation_id
    );
}
