//! Telling Windows about DNS changes (spec §5.6.6–§5.6.7): the DNS client's parameter
//! change (and the policy change notification), `ipconfig /flushdns` + `/registerdns` in
//! the background, and the DNS servers and domains of the other interfaces for NRPT
//! exclude rules.

use std::sync::Mutex;
use std::time::Duration;

use openvpnserv_core::windows::net::{Code, InterfaceDns, Registry};
use openvpnserv_core::windows::session::interface_key;
use openvpnserv_proto::codes::NO_ERROR;

use super::helper;
use crate::windows::sys::network;

/// Only one `ipconfig /registerdns` at a time, process-wide (upstream's semaphore).
static REGISTER_DNS: Mutex<()> = Mutex::new(());

/// Tells the DNS client that its settings changed (`gpol`: the policy key changed too).
pub(super) fn notify(gpol: bool) {
    if gpol {
        network::publish_gpol_change();
    }
    network::dnscache_param_change();
}

/// Starts `ipconfig /flushdns` and `/registerdns` on a thread of their own.
pub(super) fn register() -> Code {
    let spawned = std::thread::Builder::new()
        .name("register-dns".into())
        .spawn(|| {
            let _one_at_a_time = REGISTER_DNS.lock();
            let exe = format!(r"{}\ipconfig.exe", helper::system_dir());
            let limit = Duration::from_secs(600);
            helper::run(&exe, "ipconfig /flushdns", limit);
            helper::run(&exe, "ipconfig /registerdns", limit);
        });
    match spawned {
        Ok(_) => NO_ERROR,
        Err(e) => e.raw_os_error().unwrap_or(8) as u32,
    }
}

/// DNS servers and domains of the connected interfaces other than `except_alias`: the
/// adapter's servers and suffix, then the search lists and domains of its Tcpip and Tcpip6
/// keys.
pub(super) fn other_interfaces(
    registry: &mut impl Registry,
    except_alias: &str,
) -> Vec<InterfaceDns> {
    let mut out = Vec::new();
    for adapter in network::adapters() {
        if !adapter.up || adapter.alias == except_alias {
            continue;
        }
        let mut dns = InterfaceDns {
            servers: adapter.dns_servers,
            domains: Vec::new(),
        };
        if !adapter.dns_suffix.is_empty() {
            dns.domains.push(adapter.dns_suffix);
        }
        for v6 in [false, true] {
            let key = interface_key(&adapter.name, v6);
            for name in ["SearchList", "Domain", "DhcpDomainSearchList", "DhcpDomain"] {
                if let Some(list) = registry.get_sz(&key, name) {
                    dns.domains.extend(
                        list.split([',', ' '])
                            .filter(|d| !d.is_empty())
                            .map(str::to_owned),
                    );
                }
            }
        }
        dns.domains.dedup();
        out.push(dns);
    }
    out
}
