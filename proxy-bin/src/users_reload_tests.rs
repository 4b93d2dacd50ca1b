//! The users file's reload, on disk: a change is picked up, a broken file keeps the previous
//! users (and is reported once per change), a fixed file is picked up again.

use std::num::NonZeroU32;
use std::path::Path;

use proxy_core::sasl::{ScramCredential, ScramHash, UserStore};
use sluice_tests::certs::temp_dir;

use super::UsersFile;

fn store(users: &[(&str, &str)]) -> UserStore {
    let mut store = UserStore::default();
    for (name, password) in users {
        let credential =
            ScramCredential::generate(ScramHash::Sha256, password, NonZeroU32::new(4096).unwrap())
                .unwrap();
        store.add(name, credential);
    }
    store
}

/// Replaces `path` as `sluice user` does: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_previous_users() {
    let dir = temp_dir("users-reload");
    let path = dir.join("users.toml");
    std::fs::write(&path, store(&[("alice", "wonderland")]).to_toml()).unwrap();
    let mut file = UsersFile::load(&path).unwrap();
    let users = file.users().clone();
    assert_eq!(file.reload(false), Ok(None), "nothing changed");
    assert_eq!(
        file.reload(true),
        Ok(Some(1)),
        "forced (SIGHUP): read anyway"
    );

    replace(
        &path,
        &store(&[("alice", "wonderland"), ("bob", "the-builder")]).to_toml(),
    );
    assert_eq!(file.reload(false), Ok(Some(2)));
    assert!(users.current().verify_plain("bob", "the-builder"));

    // Broken: an iteration count below Kafka's minimum. Reported once, previous users kept.
    replace(
        &path,
        "[users.bob.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 10\n",
    );
    let error = file.reload(false).unwrap_err();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("users.bob.SCRAM-SHA-256.iterations"),
        "{error}"
    );
    assert_eq!(file.reload(false), Ok(None), "reported once");
    assert!(users.current().verify_plain("bob", "the-builder"));

    // Gone: the previous users stay too.
    std::fs::remove_file(&path).unwrap();
    let error = file.reload(false).unwrap_err();
    assert!(error.contains("cannot read the users file"), "{error}");
    assert!(users.current().verify_plain("alice", "wonderland"));

    // Fixed: picked up again.
    replace(&path, &store(&[("carol", "carol-secret")]).to_toml());
    assert_eq!(file.reload(false), Ok(Some(1)));
    assert!(users.current().verify_plain("carol", "carol-secret"));
    assert!(!users.current().verify_plain("alice", "wonderland"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_that_cannot_be_loaded_at_start_is_an_error_naming_it() {
    let dir = temp_dir("users-reload-start");
    let path = dir.join("users.toml");
    std::fs::write(&path, "[people]\n").unwrap();
    let error = UsersFile::load(&path).unwrap_err();
    assert!(error.contains(&path.display().to_string()), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}
