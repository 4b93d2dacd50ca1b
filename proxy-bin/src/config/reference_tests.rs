//! The known-keys list ([`super::keys::TABLES`]) against the two things it must agree with:
//! the [`super::raw`] structs (what the config accepts) and `docs/configuration.md` (what the
//! reference documents). A key added to a struct and not to the list, or to the list and not
//! to the reference, fails here.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::first_pass;
use super::keys::TABLES;
use super::listener_authorization::RawAuthorization;
use super::listener_sasl::RawListenerSasl;
use super::raw::{
    RawAdmin, RawAudit, RawCluster, RawClusterSasl, RawClusterTls, RawConfig, RawLimits,
    RawListener, RawListenerTls, RawRoute, RawShutdown, RawTlsCertificate,
};

const REFERENCE: &str = include_str!("../../../docs/configuration.md");

/// A deserializer that only records the field names a derived struct asks for.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend(fields);
        Err(de::Error::custom("field names recorded"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields_of<'de, T: Deserialize<'de>>() -> BTreeSet<&'static str> {
    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    names.into_iter().collect()
}

/// The raw struct behind each table of the list.
fn struct_fields(table: &str) -> BTreeSet<&'static str> {
    match table {
        "" => fields_of::<RawConfig>(),
        "listener" => fields_of::<RawListener>(),
        "listener.tls" => fields_of::<RawListenerTls>(),
        "listener.tls.certificate" => fields_of::<RawTlsCertificate>(),
        "listener.sasl" => fields_of::<RawListenerSasl>(),
        "listener.authorization" => fields_of::<RawAuthorization>(),
        "listener.route" => fields_of::<RawRoute>(),
        // `RawStage` flattens the stage's own options beside `kind`, so serde does not name
        // its fields; the TOML test below shows `kind` is taken and nothing is unknown.
        "listener.stage" => BTreeSet::from(["kind"]),
        "cluster.NAME" => fields_of::<RawCluster>(),
        "cluster.NAME.tls" => fields_of::<RawClusterTls>(),
        "cluster.NAME.sasl" => fields_of::<RawClusterSasl>(),
        "shutdown" => fields_of::<RawShutdown>(),
        "admin" => fields_of::<RawAdmin>(),
        "limits" => fields_of::<RawLimits>(),
        "audit" => fields_of::<RawAudit>(),
        other => panic!("no raw struct for table {other:?}: add it here"),
    }
}

#[test]
fn the_known_keys_are_exactly_the_raw_structs_fields() {
    for table in TABLES {
        let listed: BTreeSet<&str> = table.keys.iter().copied().collect();
        assert_eq!(
            listed.len(),
            table.keys.len(),
            "{:?} lists a key twice",
            table.path
        );
        assert_eq!(
            listed,
            struct_fields(table.path),
            "keys::TABLES and the raw struct of {:?} disagree",
            table.path
        );
    }
}

/// A file holding table `path` (cluster names as `c`) with every key in `keys` set.
fn file_setting(path: &str, keys: &[&str]) -> String {
    let mut text = String::new();
    if path.starts_with("listener.") {
        text.push_str("[[listener]]\n");
    }
    let header = path.replace("NAME", "c");
    let last = header.rsplit('.').next().unwrap_or_default();
    match last {
        "" => {}
        "listener" | "route" | "stage" | "certificate" => text.push_str(&format!("[[{header}]]\n")),
        _ => text.push_str(&format!("[{header}]\n")),
    }
    for key in keys {
        // The value's type does not matter: a value of the wrong type is a type error, never
        // an unknown key.
        text.push_str(&format!("{key} = \"x\"\n"));
    }
    text
}

#[test]
fn every_known_key_is_accepted_and_any_other_is_unknown_in_its_table() {
    for table in TABLES {
        let text = file_setting(table.path, table.keys);
        let first = first_pass::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e:#?}"));
        let unknown: Vec<_> = first
            .errors
            .iter()
            .filter(|e| e.message.starts_with("unknown key"))
            .collect();
        assert!(unknown.is_empty(), "{text}\nreported unknown: {unknown:#?}");

        if table.path == "listener.stage" {
            // Any other key of a stage is the stage's option, checked by the stage.
            continue;
        }
        let mut keys = table.keys.to_vec();
        keys.push("not_a_sluice_key");
        let text = file_setting(table.path, &keys);
        let first = first_pass::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e:#?}"));
        let unknown: Vec<_> = first
            .errors
            .iter()
            .filter(|e| e.message.starts_with("unknown key"))
            .collect();
        assert_eq!(unknown.len(), 1, "{text}\n{unknown:#?}");
        assert!(
            unknown[0].path.ends_with("not_a_sluice_key"),
            "{unknown:#?}"
        );
    }
}

/// The keys of each `## heading`'s table in the reference, by heading.
fn documented() -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in REFERENCE.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.push((heading.trim().to_owned(), Vec::new()));
        } else if let Some(row) = line.strip_prefix("| `")
            && let Some((key, _)) = row.split_once('`')
            && let Some((_, keys)) = sections.last_mut()
        {
            keys.push(key.to_owned());
        }
    }
    sections
}

#[test]
fn the_reference_documents_every_known_key_and_no_other() {
    let sections = documented();
    for table in TABLES {
        let Some((_, keys)) = sections
            .iter()
            .find(|(heading, _)| heading == table.heading)
        else {
            panic!(
                "docs/configuration.md has no section \"## {}\"",
                table.heading
            );
        };
        let documented: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            documented.len(),
            keys.len(),
            "{} lists a key twice",
            table.heading
        );
        let known: BTreeSet<&str> = table.keys.iter().copied().collect();
        let missing: Vec<_> = known.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&known).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "docs/configuration.md, {}: keys not documented {missing:?}, documented keys the \
             config does not accept {unknown:?}",
            table.heading
        );
    }
    // Every section documenting keys is a table the config has.
    for (heading, keys) in &sections {
        assert!(
            keys.is_empty() || TABLES.iter().any(|table| table.heading == heading),
            "docs/configuration.md documents keys under \"## {heading}\", which is no table of \
             the config"
        );
    }
}
