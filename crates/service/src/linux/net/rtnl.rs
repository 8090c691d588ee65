//! Links, addresses and routes through rtnetlink (never by running `ip`).

use std::io;
use std::net::IpAddr;

use futures::TryStreamExt;
use openvpnserv_core::linux::journal::{AddressSpec, RouteSpec};
use openvpnserv_core::linux::policy::Path;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

/// The route protocol number our routes carry, so that an undo (`RTM_DELROUTE` matches the
/// protocol) can only ever remove a route we added. 0x4f is unassigned in `rt_protos`.
pub(crate) const PROTOCOL: u8 = 0x4f;

/// An rtnetlink error as the OS error it carries.
/// A route the builder refuses (the builder's error type is not exported).
fn invalid(e: impl std::fmt::Debug) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}"))
}

fn os(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// A netlink connection (its task runs on the current tokio runtime, in the caller's network
/// namespace).
#[derive(Clone, Debug)]
pub struct Rtnl {
    handle: Handle,
}

impl Rtnl {
    /// Opens a connection on the current runtime: the fast path for addresses and routes
    /// (about 10 µs per request; a thread hop each way would cost several times that).
    pub fn connect() -> io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Opens a connection served by a thread of its own, for slow requests.
    ///
    /// The kernel handles a netlink request inside the `sendmsg` that carries it, and some
    /// requests take long there: deleting a link waits for an RCU grace period (about 20 ms
    /// here). On the service's single runtime thread that would stall every other session
    /// (a new client would wait for the previous session's tun to go); on its own thread it
    /// delays only other slow requests.
    pub fn connect_on_own_thread() -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("rtnetlink".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match rtnetlink::new_connection() {
                        Ok((conn, handle, _)) => {
                            let _ = tx.send(Ok(handle));
                            // Runs until every handle is dropped.
                            conn.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        let handle = rx
            .recv()
            .map_err(|_| io::Error::other("the rtnetlink thread ended before it connected"))??;
        Ok(Self { handle })
    }

    /// The index of link `name`, if it exists.
    pub async fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) => match os(e) {
                e if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Sets the MTU and brings the link up.
    pub async fn set_link(&self, index: u32, mtu: u32) -> io::Result<()> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).up().build();
        self.handle.link().set(msg).execute().await.map_err(os)
    }

    /// Deletes a link.
    pub async fn delete_link(&self, index: u32) -> io::Result<()> {
        self.handle.link().del(index).execute().await.map_err(os)
    }

    /// Adds an address.
    pub async fn add_address(&self, a: &AddressSpec) -> io::Result<()> {
        self.handle
            .address()
            .add(a.ifindex, a.addr, a.prefix_len)
            .execute()
            .await
            .map_err(os)
    }

    /// Deletes an address.
    pub async fn del_address(&self, a: &AddressSpec) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = if a.addr.is_ipv4() {
            rtnetlink::packet_route::AddressFamily::Inet
        } else {
            rtnetlink::packet_route::AddressFamily::Inet6
        };
        msg.header.prefix_len = a.prefix_len;
        msg.header.index = a.ifindex;
        msg.attributes.push(AddressAttribute::Local(a.addr));
        msg.attributes.push(AddressAttribute::Address(a.addr));
        self.handle.address().del(msg).execute().await.map_err(os)
    }

    fn route_message(r: &RouteSpec) -> io::Result<RouteMessage> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dst, r.prefix_len)
            .map_err(invalid)?
            .output_interface(r.oif)
            .protocol(RouteProtocol::Other(PROTOCOL))
            .kind(RouteType::Unicast);
        match r.gateway {
            Some(g) => b = b.gateway(g).map_err(invalid)?,
            // A route with no next hop is on-link, as `ip route add ... dev` makes it; a
            // universe-scope one could not serve as the way to a gateway (net30's peer).
            None => b = b.scope(RouteScope::Link),
        }
        if let Some(m) = r.metric {
            b = b.priority(m);
        }
        Ok(b.build())
    }

    /// Adds a route.
    pub async fn add_route(&self, r: &RouteSpec) -> io::Result<()> {
        let msg = Self::route_message(r)?;
        self.handle.route().add(msg).execute().await.map_err(os)
    }

    /// Deletes a route (only one we added: the protocol must match).
    pub async fn del_route(&self, r: &RouteSpec) -> io::Result<()> {
        let msg = Self::route_message(r)?;
        self.handle.route().del(msg).execute().await.map_err(os)
    }

    /// The kernel's current path to `dst` (`ip route get`).
    pub async fn route_to(&self, dst: IpAddr) -> io::Result<Option<Path>> {
        let full = if dst.is_ipv4() { 32 } else { 128 };
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst, full)
            .map_err(invalid)?
            .build();
        let mut answers = self.handle.route().get(msg).execute();
        let reply = match answers.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = os(e);
                return match e.raw_os_error() {
                    Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH) => Ok(None),
                    _ => Err(e),
                };
            }
        };
        let mut gateway = None;
        let mut oif = None;
        for attr in &reply.attributes {
            match attr {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                    gateway = Some(IpAddr::V6(*g));
                }
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let Some(oif) = oif else { return Ok(None) };
        let dev = self.link_name(oif).await?.unwrap_or_default();
        Ok(Some(Path { gateway, oif, dev }))
    }

    /// The name of link `index`.
    pub async fn link_name(&self, index: u32) -> io::Result<Option<String>> {
        let mut links = self.handle.link().get().match_index(index).execute();
        let link = match links.try_next().await {
            Ok(l) => l,
            Err(e) => match os(e) {
                e if e.raw_os_error() == Some(nix::libc::ENODEV) => return Ok(None),
                e => return Err(e),
            },
        };
        Ok(link.and_then(|m| {
            m.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            })
        }))
    }
}
