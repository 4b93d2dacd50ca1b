use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use ppp::v2;

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A v2 PROXY header from `source` to `destination` carrying `tlvs`.
fn v2_header(source: &str, destination: &str, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut builder = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (addr(source), addr(destination)),
    );
    for (kind, value) in tlvs {
        builder = builder.write_tlv(*kind, value).unwrap();
    }
    builder.build().unwrap()
}

#[test]
fn detection_needs_only_the_signature() {
    assert_eq!(detect(b""), Detection::NeedMore);
    assert_eq!(detect(b"PRO"), Detection::NeedMore);
    assert_eq!(detect(b"PROXY "), Detection::Present);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQU"), Detection::NeedMore);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQUIT\n"), Detection::Present);
    assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Detection::Absent);
    assert_eq!(detect(b"PROXZ"), Detection::Absent);
    assert_eq!(
        detect(&[0x16, 0x03, 0x01]),
        Detection::Absent,
        "a TLS ClientHello"
    );
    assert_eq!(detect(&[0, 0, 0, 20]), Detection::Absent, "a Kafka frame");
}

#[test]
fn v1_headers_decode_and_leave_the_following_bytes() {
    let mut buf =
        BytesMut::from(&b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 9192\r\nfirst request"[..]);
    let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
    assert_eq!(header.addrs().unwrap().source, addr("192.0.2.7:40000"));
    assert_eq!(
        header.addrs().unwrap().destination,
        addr("198.51.100.1:9192")
    );
    assert_eq!(&buf[..], b"first request");

    let mut buf = BytesMut::from(&b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n"[..]);
    let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
    assert_eq!(header.addrs().unwrap().source, addr("[2001:db8::1]:4000"));
    assert!(buf.is_empty());

    let mut buf = BytesMut::from(&b"PROXY UNKNOWN\r\n"[..]);
    assert_eq!(
        decode(&mut buf, DEFAULT_MAX_HEADER_LEN)
            .unwrap()
            .unwrap()
            .addrs(),
        None
    );
}

#[test]
fn v2_headers_decode_with_every_tlv_the_proxy_understands() {
    let ssl = [0x01, 0, 0, 0, 0];
    let mut bytes = v2_header(
        "192.0.2.7:40000",
        "198.51.100.1:9192",
        &[
            (TLV_AUTHORITY, b"broker.example.com"),
            (TLV_ALPN, b"h2"),
            (TLV_UNIQUE_ID, b"conn-42"),
            (TLV_SSL, &ssl),
            (TLV_AWS, b"\x01vpce-0123456789abcdef"),
            (TLV_AZURE, &[0x01, 0x78, 0x56, 0x34, 0x12]),
        ],
    );
    let header_len = bytes.len();
    bytes.extend_from_slice(b"\x16\x03\x01 client hello");
    let mut buf = BytesMut::from(&bytes[..]);
    let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
    assert_eq!(header.addrs().unwrap().source, addr("192.0.2.7:40000"));
    assert_eq!(header.authority(), Some("broker.example.com"));
    assert_eq!(header.alpn(), Some(&b"h2"[..]));
    assert_eq!(header.unique_id(), Some(&b"conn-42"[..]));
    let ssl = header.ssl().unwrap();
    assert_eq!((ssl.client, ssl.verified), (0x01, true));
    assert_eq!(header.aws_vpc_endpoint_id(), Some("vpce-0123456789abcdef"));
    assert_eq!(header.azure_private_link_id(), Some(0x1234_5678));
    assert_eq!(
        &buf[..],
        b"\x16\x03\x01 client hello",
        "bytes after the header are kept"
    );
    assert_eq!(header.raw().len(), header_len);
}

#[test]
fn v2_local_carries_no_client_address() {
    let local = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Local,
        v2::Protocol::Unspecified,
        v2::Addresses::Unspecified,
    )
    .build()
    .unwrap();
    let mut buf = BytesMut::from(&local[..]);
    let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
    assert_eq!(header.addrs(), None);
}

#[test]
fn a_partial_header_needs_more_bytes_at_every_cut() {
    let full = v2_header("10.0.0.1:1", "10.0.0.2:2", &[(TLV_AUTHORITY, b"a.example")]);
    for cut in 0..full.len() {
        let mut buf = BytesMut::from(&full[..cut]);
        assert_eq!(
            decode(&mut buf, DEFAULT_MAX_HEADER_LEN),
            Ok(None),
            "cut at {cut}"
        );
    }
    let v1 = b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n";
    for cut in 1..v1.len() {
        let mut buf = BytesMut::from(&v1[..cut]);
        assert_eq!(
            decode(&mut buf, DEFAULT_MAX_HEADER_LEN),
            Ok(None),
            "cut at {cut}"
        );
    }
}

#[test]
fn garbage_and_broken_headers_are_invalid_not_panics() {
    for bad in [
        &b"PROXY TCP4 not-an-ip 10.0.0.2 1 2\r\n"[..],
        b"PROXY TCP9 10.0.0.1 10.0.0.2 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 99999 2\r\n",
        b"PROXY \xff\xfe\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x41\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    ] {
        let mut buf = BytesMut::from(bad);
        assert!(
            matches!(
                decode(&mut buf, DEFAULT_MAX_HEADER_LEN),
                Err(ProxyHeaderError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    // A TLV whose length runs past the header.
    let mut bytes = v2_header("10.0.0.1:1", "10.0.0.2:2", &[]);
    bytes[15] += 3;
    bytes.extend_from_slice(&[TLV_AUTHORITY, 0x00, 0x09]);
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        decode(&mut buf, DEFAULT_MAX_HEADER_LEN),
        Err(ProxyHeaderError::Invalid(_))
    ));
}

#[test]
fn an_oversized_header_is_refused_before_it_is_all_read() {
    let mut declared = BytesMut::new();
    declared.put_slice(v2::PROTOCOL_PREFIX);
    declared.put_slice(&[0x21, 0x11]);
    declared.put_u16(60_000);
    assert_eq!(
        decode(&mut declared, 4096),
        Err(ProxyHeaderError::TooLarge { max: 4096 })
    );

    let long_tlv = vec![b'x'; 5000];
    let big = v2_header("10.0.0.1:1", "10.0.0.2:2", &[(TLV_UNIQUE_ID, &long_tlv)]);
    let mut buf = BytesMut::from(&big[..]);
    assert_eq!(
        decode(&mut buf, 4096),
        Err(ProxyHeaderError::TooLarge { max: 4096 })
    );

    let mut endless_v1 = BytesMut::from(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat()[..]);
    assert!(decode(&mut endless_v1, 4096).is_err());
}

#[test]
fn encoded_headers_decode_to_the_same_addresses() {
    for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
        for (source, destination) in [
            ("192.0.2.7:40000", "198.51.100.1:9192"),
            ("[2001:db8::1]:4000", "[2001:db8::2]:443"),
            ("192.0.2.7:40000", "[2001:db8::2]:443"),
        ] {
            let bytes = encode(version, addr(source), addr(destination));
            let mut buf = BytesMut::from(&bytes[..]);
            let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
            let got = header.addrs().unwrap();
            assert_eq!(got.source.port(), addr(source).port(), "{version:?}");
            assert_eq!(
                got.source.ip().to_canonical(),
                addr(source).ip(),
                "{version:?}"
            );
            assert_eq!(
                got.destination.ip().to_canonical(),
                addr(destination).ip().to_canonical()
            );
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn trusted_networks_match_plain_and_mapped_addresses() {
    let trusted = TrustedNetworks::new(["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
    assert!(trusted.contains("10.1.2.3".parse().unwrap()));
    assert!(trusted.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(trusted.contains("::1".parse().unwrap()));
    assert!(!trusted.contains("192.168.0.1".parse().unwrap()));
    assert!(!TrustedNetworks::default().contains("127.0.0.1".parse().unwrap()));
}

#[test]
fn local_headers_decode_without_addresses() {
    for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
        let mut buf = BytesMut::from(&encode_local(version)[..]);
        let header = decode(&mut buf, DEFAULT_MAX_HEADER_LEN).unwrap().unwrap();
        assert_eq!(header.addrs(), None, "{version:?}");
        assert!(buf.is_empty());
    }
}
