//! Starting openvpn as the caller (the Linux `CreateProcessAsUserW`, spec §4).
//!
//! Everything the child needs is computed in the parent; after `fork` the child only makes
//! system calls, in this order: lower or raise its nice value (still root), take a process
//! group of its own and leave the controlling terminal, put the channel on fd 3, mark every
//! other fd above 2 close-on-exec, set the supplementary groups, then gid, then uid
//! (`setgroups` → `setresgid` → `setresuid`), ask for SIGTERM if the service dies, and only
//! then enter the working directory, so a directory the user cannot enter fails as it would
//! for them. The fork happens on a blocking thread (`session::launch`): the working directory
//! may sit on a mount that never answers. std's `Command::uid`/`gid` are not used:
//! they clear the supplementary groups and run before `pre_exec`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::net::CHANNEL_FD;

/// What to start and as whom.
#[derive(Debug)]
pub struct LaunchSpec {
    /// The executable (`exe_path`).
    pub exe: String,
    /// Arguments after argv\[0\] (which is always `openvpn`).
    pub args: Vec<String>,
    /// Working directory, entered as the user.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Nice value.
    pub nice: i32,
    /// `HOME`, `USER`/`LOGNAME`, `SHELL`.
    pub home: String,
    /// Login name.
    pub user: String,
    /// Login shell.
    pub shell: String,
}

/// `PATH` for openvpn and its scripts.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Starts openvpn. Returns the child with its stdin as a pipe; its stdout and stderr are
/// both `output` (the write end of the session's output pipe, `output.rs`). A failure in the
/// child before `exec` (such as a working directory the user cannot enter) comes back as the
/// error, with its errno.
/// `channel` is the child's end of the channel; it becomes fd 3.
pub fn spawn(spec: &LaunchSpec, channel: OwnedFd, output: OwnedFd) -> std::io::Result<Child> {
    let stderr = output.try_clone()?;
    let cwd = CString::new(spec.cwd.as_str())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let groups: Vec<libc::gid_t> = spec.groups.clone();
    let (uid, gid, nice) = (spec.uid, spec.gid, spec.nice);
    let channel_fd = channel.as_raw_fd();
    let parent_pid = std::process::id();
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());

    let mut cmd = Command::new(&spec.exe);
    cmd.arg0("openvpn")
        .args(&spec.args)
        .env_clear()
        .env("HOME", &spec.home)
        .env("USER", &spec.user)
        .env("LOGNAME", &spec.user)
        .env("SHELL", &spec.shell)
        .env("PATH", PATH)
        .env("LANG", lang)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(output))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls on data prepared above; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || child_setup(channel_fd, &groups, uid, gid, nice, parent_pid, &cwd));
    }
    let child = cmd.spawn();
    // The parent's copies of the child's ends (the channel; the output pipe, held by `cmd`)
    // are closed here in every case, so that the pipe ends when openvpn and its scripts do.
    drop(channel);
    drop(cmd);
    child
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Marks every open fd above `last` close-on-exec, one `fcntl` each, up to the fd limit: the
/// fallback for kernels before 5.11. Async-signal-safe: it allocates nothing.
fn mark_cloexec_above(last: i32) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given; fcntl is called on plain integers
    // (F_GETFD on a number that is not open fails harmlessly with EBADF).
    unsafe {
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit))?;
        let end = i32::try_from(limit.rlim_cur.min(1 << 20)).unwrap_or(1 << 20);
        for fd in last + 1..end {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags != -1 && flags & libc::FD_CLOEXEC == 0 {
                check(libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
            }
        }
    }
    Ok(())
}

/// Runs in the child between `fork` and `exec`.
fn child_setup(
    channel_fd: i32,
    groups: &[libc::gid_t],
    uid: u32,
    gid: u32,
    nice: i32,
    parent_pid: u32,
    cwd: &CString,
) -> std::io::Result<()> {
    // SAFETY: plain system calls on integers and on pointers into `groups` and `cwd`, which
    // live until exec; no allocation, no locks.
    unsafe {
        if nice != 0 {
            check(libc::setpriority(libc::PRIO_PROCESS, 0, nice))?;
        }
        // A process group of its own and no controlling terminal, so a Ctrl-C aimed at a
        // foreground service does not reach openvpn: the service decides how its children
        // end. Not a new session (setsid): that would put the child in a scheduler
        // autogroup of its own, which the kernel starved for up to a second before exec
        // while the service was busy (seen under a connection flood).
        check(libc::setpgid(0, 0))?;
        let tty = libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if tty >= 0 {
            libc::ioctl(tty, libc::TIOCNOTTY);
            libc::close(tty);
        }
        if channel_fd == CHANNEL_FD {
            check(libc::fcntl(CHANNEL_FD, libc::F_SETFD, 0))?;
        } else {
            // dup2 leaves the new fd without close-on-exec.
            check(libc::dup2(channel_fd, CHANNEL_FD))?;
        }
        // Everything above the channel is closed at exec, whatever the service holds open.
        // close_range(CLOSE_RANGE_CLOEXEC) needs Linux 5.11; older kernels answer ENOSYS
        // (no close_range) or EINVAL (no such flag), and get every fd marked one by one.
        if libc::syscall(
            libc::SYS_close_range,
            CHANNEL_FD + 1,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == -1
        {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENOSYS | libc::EINVAL) => mark_cloexec_above(CHANNEL_FD)?,
                _ => return Err(err),
            }
        }
        check(libc::setgroups(groups.len(), groups.as_ptr()))?;
        check(libc::setresgid(gid, gid, gid))?;
        check(libc::setresuid(uid, uid, uid))?;
        // Cleared by the uid change, so set afterwards. If the service is already gone, do
        // not start openvpn at all.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM))?;
        if libc::getppid() as u32 != parent_pid {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        check(libc::chdir(cwd.as_ptr()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback for kernels without `close_range(CLOSE_RANGE_CLOEXEC)` (before 5.11),
    /// where every session used to fail with EINVAL before openvpn started.
    #[test]
    fn without_close_range_every_fd_is_still_marked_close_on_exec() {
        // SAFETY: a copy of stdin (open in the test process) at 10 or above, without
        // close-on-exec; it is closed below.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD, 10) };
        assert!(fd > CHANNEL_FD, "dup gave fd {fd}");
        // SAFETY: F_GETFD on the fd just made.
        let before = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(before & libc::FD_CLOEXEC, 0, "dup leaves close-on-exec off");
        mark_cloexec_above(CHANNEL_FD).unwrap();
        // SAFETY: as above.
        let after = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_ne!(after & libc::FD_CLOEXEC, 0);
        // SAFETY: closing the fd this test opened.
        unsafe { libc::close(fd) };
    }
}
