//! Config tests for `[cluster.NAME.sasl]`: password files on disk, in a scratch directory the
//! config's relative paths resolve against.

use std::path::{Path, PathBuf};

use proxy_core::sasl::{Mechanism, ScramHash};
use sluice_tests::certs::temp_dir;

use super::tests::assert_error;
use super::{ConfigError, parse_in};

/// The keys the issue names as a contract, with `sasl_keys` in the `[cluster.main.sasl]` table
/// and `extra` appended to the file.
fn config(sasl_keys: &str, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:19092\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\ngateway = \"port-per-broker\"\nbroker_port_start = 19100\n\n\
         [cluster.main]\nbackends = [\"127.0.0.1:9092\"]\n[cluster.main.sasl]\n{sasl_keys}\n{extra}"
    )
}

const SCRAM: &str = "mechanism = \"SCRAM-SHA-512\"\nusername = \"proxy\"\n\
                     password_file = \"proxy.secret\"";

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch directory holding `proxy.secret` with `password`.
fn dir_with_password(password: &str) -> Scratch {
    let dir = Scratch(temp_dir("sasl-config"));
    std::fs::write(dir.join("proxy.secret"), password).unwrap();
    dir
}

fn errors_in(text: &str, dir: &Path) -> Vec<ConfigError> {
    match parse_in(text, dir) {
        Ok(config) => panic!("expected errors, parsed {config:?}"),
        Err(errors) => errors.0,
    }
}

#[test]
fn the_contract_keys_parse_and_the_password_file_resolves_against_the_config_directory() {
    let dir = dir_with_password("s3cret\n");
    let parsed = parse_in(&config(SCRAM, ""), &dir).unwrap();
    let sasl = parsed.clusters["main"].sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, Mechanism::Scram(ScramHash::Sha512));
    assert_eq!(sasl.username, "proxy");
    assert_eq!(sasl.password.expose(), "s3cret");
    let printed = format!("{parsed:?}");
    assert!(
        !printed.contains("s3cret"),
        "the password leaked: {printed}"
    );

    // The connector gets the same credentials.
    let plan = crate::wiring::plan(&parsed).unwrap();
    assert_eq!(plan.clusters[0].sasl.as_deref(), Some(sasl));

    // A cluster without the table has none.
    let without = config(SCRAM, "")
        .replace("[cluster.main.sasl]\n", "")
        .replace(SCRAM, "");
    let parsed = parse_in(&without, &dir).unwrap();
    assert_eq!(parsed.clusters["main"].sasl, None);
}

#[test]
fn mechanisms_ignore_case_and_line_endings_are_stripped() {
    let dir = dir_with_password("pw\r\n");
    let text = config(&SCRAM.replace("SCRAM-SHA-512", "scram-sha-256"), "");
    let sasl = parse_in(&text, &dir).unwrap().clusters["main"].sasl.clone();
    let sasl = sasl.unwrap();
    assert_eq!(sasl.mechanism, Mechanism::Scram(ScramHash::Sha256));
    assert_eq!(sasl.password.expose(), "pw");

    // Blank lines after it too: a password holds no line break.
    std::fs::write(dir.join("proxy.secret"), "pw\n\r\n\n").unwrap();
    let sasl = parse_in(&text, &dir).unwrap().clusters["main"].sasl.clone();
    assert_eq!(sasl.unwrap().password.expose(), "pw");

    let absolute = dir.join("proxy.secret").display().to_string();
    let text = config(&SCRAM.replace("proxy.secret", &absolute), "");
    assert!(parse_in(&text, Path::new("/nonexistent")).is_ok());
}

#[test]
fn an_unknown_mechanism_lists_the_accepted_ones() {
    let dir = dir_with_password("s3cret");
    let found = errors_in(&config(&SCRAM.replace("SCRAM-SHA-512", "GSSAPI"), ""), &dir);
    assert_error(
        &found,
        "cluster.main.sasl.mechanism",
        "unknown SASL mechanism \"GSSAPI\": expected \"SCRAM-SHA-512\", \"SCRAM-SHA-256\" or \"PLAIN\"",
    );
}

#[test]
fn missing_keys_are_each_named() {
    let dir = dir_with_password("s3cret");
    let found = errors_in(&config("", ""), &dir);
    for key in ["mechanism", "username", "password_file"] {
        assert_error(
            &found,
            &format!("cluster.main.sasl.{key}"),
            "missing required key",
        );
    }
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn an_unreadable_or_empty_password_file_is_named_but_never_quoted() {
    let dir = dir_with_password("s3cret");
    let missing = dir.join("missing.secret");
    let text = config(&SCRAM.replace("proxy.secret", "missing.secret"), "");
    let found = errors_in(&text, &dir);
    assert_error(
        &found,
        "cluster.main.sasl.password_file",
        &format!("cannot read password file {}", missing.display()),
    );

    for empty in ["", "\n", "\r\n"] {
        std::fs::write(dir.join("proxy.secret"), empty).unwrap();
        let found = errors_in(&config(SCRAM, ""), &dir);
        assert_error(&found, "cluster.main.sasl.password_file", "is empty");
    }

    std::fs::write(dir.join("proxy.secret"), "x".repeat(5000)).unwrap();
    let found = errors_in(&config(SCRAM, ""), &dir);
    assert_error(&found, "cluster.main.sasl.password_file", "larger than");
    assert!(!found[0].message.contains("xxxx"), "{found:?}");
}

#[test]
fn plain_needs_tls_unless_allowed_in_so_many_words() {
    let dir = dir_with_password("s3cret");
    let plain = SCRAM.replace("SCRAM-SHA-512", "PLAIN");
    let found = errors_in(&config(&plain, ""), &dir);
    assert_error(
        &found,
        "cluster.main.sasl.mechanism",
        "allow_plain_without_tls = true",
    );

    let allowed = format!("{plain}\nallow_plain_without_tls = true");
    let config_allowed = parse_in(&config(&allowed, ""), &dir).unwrap();
    let sasl = config_allowed.clusters["main"].sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, Mechanism::Plain);

    let denied = format!("{plain}\nallow_plain_without_tls = false");
    assert_eq!(errors_in(&config(&denied, ""), &dir).len(), 1);

    let with_tls = config(&plain, "[cluster.main.tls]\nca = \"ca.pem\"\n");
    assert!(parse_in(&with_tls, &dir).is_ok());
}

#[test]
fn sasl_on_an_exec_cluster_is_refused() {
    let dir = dir_with_password("s3cret");
    let text =
        config(SCRAM, "").replace("backends = [\"127.0.0.1:9092\"]", "exec = [\"/bin/cat\"]");
    let found = errors_in(&text, &dir);
    assert_error(&found, "cluster.main.sasl", "exec");
}

#[test]
fn unknown_keys_and_bad_user_names_are_named() {
    let dir = dir_with_password("s3cret");
    let found = errors_in(&config(&format!("{SCRAM}\npassword = \"oops\""), ""), &dir);
    assert_error(&found, "cluster.main.sasl.password", "unknown key");
    assert!(
        found.iter().all(|e| !e.message.contains("oops")),
        "{found:?}"
    );

    let found = errors_in(&config(&SCRAM.replace("\"proxy\"", "\"\""), ""), &dir);
    assert_error(&found, "cluster.main.sasl.username", "must not be empty");
    let found = errors_in(&config(&SCRAM.replace("\"proxy\"", "\"a\\nb\""), ""), &dir);
    assert_error(&found, "cluster.main.sasl.username", "control characters");

    // SCRAM escapes ',' and '=' itself: such names are fine.
    let text = config(&SCRAM.replace("\"proxy\"", "\"team=a,b\""), "");
    let parsed = parse_in(&text, &dir).unwrap();
    assert_eq!(
        parsed.clusters["main"].sasl.as_ref().unwrap().username,
        "team=a,b"
    );
}

/// The one error at `cluster.main.sasl.password_file` for a `proxy.secret` holding `bytes`: it
/// names the file and not the content.
fn password_file_error(bytes: &[u8]) -> String {
    let dir = dir_with_password("");
    let file = dir.join("proxy.secret");
    std::fs::write(&file, bytes).unwrap();
    let found = errors_in(&config(SCRAM, ""), &dir);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "cluster.main.sasl.password_file");
    let message = found[0].message.clone();
    assert!(
        message.contains(&file.display().to_string()),
        "the file is not named: {message}"
    );
    assert!(!message.contains("hunter"), "the content leaked: {message}");
    message
}

#[test]
fn a_password_file_of_more_than_one_line_is_refused() {
    let message = password_file_error(b"hunter2\nhunter3\n");
    assert!(message.contains("2 non-empty lines"), "{message}");
    let message = password_file_error(b"hunter2\r\n\r\nhunter3");
    assert!(message.contains("2 non-empty lines"), "{message}");
}

#[test]
fn a_password_file_that_is_not_utf8_text_is_refused() {
    let message = password_file_error(b"hunter\xff\xfe2\n");
    assert!(message.contains("not UTF-8 text"), "{message}");
}

#[test]
fn a_password_file_with_control_characters_is_refused() {
    for (bytes, code) in [
        (&b"hunter\t2\n"[..], "U+0009"),
        (b"hunter\x002", "U+0000"),
        (b"hunter\x1b[2J", "U+001B"),
        // A blank line before the password is a line break in it.
        (b"\nhunter2\n", "U+000A"),
    ] {
        let message = password_file_error(bytes);
        assert!(
            message.contains(&format!("control character ({code})")),
            "{bytes:?}: {message}"
        );
    }
}

#[test]
fn a_password_file_linked_outside_its_directory_is_refused_naming_link_and_target() {
    let dir = dir_with_password("s3cret\n");
    let elsewhere = Scratch(temp_dir("sasl-config-elsewhere"));
    let target = elsewhere.join("real.secret");
    std::fs::write(&target, "s3cret\n").unwrap();
    let link = dir.join("linked.secret");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let text = config(&SCRAM.replace("proxy.secret", "linked.secret"), "");
    let found = errors_in(&text, &dir);
    assert_error(
        &found,
        "cluster.main.sasl.password_file",
        &format!(
            "password file {} is a symbolic link to {}, outside",
            link.display(),
            std::fs::canonicalize(&target).unwrap().display()
        ),
    );

    // A link that stays in the directory (Kubernetes' `..data/` volumes) is followed.
    std::fs::create_dir(dir.join("..data")).unwrap();
    std::fs::write(dir.join("..data/inner.secret"), "inside\n").unwrap();
    std::os::unix::fs::symlink("..data/inner.secret", dir.join("inner.secret")).unwrap();
    let text = config(&SCRAM.replace("proxy.secret", "inner.secret"), "");
    let parsed = parse_in(&text, &dir).unwrap();
    let sasl = parsed.clusters["main"].sasl.as_ref().unwrap();
    assert_eq!(sasl.password.expose(), "inside");
    assert_eq!(
        parsed.clusters["main"].sasl_password_file.as_deref(),
        Some(dir.join("inner.secret").as_path())
    );

    // A dangling link is named too.
    std::os::unix::fs::symlink(dir.join("gone.secret"), dir.join("dangling.secret")).unwrap();
    let text = config(&SCRAM.replace("proxy.secret", "dangling.secret"), "");
    let found = errors_in(&text, &dir);
    assert_error(
        &found,
        "cluster.main.sasl.password_file",
        "dangling.secret is a symbolic link that cannot be followed",
    );
}

#[test]
fn a_password_file_others_can_read_is_a_warning_naming_it_and_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = dir_with_password("s3cret\n");
    let file = dir.join("proxy.secret");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let parsed = parse_in(&config(SCRAM, ""), &dir).unwrap();
    let shown = file.display();
    let secret_warnings = |parsed: &super::Config| -> Vec<String> {
        parsed
            .warnings()
            .into_iter()
            .filter(|warning| warning.contains("password_file"))
            .collect()
    };
    assert_eq!(
        secret_warnings(&parsed),
        [format!(
            "cluster.main.sasl.password_file: password file {shown} has mode 0644: its group or \
             others can read or change it; run chmod 600 {shown}"
        )]
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        secret_warnings(&parsed).is_empty(),
        "{:?}",
        parsed.warnings()
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
    assert_eq!(
        secret_warnings(&parsed).len(),
        1,
        "group-writable is warned too"
    );
}
