//! Unprivileged test users and groups, created and removed by the harness.
//!
//! Names start with `ovse2e`; [`remove_leftovers`] deletes any left by a test run that was
//! killed before its guards could run.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::unistd::{Gid, Group, User};

const PREFIX: &str = "ovse2e";

fn unique(kind: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{kind}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A group that exists while this value lives.
#[derive(Debug)]
pub struct TestGroup {
    /// Its name.
    pub name: String,
    /// Its gid.
    pub gid: u32,
}

impl TestGroup {
    /// Creates a new group.
    pub fn create() -> Self {
        let name = unique("g");
        run(Command::new("groupadd").arg(&name));
        let gid = Group::from_name(&name)
            .ok()
            .flatten()
            .expect("group just created")
            .gid
            .as_raw();
        Self { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A user (no home directory, no login shell) that exists while this value lives.
#[derive(Debug)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl TestUser {
    /// Creates a user that is also a member of `groups`.
    pub fn create(groups: &[&TestGroup]) -> Self {
        let name = unique("u");
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
        ]);
        if !groups.is_empty() {
            let list: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            cmd.arg("--groups").arg(list.join(","));
        }
        run(cmd.arg(&name));
        let user = User::from_name(&name)
            .ok()
            .flatten()
            .expect("user just created");
        Self {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }

    /// A command that runs as this user, with the user's groups (as after a login).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        as_user(program, &self.name, self.uid, self.gid)
    }
}

impl Drop for TestUser {
    /// Removes the user. A test may end while processes still run as the user (a session's
    /// openvpn under a service that is dropped later); the user exists only for this test,
    /// so those processes are the test's own: they are ended by pid and the removal retried.
    fn drop(&mut self) {
        let mut why = String::new();
        for _ in 0..50 {
            match Command::new("userdel").arg(&self.name).output() {
                Ok(out) if out.status.success() => return,
                Ok(out) => why = String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => why = e.to_string(),
            }
            for pid in processes_of(self.uid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("could not remove the test user {}: {why}", self.name);
    }
}

/// The pids of processes whose owner is `uid`.
fn processes_of(uid: u32) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (e.metadata().ok()?.uid() == uid).then_some(pid)
        })
        .collect()
}

/// A command that runs with `uid`, `gid` and the groups of `name` from the group database.
pub fn as_user(program: impl AsRef<std::ffi::OsStr>, name: &str, uid: u32, gid: u32) -> Command {
    let cname = CString::new(name).expect("user names have no NUL");
    let groups: Vec<libc::gid_t> = nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
        .expect("getgrouplist")
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    let mut cmd = Command::new(program);
    // SAFETY: only async-signal-safe system calls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Removes users and groups left behind by test runs that were killed before their guards
/// ran: those whose name carries the pid of a process that no longer exists (others may
/// belong to tests running right now).
pub fn remove_leftovers() {
    for (file, tool) in [("/etc/passwd", "userdel"), ("/etc/group", "groupdel")] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines() {
            let name = line.split(':').next().unwrap_or_default();
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let pid: String = rest
                .chars()
                .skip(1)
                .take_while(char::is_ascii_digit)
                .collect();
            if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new(tool).arg(name).output();
            }
        }
    }
}
