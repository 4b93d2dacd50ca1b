//! Loading: the passes over a config's text in order (see the module documentation of
//! [`super`]), and, for a file, the files it names; every error located at its line.

use std::path::Path;

use super::error::{ConfigError, ConfigErrors};
use super::lines::KeyLines;
use super::{Config, files, first_pass, validate};

/// Parses and validates a configuration, reporting every problem found. Files the config
/// names are not read (but a cluster's password file is): [`load`] reads them.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, Path::new("."))
}

/// Like [`parse`], resolving relative file paths (certificates, keys, CA bundles) against
/// `base`, the directory of the config file.
pub fn parse_in(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
    check(text, base, false).map(|loaded| loaded.config)
}

/// A configuration loaded from a file, with where each of its keys is, for errors found
/// later (when the plan is built).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// The line of each key of the file.
    pub lines: KeyLines,
}

/// Reads the file at `path`, [`parse`]s it, and reads every certificate, key, CA bundle and
/// users file it names, reporting each one that cannot be used at its key together with
/// every other error.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {err}", path.display()),
        )
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check(&text, base, true)
}

/// Both passes over `text`, and with `read_files` the files it names; errors in file order,
/// each with its line.
fn check(text: &str, base: &Path, read_files: bool) -> Result<Loaded, ConfigErrors> {
    let first = match first_pass::parse(text) {
        Ok(first) => first,
        Err(mut errors) => {
            KeyLines::of(text).locate(&mut errors);
            return Err(ConfigErrors(errors));
        }
    };
    let lines = first.lines.clone();
    let mut checked = validate::validate(first, base);
    if read_files {
        checked.errors.extend(files::check(&checked.files));
    }
    lines.locate(&mut checked.errors);
    match checked.config {
        Some(config) if checked.errors.is_empty() => Ok(Loaded { config, lines }),
        _ => Err(ConfigErrors(checked.errors)),
    }
}
