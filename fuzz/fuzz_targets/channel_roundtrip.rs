//! Round trip: build a request from fuzz input (by decoding it leniently), encode it, decode
//! it, and require the identical request; also the startup message and the reply.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_proto::channel::{Arch, Codec, Revision};
use openvpnserv_proto::{Reply, StartupMessage};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let arch = if data[0] & 1 == 0 { Arch::X64 } else { Arch::X86 };
    let revision = if data[0] & 2 == 0 { Revision::V27 } else { Revision::V26 };
    let codec = Codec::new(arch, revision);
    let body = &data[1..];
    // Patch the header so that the size field matches and more inputs decode.
    let mut msg = body.to_vec();
    let h = arch.header_size();
    if msg.len() >= h {
        let len = msg.len();
        match arch {
            Arch::X64 => msg[8..16].copy_from_slice(&(len as u64).to_le_bytes()),
            Arch::X86 => msg[4..8].copy_from_slice(&(len as u32).to_le_bytes()),
        }
    }
    if let Ok(envelope) = codec.decode(&msg) {
        let bytes = codec.encode(&envelope).unwrap();
        assert_eq!(codec.decode(&bytes).unwrap(), envelope);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let parts: Vec<&str> = text.splitn(3, '\u{1}').collect();
        if parts.len() == 3 && !text.contains('\0') {
            let m = StartupMessage::new(parts[0], parts[1], parts[2]);
            let encoded = m.encode();
            if encoded.len() / 2 <= openvpnserv_proto::startup::MAX_UNITS {
                assert_eq!(StartupMessage::decode(&encoded).unwrap().message, m);
            }
        }
        if let Ok(reply) = Reply::parse(text) {
            // Parsing is stable: what we parse, re-encoded and parsed, is the same reply
            // (for replies that fit the length cap).
            // (for replies that fit the length cap: longer ones are cut, by design)
            let encoded = reply.encode();
            if reply.to_text().encode_utf16().count() <= openvpnserv_proto::reply::MAX_REPLY_UNITS {
                assert_eq!(Reply::decode(&encoded).unwrap(), reply);
            }
        }
    }
});
