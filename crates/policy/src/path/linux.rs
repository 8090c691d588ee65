//! The Linux config-path rule.
//!
//! A config path (relative paths are joined to the absolute working directory) is accepted
//! iff its canonical form — every symlink, `.` and `..` resolved — is a regular file strictly
//! inside the canonical `config_dir`, compared component by component (so `config-evil/` is
//! not inside `config/`).
//!
//! **Check and use see the same file.** openvpn is handed the canonical absolute path, not the
//! text the user sent, so no symlink or `..` is resolved a second time. What remains is a
//! rename or symlink swap of a directory on that path between the check and openvpn's `open`;
//! so the check also refuses the path when the caller could rename entries in any directory
//! from `/` down to the file's parent (write permission by owner, group or other, minus
//! sticky directories whose entries the caller does not own). With all of those directories
//! out of the caller's reach, nothing the caller controls can change which file the path
//! names. (ACLs are not consulted; an administrator who grants users write access to the
//! config tree through ACLs has made those users administrators of it.)

use std::path::{Component, Path, PathBuf};

/// What the check needs to know about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits including sticky (`0o7777` part of `st_mode`).
    pub mode: u32,
    /// A directory.
    pub is_dir: bool,
    /// A regular file.
    pub is_file: bool,
}

/// The file-system questions the check asks, so that it can be tested with a fake.
pub trait FileSystem {
    /// `realpath(3)`.
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf>;
    /// `lstat(2)` of a canonical path.
    fn metadata(&self, path: &Path) -> std::io::Result<FileMeta>;
}

/// The caller, as far as file permissions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsCaller {
    /// User id.
    pub uid: u32,
    /// Primary and supplementary group ids.
    pub gids: Vec<u32>,
}

/// Why a path was refused (for the service log; the client gets upstream's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// The word `stdin`.
    #[error("reading the config from stdin is not allowed")]
    Stdin,
    /// A relative path with a relative working directory.
    #[error("the working directory {0} is not absolute")]
    RelativeDir(String),
    /// The path could not be resolved.
    #[error("cannot resolve {path}: {reason}")]
    Unresolvable {
        /// The joined path.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Resolved outside the config directory.
    #[error("{0} is not inside the config directory")]
    Outside(String),
    /// Not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(String),
    /// The caller could swap something on the path.
    #[error("the caller can rename entries in {0}, so the file could be swapped after the check")]
    CallerWritable(String),
    /// Not UTF-8.
    #[error("the resolved path is not valid UTF-8")]
    NotUtf8,
}

fn can_rename_in(dir: &FileMeta, entry: &FileMeta, caller: &FsCaller) -> bool {
    let bits = if dir.uid == caller.uid {
        dir.mode >> 6
    } else if caller.gids.contains(&dir.gid) {
        dir.mode >> 3
    } else {
        dir.mode
    };
    let writable = bits & 0o2 != 0;
    let sticky = dir.mode & 0o1000 != 0;
    writable && (!sticky || entry.uid == caller.uid || dir.uid == caller.uid)
}

/// Checks `path` (relative to `dir`) against `config_dir` and returns the canonical path to
/// hand openvpn.
pub fn check(
    fs: &impl FileSystem,
    config_dir: &Path,
    caller: &FsCaller,
    dir: &str,
    path: &str,
) -> Result<String, PathRefusal> {
    if path == "stdin" {
        return Err(PathRefusal::Stdin);
    }
    let joined = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        if !Path::new(dir).is_absolute() {
            return Err(PathRefusal::RelativeDir(dir.to_owned()));
        }
        Path::new(dir).join(path)
    };
    let unresolvable = |p: &Path, e: std::io::Error| PathRefusal::Unresolvable {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let canonical = fs
        .canonicalize(&joined)
        .map_err(|e| unresolvable(&joined, e))?;
    let root = fs
        .canonicalize(config_dir)
        .map_err(|e| unresolvable(config_dir, e))?;
    let shown = || canonical.display().to_string();
    if canonical == root || !canonical.starts_with(&root) {
        return Err(PathRefusal::Outside(shown()));
    }
    let meta = fs
        .metadata(&canonical)
        .map_err(|e| unresolvable(&canonical, e))?;
    if !meta.is_file {
        return Err(PathRefusal::NotAFile(shown()));
    }
    if caller.uid != 0 {
        // Walk from the file up to `/`: each directory must not let the caller rename the
        // entry below it.
        let mut entry = meta;
        let mut at = canonical.as_path();
        while let Some(parent) = at.parent() {
            let dir_meta = fs.metadata(parent).map_err(|e| unresolvable(parent, e))?;
            if can_rename_in(&dir_meta, &entry, caller) {
                return Err(PathRefusal::CallerWritable(parent.display().to_string()));
            }
            entry = dir_meta;
            at = parent;
        }
    }
    debug_assert!(canonical
        .components()
        .all(|c| !matches!(c, Component::ParentDir | Component::CurDir)));
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| PathRefusal::NotUtf8)
}

/// A [`crate::ConfigPathCheck`] for one Linux caller. Refusal reasons go to `on_refusal`
/// (the service logs them); the client sees upstream's text.
pub struct LinuxConfigCheck<'a, F: FileSystem> {
    /// The file system.
    pub fs: &'a F,
    /// `config_dir` from the settings.
    pub config_dir: &'a Path,
    /// Who asks.
    pub caller: &'a FsCaller,
    /// Receives the reason of each refusal.
    pub on_refusal: &'a dyn Fn(&str, &PathRefusal),
}

impl<F: FileSystem> crate::ConfigPathCheck for LinuxConfigCheck<'_, F> {
    fn check(&self, dir: &str, path: &str) -> Option<String> {
        check(self.fs, self.config_dir, self.caller, dir, path)
            .map_err(|refusal| (self.on_refusal)(path, &refusal))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{Error, ErrorKind};

    /// An in-memory tree with symlinks.
    #[derive(Default)]
    struct FakeFs {
        nodes: HashMap<PathBuf, Node>,
    }

    enum Node {
        Dir(FileMeta),
        File(FileMeta),
        Link(PathBuf),
    }

    fn meta(uid: u32, gid: u32, mode: u32, is_dir: bool) -> FileMeta {
        FileMeta {
            uid,
            gid,
            mode,
            is_dir,
            is_file: !is_dir,
        }
    }

    impl FakeFs {
        fn dir(mut self, p: &str, uid: u32, gid: u32, mode: u32) -> Self {
            self.nodes
                .insert(p.into(), Node::Dir(meta(uid, gid, mode, true)));
            self
        }
        fn file(mut self, p: &str, uid: u32) -> Self {
            self.nodes
                .insert(p.into(), Node::File(meta(uid, 0, 0o644, false)));
            self
        }
        fn link(mut self, p: &str, target: &str) -> Self {
            self.nodes.insert(p.into(), Node::Link(target.into()));
            self
        }
    }

    impl FileSystem for FakeFs {
        fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
            let mut todo: Vec<PathBuf> = vec![path.to_path_buf()];
            let mut out = PathBuf::from("/");
            let mut hops = 0;
            while let Some(p) = todo.pop() {
                let mut comps: Vec<Component> = p.components().collect();
                comps.reverse();
                while let Some(c) = comps.pop() {
                    match c {
                        Component::RootDir => out = PathBuf::from("/"),
                        Component::CurDir | Component::Prefix(_) => {}
                        Component::ParentDir => {
                            out.pop();
                        }
                        Component::Normal(name) => {
                            let next = out.join(name);
                            match self.nodes.get(&next) {
                                None => return Err(Error::from(ErrorKind::NotFound)),
                                Some(Node::Link(target)) => {
                                    hops += 1;
                                    if hops > 40 {
                                        return Err(Error::other("loop"));
                                    }
                                    let rest: PathBuf = comps.iter().rev().collect();
                                    todo.push(rest);
                                    todo.push(target.clone());
                                    comps.clear();
                                }
                                Some(_) => out = next,
                            }
                        }
                    }
                }
            }
            Ok(out)
        }
        fn metadata(&self, path: &Path) -> std::io::Result<FileMeta> {
            match self.nodes.get(path) {
                Some(Node::Dir(m) | Node::File(m)) => Ok(*m),
                Some(Node::Link(_)) => Ok(meta(0, 0, 0o777, false)),
                None if path == Path::new("/") => Ok(meta(0, 0, 0o755, true)),
                None => Err(Error::from(ErrorKind::NotFound)),
            }
        }
    }

    const USER: u32 = 1000;

    fn tree() -> FakeFs {
        FakeFs::default()
            .dir("/etc", 0, 0, 0o755)
            .dir("/etc/openvpn", 0, 0, 0o755)
            .dir("/etc/openvpn/client", 0, 0, 0o755)
            .file("/etc/openvpn/client/a.ovpn", 0)
            .dir("/etc/openvpn/client/sub", 0, 0, 0o755)
            .file("/etc/openvpn/client/sub/b.ovpn", 0)
            .dir("/etc/openvpn/client-evil", 0, 0, 0o755)
            .file("/etc/openvpn/client-evil/x.ovpn", 0)
            .file("/etc/passwd", 0)
            .dir("/home", 0, 0, 0o755)
            .dir("/home/u", USER, USER, 0o755)
            .file("/home/u/evil.ovpn", USER)
            .link("/home/u/good", "/etc/openvpn/client/a.ovpn")
            .link("/etc/openvpn/client/escape", "/home/u/evil.ovpn")
            .link("/etc/openvpn/client/linkdir", "/etc/openvpn/client/sub")
            .dir("/etc/openvpn/client/open", 0, 0, 0o777)
            .file("/etc/openvpn/client/open/c.ovpn", 0)
            .dir("/etc/openvpn/client/grp", 0, 50, 0o775)
            .file("/etc/openvpn/client/grp/d.ovpn", 0)
            .dir("/etc/openvpn/client/sticky", 0, 0, 0o1777)
            .file("/etc/openvpn/client/sticky/e.ovpn", 0)
            .file("/etc/openvpn/client/sticky/mine.ovpn", USER)
    }

    fn run(dir: &str, path: &str) -> Result<String, PathRefusal> {
        let caller = FsCaller {
            uid: USER,
            gids: vec![USER, 60],
        };
        check(
            &tree(),
            Path::new("/etc/openvpn/client/"),
            &caller,
            dir,
            path,
        )
    }

    #[test]
    fn inside_is_canonical() {
        assert_eq!(
            run("/etc/openvpn/client", "a.ovpn").unwrap(),
            "/etc/openvpn/client/a.ovpn"
        );
        assert_eq!(
            run("/home/u", "/etc/openvpn/client/./sub/../a.ovpn").unwrap(),
            "/etc/openvpn/client/a.ovpn"
        );
        assert_eq!(
            run("/etc/openvpn/client/sub", "../sub/b.ovpn").unwrap(),
            "/etc/openvpn/client/sub/b.ovpn"
        );
        assert_eq!(
            run("/etc/openvpn/client", "linkdir/b.ovpn").unwrap(),
            "/etc/openvpn/client/sub/b.ovpn"
        );
    }

    #[test]
    fn user_symlink_into_config_dir_is_resolved() {
        assert_eq!(
            run("/home/u", "good").unwrap(),
            "/etc/openvpn/client/a.ovpn"
        );
    }

    #[test]
    fn escapes_are_refused() {
        assert!(matches!(
            run("/etc/openvpn/client", "../../passwd"),
            Err(PathRefusal::Outside(_))
        ));
        assert!(matches!(
            run("/etc/openvpn/client", "escape"),
            Err(PathRefusal::Outside(_))
        ));
        assert!(matches!(
            run("/etc/openvpn/client", "/home/u/evil.ovpn"),
            Err(PathRefusal::Outside(_))
        ));
        assert!(matches!(
            run("/etc/openvpn/client", "."),
            Err(PathRefusal::Outside(_))
        ));
    }

    #[test]
    fn sibling_prefix_is_refused() {
        assert!(matches!(
            run("/etc/openvpn/client-evil", "x.ovpn"),
            Err(PathRefusal::Outside(_))
        ));
        assert!(matches!(
            run("/etc/openvpn/client", "../client-evil/x.ovpn"),
            Err(PathRefusal::Outside(_))
        ));
    }

    #[test]
    fn directories_and_missing_files_are_refused() {
        assert!(matches!(
            run("/etc/openvpn/client", "sub"),
            Err(PathRefusal::NotAFile(_))
        ));
        assert!(matches!(
            run("/etc/openvpn/client", "nope.ovpn"),
            Err(PathRefusal::Unresolvable { .. })
        ));
    }

    #[test]
    fn stdin_and_relative_dir() {
        assert_eq!(run("/etc/openvpn/client", "stdin"), Err(PathRefusal::Stdin));
        assert!(matches!(
            run("etc", "a.ovpn"),
            Err(PathRefusal::RelativeDir(_))
        ));
    }

    #[test]
    fn writable_directories_on_the_path_are_refused() {
        assert_eq!(
            run("/etc/openvpn/client", "open/c.ovpn"),
            Err(PathRefusal::CallerWritable(
                "/etc/openvpn/client/open".into()
            ))
        );
        // Group 50 is not the caller's: fine. Then with group 50 it is refused.
        assert!(run("/etc/openvpn/client", "grp/d.ovpn").is_ok());
        let caller = FsCaller {
            uid: USER,
            gids: vec![USER, 50],
        };
        assert!(matches!(
            check(
                &tree(),
                Path::new("/etc/openvpn/client"),
                &caller,
                "/",
                "/etc/openvpn/client/grp/d.ovpn"
            ),
            Err(PathRefusal::CallerWritable(_))
        ));
        // Sticky: root's file is safe, the caller's own file could be swapped.
        assert!(run("/etc/openvpn/client", "sticky/e.ovpn").is_ok());
        assert!(matches!(
            run("/etc/openvpn/client", "sticky/mine.ovpn"),
            Err(PathRefusal::CallerWritable(_))
        ));
        // Root is trusted with its own tree.
        let root = FsCaller {
            uid: 0,
            gids: vec![0],
        };
        assert!(check(
            &tree(),
            Path::new("/etc/openvpn/client"),
            &root,
            "/",
            "/etc/openvpn/client/open/c.ovpn"
        )
        .is_ok());
    }
}
