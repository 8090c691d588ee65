//! The real file system for the config-path policy.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use openvpnserv_policy::path::linux::{FileMeta, FileSystem};

/// `realpath` and `lstat` on the host.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFs;

impl FileSystem for HostFs {
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn metadata(&self, path: &Path) -> std::io::Result<FileMeta> {
        let m = std::fs::symlink_metadata(path)?;
        Ok(FileMeta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
            is_dir: m.is_dir(),
            is_file: m.is_file(),
        })
    }
}
