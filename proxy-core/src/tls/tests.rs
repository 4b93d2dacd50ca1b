//! Unit tests: ClientHellos produced by a real rustls client, and PEM files produced by rcgen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;

// === ClientHello ===

/// The first flight a rustls client sends to `server_name`, offering `alpn`.
fn client_hello(server_name: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        // Never used: the handshake does not get past the hello.
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut flight = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut flight).unwrap();
    }
    flight
}

#[test]
fn whole_hello_gives_sni_and_alpn() {
    let hello = client_hello("a.example", &[b"h2"]);
    let facts = peek_client_hello(&hello).unwrap().unwrap();
    assert_eq!(facts.sni.as_deref(), Some("a.example"));
    assert_eq!(facts.alpn, vec![b"h2".to_vec()]);
}

#[test]
fn several_alpn_protocols_keep_the_client_order() {
    let hello = client_hello("b.example", &[b"h2", b"http/1.1"]);
    let facts = peek_client_hello(&hello).unwrap().unwrap();
    assert_eq!(facts.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
}

#[test]
fn sni_is_lower_cased() {
    let hello = client_hello("A.Example", &[]);
    let facts = peek_client_hello(&hello).unwrap().unwrap();
    assert_eq!(facts.sni.as_deref(), Some("a.example"));
    assert!(facts.alpn.is_empty());
}

#[test]
fn every_prefix_needs_more_bytes() {
    let hello = client_hello("a.example", &[b"h2"]);
    for len in 0..hello.len() {
        assert_eq!(
            peek_client_hello(&hello[..len]),
            Ok(None),
            "prefix of {len} bytes"
        );
    }
}

/// Hellos rustls parsed on this thread while `f` ran.
fn parses_during(f: impl FnOnce()) -> usize {
    let before = super::client_hello::tests::parses();
    f();
    super::client_hello::tests::parses() - before
}

#[test]
fn a_hello_sent_a_byte_at_a_time_is_parsed_once_when_whole() {
    let hello = client_hello("a.example", &[b"h2"]);
    let parsed = parses_during(|| {
        for len in 0..=hello.len() {
            let _ = peek_client_hello(&hello[..len]);
        }
    });
    assert_eq!(parsed, 1);
}

#[test]
fn a_hello_fragmented_over_two_records_is_whole_only_with_both() {
    let hello = client_hello("a.example", &[b"h2"]);
    let (header, payload) = hello.split_at(5);
    let (first, second) = payload.split_at(100);
    let mut flight = Vec::new();
    for part in [first, second] {
        flight.extend_from_slice(&header[..3]);
        flight.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        flight.extend_from_slice(part);
    }
    let parsed = parses_during(|| {
        for len in 0..flight.len() {
            assert_eq!(peek_client_hello(&flight[..len]), Ok(None), "{len} bytes");
        }
    });
    assert_eq!(parsed, 0);
    let facts = peek_client_hello(&flight).unwrap().unwrap();
    assert_eq!(facts.sni.as_deref(), Some("a.example"));
}

#[test]
fn a_largest_record_trickled_in_is_parsed_once_at_the_limit() {
    // A handshake record declaring the largest payload, its message declaring more.
    let mut flight = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff];
    flight.resize(MAX_CLIENT_HELLO, 0);
    let parsed = parses_during(|| {
        for len in 0..MAX_CLIENT_HELLO {
            assert_eq!(peek_client_hello(&flight[..len]), Ok(None), "{len} bytes");
        }
        assert!(peek_client_hello(&flight).is_err());
    });
    assert_eq!(parsed, 1);
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut buf = client_hello("a.example", &[b"h2"]);
    // A TLS 1.3 middlebox-compatibility ChangeCipherSpec, then junk.
    buf.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0xde, 0xad]);
    let facts = peek_client_hello(&buf).unwrap().unwrap();
    assert_eq!(facts.sni.as_deref(), Some("a.example"));
}

#[test]
fn input_is_left_untouched() {
    let hello = client_hello("a.example", &[b"h2"]);
    let before = hello.clone();
    let _ = peek_client_hello(&hello);
    let _ = peek_client_hello(&hello);
    assert_eq!(hello, before);
}

#[test]
fn plaintext_is_not_tls() {
    assert_eq!(
        peek_client_hello(b"GET / HTTP/1.1\r\n"),
        Err(ClientHelloError::NotTls)
    );
    // One byte is enough to tell.
    assert_eq!(peek_client_hello(b"G"), Err(ClientHelloError::NotTls));
    // A Kafka request starts with a length, not a handshake record.
    assert_eq!(
        peek_client_hello(&[0, 0, 0, 20, 0, 18]),
        Err(ClientHelloError::NotTls)
    );
}

#[test]
fn empty_input_needs_more_bytes() {
    assert_eq!(peek_client_hello(&[]), Ok(None));
}

#[test]
fn ip_address_server_name_has_no_sni() {
    let hello = client_hello("192.0.2.1", &[b"h2"]);
    let facts = peek_client_hello(&hello).unwrap().unwrap();
    assert_eq!(facts.sni, None);
    assert_eq!(facts.alpn, vec![b"h2".to_vec()]);
}

#[test]
fn garbage_after_a_handshake_byte_never_panics() {
    let cases: &[&[u8]] = &[
        &[0x16],
        &[0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x16, 0x03, 0x01, 0x00, 0x00],
        &[0x16, 0x03, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00],
        &[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00],
        b"\x16GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    ];
    for case in cases {
        match peek_client_hello(case) {
            Ok(None) | Err(ClientHelloError::Invalid(_)) => {}
            other => panic!("{case:?} gave {other:?}"),
        }
    }
}

#[test]
fn corrupted_hellos_never_panic() {
    let hello = client_hello("a.example", &[b"h2"]);
    for at in 1..hello.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = hello.clone();
            bad[at] ^= flip;
            // Some flips land in random or opaque fields and still parse: any outcome but a
            // panic or `NotTls` is fine.
            assert_ne!(peek_client_hello(&bad), Err(ClientHelloError::NotTls));
        }
    }
}

#[test]
fn a_hello_longer_than_the_limit_is_too_large() {
    // A handshake record of the largest size, holding the start of a ClientHello that claims
    // 20000 bytes: it could only finish in a later record.
    let mut buf = vec![0x16, 0x03, 0x01, 0x40, 0x00];
    buf.extend_from_slice(&[0x01, 0x00, 0x4e, 0x20, 0x03, 0x03]);
    buf.resize(MAX_CLIENT_HELLO, 0);
    assert_eq!(peek_client_hello(&buf[..MAX_CLIENT_HELLO - 1]), Ok(None));
    assert_eq!(
        peek_client_hello(&buf),
        Err(ClientHelloError::TooLarge {
            max: MAX_CLIENT_HELLO
        })
    );
    // More bytes do not help.
    buf.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x10]);
    assert!(matches!(
        peek_client_hello(&buf),
        Err(ClientHelloError::TooLarge { .. })
    ));
}

#[test]
fn errors_have_labels() {
    assert_eq!(ClientHelloError::NotTls.label(), "client_hello_not_tls");
    assert_eq!(
        ClientHelloError::Invalid(String::new()).label(),
        "client_hello_invalid"
    );
    assert_eq!(
        ClientHelloError::TooLarge { max: 1 }.label(),
        "client_hello_too_large"
    );
}

// === PEM ===

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-core-tls-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A CA and a leaf it issued, as PEM: (ca, leaf, leaf key).
fn pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[test]
fn loads_chain_key_and_ca_bundle() {
    let dir = temp_dir("load");
    let (ca, leaf, key) = pki();
    let chain = write(&dir, "chain.pem", &format!("{leaf}{ca}"));
    let key = write(&dir, "key.pem", &key);
    let bundle = write(&dir, "ca.pem", &ca);

    let certs = load_cert_chain(&chain).unwrap();
    assert_eq!(certs.len(), 2);
    assert!(matches!(
        load_private_key(&key).unwrap(),
        rustls_pki_types::PrivateKeyDer::Pkcs8(_)
    ));
    assert_eq!(load_ca_bundle(&bundle).unwrap().len(), 1);

    // The loaded pieces make a working server config.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, load_private_key(&key).unwrap())
        .unwrap();
}

#[test]
fn a_key_file_is_found_among_other_sections() {
    let dir = temp_dir("mixed");
    let (_, leaf, key) = pki();
    let both = write(&dir, "both.pem", &format!("{leaf}{key}"));
    assert_eq!(load_cert_chain(&both).unwrap().len(), 1);
    load_private_key(&both).unwrap();
}

#[test]
fn missing_file_names_the_path() {
    let path = temp_dir("missing").join("nope.pem");
    for err in [
        load_cert_chain(&path).unwrap_err(),
        load_private_key(&path).unwrap_err(),
        load_ca_bundle(&path).unwrap_err(),
    ] {
        assert!(matches!(err, PemError::Unreadable { .. }), "{err:?}");
        assert_eq!(err.path(), path);
        assert!(err.to_string().contains("nope.pem"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[test]
fn file_without_certificate_names_the_path() {
    let dir = temp_dir("nocert");
    let (_, _, key) = pki();
    let key_only = write(&dir, "key-only.pem", &key);
    for err in [
        load_cert_chain(&key_only).unwrap_err(),
        load_ca_bundle(&key_only).unwrap_err(),
    ] {
        assert!(matches!(err, PemError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("key-only.pem"), "{err}");
    }
    let empty = write(&dir, "empty.pem", "");
    assert!(matches!(
        load_cert_chain(&empty),
        Err(PemError::NoCertificate { .. })
    ));
}

#[test]
fn file_without_key_names_the_path() {
    let dir = temp_dir("nokey");
    let (ca, _, _) = pki();
    let cert_only = write(&dir, "cert-only.pem", &ca);
    let err = load_private_key(&cert_only).unwrap_err();
    assert!(matches!(err, PemError::NoPrivateKey { .. }), "{err:?}");
    assert!(err.to_string().contains("cert-only.pem"), "{err}");
}

#[test]
fn malformed_pem_names_the_path() {
    let dir = temp_dir("malformed");
    let path = write(
        &dir,
        "cut.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n", // no end marker
    );
    let err = load_cert_chain(&path).unwrap_err();
    assert!(matches!(err, PemError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.pem"), "{err}");
}

#[test]
fn a_certificate_that_is_not_der_is_rejected_as_a_trust_anchor() {
    let dir = temp_dir("rejected");
    // Valid PEM and base64, but not an X.509 certificate.
    let path = write(
        &dir,
        "junk-ca.pem",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let err = load_ca_bundle(&path).unwrap_err();
    assert!(
        matches!(err, PemError::RejectedCertificate { index: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("junk-ca.pem"), "{err}");
}
