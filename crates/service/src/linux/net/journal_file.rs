//! The undo journal on disk, under the instance's run directory (design §5).
//!
//! A journal file starts as a complete snapshot written to a temporary name and renamed into
//! place, so a journal is either absent or readable. After that:
//! * an *intent* is appended with one `write(2)` before the change it describes: once `write`
//!   returns, it survives the death of the service, which is the crash the journal is for;
//! * *done* and *gone* marks are appended after the change, but batched: they go out with
//!   the next intent's `write` (or when 64 KiB have gathered, or when the file is closed).
//!   Losing one to a crash only makes the replay undo something again that is already
//!   undone, or undo an unconfirmed change, which it does anyway; every undo tolerates "not
//!   there". This halves the writes of an add and removes them from a delete.
//!
//! Nothing here is fsynced: a flush protects only against a kernel crash or power loss, after
//! which the tun, routes, nftables table and D-Bus state the journal describes are gone
//! anyway, and the page cache already carries every `write` and `rename` to the service that
//! starts after a crash. (`/run` is a tmpfs on ordinary systems, where a flush costs nothing;
//! on a disk-backed `/run` it cost half a millisecond per session start.) A torn last line is
//! skipped at replay. When the file holds many more records than live changes it is
//! compacted the same way it was created (temp, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openvpnserv_core::linux::journal::{self, Journal, Record};

const PREFIX: &str = "net-";
const SUFFIX: &str = ".journal";
/// Records beyond four per live change that a journal may hold before it is compacted.
const COMPACT_SLACK: usize = 16_384;
/// Batched done/gone marks written out at the latest at this size.
const PENDING_MAX: usize = 64 * 1024;

/// One session's journal file.
#[derive(Debug)]
pub(crate) struct JournalFile {
    path: PathBuf,
    file: File,
    session: Record,
    records: usize,
    /// The file's length: what the next write appends to.
    len: u64,
    /// Done and gone marks not yet written.
    pending: Vec<u8>,
}

/// Writes `records` to `path` atomically: temp file, rename; returns the file's length. A write that fails (a full disk) takes its temporary file away
/// with it.
fn write_atomically(path: &Path, records: &[Record]) -> io::Result<u64> {
    let tmp = path.with_extension("tmp");
    let mut text = String::new();
    for r in records {
        text.push_str(&r.to_line());
    }
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(text.len() as u64)
}

impl JournalFile {
    /// Creates the journal of session `id` in `dir`.
    pub(crate) fn create(dir: &Path, id: u64, session: Record) -> io::Result<Self> {
        let path = dir.join(format!("{PREFIX}{id}{SUFFIX}"));
        let len = write_atomically(&path, std::slice::from_ref(&session))?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Self {
            path,
            file,
            session,
            records: 1,
            len,
            pending: Vec::new(),
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record: an intent at once (with the marks gathered before it), a mark
    /// with the next intent. An intent that cannot be written is not kept for later: the
    /// caller makes no change then, so it must never reach the file.
    pub(crate) fn write(&mut self, record: &Record) -> io::Result<()> {
        let gathered = self.pending.len();
        self.pending.extend_from_slice(record.to_line().as_bytes());
        let intent = matches!(record, Record::Intent { .. });
        if intent || self.pending.len() >= PENDING_MAX {
            if let Err(e) = self.flush() {
                if intent {
                    self.pending.truncate(gathered);
                }
                return Err(e);
            }
        }
        self.records += 1;
        Ok(())
    }

    /// Writes out the gathered marks. A write cut short (a full disk) is cut off the file
    /// again, so that the next write starts a line of its own instead of gluing onto a torn
    /// one, which would make both unreadable.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            if let Err(e) = self.file.write_all(&self.pending) {
                let _ = self.file.set_len(self.len);
                return Err(e);
            }
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    /// Rewrites the file as a snapshot of `journal` when it has grown far past it.
    pub(crate) fn maybe_compact(&mut self, journal: &Journal) -> io::Result<()> {
        // Rarely: a compaction costs two fsyncs, and a session that adds and deletes
        // thousands of routes would otherwise compact again and again as it shrinks.
        if self.records < 4 * journal.len() + COMPACT_SLACK {
            return Ok(());
        }
        let snapshot = journal.snapshot(&self.session);
        self.len = write_atomically(&self.path, &snapshot)?;
        // The snapshot holds what the gathered marks said.
        self.pending.clear();
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.records = snapshot.len();
        Ok(())
    }

    /// Removes the file (the session is fully undone).
    pub(crate) fn remove(mut self) -> io::Result<()> {
        self.pending.clear();
        fs::remove_file(&self.path)
    }
}

impl Drop for JournalFile {
    fn drop(&mut self) {
        // A journal kept (something could not be undone) gets its last marks.
        let _ = self.flush();
    }
}

/// A journal left in `dir` by a previous run.
#[derive(Debug)]
pub(crate) struct Leftover {
    /// Its file.
    pub(crate) path: PathBuf,
    /// Its readable records.
    pub(crate) records: Vec<Record>,
    /// Lines that could not be read.
    pub(crate) unreadable: usize,
}

/// Removes what a write that a crash interrupted left in `dir`: the temporary file of a
/// journal being created (no change was made yet: the intent comes after the file) or
/// compacted (the journal itself still holds every record). Returns how many there were.
pub(crate) fn remove_unfinished(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".tmp") && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Every journal in `dir` (none if the directory does not exist).
pub(crate) fn leftovers(dir: &Path) -> io::Result<Vec<Leftover>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX) && entry.file_type()?.is_file()) {
            continue;
        }
        let text = String::from_utf8_lossy(&fs::read(entry.path())?).into_owned();
        let (records, unreadable) = journal::parse(&text);
        out.push(Leftover {
            path: entry.path(),
            records,
            unreadable,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpnserv_core::linux::journal::Change;

    #[test]
    fn intents_are_written_at_once_and_marks_at_the_latest_on_close() {
        let dir = std::env::temp_dir().join(format!("ovs-journal-marks-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let session = Record::Session {
            id: 5,
            uid: 1000,
            user: "u".into(),
        };
        let mut jf = JournalFile::create(&dir, 5, session).unwrap();
        let mut j = Journal::new();
        let (seq, r) = j.intend(Change::Firewall { table: "t".into() });
        jf.write(&r).unwrap();
        let on_disk = || leftovers(&dir).unwrap()[0].records.len();
        assert_eq!(
            on_disk(),
            2,
            "session and intent, before the change is made"
        );
        jf.write(&j.confirm(seq)).unwrap();
        assert_eq!(on_disk(), 2, "the confirmation waits for the next write");
        drop(jf);
        assert_eq!(on_disk(), 3, "and is written when the journal is closed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_write_cut_short_by_a_crash_is_cleared_away() {
        let dir = std::env::temp_dir().join(format!("ovs-journal-tmp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("net-3.tmp"), "{\"op\":\"sess").unwrap();
        fs::write(dir.join("resolv.conf.3"), "not ours to judge").unwrap();
        assert_eq!(remove_unfinished(&dir).unwrap(), 1);
        assert!(!dir.join("net-3.tmp").exists());
        assert!(dir.join("resolv.conf.3").exists());
        assert_eq!(remove_unfinished(&dir).unwrap(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_survive_and_compaction_keeps_live_changes() {
        let dir = std::env::temp_dir().join(format!("ovs-journal-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let session = Record::Session {
            id: 4,
            uid: 1000,
            user: "u".into(),
        };
        let mut jf = JournalFile::create(&dir, 4, session).unwrap();
        let mut j = Journal::new();
        let (keep, r) = j.intend(Change::Firewall { table: "t".into() });
        jf.write(&r).unwrap();
        jf.write(&j.confirm(keep)).unwrap();
        for _ in 0..=(COMPACT_SLACK / 2) {
            let (s, r) = j.intend(Change::DeviceNode { path: "/x".into() });
            jf.write(&r).unwrap();
            jf.write(&j.forget(s)).unwrap();
        }
        jf.maybe_compact(&j).unwrap();
        let left = leftovers(&dir).unwrap();
        assert_eq!(left.len(), 1);
        // Session, intent, done: the dead records are gone.
        assert_eq!(left[0].records.len(), 3);
        let replayed = Journal::from_records(&left[0].records);
        assert_eq!(replayed.undo_plan().len(), 1);
        jf.remove().unwrap();
        assert!(leftovers(&dir).unwrap().is_empty());
        fs::remove_dir(&dir).unwrap();
    }
}
