//! The accept loop of a listening socket: one session task per connection.
//!
//! Before each accept the loop takes a slot of the listener's and the process's connection
//! limits: at a limit it stops accepting, and new connections wait in the kernel's backlog.
//!
//! One connection's failure never ends the loop: accept errors (a full file-descriptor table,
//! a connection reset before it was accepted) are logged and, where retrying at once would spin,
//! followed by a pause that doubles while the errors last (up to a second), so an exhausted
//! descriptor table costs nothing while it lasts and accepting resumes by itself after.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::frontend::{Frontend, Lifecycle};
use crate::session::{self, Served};

/// The first pause after an accept error that would repeat at once (EMFILE, ENFILE, ENOBUFS);
/// it doubles while errors repeat, up to [`ACCEPT_ERROR_PAUSE_MAX`].
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);
const ACCEPT_ERROR_PAUSE_MAX: Duration = Duration::from_secs(1);

/// Accepts on `listener` until `accepting` is cancelled (`lifecycle.stop_accepting`, or a child
/// of it that closes this one socket), running each session on `lifecycle.tracker`; then closes
/// the socket. Sessions drain on `lifecycle.stop_accepting` alone: closing one socket leaves
/// the sessions it accepted alone.
pub(crate) async fn accept_loop<R: Router, C: Connect>(
    listener: TcpListener,
    local: SocketAddr,
    served: Arc<Served>,
    frontend: Arc<Frontend<R, C>>,
    lifecycle: Lifecycle,
    accepting: CancellationToken,
) {
    let name = served.spec.name.clone();
    info!(listener.name = %name, addr = %local, broker.node_id = served.broker, "listening");
    let admission = served.spec.admission.clone();
    // A socket bound to one address accepts every connection on it: no need to ask the kernel
    // again for each (`getsockname`). A wildcard one accepts on whichever address was dialled.
    let accepted_on = (!local.ip().is_unspecified()).then_some(local);
    let mut pause = ACCEPT_ERROR_PAUSE;
    loop {
        // Both waits are cancel safe: no slot is held until `slot` returns, and a connection
        // not yet returned by `accept` stays in the backlog.
        let admitted = tokio::select! {
            biased;
            () = accepting.cancelled() => break,
            admitted = admission.slot(&frontend.budget) => admitted,
        };
        let accepted = tokio::select! {
            biased;
            () = accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                pause = ACCEPT_ERROR_PAUSE;
                let frontend = frontend.clone();
                let served = served.clone();
                // The admission slot is held until the session ends; a `map`, not an async
                // block awaiting the session, which would keep room for its arguments twice.
                let session = session::run(stream, peer, accepted_on, served, frontend);
                lifecycle
                    .tracker
                    .spawn(session.map(move |()| drop(admitted)));
            }
            Err(err) if is_transient(&err) => {
                debug!(listener.name = %name, error = %err, "connection lost before accept");
            }
            Err(err) => {
                warn!(
                    listener.name = %name,
                    error = %err,
                    pause_ms = pause.as_millis() as u64,
                    "accept failed; pausing"
                );
                tokio::select! {
                    () = accepting.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(ACCEPT_ERROR_PAUSE_MAX);
            }
        }
    }
    // Close the socket before saying so: new connections are refused from here on.
    drop(listener);
    info!(listener.name = %name, addr = %local, "stopped accepting");
}

/// Errors about one connection that leave the listener healthy.
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}
