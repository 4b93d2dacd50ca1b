//! TLS on a listener: terminated here (`TlsStream<PrefixedIo<TcpStream>>` replaces the plain
//! transport, STYLE rule 4) or passed through untouched after reading the SNI from the
//! ClientHello.

mod handshake;
mod principal;
mod server_config;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use self::handshake::{peek_sni, terminate};
pub use self::principal::PrincipalSource;
pub use self::server_config::{
    CertFiles, CertificateExpiry, ClientAuth, MinTlsVersion, ReloadableServerConfig,
    TlsConfigError, TlsServerOptions,
};

/// What a listener does with TLS.
#[derive(Debug, Clone)]
pub enum ListenerTls {
    /// Terminate TLS here.
    Terminate(TlsTermination),
    /// Read the ClientHello's SNI for routing, then forward the original bytes untouched.
    Passthrough {
        /// How long the ClientHello may take to arrive.
        handshake_timeout: Duration,
    },
}

impl ListenerTls {
    /// The deadline of the TLS phase.
    pub fn handshake_timeout(&self) -> Duration {
        match self {
            Self::Terminate(t) => t.handshake_timeout,
            Self::Passthrough { handshake_timeout } => *handshake_timeout,
        }
    }
}

/// A terminating listener's TLS.
#[derive(Debug, Clone)]
pub struct TlsTermination {
    /// Certificates and policy, reloadable.
    pub server: Arc<ReloadableServerConfig>,
    /// How long the handshake may take.
    pub handshake_timeout: Duration,
    /// How a client certificate names its principal.
    pub principal: PrincipalSource,
}
