//! What tells one version of a watched file from the next: replaced (a new inode, as `sluice
//! user` and kubelet's ConfigMap swaps do), or rewritten (a new modification time or size).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::SystemTime;

/// A file's version; `None`: no file.
pub(crate) type Stamp = Option<(u64, u64, SystemTime, u64)>;

/// The version of the file at `path` now.
pub(crate) fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino(), meta.modified().ok()?, meta.len()))
}
