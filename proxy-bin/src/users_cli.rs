//! `sluice user add|list|remove --users FILE`: manages the salted SCRAM credentials of a
//! users file. `add` reads the password without echo on a terminal, or as the first line of
//! standard input otherwise; the password itself is never written. `list` shows names and
//! mechanisms only. Every change replaces the file whole (a temporary file renamed over it),
//! keeping its permissions, so a running proxy that reloads it never reads half a file.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use proxy_core::sasl::{
    Mechanism, ScramCredential, ScramHash, UserStore, check_iterations, check_username,
};

/// The mode of a users file `sluice user` creates: its owner's only.
const NEW_FILE_MODE: u32 = 0o600;

/// Runs `sluice user add`; errors go to standard error and exit 1.
pub(crate) fn add(
    users: &Path,
    mechanism: &str,
    iterations: u32,
    min_password: usize,
    name: &str,
) -> ExitCode {
    report(try_add(users, mechanism, iterations, min_password, name))
}

/// Runs `sluice user list`: one line per user, the name, a tab, and the mechanisms it has a
/// credential for (never a salt or a key).
pub(crate) fn list(users: &Path) -> ExitCode {
    report(try_list(users))
}

/// Runs `sluice user remove`: the user's credential for `mechanism`, or all of them.
pub(crate) fn remove(users: &Path, mechanism: Option<&str>, name: &str) -> ExitCode {
    report(try_remove(users, mechanism, name))
}

/// Prints what a command did, or its error to standard error with exit 1.
fn report(outcome: anyhow::Result<String>) -> ExitCode {
    match outcome {
        Ok(message) => {
            if !message.is_empty() {
                let _ = writeln!(std::io::stdout(), "{message}");
            }
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
    let hash = scram_hash(mechanism)?;
    check_username(name).map_err(|message| anyhow::anyhow!("NAME: {message}"))?;
    let iterations = check_iterations(iterations.into())
        .map_err(|message| anyhow::anyhow!("--iterations: {message}"))?;
    let mut store = read_store(users)?.unwrap_or_default();
    let password = read_password(name)?;
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

fn try_list(users: &Path) -> anyhow::Result<String> {
    let store = read_store(users)?
        .with_context(|| format!("cannot read {}: no such file", users.display()))?;
    let lines: Vec<String> = store
        .names()
        .map(|name| format!("{name}\t{}", mechanism_names(&store.mechanisms(name))))
        .collect();
    Ok(lines.join("\n"))
}

fn try_remove(users: &Path, mechanism: Option<&str>, name: &str) -> anyhow::Result<String> {
    let hash = mechanism.map(scram_hash).transpose()?;
    let mut store = read_store(users)?
        .with_context(|| format!("cannot read {}: no such file", users.display()))?;
    let had = store.mechanisms(name);
    if had.is_empty() {
        bail!("{}: no user {name:?}", users.display());
    }
    let removed = store.remove(name, hash);
    if removed.is_empty() {
        bail!(
            "{}: user {name:?} has no {} credential (it has {})",
            users.display(),
            hash.map_or("such", ScramHash::mechanism),
            mechanism_names(&had)
        );
    }
    write_private(users, &store.to_toml())?;
    let left = store.mechanisms(name);
    let what = if left.is_empty() {
        format!("user {name:?} removed")
    } else {
        format!(
            "user {name:?} keeps {} (removed {})",
            mechanism_names(&left),
            mechanism_names(&removed)
        )
    };
    Ok(format!(
        "{}: {what} ({} user(s) in the file)",
        users.display(),
        store.len()
    ))
}

/// The SCRAM hash `--mechanism` names.
fn scram_hash(mechanism: &str) -> anyhow::Result<ScramHash> {
    match mechanism.parse::<Mechanism>()? {
        Mechanism::Scram(hash) => Ok(hash),
        Mechanism::Plain => bail!(
            "--mechanism: PLAIN logins are checked against a SCRAM credential; the file holds \
             scram-sha-256 or scram-sha-512 ones"
        ),
    }
}

fn mechanism_names(hashes: &[ScramHash]) -> String {
    let names: Vec<&str> = hashes.iter().map(|hash| hash.mechanism()).collect();
    names.join(" ")
}

/// The users in `users`, or `None` when there is no such file.
fn read_store(users: &Path) -> anyhow::Result<Option<UserStore>> {
    match std::fs::read_to_string(users) {
        Ok(text) => UserStore::parse(&text)
            .map(Some)
            .with_context(|| users.display().to_string()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", users.display())),
    }
}

/// The password for `name`: typed without echo when standard input is a terminal, else the
/// first line of standard input.
fn read_password(name: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password(format!("Password for {name}: "))
            .context("cannot read the password from the terminal")?;
        if password.is_empty() {
            bail!("no password typed");
        }
        let again = rpassword::prompt_password("The same password again: ")
            .context("cannot read the password from the terminal")?;
        if again != password {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(password);
    }
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

/// Replaces `path` with `text` through a temporary file, so a reader never sees half a file.
/// An existing file keeps its permissions (a symbolic link stays one: its target is
/// replaced); a new one is readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let (target, mode) = match std::fs::canonicalize(path) {
        Ok(target) => {
            let mode = std::fs::metadata(&target)
                .with_context(|| format!("cannot read {}", path.display()))?
                .permissions()
                .mode();
            (target, mode & 0o7777)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (path.to_owned(), NEW_FILE_MODE),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let tmp = temporary(&target);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&tmp)?;
        // Exactly the mode wanted, whatever the umask took away.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(err).context(format!("cannot write {}", path.display()))
    })
}

/// A temporary name beside `path`, in the same directory so the rename is atomic.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}
