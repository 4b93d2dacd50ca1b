//! Errors from loading the configuration. They are data, not a chain of causes: the operator
//! reads them, so each one carries the key path it is about, the line of that key in the file,
//! and a sentence saying what was found and what was expected.

use std::fmt;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.display())]
pub struct ConfigError {
    /// Where the problem is, e.g. `listener[0].bind`; empty when it is about the whole file
    /// (it cannot be read, or is not valid TOML).
    pub path: String,
    /// The 1-based line of the key in the file; for a missing key, the line of its table's
    /// header. `None` for whole-file errors and keys not written in the file.
    pub line: Option<usize>,
    /// What is wrong, quoting the offending value and saying what was expected.
    pub message: String,
}

/// Every problem found in one pass over the configuration; never empty when returned as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigError ===

impl ConfigError {
    /// An error about the value at `path`; its line is found later, from the document.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    /// `path (line N): message`, `path: message`, or the message alone for the whole file.
    fn display(&self) -> String {
        match (self.path.is_empty(), self.line) {
            (true, _) => self.message.clone(),
            (false, Some(line)) => format!("{} (line {line}): {}", self.path, self.message),
            (false, None) => format!("{}: {}", self.path, self.message),
        }
    }
}

/// `err` followed by each of its causes, `: `-separated, so an I/O error's reason (`No such
/// file or directory (os error 2)`) reaches the operator. A cause whose text the message
/// already holds (an error that prints its source itself) is not repeated.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = source.source();
    }
    text
}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// The errors, in file order once loading has located them.
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
