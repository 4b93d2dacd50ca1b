//! What the unit tests of several modules share.

use std::net::SocketAddr;
use std::sync::Arc;

use proxy_core::context::SessionContext;
use proxy_core::route::Prerequisites;

/// A TCP-only session context on listener `t`, from and to 127.0.0.1:1.
pub(crate) fn cx() -> SessionContext {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    SessionContext::new(
        Arc::from("t"),
        addr,
        addr,
        Prerequisites::TCP,
        Arc::default(),
    )
}
