//! The admin HTTP listener: `/livez`, `/readyz` and `/metrics`.
//!
//! It runs for the whole life of the process, shutdown included, because `/readyz` must keep
//! answering 503 while the proxy drains. Three routes need no framework: hyper serves HTTP/1.1
//! and [`respond`] picks the route. `/metrics` answers in the format the `Accept` header
//! prefers ([`metrics::Format`]).
//!
//! It keeps one spare descriptor: when the process runs out (EMFILE), the spare is given up
//! so the admin connection can still be accepted, and taken back when that connection ends,
//! so a proxy that is only busy is not restarted by a liveness probe that cannot connect.
//!
//! Clients cannot hold its connections: a request head must arrive within
//! `header_read_timeout`, a kept-alive connection is closed after `idle_timeout` without a
//! request ([`clock`]), and beyond `max_connections` the least recently active connection is
//! closed to make room for the new one ([`open`] says why it is not refused).

mod audit_metrics;
mod authorization_metrics;
mod backend_metrics;
mod clock;
mod frame_metrics;
mod kafka_metrics;
mod limits_metrics;
mod metrics;
mod open;
mod outcomes;
mod process_metrics;
mod quota_metrics;
mod reload_metrics;
mod sasl_metrics;
mod session_metrics;
mod state;
mod tenant_metrics;
mod tls_metrics;
mod watched;

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use proxy_core::io::is_out_of_descriptors;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use self::clock::{Clock, Timeouts};
use self::open::{Counted, OpenConnections};
pub(crate) use self::outcomes::{Outcome, Outcomes};
pub(crate) use self::state::{AdminState, KafkaDiscovery, Phase, TlsListener};
use self::watched::Watched;
use crate::config::AdminConfig;

/// Serves the admin endpoints on `listener` until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    config: AdminConfig,
    stop: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(
            addr = %addr,
            header_read_timeout = ?config.header_read_timeout,
            idle_timeout = ?config.idle_timeout,
            max_connections = config.max_connections,
            "admin listening"
        );
    }
    let timeouts = Timeouts {
        header_read: config.header_read_timeout,
        idle: config.idle_timeout,
    };
    let mut open = OpenConnections::new(config.max_connections);
    let connections = TaskTracker::new();
    let spare = Arc::new(SpareDescriptor::open());
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) if is_out_of_descriptors(&err) && spare.release() => {
                debug!("admin: out of descriptors; accepting with the spare");
                continue;
            }
            Err(err) => {
                warn!(error = %err, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let clock = Clock::new(timeouts, Instant::now());
        open.admit(&clock);
        let counted = Counted::new(state.clone());
        let state = state.clone();
        let stop = stop.clone();
        let spare = spare.clone();
        connections.spawn(async move {
            let service = service_fn({
                let state = state.clone();
                move |request| {
                    let response = respond(&state, &request);
                    async move { Ok::<_, Infallible>(response) }
                }
            });
            let io = TokioIo::new(Watched::new(stream, clock.clone()));
            // The clock times request heads instead (see `clock`).
            let connection = http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(io, service);
            tokio::select! {
                () = stop.cancelled() => {}
                expiry = clock.expired() => {
                    debug!(reason.label = expiry.label(), "admin connection closed");
                    state.admin_connections.closed(expiry);
                }
                result = connection => if let Err(err) = result {
                    debug!(error = %err, "admin connection ended with an error");
                },
            }
            drop(counted);
            // This connection's descriptor is free again: keep it in reserve first.
            spare.reacquire();
        });
    }
    connections.close();
    connections.wait().await;
}

/// A descriptor held in reserve for the admin endpoint (`/dev/null`, open for nothing else).
struct SpareDescriptor {
    file: parking_lot::Mutex<Option<std::fs::File>>,
}

impl SpareDescriptor {
    fn open() -> Self {
        Self {
            file: parking_lot::Mutex::new(Self::new_file()),
        }
    }

    fn new_file() -> Option<std::fs::File> {
        std::fs::File::open("/dev/null")
            .inspect_err(|err| debug!(error = %err, "admin: no spare descriptor"))
            .ok()
    }

    /// Closes the spare so an accept can use its number; false when there was none.
    fn release(&self) -> bool {
        self.file.lock().take().is_some()
    }

    /// Takes a descriptor back into reserve, if one is free and none is held.
    fn reacquire(&self) {
        let mut file = self.file.lock();
        if file.is_none() {
            *file = Self::new_file();
        }
    }
}

fn respond(state: &Arc<AdminState>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
    }
    match request.uri().path() {
        "/livez" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" => match state.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        "/metrics" => {
            let accept = request
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|value| value.to_str().ok());
            let format = metrics::Format::negotiate(accept);
            match metrics::render(state, format) {
                Ok(body) => {
                    let mut response = text(StatusCode::OK, body);
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(format.content_type()),
                    );
                    response
                }
                // Writing into a `String` does not fail; an encoder that refuses a value does.
                Err(fmt::Error) => {
                    warn!("/metrics: the exposition could not be encoded");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "metrics could not be encoded\n".to_owned(),
                    )
                }
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /livez, /readyz or /metrics\n".to_owned(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
