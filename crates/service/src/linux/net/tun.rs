//! The session's tun device and, where `/dev/net/tun` is closed to users, its private device
//! node (design §2).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};

use super::sys;

/// The system's tun clone device.
pub(crate) const CLONE_DEVICE: &str = "/dev/net/tun";
/// Its major and minor numbers.
const TUN_MAJOR: u64 = 10;
const TUN_MINOR: u64 = 200;

/// Creates the persistent tun `name` owned by the user.
pub(crate) fn create(name: &str, uid: u32, gid: u32) -> io::Result<()> {
    sys::create_persistent_tun(name, uid, gid)
}

/// Whether every user may open `/dev/net/tun` (udev makes it 0666 on desktops).
pub(crate) fn clone_device_open_to_users() -> bool {
    std::fs::metadata(CLONE_DEVICE).is_ok_and(|m| m.permissions().mode() & 0o006 == 0o006)
}

/// Creates a tun device node at `path`, owned by the user and private to them, and its
/// directory (root, 0755) if needed.
pub(crate) fn create_node(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    remove_node(path)?;
    let make = || {
        mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(TUN_MAJOR, TUN_MINOR),
        )
    };
    match make() {
        Ok(()) => {}
        // The directory goes with the last node (below); make it again.
        Err(nix::errno::Errno::ENOENT) => {
            let Some(dir) = path.parent() else {
                return Err(io::Error::from(nix::errno::Errno::ENOENT));
            };
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(dir)
                .or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            make()?;
        }
        Err(e) => return Err(e.into()),
    }
    chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    Ok(())
}

/// Removes a device node we made; refuses to remove anything that is not a tun node.
pub(crate) fn remove_node(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_char_device() && m.rdev() == makedev(TUN_MAJOR, TUN_MINOR) => {
            std::fs::remove_file(path)?;
            // The directory goes when its last node does (fails harmlessly while others
            // remain), so that a stopped service leaves nothing in /dev.
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a tun device node; not touching it",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
