//! The startup-message decoder (spec §2.2) must never panic, and whatever it accepts must
//! encode back to the accepted prefix of the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_proto::StartupMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = StartupMessage::decode(data) {
        let again = decoded.message.encode();
        assert!(data.len() >= again.len());
        assert_eq!(&data[..again.len()], &again[..]);
        let trailing = data.len() / 2 * 2 - again.len();
        assert_eq!(trailing / 2, decoded.trailing_units);
    }
});
