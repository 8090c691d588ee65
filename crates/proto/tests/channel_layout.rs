//! Golden tests of struct sizes and field offsets against the table of spec §5.4, for x86-64
//! and x86. Each message is encoded with a distinct value in every field and the bytes are
//! read back at the offsets the spec gives, so a wrong offset, size or padding fails here.

use std::net::{Ipv4Addr, Ipv6Addr};

use openvpnserv_proto::channel::layout::size_of;
use openvpnserv_proto::channel::*;

const ARCHS: [Arch; 2] = [Arch::X64, Arch::X86];

fn idx(arch: Arch) -> usize {
    match arch {
        Arch::X64 => 0,
        Arch::X86 => 1,
    }
}

fn iface() -> Interface {
    Interface::by_index(0x0102_0304, "tun-ü").unwrap()
}

fn encode(arch: Arch, request: Request) -> Vec<u8> {
    Codec::new(arch, Revision::V27)
        .encode(&Envelope {
            message_id: 0x5566_7788,
            request,
        })
        .unwrap()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_i16(b: &[u8], at: usize) -> i16 {
    i16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

/// Checks the header: type @0, size @8/4 (pointer-sized), `message_id` @16/8.
fn check_header(arch: Arch, b: &[u8], number: u32) {
    assert_eq!(le_u32(b, 0), number);
    match arch {
        Arch::X64 => {
            assert_eq!(
                u64::from_le_bytes(b[8..16].try_into().unwrap()),
                b.len() as u64
            );
            assert_eq!(le_u32(b, 16), 0x5566_7788);
            assert_eq!(&b[4..8], &[0; 4], "padding after type");
            assert_eq!(&b[20..24], &[0; 4], "padding after id");
        }
        Arch::X86 => {
            assert_eq!(le_u32(b, 4), b.len() as u32);
            assert_eq!(le_u32(b, 8), 0x5566_7788);
        }
    }
}

fn check_iface(b: &[u8], at: usize) {
    assert_eq!(le_u32(b, at), 0x0102_0304);
    let name = "tun-ü".as_bytes();
    assert_eq!(&b[at + 4..at + 4 + name.len()], name);
    assert!(b[at + 4 + name.len()..at + 260].iter().all(|&x| x == 0));
}

#[test]
fn header_sizes() {
    assert_eq!(Arch::X64.header_size(), 24);
    assert_eq!(Arch::X86.header_size(), 12);
    for arch in ARCHS {
        let b = encode(arch, Request::RegisterDns);
        assert_eq!(b.len(), [24, 12][idx(arch)]);
        check_header(arch, &b, 14);
    }
}

#[test]
fn address_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::AddAddress(AddressMsg {
                family: AF_INET,
                address: InetAddr::v4(Ipv4Addr::new(10, 8, 0, 2)),
                prefix_len: 24,
                iface: iface(),
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [312, 296][i]);
        check_header(arch, &b, 1);
        assert_eq!(le_i16(&b, [24, 12][i]), 2);
        assert_eq!(
            &b[[28, 16][i]..][..4],
            &[10, 8, 0, 2],
            "IPv4 in network order"
        );
        assert_eq!(le_u32(&b, [44, 32][i]), 24);
        check_iface(&b, [48, 36][i]);
    }
}

#[test]
fn route_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::DelRoute(RouteMsg {
                family: AF_INET6,
                prefix: InetAddr::v6("fd00:9::".parse().unwrap()),
                prefix_len: 64,
                gateway: InetAddr::v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 8)),
                iface: iface(),
                metric: -1,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [328, 316][i]);
        check_header(arch, &b, 4);
        assert_eq!(le_i16(&b, [24, 12][i]), 23);
        assert_eq!(&b[[28, 16][i]..][..4], &[0xfd, 0, 0, 9]);
        assert_eq!(le_u32(&b, [44, 32][i]), 64);
        assert_eq!(&b[[48, 36][i]..][..2], &[0xfe, 0x80]);
        assert_eq!(b[[48, 36][i] + 15], 8);
        check_iface(&b, [64, 52][i]);
        assert_eq!(le_u32(&b, [324, 312][i]), 0xFFFF_FFFF);
    }
}

#[test]
fn dns_cfg_message() {
    for arch in ARCHS {
        let mut addr = [InetAddr::default(); 4];
        addr[3] = InetAddr::v4(Ipv4Addr::new(9, 9, 9, 9));
        let b = encode(
            arch,
            Request::AddDnsCfg(DnsCfgMsg {
                iface: iface(),
                domains: FixedStr::new("a.example,b.example").unwrap(),
                family: AF_INET,
                addr_len: 4,
                addr,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [872, 856][i]);
        check_header(arch, &b, 5);
        check_iface(&b, 24 - 12 * i);
        assert_eq!(&b[[284, 272][i]..][..9], b"a.example");
        assert_eq!(le_i16(&b, [796, 784][i]), 2);
        assert_eq!(le_u32(&b, [800, 788][i]), 4);
        assert_eq!(&b[[804, 792][i] + 48..][..4], &[9, 9, 9, 9]);
    }
}

#[test]
fn nrpt_message() {
    for arch in ARCHS {
        let mut addresses: [FixedStr<48>; 8] = Default::default();
        addresses[7] = FixedStr::new("fd00::53").unwrap();
        let b = encode(
            arch,
            Request::AddNrptCfg(NrptCfgMsg {
                iface: iface(),
                addresses,
                resolve_domains: FixedStr::new(".corp.example").unwrap(),
                search_domains: FixedStr::new("corp.example").unwrap(),
                flags: NRPT_DNSSEC,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [1696, 1684][i]);
        check_header(arch, &b, 7);
        check_iface(&b, [24, 12][i]);
        assert_eq!(&b[[284, 272][i] + 7 * 48..][..8], b"fd00::53");
        assert_eq!(&b[[668, 656][i]..][..13], b".corp.example");
        assert_eq!(&b[[1180, 1168][i]..][..12], b"corp.example");
        assert_eq!(le_u32(&b, [1692, 1680][i]), 1);
    }
}

#[test]
fn wins_message() {
    for arch in ARCHS {
        let mut addr = [InetAddr::default(); 4];
        addr[1] = InetAddr::v4(Ipv4Addr::new(1, 2, 3, 4));
        let b = encode(
            arch,
            Request::AddWinsCfg(WinsCfgMsg {
                iface: iface(),
                addr_len: 2,
                addr,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [352, 340][i]);
        check_header(arch, &b, 18);
        check_iface(&b, [24, 12][i]);
        assert_eq!(le_u32(&b, [284, 272][i]), 2);
        assert_eq!(&b[[288, 276][i] + 16..][..4], &[1, 2, 3, 4]);
    }
}

#[test]
fn nbt_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::AddNbtCfg(NbtCfgMsg {
                iface: iface(),
                disable_nbt: 1,
                nbt_type: 8,
                scope_id: FixedStr::new("scope").unwrap(),
                primary: 0x0A0B_0C0D,
                secondary: 0x0E0F_1011,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [560, 544][i]);
        check_header(arch, &b, 9);
        check_iface(&b, [24, 12][i]);
        assert_eq!(le_u32(&b, [284, 272][i]), 1);
        assert_eq!(le_u32(&b, [288, 276][i]), 8);
        assert_eq!(&b[[292, 280][i]..][..5], b"scope");
        assert_eq!(le_u32(&b, [548, 536][i]), 0x0A0B_0C0D);
        assert_eq!(le_u32(&b, [552, 540][i]), 0x0E0F_1011);
    }
}

#[test]
fn flush_neighbors_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::FlushNeighbors(FlushNeighborsMsg {
                family: AF_INET,
                iface: iface(),
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [288, 276][i]);
        check_header(arch, &b, 11);
        assert_eq!(le_i16(&b, [24, 12][i]), 2);
        check_iface(&b, [28, 16][i]);
    }
}

#[test]
fn ack_message() {
    for arch in ARCHS {
        let codec = Codec::new(arch, Revision::V27);
        let b = codec.encode_ack(Ack {
            message_id: 0x5566_7788,
            error_number: 0x2000_0002,
        });
        let i = idx(arch);
        assert_eq!(b.len(), [32, 16][i]);
        assert_eq!(codec.ack_size(), b.len());
        check_header(arch, &b, 0);
        assert_eq!(le_u32(&b, [24, 12][i]), 0x2000_0002);
        if arch == Arch::X64 {
            assert_eq!(&b[28..32], &[0; 4]);
        }
    }
}

#[test]
fn wfp_block_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::AddWfpBlock(WfpBlockMsg {
                flags: WFP_BLOCK_DNS,
                iface: iface(),
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [288, 276][i]);
        check_header(arch, &b, 12);
        assert_eq!(le_u32(&b, [24, 12][i]), 2);
        check_iface(&b, [28, 16][i]);
    }
}

#[test]
fn enable_dhcp_message() {
    for arch in ARCHS {
        let b = encode(arch, Request::EnableDhcp(iface()));
        let i = idx(arch);
        assert_eq!(b.len(), [288, 272][i]);
        check_header(arch, &b, 15);
        check_iface(&b, [24, 12][i]);
    }
}

#[test]
fn set_mtu_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::SetMtu(SetMtuMsg {
                iface: iface(),
                family: AF_INET6,
                mtu: 1400,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [296, 280][i]);
        check_header(arch, &b, 17);
        check_iface(&b, [24, 12][i]);
        assert_eq!(le_i16(&b, [284, 272][i]), 23);
        assert_eq!(le_u32(&b, [288, 276][i]), 1400);
    }
}

#[test]
fn create_adapter_message() {
    for arch in ARCHS {
        let b = encode(
            arch,
            Request::CreateAdapter(CreateAdapterMsg {
                adapter_type: ADAPTER_TYPE_TAP,
            }),
        );
        let i = idx(arch);
        assert_eq!(b.len(), [32, 16][i]);
        check_header(arch, &b, 20);
        assert_eq!(le_u32(&b, [24, 12][i]), 1);
    }
}

#[test]
fn v26_only_messages() {
    for arch in ARCHS {
        let i = idx(arch);
        let codec = Codec::new(arch, Revision::V26);
        let b = codec
            .encode(&Envelope {
                message_id: 0x5566_7788,
                request: Request::AddBlockDns(iface()),
            })
            .unwrap();
        assert_eq!(b.len(), [288, 272][i]);
        check_header(arch, &b, 10);
        check_iface(&b, [24, 12][i]);

        let b = codec
            .encode(&Envelope {
                message_id: 0x5566_7788,
                request: Request::RegisterRingBuffers(RingBuffersMsg {
                    handles: [1, 2, 3, 4, 5],
                }),
            })
            .unwrap();
        assert_eq!(b.len(), [64, 32][i]);
        check_header(arch, &b, 14);
        for (n, at) in [[24, 32, 40, 48, 56], [12, 16, 20, 24, 28]][i]
            .iter()
            .enumerate()
        {
            assert_eq!(le_u32(&b, *at), n as u32 + 1);
        }
    }
}

#[test]
fn largest_request() {
    assert_eq!(
        Codec::new(Arch::X64, Revision::V27).max_request_size(),
        1696
    );
    assert_eq!(
        Codec::new(Arch::X86, Revision::V27).max_request_size(),
        1684
    );
    assert_eq!(Codec::new(Arch::X64, Revision::V26).max_request_size(), 872);
    assert_eq!(Codec::new(Arch::X86, Revision::V26).max_request_size(), 856);
    assert_eq!(size_of(Kind::AddNrptCfg, Arch::X64), 1696);
}

/// The numbering table of spec §5.3.
#[test]
fn type_numbers() {
    let v27 = [
        Kind::Ack,
        Kind::AddAddress,
        Kind::DelAddress,
        Kind::AddRoute,
        Kind::DelRoute,
        Kind::AddDnsCfg,
        Kind::DelDnsCfg,
        Kind::AddNrptCfg,
        Kind::DelNrptCfg,
        Kind::AddNbtCfg,
        Kind::DelNbtCfg,
        Kind::FlushNeighbors,
        Kind::AddWfpBlock,
        Kind::DelWfpBlock,
        Kind::RegisterDns,
        Kind::EnableDhcp,
        Kind::RegisterRingBuffers,
        Kind::SetMtu,
        Kind::AddWinsCfg,
        Kind::DelWinsCfg,
        Kind::CreateAdapter,
    ];
    for (n, kind) in v27.iter().enumerate() {
        assert_eq!(Revision::V27.number(*kind), Some(n as u32), "{kind:?}");
    }
    assert_eq!(Revision::V27.kind(21), None);
    let v26 = [
        Kind::Ack,
        Kind::AddAddress,
        Kind::DelAddress,
        Kind::AddRoute,
        Kind::DelRoute,
        Kind::AddDnsCfg,
        Kind::DelDnsCfg,
        Kind::AddNbtCfg,
        Kind::DelNbtCfg,
        Kind::FlushNeighbors,
        Kind::AddBlockDns,
        Kind::DelBlockDns,
        Kind::RegisterDns,
        Kind::EnableDhcp,
        Kind::RegisterRingBuffers,
        Kind::SetMtu,
        Kind::AddWinsCfg,
        Kind::DelWinsCfg,
    ];
    for (n, kind) in v26.iter().enumerate() {
        assert_eq!(Revision::V26.number(*kind), Some(n as u32), "{kind:?}");
    }
    assert_eq!(Revision::V26.kind(18), None);
    assert_eq!(Revision::V26.number(Kind::AddNrptCfg), None);
    assert_eq!(Revision::V27.number(Kind::AddBlockDns), None);
}
