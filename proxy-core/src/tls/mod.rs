//! TLS helpers shared by the frontend and the backend, sans-IO: recognising a client's
//! ClientHello without consuming it, and loading certificates, keys and CA bundles from PEM files.
//!
//! [`peek_client_hello`] serves SNI passthrough and SNI routing: the driver keeps reading into
//! its own buffer (after any PROXY header) until this says the hello is whole, routes on the
//! facts, and forwards the original bytes untouched. The PEM loaders run when a listener or
//! cluster is configured, never per session; every error names the file.

mod client_hello;
mod pem;

#[cfg(test)]
mod tests;

pub use self::client_hello::{
    ClientHelloError, ClientHelloFacts, MAX_CLIENT_HELLO, peek_client_hello,
};
pub use self::pem::{PemError, load_ca_bundle, load_cert_chain, load_private_key};
