//! The network layer's only `unsafe`: the tun ioctls, borrowing a raw fd, and tying a helper
//! program's life to the service's.
//!
//! nix has no tun wrappers; the four ioctls below are the whole kernel interface for a
//! persistent tun owned by a user (`linux/if_tun.h`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::libc;

/// `IFF_TUN`: layer-3 device.
const IFF_TUN: i16 = 0x0001;
/// `IFF_NO_PI`: no packet-information header (what openvpn opens with).
const IFF_NO_PI: i16 = 0x1000;
/// `IFF_TUN_EXCL`: fail with `EBUSY` if the name exists, so we never adopt a device that is
/// not ours.
const IFF_TUN_EXCL: i16 = i16::MIN; // 0x8000 in the kernel's `short`

/// `struct ifreq` as `TUNSETIFF` reads it: the name, then the flags (40 bytes on Linux).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: i16,
    _pad: [u8; 22],
}

nix::ioctl_write_ptr_bad!(
    tunsetiff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    IfReq
);
nix::ioctl_write_int!(tunsetpersist, b'T', 203);
nix::ioctl_write_int!(tunsetowner, b'T', 204);
nix::ioctl_write_int!(tunsetgroup, b'T', 206);

/// Creates the persistent tun `name`, owned by `uid`/`gid`, in the caller's network namespace.
pub(crate) fn create_persistent_tun(name: &str, uid: u32, gid: u32) -> io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL,
        _pad: [0; 22],
    };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    req.name[..bytes.len()].copy_from_slice(bytes);
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open /dev/net/tun descriptor owned by `file`, which outlives the
    // calls; `req` is a properly initialised `struct ifreq` the kernel only reads.
    unsafe {
        tunsetiff(fd, &raw const req)?;
        // Owner and group first, persist last: a persistent tun without an owner could be
        // attached by anyone with CAP_NET_ADMIN only, but a half-made one must not outlive us.
        tunsetowner(fd, u64::from(uid))?;
        tunsetgroup(fd, u64::from(gid))?;
        tunsetpersist(fd, 1)?;
    }
    drop::<File>(file);
    Ok(())
}

/// Borrows an fd this process inherited (the hook's channel, fd 3).
pub fn inherited_fd(fd: RawFd) -> io::Result<BorrowedFd<'static>> {
    // Refuse an fd that is not open instead of borrowing garbage.
    nix::fcntl::fcntl(
        // SAFETY: only used for F_GETFD, which is harmless on any number.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )?;
    // SAFETY: the fd is open (checked above) and is never closed by this process while the
    // borrow lives: the hook uses it until it exits.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Makes the helper `cmd` starts get SIGKILL when the service dies (see `helper.rs`), and
/// not start at all if the service died before it could ask for that.
pub(crate) fn die_with_service(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls on integers; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
