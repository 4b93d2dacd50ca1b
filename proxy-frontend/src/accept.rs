//! The accept loop of a listening socket: one session task per connection.
//!
//! One connection's failure never ends the loop: accept errors (a full file-descriptor table,
//! a connection reset before it was accepted) are logged and, where retrying at once would spin,
//! followed by a short pause.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::frontend::{Frontend, Lifecycle};
use crate::session::{self, Served, Stop};

/// How long to pause after an accept error that would repeat at once (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts on `listener` until `lifecycle.stop_accepting` is cancelled, running each session on
/// `lifecycle.tracker`; then closes the socket.
pub(crate) async fn accept_loop<R: Router, C: Connect>(
    listener: TcpListener,
    local: SocketAddr,
    served: Arc<Served>,
    frontend: Arc<Frontend<R, C>>,
    lifecycle: Lifecycle,
) {
    let name = served.spec.name.clone();
    info!(listener = %name, addr = %local, broker.node_id = served.broker, "listening");
    loop {
        // `accept` is cancel safe: a connection not yet returned stays in the backlog.
        let accepted = tokio::select! {
            biased;
            () = lifecycle.stop_accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let frontend = frontend.clone();
                let served = served.clone();
                let stop = Stop {
                    drain: lifecycle.stop_accepting.clone(),
                    force_close: lifecycle.force_close.clone(),
                };
                lifecycle.tracker.spawn(async move {
                    session::run(stream, peer, served, frontend, stop).await;
                });
            }
            Err(err) if is_transient(&err) => {
                debug!(listener = %name, error = %err, "connection lost before accept");
            }
            Err(err) => {
                warn!(listener = %name, error = %err, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    // Close the socket before saying so: new connections are refused from here on.
    drop(listener);
    info!(listener = %name, addr = %local, "stopped accepting");
}

/// Errors about one connection that leave the listener healthy.
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}
