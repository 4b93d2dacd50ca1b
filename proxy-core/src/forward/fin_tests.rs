//! The last half-close left to the close: over loopback TCP, a session whose both peers closed
//! shuts down all but the last write half, which its transport's close ends with the same FIN.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;
use crate::codec::{RawCodec, RawTcp};
use crate::stop::StopSignal;
use crate::test_support::cx;

const WAIT: Duration = Duration::from_secs(10);

/// A connected pair of loopback sockets: (ours, the proxy's).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (theirs, _) = listener.accept().await.unwrap();
    (ours, theirs)
}

/// Runs a session in which the client closes first and the backend answers it by closing;
/// returns the client's socket and whether it saw EOF while the forwarder was still alive.
async fn client_sees_eof_before_close(fin_on_close: bool) -> bool {
    let (mut client, proxy_client) = pair().await;
    let (mut backend, proxy_backend) = pair().await;
    let mut forwarder = Forwarder::new(
        proxy_client,
        proxy_backend,
        RawCodec,
        ForwardLimits::default(),
    )
    .with_fin_on_close(fin_on_close, fin_on_close);
    let mut chain = StageChain::<RawTcp>::new(Vec::new());
    let mut cx = cx();
    let stop = StopSignal::new();

    client.write_all(b"last words").await.unwrap();
    client.shutdown().await.unwrap();
    let mut heard = Vec::new();
    let session = forwarder.run(&mut chain, &mut cx, &stop);
    let backend_side = async {
        timeout(WAIT, backend.read_to_end(&mut heard))
            .await
            .expect("the backend never saw the client's FIN")
            .unwrap();
        backend.shutdown().await.unwrap();
    };
    let (ended, ()) = timeout(WAIT, async { tokio::join!(session, backend_side) })
        .await
        .expect("the session did not end");
    assert_eq!(ended, Forwarded::Closed(CloseReason::ClientClosed));
    assert_eq!(heard, b"last words");

    // The forwarder is still alive: has the client had its FIN?
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(200), client.read(&mut byte)).await;
    let saw_eof = matches!(early, Ok(Ok(0)));
    drop(forwarder);
    if !saw_eof {
        // Closing the forwarder's transports sends it.
        let late = timeout(WAIT, client.read(&mut byte)).await;
        assert!(
            matches!(late, Ok(Ok(0))),
            "no FIN after the close: {late:?}"
        );
    }
    saw_eof
}

#[tokio::test]
async fn the_last_half_close_is_left_to_the_close_only_when_asked() {
    assert!(client_sees_eof_before_close(false).await);
    assert!(!client_sees_eof_before_close(true).await);
}
