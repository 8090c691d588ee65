//! Typed forms of the openvpn-msg structs (spec §5.2, §5.4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Kind, AF_INET, AF_INET6, INDEX_INVALID, NRPT_ADDR_NUM, NRPT_ADDR_SIZE};

/// A fixed-size, NUL-terminated C string field of `N` bytes.
///
/// Holds at most `N - 1` bytes and no NUL. Decoding stops at the first NUL or after `N - 1`
/// bytes, which is what upstream's "force a NUL into the last byte" amounts to; it never reads
/// past the field (spec §11).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct FixedStr<const N: usize>(Vec<u8>);

/// A value does not fit a [`FixedStr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedStrError {
    /// Longer than the field allows.
    #[error("{len} bytes do not fit a field of {field} bytes (at most {} plus the NUL)", field - 1)]
    TooLong {
        /// Bytes given.
        len: usize,
        /// Field size.
        field: usize,
    },
    /// Contains a NUL byte.
    #[error("text contains a NUL byte")]
    Nul,
}

impl<const N: usize> FixedStr<N> {
    /// Builds a field from text, refusing what would not survive the wire.
    pub fn new(value: impl AsRef<[u8]>) -> Result<Self, FixedStrError> {
        let bytes = value.as_ref();
        if bytes.contains(&0) {
            return Err(FixedStrError::Nul);
        }
        if bytes.len() >= N {
            return Err(FixedStrError::TooLong {
                len: bytes.len(),
                field: N,
            });
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Reads the field from exactly `N` bytes (fewer are treated as ending there).
    pub(crate) fn from_field(field: &[u8]) -> Self {
        let limit = field.len().min(N.saturating_sub(1));
        let end = field[..limit].iter().position(|&b| b == 0).unwrap_or(limit);
        Self(field[..end].to_vec())
    }

    /// The raw bytes (no NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Whether the field is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> std::fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// `inet_address_t`: a union of `in_addr` and `in6_addr`; IPv4 sits in the first four bytes,
/// network byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InetAddr(pub [u8; 16]);

impl InetAddr {
    /// An IPv4 address (the other twelve bytes zero).
    pub fn v4(addr: Ipv4Addr) -> Self {
        let mut raw = [0; 16];
        raw[..4].copy_from_slice(&addr.octets());
        Self(raw)
    }

    /// An IPv6 address.
    pub fn v6(addr: Ipv6Addr) -> Self {
        Self(addr.octets())
    }

    /// An address of either family.
    pub fn from_ip(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::v4(a),
            IpAddr::V6(a) => Self::v6(a),
        }
    }

    /// The address read according to a Windows address family (2 or 23); `None` for others.
    pub fn to_ip(&self, family: i16) -> Option<IpAddr> {
        match family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                self.0[0], self.0[1], self.0[2], self.0[3],
            ))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(self.0))),
            _ => None,
        }
    }
}

impl std::fmt::Debug for InetAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0[4..].iter().all(|&b| b == 0) {
            write!(
                f,
                "{}|",
                Ipv4Addr::new(self.0[0], self.0[1], self.0[2], self.0[3])
            )
        } else {
            write!(f, "{}", Ipv6Addr::from(self.0))
        }
    }
}

/// `interface_t`: an interface by index, or by name (UTF-8 alias) when the index is
/// [`INDEX_INVALID`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Interface {
    /// Interface index, or [`INDEX_INVALID`].
    pub index: u32,
    /// Interface name (Windows alias, Linux device name).
    pub name: FixedStr<256>,
}

impl Interface {
    /// An interface named `name`, with the index left to the service to resolve.
    pub fn by_name(name: &str) -> Result<Self, FixedStrError> {
        Ok(Self {
            index: INDEX_INVALID,
            name: FixedStr::new(name)?,
        })
    }

    /// An interface by index, with an optional name alongside.
    pub fn by_index(index: u32, name: &str) -> Result<Self, FixedStrError> {
        Ok(Self {
            index,
            name: FixedStr::new(name)?,
        })
    }
}

/// `address_message_t` (add/del address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct AddressMsg {
    pub family: i16,
    pub address: InetAddr,
    pub prefix_len: i32,
    pub iface: Interface,
}

/// `route_message_t` (add/del route). `metric` is −1 when openvpn has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct RouteMsg {
    pub family: i16,
    pub prefix: InetAddr,
    pub prefix_len: i32,
    pub gateway: InetAddr,
    pub iface: Interface,
    pub metric: i32,
}

/// `dns_cfg_message_t` (add/del DNS servers and search domains).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct DnsCfgMsg {
    pub iface: Interface,
    /// Comma-separated domains.
    pub domains: FixedStr<512>,
    pub family: i16,
    /// Number of valid entries in `addr` as sent; the service clamps it to 4.
    pub addr_len: u32,
    pub addr: [InetAddr; 4],
}

/// `nrpt_dns_cfg_message_t` (2.7 `--dns`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct NrptCfgMsg {
    pub iface: Interface,
    /// Textual server addresses.
    pub addresses: [FixedStr<NRPT_ADDR_SIZE>; NRPT_ADDR_NUM],
    /// Comma-separated, each with a leading dot.
    pub resolve_domains: FixedStr<512>,
    /// Comma-separated.
    pub search_domains: FixedStr<512>,
    pub flags: u32,
}

/// `wins_cfg_message_t`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct WinsCfgMsg {
    pub iface: Interface,
    pub addr_len: u32,
    pub addr: [InetAddr; 4],
}

/// `nbt_cfg_message_t`: defined upstream but never sent nor handled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct NbtCfgMsg {
    pub iface: Interface,
    pub disable_nbt: i32,
    pub nbt_type: i32,
    pub scope_id: FixedStr<256>,
    pub primary: u32,
    pub secondary: u32,
}

/// `flush_neighbors_message_t`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct FlushNeighborsMsg {
    pub family: i16,
    pub iface: Interface,
}

/// `wfp_block_message_t` (2.7): `flags == 2` blocks DNS only; anything else blocks all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct WfpBlockMsg {
    pub flags: u32,
    pub iface: Interface,
}

/// `set_mtu_message_t`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct SetMtuMsg {
    pub iface: Interface,
    pub family: i16,
    pub mtu: i32,
}

/// `create_adapter_message_t` (2.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct CreateAdapterMsg {
    pub adapter_type: u32,
}

/// `register_ring_buffers_message_t` (2.5/2.6 Wintun): five handle values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct RingBuffersMsg {
    pub handles: [u64; 5],
}

/// A request from openvpn.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Request {
    AddAddress(AddressMsg),
    DelAddress(AddressMsg),
    AddRoute(RouteMsg),
    DelRoute(RouteMsg),
    AddDnsCfg(DnsCfgMsg),
    DelDnsCfg(DnsCfgMsg),
    AddNrptCfg(NrptCfgMsg),
    DelNrptCfg(NrptCfgMsg),
    AddNbtCfg(NbtCfgMsg),
    DelNbtCfg(NbtCfgMsg),
    FlushNeighbors(FlushNeighborsMsg),
    AddWfpBlock(WfpBlockMsg),
    DelWfpBlock(WfpBlockMsg),
    /// 2.6 only.
    AddBlockDns(Interface),
    /// 2.6 only.
    DelBlockDns(Interface),
    RegisterDns,
    EnableDhcp(Interface),
    /// 2.5/2.6 only.
    RegisterRingBuffers(RingBuffersMsg),
    SetMtu(SetMtuMsg),
    AddWinsCfg(WinsCfgMsg),
    DelWinsCfg(WinsCfgMsg),
    CreateAdapter(CreateAdapterMsg),
}

impl Request {
    /// The message kind.
    pub fn kind(&self) -> Kind {
        match self {
            Request::AddAddress(_) => Kind::AddAddress,
            Request::DelAddress(_) => Kind::DelAddress,
            Request::AddRoute(_) => Kind::AddRoute,
            Request::DelRoute(_) => Kind::DelRoute,
            Request::AddDnsCfg(_) => Kind::AddDnsCfg,
            Request::DelDnsCfg(_) => Kind::DelDnsCfg,
            Request::AddNrptCfg(_) => Kind::AddNrptCfg,
            Request::DelNrptCfg(_) => Kind::DelNrptCfg,
            Request::AddNbtCfg(_) => Kind::AddNbtCfg,
            Request::DelNbtCfg(_) => Kind::DelNbtCfg,
            Request::FlushNeighbors(_) => Kind::FlushNeighbors,
            Request::AddWfpBlock(_) => Kind::AddWfpBlock,
            Request::DelWfpBlock(_) => Kind::DelWfpBlock,
            Request::AddBlockDns(_) => Kind::AddBlockDns,
            Request::DelBlockDns(_) => Kind::DelBlockDns,
            Request::RegisterDns => Kind::RegisterDns,
            Request::EnableDhcp(_) => Kind::EnableDhcp,
            Request::RegisterRingBuffers(_) => Kind::RegisterRingBuffers,
            Request::SetMtu(_) => Kind::SetMtu,
            Request::AddWinsCfg(_) => Kind::AddWinsCfg,
            Request::DelWinsCfg(_) => Kind::DelWinsCfg,
            Request::CreateAdapter(_) => Kind::CreateAdapter,
        }
    }
}

/// A request with its header's message id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// `message_header_t.message_id` (openvpn always sends 0).
    pub message_id: i32,
    /// The request.
    pub request: Request,
}

/// `ack_message_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ack {
    /// The request's id, or −1 when the request could not be read.
    pub message_id: i32,
    /// 0 on success, else a Win32-style code.
    pub error_number: u32,
}
