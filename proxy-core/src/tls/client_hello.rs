//! Peeking at a client's first TLS flight: is there a whole ClientHello, and what server name
//! and application protocols does it ask for?
//!
//! The bytes are only *read*: the caller keeps its buffer and later forwards it as it was (SNI
//! passthrough) or hands it to a TLS acceptor through `PrefixedIo` (termination). Parsing is
//! rustls' own [`Acceptor`], fed a copy of the bytes, so we accept exactly the hellos rustls
//! would. Only record and handshake lengths are read by hand, to wait until the hello is whole
//! before rustls is asked: a client that sends its hello a byte at a time then costs one parse,
//! not one per read.

use rustls::server::Acceptor;

/// The largest first flight we wait for: one TLS record of the largest plaintext size
/// (2^14 bytes) plus its 5-byte header. Real ClientHellos are a few hundred bytes (up to ~2 KiB
/// with post-quantum key shares); a client that has sent this much without a whole hello is
/// refused rather than buffered further.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024 + 5;

/// The TLS record content type of a handshake record, the first byte of every ClientHello.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a whole ClientHello asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHelloFacts {
    /// The server name (SNI), lower-cased by rustls; `None` when the client sent none, or sent an
    /// IP address there (which RFC 6066 forbids and rustls treats as absent).
    pub sni: Option<String>,
    /// The application protocols offered (ALPN), in the client's order; empty when none.
    pub alpn: Vec<Vec<u8>>,
}

/// Why the first bytes are not a ClientHello we can route on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHelloError {
    /// The first byte is not a TLS handshake record (plaintext, or another protocol).
    #[error("not a TLS handshake: the first byte is not a handshake record")]
    NotTls,
    /// The bytes start like a handshake and rustls refuses them as a ClientHello.
    #[error("invalid TLS ClientHello: {0}")]
    Invalid(String),
    /// The client sent `max` bytes without completing its ClientHello.
    #[error("no whole TLS ClientHello within {max} bytes")]
    TooLarge {
        /// The limit, [`MAX_CLIENT_HELLO`].
        max: usize,
    },
}

impl ClientHelloError {
    /// A short, stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotTls => "client_hello_not_tls",
            Self::Invalid(_) => "client_hello_invalid",
            Self::TooLarge { .. } => "client_hello_too_large",
        }
    }
}

/// Decides whether `buf`, the first bytes a client sent (after any PROXY header), holds a whole
/// TLS ClientHello, without consuming them.
///
/// Returns `Ok(None)` while more bytes are needed, `Ok(Some(facts))` once the hello is whole.
/// Each call parses from the start of `buf` (at most [`MAX_CLIENT_HELLO`] bytes of it), so the
/// caller simply calls again after every read; bytes after the hello are ignored.
///
/// # Errors
///
/// [`ClientHelloError::NotTls`] as soon as the first byte shows it is not TLS,
/// [`ClientHelloError::Invalid`] when rustls refuses the hello (also for hellos rustls does not
/// support, such as one without the `signature_algorithms` extension), and
/// [`ClientHelloError::TooLarge`] once `buf` reaches [`MAX_CLIENT_HELLO`] bytes without one.
pub fn peek_client_hello(buf: &[u8]) -> Result<Option<ClientHelloFacts>, ClientHelloError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != HANDSHAKE_RECORD {
        return Err(ClientHelloError::NotTls);
    }
    if buf.len() < MAX_CLIENT_HELLO && !hello_is_whole(buf) {
        return Ok(None);
    }
    #[cfg(test)]
    tests::count_parse();

    let mut acceptor = Acceptor::default();
    // `&[u8]` is an `io::Read` that advances itself; `buf` is untouched. rustls reads at most
    // 4 KiB per call, hence the loop.
    let mut unread = &buf[..buf.len().min(MAX_CLIENT_HELLO)];
    while !unread.is_empty() {
        match acceptor.read_tls(&mut unread) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => return Err(ClientHelloError::Invalid(err.to_string())),
        }
    }

    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let hello = accepted.client_hello();
            Ok(Some(ClientHelloFacts {
                sni: hello.server_name().map(str::to_owned),
                alpn: hello
                    .alpn()
                    .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                    .unwrap_or_default(),
            }))
        }
        Ok(None) if buf.len() >= MAX_CLIENT_HELLO => Err(ClientHelloError::TooLarge {
            max: MAX_CLIENT_HELLO,
        }),
        Ok(None) => Ok(None),
        // The alert is dropped: the caller decides how to close (and a passthrough proxy
        // should not speak TLS to the client at all).
        Err((err, _alert)) => Err(ClientHelloError::Invalid(err.to_string())),
    }
}

/// The size of a TLS record header: content type, version, length.
const RECORD_HEADER: usize = 5;
/// The size of a handshake message header: type and a 24-bit length.
const HANDSHAKE_HEADER: usize = 4;

/// Whether `buf` holds the whole first handshake message, judged by the records' and the
/// message's lengths alone; also true as soon as something is not a handshake record, so that
/// rustls judges it. The message may span records (a hello with large key shares).
fn hello_is_whole(buf: &[u8]) -> bool {
    let mut head = [0u8; HANDSHAKE_HEADER];
    let (mut head_len, mut payload, mut at) = (0, 0, 0);
    while let Some(header) = buf.get(at..at + RECORD_HEADER) {
        if header[0] != HANDSHAKE_RECORD {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(record) = buf.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
            return false;
        };
        if len == 0 {
            return true;
        }
        for &byte in record.iter().take(HANDSHAKE_HEADER - head_len) {
            head[head_len] = byte;
            head_len += 1;
        }
        payload += len;
        at += RECORD_HEADER + len;
        if head_len == HANDSHAKE_HEADER {
            let body = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
            if payload >= HANDSHAKE_HEADER + body {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    thread_local! {
        static PARSES: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts a hello handed to rustls on this thread.
    pub(super) fn count_parse() {
        PARSES.with(|n| n.set(n.get() + 1));
    }

    /// Hellos handed to rustls on this thread so far.
    pub(crate) fn parses() -> usize {
        PARSES.with(Cell::get)
    }
}
