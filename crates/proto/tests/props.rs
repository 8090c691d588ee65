//! Property tests: encode then decode is the identity; decoders never panic on any input.

use openvpnserv_proto::channel::*;
use openvpnserv_proto::{Reply, StartupMessage};
use proptest::array::{uniform4, uniform8};
use proptest::prelude::*;

fn fixed<const N: usize>() -> impl Strategy<Value = FixedStr<N>> {
    proptest::collection::vec(1u8..=255, 0..N).prop_map(|v| FixedStr::new(v).unwrap())
}

fn inet() -> impl Strategy<Value = InetAddr> {
    any::<[u8; 16]>().prop_map(InetAddr)
}

fn iface() -> impl Strategy<Value = Interface> {
    (any::<u32>(), fixed::<256>()).prop_map(|(index, name)| Interface { index, name })
}

fn address() -> impl Strategy<Value = AddressMsg> {
    (any::<i16>(), inet(), any::<i32>(), iface()).prop_map(
        |(family, address, prefix_len, iface)| AddressMsg {
            family,
            address,
            prefix_len,
            iface,
        },
    )
}

fn route() -> impl Strategy<Value = RouteMsg> {
    (
        any::<i16>(),
        inet(),
        any::<i32>(),
        inet(),
        iface(),
        any::<i32>(),
    )
        .prop_map(
            |(family, prefix, prefix_len, gateway, iface, metric)| RouteMsg {
                family,
                prefix,
                prefix_len,
                gateway,
                iface,
                metric,
            },
        )
}

fn dns() -> impl Strategy<Value = DnsCfgMsg> {
    (
        iface(),
        fixed::<512>(),
        any::<i16>(),
        any::<u32>(),
        uniform4(inet()),
    )
        .prop_map(|(iface, domains, family, addr_len, addr)| DnsCfgMsg {
            iface,
            domains,
            family,
            addr_len,
            addr,
        })
}

fn nrpt() -> impl Strategy<Value = NrptCfgMsg> {
    (
        iface(),
        uniform8(fixed::<48>()),
        fixed::<512>(),
        fixed::<512>(),
        any::<u32>(),
    )
        .prop_map(
            |(iface, addresses, resolve_domains, search_domains, flags)| NrptCfgMsg {
                iface,
                addresses,
                resolve_domains,
                search_domains,
                flags,
            },
        )
}

fn wins() -> impl Strategy<Value = WinsCfgMsg> {
    (iface(), any::<u32>(), uniform4(inet())).prop_map(|(iface, addr_len, addr)| WinsCfgMsg {
        iface,
        addr_len,
        addr,
    })
}

fn nbt() -> impl Strategy<Value = NbtCfgMsg> {
    (
        iface(),
        any::<i32>(),
        any::<i32>(),
        fixed::<256>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(iface, disable_nbt, nbt_type, scope_id, primary, secondary)| NbtCfgMsg {
                iface,
                disable_nbt,
                nbt_type,
                scope_id,
                primary,
                secondary,
            },
        )
}

/// Requests that exist in both numberings.
fn common_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        address().prop_map(Request::AddAddress),
        address().prop_map(Request::DelAddress),
        route().prop_map(Request::AddRoute),
        route().prop_map(Request::DelRoute),
        dns().prop_map(Request::AddDnsCfg),
        dns().prop_map(Request::DelDnsCfg),
        nbt().prop_map(Request::AddNbtCfg),
        nbt().prop_map(Request::DelNbtCfg),
        (any::<i16>(), iface()).prop_map(|(family, iface)| Request::FlushNeighbors(
            FlushNeighborsMsg { family, iface }
        )),
        Just(Request::RegisterDns),
        iface().prop_map(Request::EnableDhcp),
        (iface(), any::<i16>(), any::<i32>())
            .prop_map(|(iface, family, mtu)| Request::SetMtu(SetMtuMsg { iface, family, mtu })),
        wins().prop_map(Request::AddWinsCfg),
        wins().prop_map(Request::DelWinsCfg),
    ]
}

fn request_for(arch: Arch, revision: Revision) -> BoxedStrategy<Request> {
    match revision {
        Revision::V27 => prop_oneof![
            common_request(),
            nrpt().prop_map(Request::AddNrptCfg),
            nrpt().prop_map(Request::DelNrptCfg),
            (any::<u32>(), iface())
                .prop_map(|(flags, iface)| Request::AddWfpBlock(WfpBlockMsg { flags, iface })),
            (any::<u32>(), iface())
                .prop_map(|(flags, iface)| Request::DelWfpBlock(WfpBlockMsg { flags, iface })),
            any::<u32>()
                .prop_map(|adapter_type| Request::CreateAdapter(CreateAdapterMsg { adapter_type })),
        ]
        .boxed(),
        Revision::V26 => {
            let handle = match arch {
                Arch::X64 => any::<u64>().boxed(),
                Arch::X86 => any::<u32>().prop_map(u64::from).boxed(),
            };
            prop_oneof![
                common_request(),
                iface().prop_map(Request::AddBlockDns),
                iface().prop_map(Request::DelBlockDns),
                proptest::array::uniform5(handle)
                    .prop_map(|handles| Request::RegisterRingBuffers(RingBuffersMsg { handles })),
            ]
            .boxed()
        }
    }
}

fn codecs() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::new(Arch::X64, Revision::V27)),
        Just(Codec::new(Arch::X86, Revision::V27)),
        Just(Codec::new(Arch::X64, Revision::V26)),
        Just(Codec::new(Arch::X86, Revision::V26)),
    ]
}

fn envelope_with_codec() -> impl Strategy<Value = (Codec, Envelope)> {
    codecs().prop_flat_map(|codec| {
        (
            Just(codec),
            any::<i32>(),
            request_for(codec.arch, codec.revision),
        )
            .prop_map(|(codec, message_id, request)| {
                (
                    codec,
                    Envelope {
                        message_id,
                        request,
                    },
                )
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn channel_round_trip((codec, envelope) in envelope_with_codec()) {
        let bytes = codec.encode(&envelope).unwrap();
        prop_assert!(bytes.len() <= codec.max_request_size());
        prop_assert_eq!(codec.decode(&bytes).unwrap(), envelope.clone());
        // The service-side decoder agrees on every kind it handles.
        if codec.revision.handles(envelope.request.kind()) {
            prop_assert_eq!(codec.decode_request(&bytes).unwrap(), envelope);
        }
    }

    #[test]
    fn channel_decode_never_panics(codec in codecs(), bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = codec.decode(&bytes);
        let _ = codec.decode_request(&bytes);
        let _ = codec.decode_ack(&bytes);
    }

    /// Arbitrary bodies behind a valid header of a random type: the decoder either decodes or
    /// answers with an ack, except for oversized input.
    #[test]
    fn channel_valid_headers_always_answer(codec in codecs(), msg_type in 0u32..24, id in any::<i32>(), body in proptest::collection::vec(any::<u8>(), 0..1700)) {
        let header = codec.arch.header_size();
        let len = header + body.len();
        let mut bytes = vec![0u8; header];
        bytes[..4].copy_from_slice(&msg_type.to_le_bytes());
        match codec.arch {
            Arch::X64 => bytes[8..16].copy_from_slice(&(len as u64).to_le_bytes()),
            Arch::X86 => bytes[4..8].copy_from_slice(&(len as u32).to_le_bytes()),
        }
        let id_at = openvpnserv_proto::channel::layout::header::message_id(codec.arch);
        bytes[id_at..id_at + 4].copy_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&body);
        match codec.decode_request(&bytes) {
            Ok(envelope) => prop_assert_eq!(envelope.message_id, id),
            Err(DecodeError::TooLarge { .. }) => prop_assert!(len > codec.max_request_size()),
            Err(e) => {
                let ack = e.ack();
                prop_assert!(ack.is_some());
                prop_assert_eq!(ack.unwrap().message_id, id);
            }
        }
    }

    #[test]
    fn ack_round_trip(codec in codecs(), message_id in any::<i32>(), error_number in any::<u32>()) {
        let ack = Ack { message_id, error_number };
        prop_assert_eq!(codec.decode_ack(&codec.encode_ack(ack)), Ok(ack));
    }

    #[test]
    fn startup_round_trip(dir in "[^\u{0}]{0,40}", options in "[^\u{0}]{0,80}", stdin in "[^\u{0}]{0,30}") {
        let msg = StartupMessage::new(dir, options, stdin);
        let decoded = StartupMessage::decode(&msg.encode()).unwrap();
        prop_assert_eq!(decoded.message, msg);
        prop_assert_eq!(decoded.trailing_units, 0);
    }

    #[test]
    fn startup_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
        let _ = StartupMessage::decode(&bytes);
    }

    #[test]
    fn reply_round_trip(pid in 1u32.., code in 1u32.., function in "[^\n\r]{0,60}", text in "[^\r]{0,60}[^\r\n]?") {
        prop_assert_eq!(Reply::decode(&Reply::Pid(pid).encode()).unwrap(), Reply::Pid(pid));
        let text = text.trim_end_matches('\n').to_owned();
        let reply = Reply::error(code, function, text);
        prop_assert_eq!(Reply::decode(&reply.encode()).unwrap(), reply);
    }

    #[test]
    fn reply_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = Reply::decode(&bytes);
    }
}
