//! A Kafka proxy with a policy stage of its own: topic creation is refused by the proxy, the
//! way a broker refuses a client without `Create` permission; every other request goes to the
//! backend as the bytes the client sent.
//!
//! ```text
//! cargo run -p proxy-kafka --example kafka_proxy -- --listen 127.0.0.1:9092 --backend 127.0.0.1:19092
//! cargo run -p proxy-kafka --example kafka_proxy -- --self-test
//! ```
//!
//! This example does not rewrite broker addresses: after bootstrap, a client connects to the
//! brokers the cluster advertises, around the proxy. `proxy_kafka::broker_map` does that part.
#![expect(clippy::print_stdout, reason = "an example reports to its user")]

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use proxy_core::CloseReason;
use proxy_core::codec::Codec;
use proxy_core::context::SessionContext;
use proxy_core::forward::{ForwardLimits, forward};
use proxy_core::io::WriteQueue;
use proxy_core::route::Prerequisites;
use proxy_core::stage::{Flow, Stage, StageChain, StageContext};
use proxy_core::stop::StopSignal;
use proxy_kafka::kafka_protocol::ResponseError;
use proxy_kafka::kafka_protocol::messages::api_versions_response::ApiVersion;
use proxy_kafka::kafka_protocol::messages::create_topics_request::CreatableTopic;
use proxy_kafka::kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use proxy_kafka::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use proxy_kafka::kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes,
};
use proxy_kafka::{Kafka, KafkaCodec, KafkaRequest, KafkaResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::task::TaskTracker;

type BoxError = Box<dyn Error + Send + Sync>;

/// Every wait in this example is bounded by this.
const WAIT: Duration = Duration::from_secs(5);
const REFUSED: &str = "topic creation is disabled by the proxy";

// === impl NoTopicCreation ===

/// Answers CreateTopics itself: every topic asked for gets `TOPIC_AUTHORIZATION_FAILED`.
#[derive(Debug)]
struct NoTopicCreation;

impl Stage<Kafka> for NoTopicCreation {
    fn kind(&self) -> &'static str {
        "no_topic_creation"
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        // The header is parsed for every request; deciding on it leaves the body undecoded,
        // and the frame goes on as the bytes that were read.
        if msg.api() != Some(ApiKey::CreateTopics) {
            return Flow::Forward(msg);
        }
        // Only now is the body decoded, to answer for each topic by name.
        let denied = ResponseError::TopicAuthorizationFailed.code();
        let topics = match msg.body() {
            Ok(RequestKind::CreateTopics(body)) => body
                .topics
                .iter()
                .map(|topic| {
                    CreatableTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_error_code(denied)
                        .with_error_message(Some(StrBytes::from_static_str(REFUSED)))
                })
                .collect(),
            // A broker closes a connection whose request it cannot read.
            Ok(_) | Err(_) => {
                return Flow::Close(CloseReason::Stage {
                    stage: "no_topic_creation",
                    reason: "unreadable CreateTopics request".into(),
                });
            }
        };
        let body = CreateTopicsResponse::default().with_topics(topics);
        // The codec writes this answer after the responses to earlier requests: the client
        // sees answers in the order of its requests.
        Flow::Respond(KafkaResponse::answer(
            &msg,
            ResponseKind::CreateTopics(body),
        ))
    }
}

// === one session ===

async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    backend_addr: SocketAddr,
    shutdown: StopSignal,
) -> io::Result<CloseReason> {
    let local = client.local_addr()?;
    // `Arc::default()`: this session's own resource counters (see the tcp_proxy example).
    let live = Arc::default();
    let mut cx = SessionContext::new("kafka_proxy".into(), peer, local, Prerequisites::TCP, live);
    let backend = timeout(WAIT, TcpStream::connect(backend_addr)).await??;
    let mut chain = StageChain::<Kafka>::new(vec![Box::new(NoTopicCreation)]);
    // Kafka has request boundaries: on a drain the session stops reading requests, answers
    // what is in flight and closes; a forced close (what Ctrl-C raises here) cuts it at once.
    let reason = forward(
        client,
        backend,
        KafkaCodec::default(),
        &mut chain,
        &mut cx,
        ForwardLimits::default(),
        &shutdown,
    )
    .await;
    eprintln!("session {} closed: {reason}", cx.id());
    Ok(reason)
}

async fn run(listen: SocketAddr, backend: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!(
        "proxying {} to {backend}; Ctrl-C stops",
        listener.local_addr()?
    );
    let (shutdown, sessions) = (StopSignal::new(), TaskTracker::new());
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let session = serve(client, peer, backend, shutdown.clone());
                    sessions.spawn(async move {
                        if let Err(err) = session.await {
                            eprintln!("session from {peer} failed: {err}");
                        }
                    });
                }
                Err(err) => {
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    shutdown.force_close();
    sessions.close();
    timeout(WAIT, sessions.wait()).await?;
    Ok(())
}

// === the self-test ===

/// A one-connection broker that answers ApiVersions and nothing else; returns the API keys it
/// was asked. It reuses the proxy's codec: decoding requests is what a proxy does too.
async fn fake_broker(listener: TcpListener) -> Result<Vec<i16>, BoxError> {
    let (mut conn, _) = listener.accept().await?;
    let (mut codec, mut read, mut seen) = (KafkaCodec::default(), BytesMut::new(), Vec::new());
    while conn.read_buf(&mut read).await? > 0 {
        while let Some(request) = codec.decode_request(&mut read)? {
            seen.push(request.api_key());
            if request.api() != Some(ApiKey::ApiVersions) {
                return Err(format!("the broker was asked API key {}", request.api_key()).into());
            }
            let versions = vec![
                ApiVersion::default()
                    .with_api_key(ApiKey::CreateTopics as i16)
                    .with_max_version(7),
            ];
            let body = ApiVersionsResponse::default().with_api_keys(versions);
            let mut out = WriteQueue::default();
            let answer = KafkaResponse::answer(&request, ResponseKind::ApiVersions(body));
            codec.encode_response(answer, &mut out)?;
            out.write_all_to(&mut conn).await?;
        }
    }
    Ok(seen)
}

async fn self_test() -> Result<(), BoxError> {
    let broker = TcpListener::bind("127.0.0.1:0").await?;
    let broker_addr = broker.local_addr()?;
    let broker = tokio::spawn(fake_broker(broker));
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = proxy.local_addr()?;
    let session = tokio::spawn(async move {
        let (client, peer) = proxy.accept().await?;
        serve(client, peer, broker_addr, StopSignal::new()).await
    });

    // Two pipelined requests: the first for the broker, the second answered by the stage.
    let mut client = timeout(WAIT, TcpStream::connect(proxy_addr)).await??;
    let orders = TopicName(StrBytes::from_static_str("orders"));
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default().with_name(orders)]);
    let mut frames = request(3, 1, &ApiVersionsRequest::default())?;
    frames.extend_from_slice(&request(7, 2, &create)?);
    client.write_all(&frames).await?;

    // Answers come in the order of the requests, whoever gave them.
    let (id, versions) = response::<ApiVersionsRequest>(&mut client, 3).await?;
    if id != 1 || versions.api_keys.len() != 1 {
        return Err(format!("expected the broker's answer first, got {id}: {versions:?}").into());
    }
    let (id, created) = response::<CreateTopicsRequest>(&mut client, 7).await?;
    let topics: Vec<_> = created
        .topics
        .iter()
        .map(|t| (t.name.0.as_str(), t.error_code))
        .collect();
    if id != 2 || topics != [("orders", ResponseError::TopicAuthorizationFailed.code())] {
        return Err(format!("expected the proxy's refusal second, got {id}: {created:?}").into());
    }
    // Our EOF reaches the broker; its EOF ends the session.
    client.shutdown().await?;
    let reason = timeout(WAIT, session).await???;
    if reason != CloseReason::ClientClosed {
        return Err(format!("the session ended with: {reason}").into());
    }
    let seen = timeout(WAIT, broker).await???;
    if seen != [ApiKey::ApiVersions as i16] {
        return Err(format!("the broker was asked API keys {seen:?}").into());
    }
    Ok(())
}

/// A request frame as a client writes it: length prefix, header, body.
fn request<R: Request>(version: i16, correlation_id: i32, body: &R) -> Result<BytesMut, BoxError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("self-test")));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, R::header_version(version))?;
    body.encode(&mut frame, version)?;
    let len = i32::try_from(frame.len() - 4)?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Reads the response to a request of type `R`: its correlation id and body.
async fn response<R: Request>(
    conn: &mut TcpStream,
    version: i16,
) -> Result<(i32, R::Response), BoxError> {
    let len = usize::try_from(timeout(WAIT, conn.read_i32()).await??)?;
    if len > 1 << 20 {
        return Err(format!("a {len}-byte response frame").into());
    }
    let mut frame = vec![0; len];
    timeout(WAIT, conn.read_exact(&mut frame)).await??;
    let mut frame = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
    Ok((
        header.correlation_id,
        R::Response::decode(&mut frame, version)?,
    ))
}

// === main ===

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--self-test"] => self_test().await.map(|()| println!("self-test passed")),
        ["--listen", listen, "--backend", backend] => match (listen.parse(), backend.parse()) {
            (Ok(listen), Ok(backend)) => run(listen, backend).await,
            _ => Err("--listen and --backend each take an IP address and a port".into()),
        },
        _ => {
            eprintln!("usage: kafka_proxy --listen ADDR:PORT --backend ADDR:PORT | --self-test");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kafka_proxy: {err}");
            ExitCode::FAILURE
        }
    }
}
