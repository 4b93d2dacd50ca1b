//! `proxy-core`: the session model every Sluice proxy is built from.
//!
//! A client connection is a *session*. Its [`SessionContext`] is the one
//! owner of everything known about it; a sans-IO frontend state machine and one backend state
//! machine per route move it from accept to close; a [`Router`](route::Router) picks its route and
//! a [`ForwardingGate`](route::ForwardingGate) lets it forward only when its prerequisites hold;
//! its bytes cross a [`StageChain`](stage::StageChain) in both directions; and the
//! [`forward`](forward::forward) driver moves them, pausing reads through a
//! [`ReadGate`] that records why.
//!
//! This crate has no listeners, no config files and no signal handling: it is generic over
//! `AsyncRead + AsyncWrite`, and takes shutdown as a parameter.
//!
//! # Getting started
//!
//! A proxy built on this crate accepts a connection, makes a [`SessionContext`] for it,
//! connects to a backend, builds the session's [`StageChain`](stage::StageChain) (by hand, or
//! from [`NewStage`](stage::NewStage) factories) and hands them to
//! [`forward`](forward::forward), which returns the session's [`CloseReason`]. The `tcp_proxy`
//! example does exactly that in one file, with a stage of its own:
//!
//! ```text
//! cargo run -p proxy-core --example tcp_proxy -- --self-test
//! cargo run -p proxy-core --example tcp_proxy -- --listen 127.0.0.1:9000 --backend 127.0.0.1:9001
//! ```
//!
//! `docs/writing-a-stage.md` in the repository is a guide to writing stages, and `proxy-kafka`
//! has a Kafka example, `kafka_proxy`.
#![warn(missing_docs)]

pub mod audit;
pub mod close;
pub mod codec;
pub mod context;
pub mod forward;
pub mod gate;
pub mod io;
pub mod proxy_protocol;
pub mod queue;
pub mod route;
pub mod sasl;
pub mod slots;
pub mod stage;
pub mod state;
pub mod stop;
pub mod tls;
pub mod units;
pub mod upstream;
pub mod value;

#[cfg(any(test, feature = "test-util"))]
#[doc(hidden)]
pub mod fuzz_corpus;
#[cfg(any(test, feature = "test-util"))]
#[doc(hidden)]
pub mod test_ports;
#[cfg(test)]
mod test_support;

pub use close::{CloseReason, Fault, Refusal};
pub use context::{SessionContext, SessionId};
pub use gate::{PauseReason, ReadGate, Side};
