//! Mapping a client certificate to a principal: its subject CN, its first SAN, or its whole
//! subject (RFC 4514).

use x509_cert::Certificate;
use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// id-at-commonName.
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// id-ce-subjectAltName.
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// Which part of the client certificate names the principal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrincipalSource {
    /// The subject's common name (the last CN, the most specific).
    #[default]
    CommonName,
    /// The first DNS name, email address or URI in the subject alternative names.
    SubjectAltName,
    /// The whole subject, as an RFC 4514 string.
    Subject,
}

/// The principal `source` names in the DER certificate `der`, if it has one.
pub(crate) fn principal(der: &[u8], source: PrincipalSource) -> Option<String> {
    let cert = Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    match source {
        PrincipalSource::Subject => Some(tbs.subject.to_string()),
        PrincipalSource::CommonName => tbs
            .subject
            .0
            .iter()
            .rev()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|atv| atv.oid == COMMON_NAME)
            .find_map(|atv| directory_string(&atv.value)),
        PrincipalSource::SubjectAltName => {
            let extension = tbs
                .extensions
                .as_ref()?
                .iter()
                .find(|ext| ext.extn_id == SUBJECT_ALT_NAME)?;
            let names = SubjectAltName::from_der(extension.extn_value.as_bytes()).ok()?;
            names.0.iter().find_map(|name| match name {
                GeneralName::DnsName(n) | GeneralName::Rfc822Name(n) => Some(n.as_str().to_owned()),
                GeneralName::UniformResourceIdentifier(n) => Some(n.as_str().to_owned()),
                _ => None,
            })
        }
    }
}

fn directory_string(value: &x509_cert::der::Any) -> Option<String> {
    let text = match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok()?.as_str().to_owned(),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()?
            .as_str()
            .to_owned(),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok()?.as_str().to_owned(),
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn cert(cn: &str, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example Org");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn each_source_reads_its_part_of_the_certificate() {
        let der = cert(
            "alice",
            vec![SanType::DnsName(
                "alice.clients.example".try_into().unwrap(),
            )],
        );
        assert_eq!(
            principal(&der, PrincipalSource::CommonName).as_deref(),
            Some("alice")
        );
        assert_eq!(
            principal(&der, PrincipalSource::SubjectAltName).as_deref(),
            Some("alice.clients.example")
        );
        let subject = principal(&der, PrincipalSource::Subject).unwrap();
        assert!(
            subject.contains("CN=alice") && subject.contains("O=Example Org"),
            "{subject}"
        );
    }

    #[test]
    fn missing_parts_and_garbage_give_no_principal() {
        let der = cert("bob", vec![]);
        assert_eq!(principal(&der, PrincipalSource::SubjectAltName), None);
        assert_eq!(
            principal(b"not a certificate", PrincipalSource::CommonName),
            None
        );
    }
}
