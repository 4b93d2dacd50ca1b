//! Checks audit lines against the repository's JSON Schema (`docs/audit.schema.json`) with the
//! `jsonschema` Python package (Debian's `python3-jsonschema`, installed by
//! `scripts/install-deps.sh`): whatever a test's sink wrote, every line must validate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The schema file.
pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/audit.schema.json")
}

const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for number, line in enumerate(sys.stdin, 1):
    try:
        event = json.loads(line)
    except ValueError as err:
        print(f"line {number}: not JSON: {err}: {line.strip()}")
        bad += 1
        continue
    for error in validator.iter_errors(event):
        print(f"line {number}: {error.json_path}: {error.message}: {line.strip()}")
        bad += 1
sys.exit(1 if bad else 0)
"#;

/// Every line of `text` against the schema: `Err` with the problems, naming each line.
pub fn validate(text: &str) -> Result<(), String> {
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("/usr/bin/python3 (scripts/install-deps.sh): {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|err| format!("feeding the validator: {err}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| format!("waiting for the validator: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`validate`] on a file's lines; panics with the problems (a test helper).
pub fn assert_valid_file(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read the audit file {}: {err}", path.display()));
    if let Err(problems) = validate(&text) {
        panic!(
            "audit lines in {} fail docs/audit.schema.json:\n{problems}",
            path.display()
        );
    }
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_accepts_a_well_formed_line_and_rejects_a_wrong_one() {
        let good = r#"{"schema":"sluice.audit/v1","time":"2026-12-03T21:00:00.123456Z","event":"connection","action":"open","pid":42,"generation":0,"session":{"id":1,"listener":"kafka","client_addr":"10.0.0.1:5000","peer_addr":"127.0.0.1:40000","sni":null,"tls_version":null,"principal":null,"route":"main"}}"#;
        validate(good).unwrap();
        for bad in [
            // An unknown field.
            good.replace("\"pid\":42", "\"pid\":42,\"extra\":1"),
            // A close without its connection object.
            good.replace("\"action\":\"open\"", "\"action\":\"close\""),
            // Another schema version.
            good.replace("sluice.audit/v1", "sluice.audit/v2"),
            // A session without a field.
            good.replace("\"route\":\"main\"", "\"routed\":\"main\""),
        ] {
            assert!(validate(&bad).is_err(), "accepted: {bad}");
        }
    }
}
