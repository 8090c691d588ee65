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
//!
//! A journal is never overwritten by another: a new one is linked into place only if no file
//! has its name, and the service numbers its sessions above every journal an earlier run
//! left (see [`scan`]). A journal the replay cannot read is set aside under another name
//! (`….unreadable`), for an administrator, and never deleted by the service.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openvpnserv_core::linux::journal::{self, Record};

const PREFIX: &str = "net-";
const SUFFIX: &str = ".journal";
/// Appended to the name of a journal the replay could not read.
const UNREADABLE: &str = ".unreadable";
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

/// Writes `records` into a new file `tmp` (replacing a leftover temporary file); returns
/// the length. A write that fails (a full disk) takes the file away with it.
fn write_new(tmp: &Path, records: &[Record]) -> io::Result<u64> {
    let mut text = String::new();
    for r in records {
        text.push_str(&r.to_line());
    }
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(text.len() as u64)
}

/// `path` with a temporary suffix, for a file being written.
fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Replaces the journal `path` with `records` atomically: temp file, rename; returns the
/// file's length.
fn write_atomically(path: &Path, records: &[Record]) -> io::Result<u64> {
    let tmp = temporary(path);
    let len = write_new(&tmp, records)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(len)
}

impl JournalFile {
    /// Creates the journal of session `id` in `dir`; fails, leaving it alone, if a journal
    /// of that name exists (one an earlier run left).
    pub(crate) fn create(dir: &Path, id: u64, session: Record) -> io::Result<Self> {
        let path = dir.join(format!("{PREFIX}{id}{SUFFIX}"));
        let tmp = temporary(&path);
        let len = write_new(&tmp, std::slice::from_ref(&session))?;
        // link(2), unlike rename(2), refuses to replace an existing file.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        if let Err(e) = linked {
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} exists already (left by an earlier run); it is kept, and this session is not started",
                        path.display()
                    ),
                )
            } else {
                e
            });
        }
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

    /// Whether [`JournalFile::write`] of `record` only gathers it in memory: a mark that
    /// does not fill the batch, with no compaction due. Everything else writes to the file,
    /// which the caller does off the event loop.
    pub(crate) fn buffers(&self, record: &Record, live: usize) -> bool {
        !matches!(record, Record::Intent { .. })
            && self.pending.len() + record.to_line().len() < PENDING_MAX
            && !self.compaction_due(live)
    }

    /// The session record the journal starts with.
    pub(crate) fn session(&self) -> &Record {
        &self.session
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

    /// Whether the file has grown far past the `live` changes it describes.
    pub(crate) fn compaction_due(&self, live: usize) -> bool {
        // Rarely: a compaction rewrites the file, and a session that adds and deletes
        // thousands of routes would otherwise compact again and again as it shrinks.
        self.records >= 4 * live + COMPACT_SLACK
    }

    /// Rewrites the file as a snapshot of `journal` when it has grown far past it.
    #[cfg(test)]
    pub(crate) fn maybe_compact(
        &mut self,
        journal: &openvpnserv_core::linux::journal::Journal,
    ) -> io::Result<()> {
        if !self.compaction_due(journal.len()) {
            return Ok(());
        }
        self.compact(&journal.snapshot(&self.session))
    }

    /// Rewrites the file as `snapshot` (the journal's live records).
    pub(crate) fn compact(&mut self, snapshot: &[Record]) -> io::Result<()> {
        self.len = write_atomically(&self.path, snapshot)?;
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

/// What an earlier run left in the run directory.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The journals to replay, in name order.
    pub(crate) journals: Vec<Leftover>,
    /// Journals of which not one line can be read, and why.
    pub(crate) unreadable: Vec<(PathBuf, String)>,
    /// The highest session number any journal names in its file name, set-aside ones
    /// included: this run numbers its sessions above it.
    pub(crate) highest_id: u64,
}

/// The session number in a journal's file name (`net-<id>.journal…`).
fn id_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// Every journal in `dir` (none if the directory does not exist). One that cannot be read
/// does not keep the others from being replayed.
pub(crate) fn scan(dir: &Path) -> io::Result<Scan> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(e),
    };
    let mut out = Scan::default();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(PREFIX) {
            continue;
        }
        if let Some(id) = id_of(&name) {
            out.highest_id = out.highest_id.max(id);
        }
        if !name.ends_with(SUFFIX) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let text = match fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                out.unreadable.push((path, format!("cannot be read: {e}")));
                continue;
            }
        };
        let (records, unreadable) = journal::parse(&text);
        if records.is_empty() {
            let why = format!("{unreadable} line(s) could not be read, and no line could");
            out.unreadable.push((path, why));
            continue;
        }
        out.journals.push(Leftover {
            path,
            records,
            unreadable,
        });
    }
    out.journals.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Every journal in `dir` that can be replayed.
#[cfg(test)]
pub(crate) fn leftovers(dir: &Path) -> io::Result<Vec<Leftover>> {
    scan(dir).map(|s| s.journals)
}

/// Moves an unreadable journal out of the replay's way, under a name that says so; returns
/// the new name.
pub(crate) fn set_aside(path: &Path) -> io::Result<PathBuf> {
    for n in 0..1000 {
        let mut name = path.as_os_str().to_owned();
        name.push(UNREADABLE);
        if n > 0 {
            name.push(format!(".{n}"));
        }
        let new = PathBuf::from(name);
        match fs::hard_link(path, &new) {
            Ok(()) => {
                fs::remove_file(path)?;
                return Ok(new);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} could not be set aside: too many set-aside journals of that name",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpnserv_core::linux::journal::{Change, Journal};

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
