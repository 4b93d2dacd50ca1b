//! The SNI gateway through the real binary: one TLS port in front of librdkafka's mock cluster,
//! the broker chosen by the server name. (librdkafka cannot be pointed at names that do not
//! resolve, so the client here is a TLS connection speaking raw Kafka frames.)
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::mocking::MockCluster;
use rustls_pki_types::ServerName;
use sluice_tests::certs::{TestCa, rustls_client_config, temp_dir};
use sluice_tests::process::SluiceBinary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

const METADATA_VERSION: i16 = 4;

/// A Metadata v4 request frame asking for no topics.
fn metadata_request(correlation_id: i32) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sni-test")))
        .encode(&mut buf, 1)
        .unwrap();
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut buf, METADATA_VERSION)
        .unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    frame
}

fn decode_metadata(frame: &[u8], correlation_id: i32) -> MetadataResponse {
    assert_eq!(&frame[..4], &correlation_id.to_be_bytes());
    let mut body = Bytes::copy_from_slice(&frame[4..]);
    MetadataResponse::decode(&mut body, METADATA_VERSION).unwrap()
}

/// The mock's brokers by node id, asked of the mock itself.
fn mock_brokers(mock: &MockCluster<'_, impl rdkafka::ClientContext>) -> BTreeMap<i32, SocketAddr> {
    let first = mock
        .bootstrap_servers()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(first).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(&metadata_request(1)).unwrap();
    let mut len = [0; 4];
    stream.read_exact(&mut len).unwrap();
    let mut frame = vec![0; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut frame).unwrap();
    decode_metadata(&frame, 1)
        .brokers
        .iter()
        .map(|b| {
            let addr = format!("{}:{}", b.host.as_str(), b.port).parse().unwrap();
            (b.node_id.0, addr)
        })
        .collect()
}

/// One Metadata exchange over TLS to `port` with server name `sni`; `None` when the proxy
/// closes the connection instead of answering.
async fn metadata_via(
    connector: &TlsConnector,
    port: u16,
    sni: &str,
    correlation_id: i32,
) -> Option<MetadataResponse> {
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(&metadata_request(correlation_id))
        .await
        .unwrap();
    let exchange = async {
        let mut len = [0; 4];
        tls.read_exact(&mut len).await.ok()?;
        let mut frame = vec![0; i32::from_be_bytes(len) as usize];
        tls.read_exact(&mut frame).await.ok()?;
        Some(frame)
    };
    let frame = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap()?;
    Some(decode_metadata(&frame, correlation_id))
}

#[tokio::test]
async fn sni_gateway_advertises_broker_names_and_routes_by_them() {
    let mock = MockCluster::new(3).unwrap();
    let upstream = mock_brokers(&mock);
    assert_eq!(upstream.len(), 3);

    let ca = TestCa::new("sluice sni test ca");
    let leaf = ca.issue(&["bootstrap.kafka.test", "*.kafka.test"]);
    let dir = temp_dir("kafka-sni");
    let (cert, key) = leaf.write_to(&dir, "kafka");
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backends: Vec<String> = upstream.values().map(|a| format!("\"{a}\"")).collect();
    let config = format!(
        r#"
[[listener]]
name = "kafka-sni"
bind = "127.0.0.1:{port}"
protocol = "kafka"
cluster = "main"
gateway = "sni"
broker_host_pattern = "broker-{{node_id}}.kafka.test"

[listener.tls]
cert = "{cert}"
key = "{key}"

[cluster.main]
backends = [{backends}]
"#,
        cert = cert.display(),
        key = key.display(),
        backends = backends.join(", ")
    );
    let sluice = SLUICE.run(&config, "kafka-sni.toml");
    sluice.wait_for("sluice started");
    let connector = TlsConnector::from(rustls_client_config(&ca, None));

    // Any name outside the pattern is the bootstrap: brokers come back as names of the
    // pattern, on the listener's own port.
    let metadata = metadata_via(&connector, port, "bootstrap.kafka.test", 7)
        .await
        .unwrap();
    let advertised: BTreeMap<i32, (String, i32)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, (b.host.as_str().to_owned(), b.port)))
        .collect();
    for id in upstream.keys() {
        assert_eq!(
            advertised.get(id),
            Some(&(format!("broker-{id}.kafka.test"), i32::from(port)))
        );
    }

    // Each broker's name reaches that broker, and only that broker.
    for (id, addr) in &upstream {
        let sni = format!("broker-{id}.kafka.test");
        assert!(metadata_via(&connector, port, &sni, 8).await.is_some());
        let closed = sluice.find_where("session closed", "tls.sni", &sni);
        assert_eq!(
            closed["backend.addr"].as_str(),
            Some(addr.to_string().as_str()),
            "{closed}"
        );
    }

    // A node id the cluster does not list is refused with a reason.
    assert!(
        metadata_via(&connector, port, "broker-77.kafka.test", 9)
            .await
            .is_none()
    );
    let refused = sluice.find_where("session closed", "tls.sni", "broker-77.kafka.test");
    assert_eq!(refused["reason.label"], "unknown_broker", "{refused}");

    // Clients naming more brokers that do not exist (a hostile one could name any node id) are
    // refused too, without each costing the cluster a discovery of the proxy's own.
    for (id, correlation) in (78..84).zip(10..) {
        let sni = format!("broker-{id}.kafka.test");
        assert!(
            metadata_via(&connector, port, &sni, correlation)
                .await
                .is_none()
        );
        let refused = sluice.find_where("session closed", "tls.sni", &sni);
        assert_eq!(refused["reason.label"], "unknown_broker", "{refused}");
    }
    let discoveries = sluice
        .text_lines()
        .iter()
        .filter(|line| line.contains("discovering the cluster's brokers for a session"))
        .count();
    // One for broker 77; one more at most, should the machine take five seconds for the rest.
    assert!(
        (1..=2).contains(&discoveries),
        "{discoveries} discoveries for 7 sessions naming unknown brokers"
    );
}
