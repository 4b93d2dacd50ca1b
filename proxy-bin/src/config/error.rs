//! Errors from loading the configuration. They are data, not a chain of causes: the operator
//! reads them, so each one carries the key path it is about and a sentence saying what was
//! found and what was expected.

use std::fmt;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", .path, if .path.is_empty() { "" } else { ": " }, .message)]
pub struct ConfigError {
    /// Where the problem is, e.g. `listener[0].bind`; empty when it is about the whole file
    /// (it cannot be read, or is not valid TOML).
    pub path: String,
    /// What is wrong, quoting the offending value and saying what was expected.
    pub message: String,
}

/// Every problem found in one pass over the configuration; never empty when returned as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigError ===

impl ConfigError {
    /// An error about the value at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line, so the list reads well on a terminal and greps well in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
