//! `BackendTls::from_files`: what each misconfiguration reports.

use super::test_support::{ScratchDir, TestCa, names_path};
use super::*;

fn with_ca(path: PathBuf) -> BackendTlsOptions {
    BackendTlsOptions {
        ca: Some(path),
        ..BackendTlsOptions::default()
    }
}

#[test]
fn a_valid_bundle_builds() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("test CA");
    let opts = with_ca(dir.write("ca.pem", &ca.pem()));
    let tls = BackendTls::from_files(&opts).unwrap();
    assert_eq!(tls.options(), &opts);
    assert_eq!(tls, BackendTls::from_files(&opts).unwrap());
}

#[test]
fn a_missing_ca_file_is_unreadable_and_named() {
    let dir = ScratchDir::new();
    let path = dir.path("missing.pem");
    let err = BackendTls::from_files(&with_ca(path.clone())).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::Unreadable { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(names_path(&err, &path), "{err}");
}

#[test]
fn a_ca_file_without_a_certificate_is_named() {
    let dir = ScratchDir::new();
    let key_only = TestCa::new("ca").server_cert("backend.example").key_pem();
    let path = dir.write("key-only.pem", &key_only);
    let err = BackendTls::from_files(&with_ca(path.clone())).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::NoCertificate { path: p } if *p == path),
        "{err:?}"
    );
    assert!(names_path(&err, &path), "{err}");
    assert!(err.to_string().contains("no certificate"), "{err}");
}

#[test]
fn malformed_pem_is_named() {
    let dir = ScratchDir::new();
    let path = dir.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    );
    let err = BackendTls::from_files(&with_ca(path.clone())).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::InvalidPem { .. }),
        "{err:?}"
    );
    assert!(names_path(&err, &path), "{err}");
}

#[test]
fn a_client_cert_without_a_key_is_named() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("ca");
    let cert = dir.write("client.pem", &ca.client_cert("sluice").cert_pem);
    let opts = BackendTlsOptions {
        ca: Some(dir.write("ca.pem", &ca.pem())),
        client_cert: Some(cert.clone()),
        ..BackendTlsOptions::default()
    };
    let err = BackendTls::from_files(&opts).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::ClientCertWithoutKey { cert: c } if *c == cert),
        "{err:?}"
    );
    assert!(names_path(&err, &cert), "{err}");
}

#[test]
fn a_client_key_without_a_cert_is_named() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("ca");
    let key = dir.write("client-key.pem", &ca.client_cert("sluice").key_pem());
    let opts = BackendTlsOptions {
        ca: Some(dir.write("ca.pem", &ca.pem())),
        client_key: Some(key.clone()),
        ..BackendTlsOptions::default()
    };
    let err = BackendTls::from_files(&opts).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::ClientKeyWithoutCert { .. }),
        "{err:?}"
    );
    assert!(names_path(&err, &key), "{err}");
}

#[test]
fn a_key_file_without_a_key_is_named() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("ca");
    let leaf = ca.client_cert("sluice");
    let cert = dir.write("client.pem", &leaf.cert_pem);
    let opts = BackendTlsOptions {
        ca: Some(dir.write("ca.pem", &ca.pem())),
        client_cert: Some(cert.clone()),
        // The certificate where the key should be.
        client_key: Some(cert.clone()),
        ..BackendTlsOptions::default()
    };
    let err = BackendTls::from_files(&opts).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::NoPrivateKey { path } if *path == cert),
        "{err:?}"
    );
    assert!(names_path(&err, &cert), "{err}");
}

#[test]
fn a_key_that_does_not_belong_to_the_cert_is_refused() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("ca");
    let cert = dir.write("client.pem", &ca.client_cert("sluice").cert_pem);
    let key = dir.write("other-key.pem", &ca.client_cert("other").key_pem());
    let opts = BackendTlsOptions {
        ca: Some(dir.write("ca.pem", &ca.pem())),
        client_cert: Some(cert.clone()),
        client_key: Some(key.clone()),
        ..BackendTlsOptions::default()
    };
    let err = BackendTls::from_files(&opts).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::ClientAuth { .. }),
        "{err:?}"
    );
    assert!(names_path(&err, &cert) && names_path(&err, &key), "{err}");
}

#[test]
fn an_invalid_server_name_is_refused() {
    let dir = ScratchDir::new();
    let opts = BackendTlsOptions {
        server_name: Some("not a name!".into()),
        ..with_ca(dir.write("ca.pem", &TestCa::new("ca").pem()))
    };
    let err = BackendTls::from_files(&opts).unwrap_err();
    assert!(
        matches!(&err, BackendTlsError::InvalidServerName { name, .. } if name == "not a name!"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"not a name!\""), "{err}");
}

#[test]
fn insecure_skip_verify_reads_no_ca() {
    let dir = ScratchDir::new();
    let opts = BackendTlsOptions {
        insecure_skip_verify: true,
        ..with_ca(dir.path("never-read.pem"))
    };
    assert!(BackendTls::from_files(&opts).is_ok());
}

#[test]
fn the_server_name_comes_from_the_override_or_the_host() {
    let dir = ScratchDir::new();
    let ca = dir.write("ca.pem", &TestCa::new("ca").pem());
    let plain = BackendTls::from_files(&with_ca(ca.clone())).unwrap();
    assert_eq!(
        plain.server_name_for("10.0.0.7").unwrap(),
        ServerName::try_from("10.0.0.7").unwrap()
    );
    assert_eq!(
        plain.server_name_for("kafka-1.internal").unwrap(),
        ServerName::try_from("kafka-1.internal").unwrap()
    );
    let err = plain.server_name_for("bad host!").unwrap_err();
    assert!(
        matches!(err, HandshakeError::InvalidServerName { .. }),
        "{err:?}"
    );
    let overridden = BackendTls::from_files(&BackendTlsOptions {
        server_name: Some("backend.example".into()),
        ..with_ca(ca)
    })
    .unwrap();
    assert_eq!(
        overridden.server_name_for("10.0.0.7").unwrap(),
        ServerName::try_from("backend.example").unwrap()
    );
}
