//! The per-session message channel between openvpn and the service (openvpn-msg, spec §5).
//!
//! openvpn sends one request, the service answers with exactly one [`Ack`]. Layouts follow the
//! native Windows ABI of the architecture openvpn was built for: the header's `size` field is
//! pointer-sized, so x86-64 and x86 differ ([`Arch`]). Type numbers changed incompatibly in
//! 2.7 ([`Revision`]). The Linux service uses the same codec with the x86-64 layout.

mod codec;
pub mod layout;
mod types;

pub use codec::{AckDecodeError, Codec, DecodeError, EncodeError, UNKNOWN_MESSAGE_ID};
pub use types::{
    Ack, AddressMsg, CreateAdapterMsg, DnsCfgMsg, Envelope, FixedStr, FixedStrError,
    FlushNeighborsMsg, InetAddr, Interface, NbtCfgMsg, NrptCfgMsg, Request, RingBuffersMsg,
    RouteMsg, SetMtuMsg, WfpBlockMsg, WinsCfgMsg,
};

/// Windows `AF_INET`.
pub const AF_INET: i16 = 2;
/// Windows `AF_INET6` (23, not Linux's 10).
pub const AF_INET6: i16 = 23;
/// Interface index meaning "use the name instead".
pub const INDEX_INVALID: u32 = u32::MAX;
/// `wfp_block_message_t.flags`: block all traffic except the tunnel (anything but 2 means this).
pub const WFP_BLOCK_LOCAL: u32 = 1;
/// `wfp_block_message_t.flags`: block DNS outside the tunnel only (exactly 2).
pub const WFP_BLOCK_DNS: u32 = 2;
/// `nrpt_dns_cfg_message_t.flags`: require DNSSEC.
pub const NRPT_DNSSEC: u32 = 1;

/// Linux only, between our hook and our service (openvpn never sends these): the rest of a
/// `--dns` server profile that the NRPT message has no field for.
pub mod linux {
    /// `nrpt_dns_cfg_message_t.flags`: DNSSEC if the resolver can (`dnssec optional`).
    pub const NRPT_DNSSEC_OPTIONAL: u32 = 1 << 1;
    /// `nrpt_dns_cfg_message_t.flags`: the servers speak DNS over TLS.
    pub const NRPT_DOT: u32 = 1 << 2;
    /// `nrpt_dns_cfg_message_t.flags`: the servers speak DNS over HTTPS.
    pub const NRPT_DOH: u32 = 1 << 3;
    /// `nrpt_dns_cfg_message_t.flags`: no DNSSEC (`dnssec no`).
    pub const NRPT_DNSSEC_NO: u32 = 1 << 4;
    /// `nrpt_dns_cfg_message_t.flags`: this profile's index among the profiles of one
    /// configuration (bits 8–15) ...
    pub const NRPT_PROFILE_SHIFT: u32 = 8;
    /// ... and how many profiles it has (bits 16–23; 0 for a single one).
    pub const NRPT_PROFILES_SHIFT: u32 = 16;
    /// `wfp_block_message_t.flags` (with `WFP_BLOCK_DNS`): block only if the session has DNS
    /// servers of its own (openvpn 2.7 tells scripts other than `--dns-updown` nothing of
    /// DNS, so the `route-up` hook cannot decide it).
    pub const WFP_BLOCK_IF_DNS: u32 = 1 << 8;
}
/// Number of address slots in an NRPT message.
pub const NRPT_ADDR_NUM: usize = 8;
/// Size of one NRPT address slot.
pub const NRPT_ADDR_SIZE: usize = 48;
/// `create_adapter_message_t.adapter_type` for ovpn-dco.
pub const ADAPTER_TYPE_DCO: u32 = 0;
/// `create_adapter_message_t.adapter_type` for tap-windows6.
pub const ADAPTER_TYPE_TAP: u32 = 1;

/// The architecture whose C layout the channel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 and arm64: 8-byte `size_t`, 8-byte alignment.
    X64,
    /// 32-bit x86: 4-byte `size_t`, 4-byte alignment.
    X86,
}

impl Arch {
    /// The architecture of this build.
    pub const NATIVE: Arch = if usize::BITS == 32 {
        Arch::X86
    } else {
        Arch::X64
    };

    /// `sizeof(message_header_t)`.
    pub const fn header_size(self) -> usize {
        match self {
            Arch::X64 => 24,
            Arch::X86 => 12,
        }
    }

    /// Alignment of every message struct (that of `size_t`).
    pub const fn align(self) -> usize {
        match self {
            Arch::X64 => 8,
            Arch::X86 => 4,
        }
    }

    /// Size of a `HANDLE` or `size_t`.
    pub const fn pointer_size(self) -> usize {
        self.align()
    }
}

/// Which type numbering the peer uses (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Revision {
    /// openvpn 2.5 and 2.6 (2.6.6+ numbering, which extends 2.5's).
    V26,
    /// openvpn 2.7 and later.
    V27,
}

/// Every message kind either numbering knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Kind {
    Ack,
    AddAddress,
    DelAddress,
    AddRoute,
    DelRoute,
    AddDnsCfg,
    DelDnsCfg,
    AddNrptCfg,
    DelNrptCfg,
    AddNbtCfg,
    DelNbtCfg,
    FlushNeighbors,
    AddWfpBlock,
    DelWfpBlock,
    /// 2.6 name and layout (no flags) of what became `AddWfpBlock`.
    AddBlockDns,
    /// 2.6 name and layout of what became `DelWfpBlock`.
    DelBlockDns,
    RegisterDns,
    EnableDhcp,
    /// Wintun ring buffers; handled only by 2.5/2.6 services, deprecated in 2.7.
    RegisterRingBuffers,
    SetMtu,
    AddWinsCfg,
    DelWinsCfg,
    CreateAdapter,
}

const V27_TYPES: &[(u32, Kind)] = &[
    (0, Kind::Ack),
    (1, Kind::AddAddress),
    (2, Kind::DelAddress),
    (3, Kind::AddRoute),
    (4, Kind::DelRoute),
    (5, Kind::AddDnsCfg),
    (6, Kind::DelDnsCfg),
    (7, Kind::AddNrptCfg),
    (8, Kind::DelNrptCfg),
    (9, Kind::AddNbtCfg),
    (10, Kind::DelNbtCfg),
    (11, Kind::FlushNeighbors),
    (12, Kind::AddWfpBlock),
    (13, Kind::DelWfpBlock),
    (14, Kind::RegisterDns),
    (15, Kind::EnableDhcp),
    (16, Kind::RegisterRingBuffers),
    (17, Kind::SetMtu),
    (18, Kind::AddWinsCfg),
    (19, Kind::DelWinsCfg),
    (20, Kind::CreateAdapter),
];

const V26_TYPES: &[(u32, Kind)] = &[
    (0, Kind::Ack),
    (1, Kind::AddAddress),
    (2, Kind::DelAddress),
    (3, Kind::AddRoute),
    (4, Kind::DelRoute),
    (5, Kind::AddDnsCfg),
    (6, Kind::DelDnsCfg),
    (7, Kind::AddNbtCfg),
    (8, Kind::DelNbtCfg),
    (9, Kind::FlushNeighbors),
    (10, Kind::AddBlockDns),
    (11, Kind::DelBlockDns),
    (12, Kind::RegisterDns),
    (13, Kind::EnableDhcp),
    (14, Kind::RegisterRingBuffers),
    (15, Kind::SetMtu),
    (16, Kind::AddWinsCfg),
    (17, Kind::DelWinsCfg),
];

impl Revision {
    fn table(self) -> &'static [(u32, Kind)] {
        match self {
            Revision::V26 => V26_TYPES,
            Revision::V27 => V27_TYPES,
        }
    }

    /// The wire number of `kind`, if this numbering has it.
    pub fn number(self, kind: Kind) -> Option<u32> {
        self.table()
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(n, _)| *n)
    }

    /// The kind a wire number stands for.
    pub fn kind(self, number: u32) -> Option<Kind> {
        self.table()
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, k)| *k)
    }

    /// Whether a service of this revision acts on `kind` (spec §5.5). Kinds that a revision
    /// numbers but never handles (nbt, the 2.7 ring-buffer slot, ack) are answered with
    /// `ERROR_MESSAGE_TYPE`, whatever their size.
    pub fn handles(self, kind: Kind) -> bool {
        match kind {
            Kind::Ack | Kind::AddNbtCfg | Kind::DelNbtCfg => false,
            Kind::RegisterRingBuffers => self == Revision::V26,
            _ => self.number(kind).is_some(),
        }
    }
}
