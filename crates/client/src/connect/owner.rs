//! Is the process listening on the management port the openvpn the service started?
//!
//! The port was free when we picked it, but another local program could bind it before
//! openvpn does, imitate the password prompt and then ask the user for their VPN password.
//! On Linux the listening socket's inode (from `/proc/net/tcp`) must be one of openvpn's
//! open files (`/proc/<pid>/fd`); openvpn runs as the same user, so both are readable. On
//! Windows the system's table of TCP listeners names each one's owning process.

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

/// Checks that the TCP listener on `addr` is owned by process `pid`.
#[cfg(windows)]
pub fn management_owner(pid: u32, addr: SocketAddrV4) -> Owner {
    match windows::listener_owner(addr) {
        Ok(Some(owner)) if owner == pid => Owner::Verified,
        // PID 0 owns no sockets on Windows; Wine reports it for every listener.
        Ok(Some(0)) => Owner::Unknown("the system did not name the listener's process".into()),
        Ok(_) => Owner::Other,
        Err(e) => Owner::Unknown(format!("cannot read the table of TCP listeners: {e}")),
    }
}

/// Other platforms: not checked.
#[cfg(not(any(target_os = "linux", windows)))]
pub fn management_owner(_pid: u32, _addr: SocketAddrV4) -> Owner {
    Owner::Unknown("the management port's owner is not checked on this platform".to_owned())
}

/// The owner of the IPv4 TCP listener on an address, from `GetExtendedTcpTable`.
#[cfg(windows)]
pub mod windows {
    #![allow(unsafe_code)]

    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4};

    use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, NO_ERROR};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetExtendedTcpTable, TCP_TABLE_OWNER_PID_LISTENER,
    };
    use windows_sys::Win32::Networking::WinSock::AF_INET;

    /// `MIB_TCPROW_OWNER_PID`: state, local address, local port, remote address, remote
    /// port, owning pid — six 32-bit fields.
    const ROW_WORDS: usize = 6;

    /// The process id owning the listener on `addr`, if any.
    pub fn listener_owner(addr: SocketAddrV4) -> io::Result<Option<u32>> {
        let table = listeners()?;
        Ok(find(&table, addr))
    }

    /// The raw `MIB_TCPTABLE_OWNER_PID`, as 32-bit words (the count, then the rows).
    fn listeners() -> io::Result<Vec<u32>> {
        let mut size = 0u32;
        for _ in 0..4 {
            let mut table = vec![0u32; (size as usize).div_ceil(4).max(1)];
            // SAFETY: `table` is a writable, 4-byte aligned buffer of at least `size` bytes
            // that lives across the call; `size` is a valid u32 the function updates.
            let rc = unsafe {
                GetExtendedTcpTable(
                    table.as_mut_ptr().cast(),
                    &raw mut size,
                    0,
                    u32::from(AF_INET),
                    TCP_TABLE_OWNER_PID_LISTENER,
                    0,
                )
            };
            match rc {
                NO_ERROR => return Ok(table),
                // The table grew between the calls: ask again with the new size.
                ERROR_INSUFFICIENT_BUFFER => {}
                other => return Err(io::Error::from_raw_os_error(other as i32)),
            }
        }
        Err(io::Error::other("the TCP table kept growing"))
    }

    /// Finds the listener on `addr` in a table (plain reads of the words, no pointer casts).
    pub fn find(table: &[u32], addr: SocketAddrV4) -> Option<u32> {
        let count = *table.first()? as usize;
        table[1..]
            .chunks_exact(ROW_WORDS)
            .take(count)
            .find(|row| {
                // Address and port are stored in network byte order.
                let ip = Ipv4Addr::from(row[1].to_ne_bytes());
                let port = u16::from_be(row[2] as u16);
                SocketAddrV4::new(ip, port) == addr
            })
            .map(|row| row[5])
    }
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
