//! Key paths as operators see them in error messages: `listener[0].bind`,
//! `cluster.local.backends[1]`. Both serde wrappers and the validator build paths here so every
//! error uses the same form.

/// `parent.key`, or just `key` at the top level. Keys that are not TOML bare keys (a cluster
/// named `eu.west`, say) are quoted so the path still points at exactly one place.
pub(super) fn key(parent: &str, key: &str) -> String {
    let mut out = String::with_capacity(parent.len() + key.len() + 1);
    out.push_str(parent);
    push_key(&mut out, key);
    out
}

/// `parent[index]`.
pub(super) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Whether `outer` is `path` or a table or array holding it.
pub(super) fn encloses(outer: &str, path: &str) -> bool {
    match path.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// The path of a key that `serde_ignored` saw and our structs did not expect.
pub(super) fn from_ignored(path: &serde_ignored::Path<'_>) -> String {
    let mut out = String::new();
    push_ignored(&mut out, path);
    out
}

/// The table an ignored key is in, as [`super::keys::Table::path`] names it, and the key:
/// `listener[0].tls.cret` is in `listener.tls`, `cluster.main.bakends` in `cluster.NAME`.
pub(super) fn table_of_ignored(path: &serde_ignored::Path<'_>) -> (String, String) {
    let mut keys = Vec::new();
    push_keys(&mut keys, path);
    let key = keys.pop().unwrap_or_default();
    if keys.first().is_some_and(|first| first == "cluster")
        && let Some(name) = keys.get_mut(1)
    {
        "NAME".clone_into(name);
    }
    (keys.join("."), key)
}

fn push_keys(keys: &mut Vec<String>, path: &serde_ignored::Path<'_>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Map { parent, key } => {
            push_keys(keys, parent);
            keys.push(key.clone());
        }
        serde_ignored::Path::Seq { parent, .. }
        | serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => push_keys(keys, parent),
    }
}

/// The path at which `serde_path_to_error` saw a type error.
pub(super) fn from_tracked(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => push_index(&mut out, *index),
            serde_path_to_error::Segment::Map { key } => push_key(&mut out, key),
            serde_path_to_error::Segment::Enum { variant } => push_key(&mut out, variant),
            // Only reachable through serde internals (e.g. buffered content); say so rather
            // than print a misleading path.
            serde_path_to_error::Segment::Unknown => push_key(&mut out, "?"),
        }
    }
    out
}

fn push_ignored(out: &mut String, path: &serde_ignored::Path<'_>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            push_ignored(out, parent);
            push_index(out, *index);
        }
        serde_ignored::Path::Map { parent, key } => {
            push_ignored(out, parent);
            push_key(out, key);
        }
        // `Option` and newtype layers exist in our structs, not in the file.
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => push_ignored(out, parent),
    }
}

pub(super) fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        out.push_str(key);
    } else {
        out.push_str(&format!("{key:?}"));
    }
}

pub(super) fn push_index(out: &mut String, index: usize) {
    out.push_str(&format!("[{index}]"));
}
