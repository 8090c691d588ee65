//! The direct DNS backend's files (design §4): `/etc/resolv.conf` itself, which every session
//! of the service shares.
//!
//! Sessions end in any order, so a session cannot put back what it found in the file: that
//! may be the settings of another session, which would then outlive it (the fault suite found
//! this: concurrent sessions killed in random order left a dead session's DNS behind). So the
//! file as it was before any session is kept once, as `resolv.conf.orig` in the run
//! directory, and each session's settings in a file of its own there (the one its journal
//! names). The file shows the settings of the session that applied last; when a session goes,
//! it shows the newest remaining one's, and the original when none remains. Each step is a
//! few file operations, run off the event loop; one lock keeps another session's step from
//! coming between them.
//!
//! Readers of `/etc/resolv.conf` (every resolver in every process) must see the old content or
//! the new, never an empty or half-written file. So the file is replaced by rename: a
//! temporary file beside it (beside the target, when it is a symlink), then `rename(2)`.
//! Where the file is a mount point (a bind mount, as in containers, or the service's sandbox,
//! which opens only the file for writing) or its directory is read-only, rename cannot
//! replace it;
//! then the new content is written in place with one `write(2)` at offset 0, padded with
//! blank lines to at least the old length, so that no truncation is needed and a reader sees
//! the old lines or the new ones (blank lines mean nothing to a resolver).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Held for each whole step, so that concurrent sessions' steps never interleave.
static LOCK: Mutex<()> = Mutex::new(());

/// The file as it was before any session, in the run directory.
const ORIGINAL: &str = "resolv.conf.orig";
/// A session's settings: this and its number.
const SESSION_PREFIX: &str = "resolv.conf.";

fn run_dir(mine: &Path) -> io::Result<&Path> {
    mine.parent()
        .ok_or_else(|| io::Error::other(format!("{} names no directory", mine.display())))
}

/// Writes one of our own files in the run directory whole or not at all: temp file, rename.
/// Not fsynced, like the journals beside them (`journal_file.rs`): they must outlive a crash of
/// the service, which the page cache does, not a power loss, after which the run directory
/// (tmpfs) is gone anyway. An fsync here cost about 4 ms per DNS request on this machine's
/// disk, on the path of every connection; resolv.conf itself is still fsynced ([`show`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Shows `bytes` in `path` (resolv.conf) so that readers see the old content or the new.
fn show(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A symlink is followed, as a plain write would: its target is the file readers open.
    let target = fs::canonicalize(path)?;
    let mode = fs::metadata(&target)?.permissions().mode() & 0o7777;
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".openvpnserv.tmp");
    let tmp = PathBuf::from(tmp);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| {
            // The mode as it was, whatever the umask did to it.
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        // No file may be made beside it (a read-only /etc where the service's sandbox opens
        // only resolv.conf itself): in place, then.
        if matches!(
            e.raw_os_error(),
            Some(libc::EROFS | libc::EACCES | libc::EPERM)
        ) {
            return write_in_place(&target, bytes);
        }
        return Err(e);
    }
    match fs::rename(&tmp, &target) {
        Ok(()) => Ok(()),
        // A mount point (EBUSY), or a file on a file system of its own (EXDEV).
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EXDEV)) => {
            let _ = fs::remove_file(&tmp);
            write_in_place(&target, bytes)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// One write at offset 0, padded with newlines to the old length, then the padding cut off:
/// no moment without content, and no tail of the old content after the new.
fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    let old = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut padded = bytes.to_vec();
    if padded.len() < old {
        padded.resize(old, b'\n');
    }
    file.write_all_at(&padded, 0)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_all()
}

/// `a` and `b` say the same, whatever blank lines pad them at the end.
fn same_text(a: &[u8], b: &[u8]) -> bool {
    let trim = |s: &[u8]| {
        let end = s.iter().rposition(|&c| c != b'\n').map_or(0, |i| i + 1);
        s[..end].to_vec()
    };
    trim(a) == trim(b)
}

/// Every session's settings file in `dir`, newest first.
fn sessions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let is_session = name.to_str().is_some_and(|n| {
            n.strip_prefix(SESSION_PREFIX)
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        });
        if is_session {
            found.push((entry.metadata()?.modified()?, entry.path()));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Puts the original back in `path` and forgets it; nothing to do if there is none.
fn restore_original(path: &Path, dir: &Path) -> io::Result<bool> {
    let original = dir.join(ORIGINAL);
    match fs::read(&original) {
        Ok(old) => {
            show(path, &old)?;
            fs::remove_file(&original)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Shows `text` (a session's settings, kept in `mine`) in `path`.
pub(crate) fn apply(path: &Path, mine: &Path, text: &str) -> io::Result<()> {
    let _step = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let original = run_dir(mine)?.join(ORIGINAL);
    if !original.exists() {
        // No session shows its settings: the file is the machine's own.
        write_atomically(&original, &fs::read(path)?)?;
    }
    write_atomically(mine, text.as_bytes())?;
    show(path, text.as_bytes())
}

/// Takes back the settings kept in `mine`: `path` shows the newest remaining session's, or
/// the original when none remains. Settings already gone are fine.
pub(crate) fn revert(path: &Path, mine: &Path) -> io::Result<()> {
    let _step = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = run_dir(mine)?;
    let shown = match fs::read(mine) {
        Ok(settings) => {
            fs::remove_file(mine)?;
            fs::read(path).is_ok_and(|now| same_text(&now, &settings))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    match sessions(dir)?.first() {
        // Another session's settings stay; show them if ours were on display (if someone
        // else wrote the file since, leave it).
        Some(newest) if shown => show(path, &fs::read(newest)?),
        Some(_) => Ok(()),
        None => restore_original(path, dir).map(drop),
    }
}

/// At start, when no session lives: forgets every session's settings that a previous run
/// left (a journal that could not be read never reverts its own), and the temporary files of
/// writes a crash cut short (resolv.conf itself is written only after them), and puts the
/// original back. Returns whether there was anything to do.
pub(crate) fn recover(path: &Path, dir: &Path) -> io::Result<bool> {
    let _step = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut stale = match sessions(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SESSION_PREFIX) && name.ends_with(".tmp") {
            stale.push(entry.path());
        }
    }
    for f in &stale {
        fs::remove_file(f)?;
    }
    Ok(restore_original(path, dir)? || !stale.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("ovs-resolv-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("resolv.conf"), "machine\n").unwrap();
            Self(d)
        }

        fn conf(&self) -> PathBuf {
            self.0.join("resolv.conf")
        }

        fn session(&self, id: u32) -> PathBuf {
            self.0.join(format!("resolv.conf.{id}"))
        }

        fn shown(&self) -> String {
            fs::read_to_string(self.conf()).unwrap()
        }

        fn files(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn apply_pause(d: &Dir, id: u32) {
        apply(&d.conf(), &d.session(id), &format!("session {id}\n")).unwrap();
        // Distinct modification times, as sessions that apply one after the other have.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    #[test]
    fn sessions_ending_in_any_order_leave_the_original() {
        for order in [[1, 2, 3], [3, 2, 1], [2, 1, 3], [1, 3, 2]] {
            let d = Dir::new(&format!(
                "order{}",
                order[0] * 100 + order[1] * 10 + order[2]
            ));
            for id in [1, 2, 3] {
                apply_pause(&d, id);
            }
            assert_eq!(d.shown(), "session 3\n");
            for (i, id) in order.iter().enumerate() {
                revert(&d.conf(), &d.session(*id)).unwrap();
                let left: Vec<u32> = [1, 2, 3]
                    .into_iter()
                    .filter(|s| !order[..=i].contains(s))
                    .collect();
                let want = left
                    .iter()
                    .max()
                    .map_or("machine\n".to_owned(), |n| format!("session {n}\n"));
                assert_eq!(d.shown(), want, "{order:?} after {id}");
            }
            assert_eq!(d.files(), ["resolv.conf"], "{order:?}");
        }
    }

    #[test]
    fn a_file_someone_else_wrote_is_left_while_sessions_remain() {
        let d = Dir::new("other");
        apply_pause(&d, 1);
        apply_pause(&d, 2);
        fs::write(d.conf(), "admin\n").unwrap();
        revert(&d.conf(), &d.session(2)).unwrap();
        assert_eq!(d.shown(), "admin\n");
        revert(&d.conf(), &d.session(1)).unwrap();
        assert_eq!(d.shown(), "machine\n");
        // Twice is harmless (a replay after a crash during clean-up).
        revert(&d.conf(), &d.session(1)).unwrap();
        assert_eq!(d.shown(), "machine\n");
    }

    /// Readers never see an empty or half-written resolv.conf (it was truncated and then
    /// written, so a reader in between saw nothing).
    #[test]
    fn readers_see_the_old_content_or_the_new_never_an_empty_file() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let d = Dir::new("atomic");
        let valid: Vec<String> = std::iter::once("machine\n".to_owned())
            .chain((1..=2).map(|i| format!("session {i}\n{}", "nameserver 10.0.0.1\n".repeat(200))))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (conf, stop, valid) = (d.conf(), Arc::clone(&stop), valid.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read_to_string(&conf).unwrap();
                    assert!(
                        valid.contains(&got),
                        "a reader saw {:?}",
                        &got[..got.len().min(40)]
                    );
                    reads += 1;
                }
                reads
            })
        };
        for _ in 0..300 {
            for id in [1, 2] {
                apply(&d.conf(), &d.session(id), &valid[id as usize]).unwrap();
            }
            for id in [2, 1] {
                revert(&d.conf(), &d.session(id)).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(d.shown(), "machine\n");
    }

    #[test]
    fn a_symlinked_resolv_conf_stays_a_symlink_and_its_target_changes() {
        let d = Dir::new("symlink");
        let target = d.0.join("real-resolv.conf");
        fs::rename(d.conf(), &target).unwrap();
        std::os::unix::fs::symlink("real-resolv.conf", d.conf()).unwrap();
        apply_pause(&d, 1);
        assert!(fs::symlink_metadata(d.conf())
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "session 1\n");
        revert(&d.conf(), &d.session(1)).unwrap();
        assert!(fs::symlink_metadata(d.conf())
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "machine\n");
    }

    #[test]
    fn in_place_writes_leave_exactly_the_new_content() {
        let d = Dir::new("inplace");
        write_in_place(&d.conf(), b"a much longer text than before\n").unwrap();
        assert_eq!(d.shown(), "a much longer text than before\n");
        write_in_place(&d.conf(), b"short\n").unwrap();
        assert_eq!(d.shown(), "short\n");
        assert!(same_text(b"x\n\n\n", b"x\n"));
        assert!(!same_text(b"x\n", b"y\n"));
    }

    #[test]
    fn recovery_forgets_settings_whose_journal_was_lost() {
        let d = Dir::new("recover");
        apply_pause(&d, 4);
        apply_pause(&d, 5);
        fs::write(d.0.join("resolv.conf.6.tmp"), "cut short").unwrap();
        assert!(recover(&d.conf(), &d.0).unwrap());
        assert_eq!(d.shown(), "machine\n");
        assert_eq!(d.files(), ["resolv.conf"]);
        assert!(!recover(&d.conf(), &d.0).unwrap());
    }
}
