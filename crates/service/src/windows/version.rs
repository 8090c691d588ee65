//! Which channel numbering a session speaks (spec §5.3): the `msg_protocol` setting, or with
//! `auto` the version resource of the openvpn executable that session starts (2.7 and later
//! use the 2.7 numbering).
//!
//! Decided per session, not once at service start: openvpn.exe may be replaced (2.6 by 2.7)
//! while the service runs. The resource is read again only when the file's size or
//! modification time changed, so an unchanged file costs one `stat` per session.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use openvpnserv_proto::channel::Revision;
use openvpnserv_settings::MsgProtocol;

use super::sys::kernel::file_version;

/// The numbering for `setting`, with `auto` from the version resource of `exe_path` (2.7
/// when it has none). Returns the choice and how it was made, for the log.
pub fn revision(setting: MsgProtocol, exe_path: &str) -> (Revision, String) {
    match setting {
        MsgProtocol::V26 => (Revision::V26, "msg_protocol = 2.6".into()),
        MsgProtocol::V27 => (Revision::V27, "msg_protocol = 2.7".into()),
        MsgProtocol::Auto => from_file(exe_path),
    }
}

fn from_file(exe_path: &str) -> (Revision, String) {
    match std::fs::metadata(exe_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (
                Revision::V27,
                format!("{exe_path} is missing; assuming 2.7"),
            )
        }
        Err(e) => {
            return (
                Revision::V27,
                format!("{exe_path} cannot be read ({e}); assuming 2.7"),
            )
        }
        Ok(_) => {}
    }
    match file_version(exe_path) {
        Some((major, minor)) => (
            if (major, minor) < (2, 7) {
                Revision::V26
            } else {
                Revision::V27
            },
            format!("{exe_path} is version {major}.{minor}"),
        ),
        None => (
            Revision::V27,
            format!("{exe_path} has no version resource; assuming 2.7"),
        ),
    }
}

/// The file as last seen: its size and modification time, and the numbering read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    revision: Revision,
}

/// The numbering of each session, following `exe_path` as the file changes.
#[derive(Debug)]
pub struct Numbering {
    setting: MsgProtocol,
    exe_path: String,
    seen: Mutex<Option<Seen>>,
}

impl Numbering {
    /// Numbering by `setting` for sessions that start `exe_path`.
    pub fn new(setting: MsgProtocol, exe_path: &str) -> Self {
        Self {
            setting,
            exe_path: exe_path.to_owned(),
            seen: Mutex::new(None),
        }
    }

    /// The numbering for a session about to start openvpn. The text says how it was decided
    /// when it was decided anew (the first time, or the file changed), for the log; `None`
    /// when nothing changed.
    pub fn for_session(&self) -> (Revision, Option<String>) {
        if self.setting != MsgProtocol::Auto {
            return (revision(self.setting, &self.exe_path).0, None);
        }
        let meta = std::fs::metadata(&self.exe_path).ok();
        let key = meta.as_ref().map(|m| (m.len(), m.modified().ok()));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some((len, modified)), Some(s)) = (key, seen.as_ref()) {
            if s.len == len && s.modified == modified {
                return (s.revision, None);
            }
        }
        let (revision, why) = from_file(&self.exe_path);
        *seen = key.map(|(len, modified)| Seen {
            len,
            modified,
            revision,
        });
        (revision, Some(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_setting_wins() {
        assert_eq!(revision(MsgProtocol::V26, "x").0, Revision::V26);
        assert_eq!(revision(MsgProtocol::V27, "x").0, Revision::V27);
        assert_eq!(
            Numbering::new(MsgProtocol::V26, "x").for_session(),
            (Revision::V26, None)
        );
    }

    #[test]
    fn auto_reads_the_version_resource() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_string_lossy();
        // Our test binaries carry no version resource: 2.7 is assumed.
        assert_eq!(file_version(&exe), None);
        let (r, why) = revision(MsgProtocol::Auto, &exe);
        assert_eq!(r, Revision::V27);
        assert!(
            why.ends_with("has no version resource; assuming 2.7"),
            "{why}"
        );
        // A system DLL has one (Windows and Wine alike); its major version is >= 5.
        let system = format!(r"{}\kernel32.dll", super::super::sys::kernel::system_dir());
        let (major, _) = file_version(&system).expect("kernel32.dll has a version");
        assert!(major >= 5, "{major}");
        assert_eq!(revision(MsgProtocol::Auto, &system).0, Revision::V27);
    }

    /// A missing openvpn.exe is reported as missing, not as a file without a version.
    #[test]
    fn a_missing_file_is_reported_as_missing() {
        let (r, why) = revision(MsgProtocol::Auto, r"C:\nowhere\openvpn.exe");
        assert_eq!(r, Revision::V27);
        assert_eq!(why, r"C:\nowhere\openvpn.exe is missing; assuming 2.7");
    }

    /// The resource is read once per version of the file, and again when it changes.
    #[test]
    fn auto_follows_the_file() {
        let dir = std::env::temp_dir().join("openvpnserv-version-test");
        let _ = std::fs::create_dir_all(&dir);
        let exe = dir.join("openvpn.exe");
        let _ = std::fs::remove_file(&exe);
        let path = exe.to_string_lossy().into_owned();
        let n = Numbering::new(MsgProtocol::Auto, &path);
        let (_, why) = n.for_session();
        assert!(why.unwrap().ends_with("is missing; assuming 2.7"));
        // Missing stays "decided anew" (nothing to remember) until the file appears.
        assert!(n.for_session().1.is_some());
        let system = format!(r"{}\kernel32.dll", super::super::sys::kernel::system_dir());
        std::fs::copy(&system, &exe).unwrap();
        let (r, why) = n.for_session();
        assert_eq!(r, Revision::V27);
        assert!(why.unwrap().contains("is version"));
        assert_eq!(
            n.for_session(),
            (Revision::V27, None),
            "unchanged: not read again"
        );
        std::fs::write(&exe, b"MZ not a real executable").unwrap();
        let (_, why) = n.for_session();
        assert!(why
            .unwrap()
            .ends_with("has no version resource; assuming 2.7"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
