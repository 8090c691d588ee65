//! The service's decoding rules (spec §5.1, §5.5) on the cases upstream 2.7.6 was observed
//! answering under Wine (spec §12), plus our deliberate exact-size checks (spec §11).

use openvpnserv_proto::channel::*;
use openvpnserv_proto::codes::{ERROR_MESSAGE_DATA, ERROR_MESSAGE_TYPE};

const X64: Codec = Codec::new(Arch::X64, Revision::V27);

/// A raw x86-64 message with a given type, size field and total length.
fn raw(msg_type: u32, size_field: u64, id: i32, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len.max(24)];
    b[0..4].copy_from_slice(&msg_type.to_le_bytes());
    b[8..16].copy_from_slice(&size_field.to_le_bytes());
    b[16..20].copy_from_slice(&id.to_le_bytes());
    b.truncate(len);
    b
}

fn ack_of(bytes: &[u8]) -> Option<Ack> {
    match X64.decode_request(bytes) {
        Ok(_) => Some(Ack {
            message_id: i32::MIN,
            error_number: 0,
        }),
        Err(e) => e.ack(),
    }
}

#[test]
fn cve_2024_27459_oversized_channel_message() {
    // One byte more than the largest request: no ack, the channel is dropped.
    let b = raw(7, 1697, 5, 1697);
    assert!(matches!(
        X64.decode_request(&b),
        Err(DecodeError::TooLarge {
            len: 1697,
            max: 1696
        })
    ));
    assert_eq!(ack_of(&b), None);
    // Exactly the largest request is fine.
    let b = raw(7, 1696, 5, 1696);
    assert!(matches!(
        X64.decode_request(&b).unwrap().request,
        Request::AddNrptCfg(_)
    ));
    // Header size minus one: ack −1.
    assert_eq!(
        ack_of(&raw(14, 23, 5, 23)),
        Some(Ack {
            message_id: -1,
            error_number: ERROR_MESSAGE_DATA
        })
    );
}

#[test]
fn eight_byte_message_gets_minus_one() {
    assert_eq!(
        ack_of(&[1, 0, 0, 0, 0, 0, 0, 0]),
        Some(Ack {
            message_id: -1,
            error_number: ERROR_MESSAGE_DATA
        })
    );
    assert_eq!(
        ack_of(&[]),
        Some(Ack {
            message_id: -1,
            error_number: ERROR_MESSAGE_DATA
        })
    );
}

#[test]
fn size_field_must_match_length() {
    assert_eq!(
        ack_of(&raw(3, 300, 9, 328)),
        Some(Ack {
            message_id: -1,
            error_number: ERROR_MESSAGE_DATA
        })
    );
}

#[test]
fn route_one_byte_too_long_echoes_id() {
    assert_eq!(
        ack_of(&raw(3, 329, 9, 329)),
        Some(Ack {
            message_id: 9,
            error_number: ERROR_MESSAGE_DATA
        })
    );
    assert!(matches!(
        X64.decode_request(&raw(3, 329, 9, 329)),
        Err(DecodeError::WrongSize {
            message_id: 9,
            msg_type: 3,
            len: 329,
            expected: 328
        })
    ));
}

#[test]
fn unknown_type_echoes_id() {
    assert_eq!(
        ack_of(&raw(99, 24, 42, 24)),
        Some(Ack {
            message_id: 42,
            error_number: ERROR_MESSAGE_TYPE
        })
    );
    // Numbered but never handled: ack (0), nbt (9, 10), 2.7's ring-buffer slot (16),
    // whatever their size.
    for t in [0, 9, 10, 16] {
        assert_eq!(
            ack_of(&raw(t, 24, 1, 24)),
            Some(Ack {
                message_id: 1,
                error_number: ERROR_MESSAGE_TYPE
            }),
            "type {t}"
        );
        assert_eq!(
            ack_of(&raw(t, 560, 1, 560)),
            Some(Ack {
                message_id: 1,
                error_number: ERROR_MESSAGE_TYPE
            }),
            "type {t}"
        );
    }
}

#[test]
fn register_dns_needs_exact_size() {
    // Upstream accepts any size here (spec §12: 32 bytes → error 0); we check it (spec §11).
    assert_eq!(
        X64.decode_request(&raw(14, 24, 3, 24)).unwrap(),
        Envelope {
            message_id: 3,
            request: Request::RegisterDns
        }
    );
    assert_eq!(
        ack_of(&raw(14, 32, 3, 32)),
        Some(Ack {
            message_id: 3,
            error_number: ERROR_MESSAGE_DATA
        })
    );
}

#[test]
fn short_dns_message_is_refused() {
    assert_eq!(
        ack_of(&raw(5, 300, 4, 300)),
        Some(Ack {
            message_id: 4,
            error_number: ERROR_MESSAGE_DATA
        })
    );
}

#[test]
fn v26_service_handles_its_own_numbering() {
    let v26 = Codec::new(Arch::X64, Revision::V26);
    // 2.6 type 10 is add_block_dns (288 bytes), 2.7 type 10 is del_nbt_cfg.
    let mut b = raw(10, 288, 2, 288);
    b[24..28].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(
        v26.decode_request(&b).unwrap().request,
        Request::AddBlockDns(Interface {
            index: 7,
            name: FixedStr::default()
        })
    );
    assert!(matches!(
        X64.decode_request(&b),
        Err(DecodeError::UnknownType { msg_type: 10, .. })
    ));
    // 2.6's largest request is 872 bytes; an NRPT-sized message is too large there.
    assert!(matches!(
        v26.decode_request(&raw(7, 1696, 1, 1696)),
        Err(DecodeError::TooLarge { max: 872, .. })
    ));
    assert!(
        v26.decode_request(&raw(14, 64, 1, 64)).is_ok(),
        "2.6 ring buffers decode"
    );
}

#[test]
fn names_without_terminator_are_bounded() {
    // An interface name field filled with 'A' and no NUL: read as 255 bytes, never more.
    let mut b = raw(1, 312, 0, 312);
    for byte in &mut b[52..308] {
        *byte = b'A';
    }
    let Request::AddAddress(m) = X64.decode_request(&b).unwrap().request else {
        panic!()
    };
    assert_eq!(m.iface.name.as_bytes().len(), 255);
    // And the NRPT resolve-domains field next to the search domains (spec §11 over-read).
    let mut b = raw(7, 1696, 0, 1696);
    for byte in &mut b[668..1180] {
        *byte = b'r';
    }
    b[1180] = b's';
    let Request::AddNrptCfg(m) = X64.decode_request(&b).unwrap().request else {
        panic!()
    };
    assert_eq!(m.resolve_domains.as_bytes().len(), 511);
    assert!(m.resolve_domains.as_bytes().iter().all(|&c| c == b'r'));
    assert_eq!(m.search_domains.as_bytes(), b"s");
}

#[test]
fn ack_round_trip_and_checks() {
    for arch in [Arch::X64, Arch::X86] {
        let codec = Codec::new(arch, Revision::V27);
        let ack = Ack {
            message_id: -1,
            error_number: 5010,
        };
        let bytes = codec.encode_ack(ack);
        assert_eq!(codec.decode_ack(&bytes), Ok(ack));
        let mut bad = bytes.clone();
        bad[0] = 1;
        assert!(codec.decode_ack(&bad).is_err());
        assert!(codec.decode_ack(&bytes[..bytes.len() - 1]).is_err());
    }
}

#[test]
fn v27_only_kinds_cannot_be_encoded_for_v26() {
    let v26 = Codec::new(Arch::X64, Revision::V26);
    let err = v26
        .encode(&Envelope {
            message_id: 0,
            request: Request::CreateAdapter(CreateAdapterMsg { adapter_type: 0 }),
        })
        .unwrap_err();
    assert_eq!(err.kind, Kind::CreateAdapter);
}
