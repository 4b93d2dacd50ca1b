//! Where each key is in the file: the 1-based line of every key path, read from the spans of
//! the parsed TOML document, so an error can say `listener[0].bind (line 4): ...`.

use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::path;

/// The line of every key and array element written in one file.
#[derive(Debug, Default, Clone)]
pub struct KeyLines {
    /// Key paths as errors spell them, with the line each starts on; tables of an array
    /// (`[[listener]]`) are at the line of their header.
    lines: Vec<(String, usize)>,
}

// === impl KeyLines ===

impl KeyLines {
    /// The lines of `text`; none when it is not valid TOML (its syntax error has the line).
    pub fn of(text: &str) -> Self {
        match DeTable::parse(text) {
            Ok(document) => Self::of_document(text, document.get_ref()),
            Err(_) => Self::default(),
        }
    }

    /// The lines of the parsed `document` of `text`.
    pub(super) fn of_document(text: &str, document: &DeTable<'_>) -> Self {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut lines = Self::default();
        lines.table(&starts, "", document);
        lines
    }

    fn table(&mut self, starts: &[usize], at: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let mut key_at = at.to_owned();
            path::push_key(&mut key_at, key.get_ref());
            self.lines
                .push((key_at.clone(), line(starts, key.span().start)));
            self.value(starts, &key_at, value.get_ref());
        }
    }

    fn value(&mut self, starts: &[usize], at: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.table(starts, at, table),
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    let item_at = path::index(at, i);
                    self.lines
                        .push((item_at.clone(), line(starts, item.span().start)));
                    self.value(starts, &item_at, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The line of the key at `path`, or, when it is not written (a missing key), of the
    /// nearest enclosing table that is: the header the key belongs under.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.lines
            .iter()
            .filter(|(at, _)| path::encloses(at, path))
            .max_by_key(|(at, _)| at.len())
            .map(|(_, line)| *line)
    }

    /// Gives each error with a path its line, and puts them in file order (whole-file errors
    /// first), so the list reads from the top of the file down.
    pub fn locate(&self, errors: &mut [ConfigError]) {
        for error in errors.iter_mut() {
            if error.line.is_none() && !error.path.is_empty() {
                error.line = self.line_of(&error.path);
            }
        }
        errors.sort_by_key(|error| error.line.unwrap_or(0));
    }
}

/// The 1-based line of byte `offset`, given the byte offset each line starts at.
fn line(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&start| start <= offset)
}
