//! Reading a stage's options from its config table, with errors that name the key.

use std::collections::BTreeSet;
use std::time::Duration;

use super::StageConfigError;
use crate::units;

/// A stage's option table. Every key a factory reads is remembered, so [`finish`](Self::finish)
/// can reject the keys nobody read (usually typos).
#[derive(Debug)]
pub struct StageOptions<'a> {
    table: &'a toml::Table,
    read: BTreeSet<&'a str>,
}

impl<'a> StageOptions<'a> {
    /// Options from `table` (the stage's config table without its `kind`).
    pub fn new(table: &'a toml::Table) -> Self {
        Self {
            table,
            read: BTreeSet::new(),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a toml::Value> {
        let (name, value) = self.table.get_key_value(key)?;
        self.read.insert(name.as_str());
        Some(value)
    }

    /// A byte size: an integer number of bytes or a string such as `"1MiB"`.
    pub fn byte_size(&mut self, key: &'static str) -> Result<Option<u64>, StageConfigError> {
        let invalid = |message: String| StageConfigError::InvalidOption { key, message };
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| invalid(format!("{n} is negative"))),
            Some(toml::Value::String(s)) => units::parse_byte_size(s)
                .map(Some)
                .map_err(|e| invalid(e.to_string())),
            Some(other) => Err(invalid(format!(
                "expected a byte size, found {}",
                other.type_str()
            ))),
        }
    }

    /// A count: a non-negative integer.
    pub fn count(&mut self, key: &'static str) -> Result<Option<u64>, StageConfigError> {
        let invalid = |message: String| StageConfigError::InvalidOption { key, message };
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| invalid(format!("{n} is negative"))),
            Some(other) => Err(invalid(format!(
                "expected a whole number, found {}",
                other.type_str()
            ))),
        }
    }

    /// A duration string such as `"5s"`.
    pub fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, StageConfigError> {
        let invalid = |message: String| StageConfigError::InvalidOption { key, message };
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => units::parse_duration(s)
                .map(Some)
                .map_err(|e| invalid(e.to_string())),
            Some(other) => Err(invalid(format!(
                "expected a duration string, found {}",
                other.type_str()
            ))),
        }
    }

    /// A string.
    pub fn string(&mut self, key: &'static str) -> Result<Option<&'a str>, StageConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(StageConfigError::InvalidOption {
                key,
                message: format!("expected a string, found {}", other.type_str()),
            }),
        }
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &'static str) -> Result<Option<Vec<&'a str>>, StageConfigError> {
        let invalid = |message: String| StageConfigError::InvalidOption { key, message };
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.as_str()),
                    other => Err(invalid(format!(
                        "expected a list of strings, found a {} in it",
                        other.type_str()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(invalid(format!(
                "expected a list of strings, found {}",
                other.type_str()
            ))),
        }
    }

    /// Rejects every key that was never read.
    pub fn finish(self) -> Result<(), StageConfigError> {
        match self.table.keys().find(|k| !self.read.contains(k.as_str())) {
            Some(key) => Err(StageConfigError::UnknownOption { key: key.clone() }),
            None => Ok(()),
        }
    }
}
