//! Who is on the other end of a client connection.
//!
//! Taken from the kernel once, at accept: `SO_PEERCRED` (uid, gid, pid of the process that
//! called `connect`) and `SO_PEERGROUPS` (its supplementary groups), then the account from the
//! password database. Nothing in a message can change it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::unistd::{Gid, Group, Uid, User};
use openvpnserv_policy::{Caller, Membership};

use super::net::SessionUser;

/// The caller of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// User id.
    pub uid: u32,
    /// Primary group id (the one the client process runs with).
    pub gid: u32,
    /// Client process id, for logs.
    pub pid: Option<i32>,
    /// Supplementary groups of the client process.
    pub groups: Vec<u32>,
    /// Login name.
    pub name: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// The account's primary group (what openvpn runs with).
    pub account_gid: u32,
}

/// Why the caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The kernel would not say.
    #[error("cannot read the peer credentials: {0}")]
    Credentials(#[source] std::io::Error),
    /// No password-database entry for the uid.
    #[error("uid {0} has no entry in the user database")]
    UnknownUser(u32),
}

/// `SO_PEERGROUPS`, which nix does not wrap.
fn peer_groups(fd: BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * std::mem::size_of::<libc::gid_t>())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?;
        // SAFETY: `groups` has room for `len` bytes and both pointers are valid for the call;
        // the kernel writes at most `len` bytes and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &raw mut len,
            )
        };
        if rc == 0 {
            groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && groups.len() < 65536 {
            // `len` now holds the size needed.
            groups.resize(
                (len as usize / std::mem::size_of::<libc::gid_t>()).max(groups.len() * 2),
                0,
            );
            continue;
        }
        return Err(err);
    }
}

/// The kernel's answer for the peer of a connected unix socket: cheap system calls only, so
/// that a flood of connections costs little before anything is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Client process id.
    pub pid: Option<i32>,
    /// Supplementary groups, if the kernel told them.
    pub groups: Option<Vec<u32>>,
}

/// Reads the peer credentials of a connected unix socket.
pub fn peer_credentials(
    socket: &tokio_seqpacket::UnixSeqpacket,
) -> Result<PeerCred, IdentityError> {
    let cred = socket.peer_cred().map_err(IdentityError::Credentials)?;
    // SAFETY: the socket owns this fd and outlives the borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    Ok(PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
        groups: peer_groups(fd).ok(),
    })
}

/// Completes the identity from the user database.
pub fn resolve(cred: PeerCred) -> Result<PeerIdentity, IdentityError> {
    let user = User::from_uid(Uid::from_raw(cred.uid))
        .ok()
        .flatten()
        .ok_or(IdentityError::UnknownUser(cred.uid))?;
    // Prefer the kernel's view of the client's groups; fall back to the group database.
    let groups = cred
        .groups
        .unwrap_or_else(|| account_groups(&user.name, user.gid.as_raw()));
    Ok(PeerIdentity {
        uid: cred.uid,
        gid: cred.gid,
        pid: cred.pid,
        groups,
        name: user.name,
        home: user.dir.to_string_lossy().into_owned(),
        shell: user.shell.to_string_lossy().into_owned(),
        account_gid: user.gid.as_raw(),
    })
}

/// The account's groups from the group database (`getgrouplist`), primary group included.
pub fn account_groups(name: &str, primary: u32) -> Vec<u32> {
    let Ok(cname) = CString::new(name) else {
        return vec![primary];
    };
    nix::unistd::getgrouplist(&cname, Gid::from_raw(primary)).map_or_else(
        |_| vec![primary],
        |gids| gids.into_iter().map(Gid::as_raw).collect(),
    )
}

impl PeerIdentity {
    /// The caller as the policy sees it.
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.name.clone(),
            domain: String::new(),
            superuser: self.uid == 0,
        }
    }

    /// Every group the caller is in, for authorization: the connection's gid and
    /// supplementary groups, and the account's groups from the database (upstream likewise
    /// accepts a group found in the token or in the group's member list).
    pub fn all_groups(&self) -> Vec<u32> {
        let mut all = self.groups.clone();
        all.push(self.gid);
        all.extend(account_groups(&self.name, self.account_gid));
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Who openvpn runs as: the client process's own uid, gid and groups, as a Windows
    /// child gets a copy of the client's token.
    pub fn session_user(&self) -> SessionUser {
        SessionUser {
            uid: self.uid,
            gid: self.gid,
            name: self.name.clone(),
        }
    }
}

/// Group membership answered from a fixed list of gids.
#[derive(Debug, Clone)]
pub struct GidMembership(pub Vec<u32>);

impl Membership for GidMembership {
    fn is_member(&self, group: &str) -> bool {
        match Group::from_name(group) {
            Ok(Some(g)) => self.0.contains(&g.gid.as_raw()),
            _ => false,
        }
    }
}
