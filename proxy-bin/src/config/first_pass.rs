//! The first pass over the text: TOML syntax, then serde into the [`super::raw`] structs with
//! every unknown key recorded by path, and every value of the wrong type recorded by path and
//! then taken out of the document so the rest can still be read.
//!
//! serde stops at the first type error, so the document is deserialized again after each one
//! without the offending key: `bind = 5` and `max_connections = "x"` in one file are two
//! errors in one run. A syntax error is the only error that ends the pass (the rest of the file
//! cannot be read), and it carries its line and column.

use serde_path_to_error::Segment;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::keys;
use super::lines::KeyLines;
use super::path;
use super::raw::RawConfig;

/// Type errors after which the file is not read further: past this many, the file is likely
/// not a Sluice config at all, and the list would only be noise.
const MAX_TYPE_ERRORS: usize = 100;

/// What the first pass found.
#[derive(Debug)]
pub(super) struct FirstPass {
    /// The document, without the keys whose values had the wrong type.
    pub(super) raw: RawConfig,
    /// Unknown keys and values of the wrong type, each at its path.
    pub(super) errors: Vec<ConfigError>,
    /// The keys taken out of the document: the second pass sees them as absent, and must not
    /// report them again (as missing, say).
    pub(super) removed: Vec<String>,
    /// The line of every key.
    pub(super) lines: KeyLines,
}

/// Reads `text`. `Err` holds a syntax error alone, or the type errors found when the document
/// could not be read past one of them.
pub(super) fn parse(text: &str) -> Result<FirstPass, Vec<ConfigError>> {
    let mut document = DeTable::parse(text).map_err(|err| {
        vec![ConfigError::new(
            "",
            format!("invalid TOML: {}", describe(text, &err)),
        )]
    })?;
    let lines = KeyLines::of_document(text, document.get_ref());
    let mut errors = Vec::new();
    let mut removed = Vec::new();
    while errors.len() < MAX_TYPE_ERRORS {
        let mut unknown = Vec::new();
        match deserialize(document.clone(), &mut unknown) {
            Ok(raw) => {
                errors.extend(unknown);
                return Ok(FirstPass {
                    raw,
                    errors,
                    removed,
                    lines,
                });
            }
            Err((at, message)) => {
                errors.push(ConfigError::new(path::from_tracked(&at), message));
                match remove(document.get_mut(), &at) {
                    Some(key) => removed.push(key),
                    // Nothing to take out (a path serde could not track): stop here.
                    None => return Err(errors),
                }
            }
        }
    }
    Err(errors)
}

/// One attempt: the raw config, or the path and message of the first type error. Unknown keys
/// are pushed onto `unknown`.
fn deserialize(
    document: Spanned<DeTable<'_>>,
    unknown: &mut Vec<ConfigError>,
) -> Result<RawConfig, (serde_path_to_error::Path, String)> {
    let mut record = |ignored: serde_ignored::Path<'_>| unknown.push(unknown_key(&ignored));
    let ignoring =
        serde_ignored::Deserializer::new(toml::Deserializer::from(document), &mut record);
    serde_path_to_error::deserialize(ignoring).map_err(|err| {
        let message = err.inner().message().trim_end().to_owned();
        (err.path().clone(), message)
    })
}

/// `unknown key`, with the closest key its table knows when that looks like a typo.
fn unknown_key(ignored: &serde_ignored::Path<'_>) -> ConfigError {
    let (table, key) = path::table_of_ignored(ignored);
    let message = match keys::suggestion(&table, &key) {
        Some(known) => format!("unknown key; did you mean {known}?"),
        None => "unknown key".to_owned(),
    };
    ConfigError::new(path::from_ignored(ignored), message)
}

/// Takes the key holding the value at `at` out of `document`, returning its path. A value in
/// an array takes the whole array with it: removing one element would renumber the others,
/// and their errors would name the wrong index.
fn remove(document: &mut DeTable<'_>, at: &serde_path_to_error::Path) -> Option<String> {
    let segments: Vec<&Segment> = at.iter().collect();
    let last_key = segments
        .iter()
        .rposition(|segment| matches!(segment, Segment::Map { .. }))?;
    let mut removed = String::new();
    remove_in_table(document, segments.get(..=last_key)?, &mut removed).then_some(removed)
}

fn remove_in_table(table: &mut DeTable<'_>, segments: &[&Segment], at: &mut String) -> bool {
    let Some((Segment::Map { key }, rest)) = segments.split_first() else {
        return false;
    };
    path::push_key(at, key);
    if rest.is_empty() {
        return table.remove(key.as_str()).is_some();
    }
    match table.get_mut(key.as_str()) {
        Some(value) => remove_in_value(value.get_mut(), rest, at),
        None => false,
    }
}

fn remove_in_value(value: &mut DeValue<'_>, segments: &[&Segment], at: &mut String) -> bool {
    match (value, segments.split_first()) {
        (DeValue::Table(table), _) => remove_in_table(table, segments, at),
        (DeValue::Array(array), Some((Segment::Seq { index }, rest))) => {
            path::push_index(at, *index);
            match array.get_mut(*index) {
                Some(item) => remove_in_value(item.get_mut(), rest, at),
                None => false,
            }
        }
        _ => false,
    }
}

/// toml's message with the line and column it points at, on one line: its own `Display` adds
/// a multi-line source excerpt, which would break our one-error-per-line output.
fn describe(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}
