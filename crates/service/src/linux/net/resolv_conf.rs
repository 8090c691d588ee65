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
//! few synchronous file operations: the sessions run on one thread, so no other session's
//! step can come between them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file as it was before any session, in the run directory.
const ORIGINAL: &str = "resolv.conf.orig";
/// A session's settings: this and its number.
const SESSION_PREFIX: &str = "resolv.conf.";

fn run_dir(mine: &Path) -> io::Result<&Path> {
    mine.parent()
        .ok_or_else(|| io::Error::other(format!("{} names no directory", mine.display())))
}

/// Writes a file whole or not at all: temp file, fsync, rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
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
            // In place, not by rename: resolv.conf may be a bind mount or a symlink target.
            fs::write(path, old)?;
            fs::remove_file(&original)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Shows `text` (a session's settings, kept in `mine`) in `path`.
pub(crate) fn apply(path: &Path, mine: &Path, text: &str) -> io::Result<()> {
    let original = run_dir(mine)?.join(ORIGINAL);
    if !original.exists() {
        // No session shows its settings: the file is the machine's own.
        write_atomically(&original, &fs::read(path)?)?;
    }
    write_atomically(mine, text.as_bytes())?;
    fs::write(path, text)
}

/// Takes back the settings kept in `mine`: `path` shows the newest remaining session's, or
/// the original when none remains. Settings already gone are fine.
pub(crate) fn revert(path: &Path, mine: &Path) -> io::Result<()> {
    let dir = run_dir(mine)?;
    let shown = match fs::read(mine) {
        Ok(settings) => {
            fs::remove_file(mine)?;
            fs::read(path).is_ok_and(|now| now == settings)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    match sessions(dir)?.first() {
        // Another session's settings stay; show them if ours were on display (if someone
        // else wrote the file since, leave it).
        Some(newest) if shown => fs::write(path, fs::read(newest)?),
        Some(_) => Ok(()),
        None => restore_original(path, dir).map(drop),
    }
}

/// At start, when no session lives: forgets every session's settings that a previous run
/// left (a journal that could not be read never reverts its own), and the temporary files of
/// writes a crash cut short (resolv.conf itself is written only after them), and puts the
/// original back. Returns whether there was anything to do.
pub(crate) fn recover(path: &Path, dir: &Path) -> io::Result<bool> {
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
