use std::net::IpAddr;

use bytes::BytesMut;

use super::*;

const V1: &[u8] = b"PROXY ";
const V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const TRUSTED: &str = "10.0.0.7";
const STRANGER: &str = "192.0.2.9";

fn reader(mode: ProxyProtocolMode, peer: &str) -> Result<HeaderReader, ProxyHeaderError> {
    let policy = ProxyProtocolPolicy {
        mode,
        trusted: TrustedNetworks::new(["10.0.0.7/32".parse().unwrap()]),
        ..ProxyProtocolPolicy::default()
    };
    HeaderReader::new(&policy, peer.parse::<IpAddr>().unwrap())
}

/// Feeds `chunks` one read at a time until the reader decides; returns its last answer and
/// the buffer.
fn feed(
    reader: &HeaderReader,
    chunks: &[&[u8]],
) -> (Result<HeaderRead, ProxyHeaderError>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut last = reader.on_bytes(&mut buf);
    for chunk in chunks {
        if !matches!(last, Ok(HeaderRead::NeedMore)) {
            break;
        }
        buf.extend_from_slice(chunk);
        last = reader.on_bytes(&mut buf);
    }
    (last, buf)
}

/// Every strict prefix of both signatures, the empty one included.
fn strict_prefixes() -> impl Iterator<Item = &'static [u8]> {
    [V1, V2]
        .into_iter()
        .flat_map(|signature| (0..signature.len()).map(move |n| &signature[..n]))
}

#[test]
fn a_required_header_from_an_untrusted_peer_is_refused_before_a_byte_is_read() {
    assert_eq!(
        reader(ProxyProtocolMode::Required, STRANGER).unwrap_err(),
        ProxyHeaderError::Untrusted
    );
    assert!(reader(ProxyProtocolMode::Optional, STRANGER).is_ok());
    assert!(reader(ProxyProtocolMode::Required, TRUSTED).is_ok());
}

#[test]
fn optional_bytes_that_stop_looking_like_a_signature_are_the_clients_at_once() {
    for peer in [TRUSTED, STRANGER] {
        let reader = reader(ProxyProtocolMode::Optional, peer).unwrap();
        for prefix in strict_prefixes() {
            // Neither signature has a lowercase `x`, so it ends both.
            let (read, buf) = feed(&reader, &[prefix, b"x", b"payload"]);
            assert!(
                matches!(read, Ok(HeaderRead::NoHeader)),
                "{peer} {prefix:?}: {read:?}"
            );
            assert_eq!(
                &buf[..],
                [prefix, b"x"].concat(),
                "{peer} {prefix:?}: every byte kept"
            );
        }
        let (read, buf) = feed(&reader, &[b"\r\n", b"hello"]);
        assert!(matches!(read, Ok(HeaderRead::NoHeader)), "{read:?}");
        assert_eq!(&buf[..], b"\r\nhello");
    }
}

#[test]
fn optional_strict_prefixes_then_silence_or_eof_are_the_clients() {
    for peer in [TRUSTED, STRANGER] {
        let reader = reader(ProxyProtocolMode::Optional, peer).unwrap();
        for prefix in strict_prefixes() {
            let (read, buf) = feed(&reader, &[prefix]);
            assert!(
                matches!(read, Ok(HeaderRead::NeedMore)),
                "{prefix:?}: {read:?}"
            );
            assert_eq!(reader.on_deadline(&buf), Ok(()), "{peer} {prefix:?}");
            assert_eq!(reader.on_eof(&buf), Ok(()), "{peer} {prefix:?}");
            assert_eq!(&buf[..], prefix, "nothing consumed");
        }
    }
}

#[test]
fn required_strict_prefixes_then_silence_or_eof_are_refused() {
    let reader = reader(ProxyProtocolMode::Required, TRUSTED).unwrap();
    for prefix in strict_prefixes() {
        let (_, buf) = feed(&reader, &[prefix]);
        assert_eq!(reader.on_deadline(&buf), Err(ProxyHeaderError::TimedOut));
        let eof = if prefix.is_empty() {
            ProxyHeaderError::Missing
        } else {
            ProxyHeaderError::Truncated
        };
        assert_eq!(reader.on_eof(&buf), Err(eof), "{prefix:?}");
    }
    let (read, _) = feed(&reader, &[b"\r\n", b"hello"]);
    assert_eq!(read.unwrap_err(), ProxyHeaderError::Missing);
}

#[test]
fn a_whole_signature_is_a_header_in_optional_mode_too() {
    let trusted = reader(ProxyProtocolMode::Optional, TRUSTED).unwrap();
    let (read, _) = feed(&trusted, &[b"PROXY garbage\r\n"]);
    assert!(
        matches!(read, Err(ProxyHeaderError::Invalid(_))),
        "{read:?}"
    );
    for signature in [V1, V2] {
        // An unfinished header stays a header: the deadline and EOF refuse it.
        let (read, buf) = feed(&trusted, &[signature]);
        assert!(matches!(read, Ok(HeaderRead::NeedMore)), "{read:?}");
        assert_eq!(trusted.on_deadline(&buf), Err(ProxyHeaderError::TimedOut));
        assert_eq!(trusted.on_eof(&buf), Err(ProxyHeaderError::Truncated));
    }

    // An untrusted peer's header is refused as soon as its signature is whole, as before.
    let stranger = reader(ProxyProtocolMode::Optional, STRANGER).unwrap();
    for bytes in [&b"PROXY garbage\r\n"[..], V1, V2] {
        let (read, _) = feed(&stranger, &[bytes]);
        assert_eq!(read.unwrap_err(), ProxyHeaderError::Untrusted, "{bytes:?}");
    }
}

#[test]
fn a_trusted_header_is_decoded_and_what_follows_it_kept() {
    for mode in [ProxyProtocolMode::Optional, ProxyProtocolMode::Required] {
        let reader = reader(mode, TRUSTED).unwrap();
        let (read, buf) = feed(
            &reader,
            &[
                b"PRO",
                b"XY TCP4 192.0.2.7 198.51.100.1 40000 9192\r\nfirst",
            ],
        );
        let Ok(HeaderRead::Header(header)) = read else {
            panic!("{mode:?}: {read:?}");
        };
        assert_eq!(
            header.addrs().unwrap().source.to_string(),
            "192.0.2.7:40000"
        );
        assert_eq!(&buf[..], b"first");
    }
}

#[test]
fn off_never_looks_for_a_header() {
    let reader = reader(ProxyProtocolMode::Off, STRANGER).unwrap();
    let (read, buf) = feed(&reader, &[b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n"]);
    assert!(matches!(read, Ok(HeaderRead::NoHeader)), "{read:?}");
    assert!(buf.is_empty(), "decided before the first read");
}
