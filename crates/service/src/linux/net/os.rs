//! The network layer's edge to the operating system, as one small trait: the real
//! [`System`] (rtnetlink, tun ioctls, D-Bus/resolvconf/resolv.conf, nftables) and, in tests,
//! a fake that records a transcript.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use openvpnserv_core::linux::dns::DnsState;
use openvpnserv_core::linux::journal::{AddressSpec, DnsUndo, RouteSpec};
use openvpnserv_core::linux::policy::{Path as RoutePath, Tun};

use super::{dns, firewall, tun, Rtnl};

/// Every OS operation of the network layer.
pub trait NetOs: Send + Sync + std::fmt::Debug + 'static {
    /// Creates the persistent tun `name` owned by `uid`/`gid`.
    fn create_tun(&self, name: &str, uid: u32, gid: u32) -> io::Result<()>;
    /// Whether every user may open the tun clone device.
    fn clone_device_open_to_users(&self) -> bool;
    /// Creates a private tun device node.
    fn create_node(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// Removes a tun device node.
    fn remove_node(&self, path: &Path) -> io::Result<()>;
    /// The index of link `name`.
    fn link_index(&self, name: &str) -> impl Future<Output = io::Result<Option<u32>>> + Send;
    /// Deletes a link.
    fn delete_link(&self, index: u32) -> impl Future<Output = io::Result<()>> + Send;
    /// Sets a link's MTU and brings it up.
    fn set_link(&self, index: u32, mtu: u32) -> impl Future<Output = io::Result<()>> + Send;
    /// Adds an address.
    fn add_address(&self, a: &AddressSpec) -> impl Future<Output = io::Result<()>> + Send;
    /// Deletes an address.
    fn del_address(&self, a: &AddressSpec) -> impl Future<Output = io::Result<()>> + Send;
    /// Adds a route.
    fn add_route(&self, r: &RouteSpec) -> impl Future<Output = io::Result<()>> + Send;
    /// Deletes a route.
    fn del_route(&self, r: &RouteSpec) -> impl Future<Output = io::Result<()>> + Send;
    /// The kernel's current path to `dst`.
    fn route_to(&self, dst: IpAddr) -> impl Future<Output = io::Result<Option<RoutePath>>> + Send;
    /// Applies a session's DNS state.
    fn dns_apply(
        &self,
        undo: &DnsUndo,
        tun: &Tun,
        state: &DnsState,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Takes a session's DNS settings back.
    fn dns_revert(&self, undo: &DnsUndo) -> impl Future<Output = io::Result<()>> + Send;
    /// Adds a session's nftables table.
    fn firewall_add(
        &self,
        table: &str,
        tun: &str,
        dns_only: bool,
        server: Option<IpAddr>,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Deletes a session's nftables table.
    fn firewall_delete(&self, table: &str) -> impl Future<Output = io::Result<()>> + Send;
}

/// The real operating system.
#[derive(Debug, Clone)]
pub struct System {
    rtnl: Rtnl,
    /// More connections for link deletions, which take an RCU grace period each in the
    /// kernel: new sessions' requests do not queue behind old sessions' clean-up, and the
    /// grace periods of several deletions overlap (a service stop with many sessions).
    rtnl_delete: Vec<Rtnl>,
    next_delete: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Connections used for link deletions.
const DELETE_CONNECTIONS: usize = 4;

impl System {
    /// Opens the netlink connections (each on a thread of its own, in the caller's namespace).
    pub fn connect() -> io::Result<Self> {
        Ok(Self {
            rtnl: Rtnl::connect()?,
            rtnl_delete: (0..DELETE_CONNECTIONS)
                .map(|_| Rtnl::connect_on_own_thread())
                .collect::<io::Result<_>>()?,
            next_delete: std::sync::Arc::default(),
        })
    }
}

impl NetOs for System {
    fn create_tun(&self, name: &str, uid: u32, gid: u32) -> io::Result<()> {
        tun::create(name, uid, gid)
    }

    fn clone_device_open_to_users(&self) -> bool {
        tun::clone_device_open_to_users()
    }

    fn create_node(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        tun::create_node(path, uid, gid)
    }

    fn remove_node(&self, path: &Path) -> io::Result<()> {
        tun::remove_node(path)
    }

    async fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        // One ioctl in this thread's namespace; no round trip through a netlink queue that
        // may be busy with slow requests.
        match nix::net::if_::if_nametoindex(name) {
            Ok(index) => Ok(Some(index)),
            Err(nix::errno::Errno::ENODEV) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_link(&self, index: u32) -> io::Result<()> {
        let n = self
            .next_delete
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.rtnl_delete[n % self.rtnl_delete.len()]
            .delete_link(index)
            .await
    }

    async fn set_link(&self, index: u32, mtu: u32) -> io::Result<()> {
        self.rtnl.set_link(index, mtu).await
    }

    async fn add_address(&self, a: &AddressSpec) -> io::Result<()> {
        self.rtnl.add_address(a).await
    }

    async fn del_address(&self, a: &AddressSpec) -> io::Result<()> {
        self.rtnl.del_address(a).await
    }

    async fn add_route(&self, r: &RouteSpec) -> io::Result<()> {
        self.rtnl.add_route(r).await
    }

    async fn del_route(&self, r: &RouteSpec) -> io::Result<()> {
        self.rtnl.del_route(r).await
    }

    async fn route_to(&self, dst: IpAddr) -> io::Result<Option<RoutePath>> {
        self.rtnl.route_to(dst).await
    }

    async fn dns_apply(&self, undo: &DnsUndo, tun: &Tun, state: &DnsState) -> io::Result<()> {
        dns::apply(undo, tun, state).await
    }

    async fn dns_revert(&self, undo: &DnsUndo) -> io::Result<()> {
        dns::revert(undo).await
    }

    async fn firewall_add(
        &self,
        table: &str,
        tun: &str,
        dns_only: bool,
        server: Option<IpAddr>,
    ) -> io::Result<()> {
        firewall::add(table, tun, dns_only, server).await
    }

    async fn firewall_delete(&self, table: &str) -> io::Result<()> {
        firewall::delete(table).await
    }
}
