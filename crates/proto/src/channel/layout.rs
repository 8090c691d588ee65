//! Struct sizes and field offsets (spec §5.4).
//!
//! Every field after the header sits at the same distance from the header's end on x86-64 and
//! on x86 (the header is 24 or 12 bytes and nothing in a body needs more than 4-byte alignment,
//! except the handles of the 2.6 ring-buffer message). So one table of body offsets serves both
//! architectures; the struct size is header plus body rounded up to the struct's alignment.

use super::{Arch, Kind};

/// Offsets inside the message header.
pub mod header {
    /// `type` (4 bytes).
    pub const TYPE: usize = 0;
    /// `size` (`size_t`): 8 on x86-64, 4 on x86.
    pub const fn size(arch: super::Arch) -> usize {
        match arch {
            super::Arch::X64 => 8,
            super::Arch::X86 => 4,
        }
    }
    /// `message_id` (4 bytes).
    pub const fn message_id(arch: super::Arch) -> usize {
        match arch {
            super::Arch::X64 => 16,
            super::Arch::X86 => 8,
        }
    }
}

/// Size of `interface_t`: a 4-byte index and a 256-byte name.
pub const INTERFACE_LEN: usize = 260;
/// Offset of the name inside `interface_t`.
pub const INTERFACE_NAME: usize = 4;

/// Body offsets (from the end of the header).
#[allow(missing_docs)]
pub mod body {
    pub mod address {
        pub const FAMILY: usize = 0;
        pub const ADDRESS: usize = 4;
        pub const PREFIX_LEN: usize = 20;
        pub const IFACE: usize = 24;
        pub const END: usize = 284;
    }
    pub mod route {
        pub const FAMILY: usize = 0;
        pub const PREFIX: usize = 4;
        pub const PREFIX_LEN: usize = 20;
        pub const GATEWAY: usize = 24;
        pub const IFACE: usize = 40;
        pub const METRIC: usize = 300;
        pub const END: usize = 304;
    }
    pub mod dns_cfg {
        pub const IFACE: usize = 0;
        pub const DOMAINS: usize = 260;
        pub const FAMILY: usize = 772;
        pub const ADDR_LEN: usize = 776;
        pub const ADDR: usize = 780;
        pub const END: usize = 844;
    }
    pub mod nrpt {
        pub const IFACE: usize = 0;
        pub const ADDRESSES: usize = 260;
        pub const RESOLVE_DOMAINS: usize = 644;
        pub const SEARCH_DOMAINS: usize = 1156;
        pub const FLAGS: usize = 1668;
        pub const END: usize = 1672;
    }
    pub mod wins {
        pub const IFACE: usize = 0;
        pub const ADDR_LEN: usize = 260;
        pub const ADDR: usize = 264;
        pub const END: usize = 328;
    }
    pub mod nbt {
        pub const IFACE: usize = 0;
        pub const DISABLE_NBT: usize = 260;
        pub const NBT_TYPE: usize = 264;
        pub const SCOPE_ID: usize = 268;
        pub const PRIMARY: usize = 524;
        pub const SECONDARY: usize = 528;
        pub const END: usize = 532;
    }
    pub mod flush_neighbors {
        pub const FAMILY: usize = 0;
        pub const IFACE: usize = 4;
        pub const END: usize = 264;
    }
    pub mod ack {
        pub const ERROR_NUMBER: usize = 0;
        pub const END: usize = 4;
    }
    pub mod wfp_block {
        pub const FLAGS: usize = 0;
        pub const IFACE: usize = 4;
        pub const END: usize = 264;
    }
    /// 2.6 `block_dns_message_t`, also `enable_dhcp_message_t`: just an interface.
    pub mod iface_only {
        pub const IFACE: usize = 0;
        pub const END: usize = 260;
    }
    pub mod set_mtu {
        pub const IFACE: usize = 0;
        pub const FAMILY: usize = 260;
        pub const MTU: usize = 264;
        pub const END: usize = 268;
    }
    pub mod create_adapter {
        pub const ADAPTER_TYPE: usize = 0;
        pub const END: usize = 4;
    }
}

/// Length of the body (unpadded) of a kind.
pub const fn body_len(kind: Kind, arch: Arch) -> usize {
    match kind {
        Kind::Ack => body::ack::END,
        Kind::AddAddress | Kind::DelAddress => body::address::END,
        Kind::AddRoute | Kind::DelRoute => body::route::END,
        Kind::AddDnsCfg | Kind::DelDnsCfg => body::dns_cfg::END,
        Kind::AddNrptCfg | Kind::DelNrptCfg => body::nrpt::END,
        Kind::AddNbtCfg | Kind::DelNbtCfg => body::nbt::END,
        Kind::FlushNeighbors => body::flush_neighbors::END,
        Kind::AddWfpBlock | Kind::DelWfpBlock => body::wfp_block::END,
        Kind::AddBlockDns | Kind::DelBlockDns | Kind::EnableDhcp => body::iface_only::END,
        Kind::RegisterDns => 0,
        Kind::RegisterRingBuffers => 5 * arch.pointer_size(),
        Kind::SetMtu => body::set_mtu::END,
        Kind::AddWinsCfg | Kind::DelWinsCfg => body::wins::END,
        Kind::CreateAdapter => body::create_adapter::END,
    }
}

/// `sizeof` the struct of `kind` on `arch`.
pub const fn size_of(kind: Kind, arch: Arch) -> usize {
    let raw = arch.header_size() + body_len(kind, arch);
    raw.div_ceil(arch.align()) * arch.align()
}
