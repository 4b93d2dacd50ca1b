//! `sluice user add --users FILE --mechanism scram-sha-512 NAME`: adds (or replaces) a user's
//! salted SCRAM credential in a users file, reading the password from standard input. The
//! password itself is never written.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use proxy_core::sasl::{Mechanism, ScramCredential, UserStore, check_iterations, check_username};

/// Runs `sluice user add`; errors go to standard error and exit 1.
pub(crate) fn add(
    users: &Path,
    mechanism: &str,
    iterations: u32,
    min_password: usize,
    name: &str,
) -> ExitCode {
    match try_add(users, mechanism, iterations, min_password, name) {
        Ok(message) => {
            let _ = writeln!(std::io::stdout(), "{message}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "sluice: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_add(
    users: &Path,
    mechanism: &str,
    iterations: u32,
    min_password: usize,
    name: &str,
) -> anyhow::Result<String> {
    let hash = match mechanism.parse::<Mechanism>()? {
        Mechanism::Scram(hash) => hash,
        Mechanism::Plain => bail!(
            "--mechanism: PLAIN logins are checked against a SCRAM credential; add one with \
             scram-sha-256 or scram-sha-512"
        ),
    };
    check_username(name).map_err(|message| anyhow::anyhow!("NAME: {message}"))?;
    let iterations = check_iterations(iterations.into())
        .map_err(|message| anyhow::anyhow!("--iterations: {message}"))?;
    let mut store = match std::fs::read_to_string(users) {
        Ok(text) => UserStore::parse(&text).with_context(|| users.display().to_string())?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => UserStore::default(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", users.display())),
    };
    let password = read_password()?;
    let length = password.chars().count();
    if length < min_password {
        bail!(
            "the password has {length} characters; at least {min_password} are required \
             (--min-password-length)"
        );
    }
    let credential = ScramCredential::generate(hash, &password, iterations)
        .map_err(|_| anyhow::anyhow!("no randomness for the salt"))?;
    store.add(name, credential);
    write_private(users, &store.to_toml())?;
    Ok(format!(
        "{}: user {name:?} has a {} credential ({} user(s) in the file)",
        users.display(),
        hash.mechanism(),
        store.len()
    ))
}

/// The first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on standard input (write it as the first line)");
    }
    Ok(password.to_owned())
}

/// Replaces `path` with `text` through a temporary file readable by its owner only, so a
/// reader never sees half a file.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(err).context(format!("cannot write {}", path.display()))
    })
}
