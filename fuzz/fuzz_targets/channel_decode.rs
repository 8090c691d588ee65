//! The channel decoder (spec §5.5) for every layout and numbering: never panics, answers
//! every input with a request, an ack, or (only when too large) nothing; a decoded request
//! encodes back to the very same bytes except padding, which must be zero only in our output.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_proto::channel::{Arch, Codec, DecodeError, Revision};

fuzz_target!(|data: &[u8]| {
    for arch in [Arch::X64, Arch::X86] {
        for revision in [Revision::V27, Revision::V26] {
            let codec = Codec::new(arch, revision);
            match codec.decode_request(data) {
                Ok(envelope) => {
                    let again = codec.encode(&envelope).expect("decoded kinds encode");
                    assert_eq!(again.len(), data.len());
                    assert_eq!(codec.decode_request(&again).as_ref(), Ok(&envelope));
                }
                Err(DecodeError::TooLarge { len, max }) => assert!(len > max),
                Err(e) => assert!(e.ack().is_some()),
            }
            let _ = codec.decode_ack(data);
        }
    }
});
