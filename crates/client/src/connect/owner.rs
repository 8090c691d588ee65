//! Is the process listening on the management port the openvpn the service started?
//!
//! The port was free when we picked it, but another local program could bind it before
//! openvpn does, imitate the password prompt and then ask the user for their VPN password.
//! On Linux the listening socket's inode (from `/proc/net/tcp`) must be one of openvpn's
//! open files (`/proc/<pid>/fd`); openvpn runs as the same user, so both are readable.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The listener belongs to `pid`.
    Verified,
    /// The listener belongs to another process.
    Other,
    /// The check cannot be made here (another platform, or `/proc` unreadable).
    Unknown(String),
}

/// Checks that the TCP listener on `addr` is an open file of process `pid`.
#[cfg(target_os = "linux")]
pub fn management_owner(pid: u32, addr: SocketAddrV4) -> Owner {
    match listener_inode(&std::fs::read_to_string("/proc/net/tcp"), addr) {
        Ok(Some(inode)) => match holds_socket(pid, inode) {
            Ok(true) => Owner::Verified,
            Ok(false) => Owner::Other,
            Err(e) => Owner::Unknown(format!("cannot read the open files of process {pid}: {e}")),
        },
        Ok(None) => Owner::Other,
        Err(e) => Owner::Unknown(format!("cannot read /proc/net/tcp: {e}")),
    }
}

/// Other platforms: not checked (the GUI does not check either).
#[cfg(not(target_os = "linux"))]
pub fn management_owner(_pid: u32, _addr: SocketAddrV4) -> Owner {
    Owner::Unknown("the management port's owner is only checked on Linux".to_owned())
}

/// The inode of the listening socket on `addr`, from the text of `/proc/net/tcp`.
pub fn listener_inode(table: &io::Result<String>, addr: SocketAddrV4) -> io::Result<Option<u64>> {
    let table = table
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
        else {
            continue;
        };
        // State 0A is LISTEN.
        if *state != "0A" {
            continue;
        }
        let Some((ip, port)) = local.split_once(':') else {
            continue;
        };
        let (Ok(ip), Ok(port)) = (u32::from_str_radix(ip, 16), u16::from_str_radix(port, 16))
        else {
            continue;
        };
        // The kernel prints the address as a number in host byte order.
        if SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port) == addr {
            return Ok(inode.parse().ok());
        }
    }
    Ok(None)
}

#[cfg(target_os = "linux")]
fn holds_socket(pid: u32, inode: u64) -> io::Result<bool> {
    let wanted = format!("socket:[{inode}]");
    let entries = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        // openvpn is gone, so whoever listens is not openvpn.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    };
    for entry in entries {
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            if target.as_os_str() == wanted.as_str() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
