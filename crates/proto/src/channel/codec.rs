//! Encoding and decoding of channel messages (spec §5.1, §5.4, §5.5).

use super::layout::{self, body, header, INTERFACE_LEN, INTERFACE_NAME};
use super::types::{
    Ack, AddressMsg, CreateAdapterMsg, DnsCfgMsg, Envelope, FixedStr, FlushNeighborsMsg, InetAddr,
    Interface, NbtCfgMsg, NrptCfgMsg, Request, RingBuffersMsg, RouteMsg, SetMtuMsg, WfpBlockMsg,
    WinsCfgMsg,
};
use super::{Arch, Kind, Revision, NRPT_ADDR_NUM, NRPT_ADDR_SIZE};
use crate::codes::{ERROR_MESSAGE_DATA, ERROR_MESSAGE_TYPE};

/// Message id the service puts in an ack when it could not read the request's header.
pub const UNKNOWN_MESSAGE_ID: i32 = -1;

/// A channel peer's layout and numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codec {
    /// Struct layout.
    pub arch: Arch,
    /// Type numbering.
    pub revision: Revision,
}

/// Why channel bytes were not a usable request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than the largest request: the channel must be abandoned without an ack
    /// (CVE-2024-27459).
    #[error("message of {len} bytes is larger than any request ({max} bytes)")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The largest request of this codec.
        max: usize,
    },
    /// Shorter than a header, or the header's size field is not the number of bytes received.
    #[error("message of {len} bytes has no valid header")]
    Malformed {
        /// Bytes received.
        len: usize,
    },
    /// The type is not one the service acts on.
    #[error("unknown message type {msg_type}")]
    UnknownType {
        /// The request's id.
        message_id: i32,
        /// The type number received.
        msg_type: u32,
    },
    /// The size is not that of the type's struct.
    #[error("message type {msg_type} has {len} bytes, expected {expected}")]
    WrongSize {
        /// The request's id.
        message_id: i32,
        /// The type number received.
        msg_type: u32,
        /// Bytes received.
        len: usize,
        /// The struct's size.
        expected: usize,
    },
}

impl DecodeError {
    /// The acknowledgement the service sends for this error, or `None` when the channel must
    /// be dropped instead.
    pub fn ack(&self) -> Option<Ack> {
        match *self {
            DecodeError::TooLarge { .. } => None,
            DecodeError::Malformed { .. } => Some(Ack {
                message_id: UNKNOWN_MESSAGE_ID,
                error_number: ERROR_MESSAGE_DATA,
            }),
            DecodeError::WrongSize { message_id, .. } => Some(Ack {
                message_id,
                error_number: ERROR_MESSAGE_DATA,
            }),
            DecodeError::UnknownType { message_id, .. } => Some(Ack {
                message_id,
                error_number: ERROR_MESSAGE_TYPE,
            }),
        }
    }
}

/// A request that this codec cannot put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} does not exist in the {revision:?} numbering")]
pub struct EncodeError {
    /// The request's kind.
    pub kind: Kind,
    /// The codec's numbering.
    pub revision: Revision,
}

/// Why bytes are not a valid acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid acknowledgement ({len} bytes)")]
pub struct AckDecodeError {
    /// Bytes received.
    pub len: usize,
}

impl Codec {
    /// The codec openvpn 2.7 on this architecture uses.
    pub const NATIVE: Codec = Codec {
        arch: Arch::NATIVE,
        revision: Revision::V27,
    };

    /// A codec.
    pub const fn new(arch: Arch, revision: Revision) -> Self {
        Self { arch, revision }
    }

    /// The largest request (the size of the dispatch union): 1696/1684 bytes for 2.7,
    /// 872/856 for 2.6.
    pub fn max_request_size(&self) -> usize {
        let biggest = match self.revision {
            Revision::V27 => Kind::AddNrptCfg,
            Revision::V26 => Kind::AddDnsCfg,
        };
        layout::size_of(biggest, self.arch)
    }

    /// `sizeof(ack_message_t)`: 32 on x86-64, 16 on x86.
    pub fn ack_size(&self) -> usize {
        layout::size_of(Kind::Ack, self.arch)
    }

    /// Encodes a request exactly as openvpn does.
    pub fn encode(&self, envelope: &Envelope) -> Result<Vec<u8>, EncodeError> {
        let kind = envelope.request.kind();
        let number = self.revision.number(kind).ok_or(EncodeError {
            kind,
            revision: self.revision,
        })?;
        let mut w = Writer::new(self.arch, kind, number, envelope.message_id);
        match &envelope.request {
            Request::AddAddress(m) | Request::DelAddress(m) => {
                w.i16(body::address::FAMILY, m.family);
                w.inet(body::address::ADDRESS, &m.address);
                w.i32(body::address::PREFIX_LEN, m.prefix_len);
                w.iface(body::address::IFACE, &m.iface);
            }
            Request::AddRoute(m) | Request::DelRoute(m) => {
                w.i16(body::route::FAMILY, m.family);
                w.inet(body::route::PREFIX, &m.prefix);
                w.i32(body::route::PREFIX_LEN, m.prefix_len);
                w.inet(body::route::GATEWAY, &m.gateway);
                w.iface(body::route::IFACE, &m.iface);
                w.i32(body::route::METRIC, m.metric);
            }
            Request::AddDnsCfg(m) | Request::DelDnsCfg(m) => {
                w.iface(body::dns_cfg::IFACE, &m.iface);
                w.bytes(body::dns_cfg::DOMAINS, m.domains.as_bytes());
                w.i16(body::dns_cfg::FAMILY, m.family);
                w.u32(body::dns_cfg::ADDR_LEN, m.addr_len);
                for (i, a) in m.addr.iter().enumerate() {
                    w.inet(body::dns_cfg::ADDR + 16 * i, a);
                }
            }
            Request::AddNrptCfg(m) | Request::DelNrptCfg(m) => {
                w.iface(body::nrpt::IFACE, &m.iface);
                for (i, a) in m.addresses.iter().enumerate() {
                    w.bytes(body::nrpt::ADDRESSES + NRPT_ADDR_SIZE * i, a.as_bytes());
                }
                w.bytes(body::nrpt::RESOLVE_DOMAINS, m.resolve_domains.as_bytes());
                w.bytes(body::nrpt::SEARCH_DOMAINS, m.search_domains.as_bytes());
                w.u32(body::nrpt::FLAGS, m.flags);
            }
            Request::AddNbtCfg(m) | Request::DelNbtCfg(m) => {
                w.iface(body::nbt::IFACE, &m.iface);
                w.i32(body::nbt::DISABLE_NBT, m.disable_nbt);
                w.i32(body::nbt::NBT_TYPE, m.nbt_type);
                w.bytes(body::nbt::SCOPE_ID, m.scope_id.as_bytes());
                w.u32(body::nbt::PRIMARY, m.primary);
                w.u32(body::nbt::SECONDARY, m.secondary);
            }
            Request::FlushNeighbors(m) => {
                w.i16(body::flush_neighbors::FAMILY, m.family);
                w.iface(body::flush_neighbors::IFACE, &m.iface);
            }
            Request::AddWfpBlock(m) | Request::DelWfpBlock(m) => {
                w.u32(body::wfp_block::FLAGS, m.flags);
                w.iface(body::wfp_block::IFACE, &m.iface);
            }
            Request::AddBlockDns(iface)
            | Request::DelBlockDns(iface)
            | Request::EnableDhcp(iface) => {
                w.iface(body::iface_only::IFACE, iface);
            }
            Request::RegisterDns => {}
            Request::RegisterRingBuffers(m) => {
                let ptr = self.arch.pointer_size();
                for (i, &h) in m.handles.iter().enumerate() {
                    w.bytes(ptr * i, &h.to_le_bytes()[..ptr]);
                }
            }
            Request::SetMtu(m) => {
                w.iface(body::set_mtu::IFACE, &m.iface);
                w.i16(body::set_mtu::FAMILY, m.family);
                w.i32(body::set_mtu::MTU, m.mtu);
            }
            Request::AddWinsCfg(m) | Request::DelWinsCfg(m) => {
                w.iface(body::wins::IFACE, &m.iface);
                w.u32(body::wins::ADDR_LEN, m.addr_len);
                for (i, a) in m.addr.iter().enumerate() {
                    w.inet(body::wins::ADDR + 16 * i, a);
                }
            }
            Request::CreateAdapter(m) => w.u32(body::create_adapter::ADAPTER_TYPE, m.adapter_type),
        }
        Ok(w.finish())
    }

    /// Decodes a request by the service's dispatch rules (spec §5.1, §5.5), in this order:
    /// too large → drop the channel; shorter than a header or size field ≠ length → ack −1;
    /// a type the service does not act on → `ERROR_MESSAGE_TYPE`; a size other than the
    /// struct's → `ERROR_MESSAGE_DATA`.
    ///
    /// Unlike upstream, every type gets an exact size check (spec §11): openvpn always sends
    /// exact sizes, and a short DNS, NRPT, WINS or register-dns message is refused instead of
    /// being read with stale bytes.
    pub fn decode_request(&self, bytes: &[u8]) -> Result<Envelope, DecodeError> {
        self.decode_with(bytes, |kind| self.revision.handles(kind))
    }

    /// Decodes any request kind this numbering defines, including those a service never acts
    /// on (nbt, ring buffers). For tools and tests; services use [`Codec::decode_request`].
    pub fn decode(&self, bytes: &[u8]) -> Result<Envelope, DecodeError> {
        self.decode_with(bytes, |kind| kind != Kind::Ack)
    }

    fn decode_with(
        &self,
        bytes: &[u8],
        accept: impl Fn(Kind) -> bool,
    ) -> Result<Envelope, DecodeError> {
        let len = bytes.len();
        let max = self.max_request_size();
        if len > max {
            return Err(DecodeError::TooLarge { len, max });
        }
        let (msg_type, size, message_id) =
            self.header(bytes).ok_or(DecodeError::Malformed { len })?;
        if size != len as u64 {
            return Err(DecodeError::Malformed { len });
        }
        let kind = self.revision.kind(msg_type).filter(|&k| accept(k)).ok_or(
            DecodeError::UnknownType {
                message_id,
                msg_type,
            },
        )?;
        let expected = layout::size_of(kind, self.arch);
        if len != expected {
            return Err(DecodeError::WrongSize {
                message_id,
                msg_type,
                len,
                expected,
            });
        }
        let r = Reader {
            bytes,
            base: self.arch.header_size(),
        };
        let request = self.body(kind, &r).ok_or(DecodeError::Malformed { len })?;
        Ok(Envelope {
            message_id,
            request,
        })
    }

    /// Reads `(type, size, message_id)` from a header.
    fn header(&self, bytes: &[u8]) -> Option<(u32, u64, i32)> {
        if bytes.len() < self.arch.header_size() {
            return None;
        }
        let r = Reader { bytes, base: 0 };
        let msg_type = r.u32(header::TYPE)?;
        let size = match self.arch {
            Arch::X64 => r.u64(header::size(self.arch))?,
            Arch::X86 => u64::from(r.u32(header::size(self.arch))?),
        };
        let message_id = r.i32(header::message_id(self.arch))?;
        Some((msg_type, size, message_id))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one arm per message kind reads best as one table"
    )]
    fn body(&self, kind: Kind, r: &Reader<'_>) -> Option<Request> {
        let address = || -> Option<AddressMsg> {
            Some(AddressMsg {
                family: r.i16(body::address::FAMILY)?,
                address: r.inet(body::address::ADDRESS)?,
                prefix_len: r.i32(body::address::PREFIX_LEN)?,
                iface: r.iface(body::address::IFACE)?,
            })
        };
        let route = || -> Option<RouteMsg> {
            Some(RouteMsg {
                family: r.i16(body::route::FAMILY)?,
                prefix: r.inet(body::route::PREFIX)?,
                prefix_len: r.i32(body::route::PREFIX_LEN)?,
                gateway: r.inet(body::route::GATEWAY)?,
                iface: r.iface(body::route::IFACE)?,
                metric: r.i32(body::route::METRIC)?,
            })
        };
        let dns = || -> Option<DnsCfgMsg> {
            Some(DnsCfgMsg {
                iface: r.iface(body::dns_cfg::IFACE)?,
                domains: r.fixed(body::dns_cfg::DOMAINS)?,
                family: r.i16(body::dns_cfg::FAMILY)?,
                addr_len: r.u32(body::dns_cfg::ADDR_LEN)?,
                addr: r.inet4(body::dns_cfg::ADDR)?,
            })
        };
        let nrpt = || -> Option<NrptCfgMsg> {
            let mut addresses: [FixedStr<NRPT_ADDR_SIZE>; NRPT_ADDR_NUM] = Default::default();
            for (i, slot) in addresses.iter_mut().enumerate() {
                *slot = r.fixed(body::nrpt::ADDRESSES + NRPT_ADDR_SIZE * i)?;
            }
            Some(NrptCfgMsg {
                iface: r.iface(body::nrpt::IFACE)?,
                addresses,
                resolve_domains: r.fixed(body::nrpt::RESOLVE_DOMAINS)?,
                search_domains: r.fixed(body::nrpt::SEARCH_DOMAINS)?,
                flags: r.u32(body::nrpt::FLAGS)?,
            })
        };
        let nbt = || -> Option<NbtCfgMsg> {
            Some(NbtCfgMsg {
                iface: r.iface(body::nbt::IFACE)?,
                disable_nbt: r.i32(body::nbt::DISABLE_NBT)?,
                nbt_type: r.i32(body::nbt::NBT_TYPE)?,
                scope_id: r.fixed(body::nbt::SCOPE_ID)?,
                primary: r.u32(body::nbt::PRIMARY)?,
                secondary: r.u32(body::nbt::SECONDARY)?,
            })
        };
        let wfp = || -> Option<WfpBlockMsg> {
            Some(WfpBlockMsg {
                flags: r.u32(body::wfp_block::FLAGS)?,
                iface: r.iface(body::wfp_block::IFACE)?,
            })
        };
        let wins = || -> Option<WinsCfgMsg> {
            Some(WinsCfgMsg {
                iface: r.iface(body::wins::IFACE)?,
                addr_len: r.u32(body::wins::ADDR_LEN)?,
                addr: r.inet4(body::wins::ADDR)?,
            })
        };
        let iface_only = || r.iface(body::iface_only::IFACE);
        Some(match kind {
            Kind::Ack => return None,
            Kind::AddAddress => Request::AddAddress(address()?),
            Kind::DelAddress => Request::DelAddress(address()?),
            Kind::AddRoute => Request::AddRoute(route()?),
            Kind::DelRoute => Request::DelRoute(route()?),
            Kind::AddDnsCfg => Request::AddDnsCfg(dns()?),
            Kind::DelDnsCfg => Request::DelDnsCfg(dns()?),
            Kind::AddNrptCfg => Request::AddNrptCfg(nrpt()?),
            Kind::DelNrptCfg => Request::DelNrptCfg(nrpt()?),
            Kind::AddNbtCfg => Request::AddNbtCfg(nbt()?),
            Kind::DelNbtCfg => Request::DelNbtCfg(nbt()?),
            Kind::FlushNeighbors => Request::FlushNeighbors(FlushNeighborsMsg {
                family: r.i16(body::flush_neighbors::FAMILY)?,
                iface: r.iface(body::flush_neighbors::IFACE)?,
            }),
            Kind::AddWfpBlock => Request::AddWfpBlock(wfp()?),
            Kind::DelWfpBlock => Request::DelWfpBlock(wfp()?),
            Kind::AddBlockDns => Request::AddBlockDns(iface_only()?),
            Kind::DelBlockDns => Request::DelBlockDns(iface_only()?),
            Kind::RegisterDns => Request::RegisterDns,
            Kind::EnableDhcp => Request::EnableDhcp(iface_only()?),
            Kind::RegisterRingBuffers => {
                let ptr = self.arch.pointer_size();
                let mut handles = [0u64; 5];
                for (i, h) in handles.iter_mut().enumerate() {
                    *h = match self.arch {
                        Arch::X64 => r.u64(ptr * i)?,
                        Arch::X86 => u64::from(r.u32(ptr * i)?),
                    };
                }
                Request::RegisterRingBuffers(RingBuffersMsg { handles })
            }
            Kind::SetMtu => Request::SetMtu(SetMtuMsg {
                iface: r.iface(body::set_mtu::IFACE)?,
                family: r.i16(body::set_mtu::FAMILY)?,
                mtu: r.i32(body::set_mtu::MTU)?,
            }),
            Kind::AddWinsCfg => Request::AddWinsCfg(wins()?),
            Kind::DelWinsCfg => Request::DelWinsCfg(wins()?),
            Kind::CreateAdapter => Request::CreateAdapter(CreateAdapterMsg {
                adapter_type: r.u32(body::create_adapter::ADAPTER_TYPE)?,
            }),
        })
    }

    /// Encodes an acknowledgement: type 0, size = `sizeof(ack_message_t)`, zero padding.
    pub fn encode_ack(&self, ack: Ack) -> Vec<u8> {
        let mut w = Writer::new(self.arch, Kind::Ack, 0, ack.message_id);
        w.u32(body::ack::ERROR_NUMBER, ack.error_number);
        w.finish()
    }

    /// Decodes an acknowledgement (openvpn's side): exact size, type 0, consistent size field.
    pub fn decode_ack(&self, bytes: &[u8]) -> Result<Ack, AckDecodeError> {
        let len = bytes.len();
        let err = AckDecodeError { len };
        let (msg_type, size, message_id) = self.header(bytes).ok_or(err)?;
        if len != self.ack_size() || msg_type != 0 || size != len as u64 {
            return Err(err);
        }
        let r = Reader {
            bytes,
            base: self.arch.header_size(),
        };
        Ok(Ack {
            message_id,
            error_number: r.u32(body::ack::ERROR_NUMBER).ok_or(err)?,
        })
    }
}

/// Bounds-checked little-endian reads at `base + offset`.
struct Reader<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let start = self.base.checked_add(off)?;
        self.bytes
            .get(start..start.checked_add(N)?)?
            .try_into()
            .ok()
    }
    fn u64(&self, off: usize) -> Option<u64> {
        self.array(off).map(u64::from_le_bytes)
    }
    fn u32(&self, off: usize) -> Option<u32> {
        self.array(off).map(u32::from_le_bytes)
    }
    fn i32(&self, off: usize) -> Option<i32> {
        self.array(off).map(i32::from_le_bytes)
    }
    fn i16(&self, off: usize) -> Option<i16> {
        self.array(off).map(i16::from_le_bytes)
    }
    fn inet(&self, off: usize) -> Option<InetAddr> {
        self.array(off).map(InetAddr)
    }
    fn inet4(&self, off: usize) -> Option<[InetAddr; 4]> {
        Some([
            self.inet(off)?,
            self.inet(off + 16)?,
            self.inet(off + 32)?,
            self.inet(off + 48)?,
        ])
    }
    fn fixed<const N: usize>(&self, off: usize) -> Option<FixedStr<N>> {
        self.array::<N>(off)
            .map(|field| FixedStr::from_field(&field))
    }
    fn iface(&self, off: usize) -> Option<Interface> {
        Some(Interface {
            index: self.u32(off)?,
            name: self.fixed(off + INTERFACE_NAME)?,
        })
    }
}

/// Writes a zero-filled struct of the kind's exact size.
struct Writer {
    buf: Vec<u8>,
    base: usize,
}

impl Writer {
    fn new(arch: Arch, kind: Kind, number: u32, message_id: i32) -> Self {
        let size = layout::size_of(kind, arch);
        let mut w = Writer {
            buf: vec![0; size],
            base: 0,
        };
        w.u32(header::TYPE, number);
        match arch {
            Arch::X64 => w.bytes(header::size(arch), &(size as u64).to_le_bytes()),
            Arch::X86 => w.u32(header::size(arch), size as u32),
        }
        w.i32(header::message_id(arch), message_id);
        w.base = arch.header_size();
        w
    }
    fn bytes(&mut self, off: usize, value: &[u8]) {
        let start = self.base + off;
        self.buf[start..start + value.len()].copy_from_slice(value);
    }
    fn u32(&mut self, off: usize, v: u32) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn i32(&mut self, off: usize, v: i32) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn i16(&mut self, off: usize, v: i16) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn inet(&mut self, off: usize, v: &InetAddr) {
        self.bytes(off, &v.0);
    }
    fn iface(&mut self, off: usize, v: &Interface) {
        self.u32(off, v.index);
        // A FixedStr<256> holds at most 255 bytes, so the NUL always fits.
        debug_assert!(v.name.as_bytes().len() < INTERFACE_LEN - INTERFACE_NAME);
        self.bytes(off + INTERFACE_NAME, v.name.as_bytes());
    }
    fn finish(self) -> Vec<u8> {
        self.buf
    }
}
