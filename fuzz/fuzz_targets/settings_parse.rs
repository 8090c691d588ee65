//! The settings readers: the Linux TOML parser is total and what it accepts renders back to
//! the same settings; the registry reader is total over arbitrary values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_settings::registry::{read, RegValue};
use openvpnserv_settings::{linux, Instance};

fuzz_target!(|input: (&str, Vec<(u8, String)>)| {
    let (text, values) = input;
    if let Ok(settings) = linux::parse(text, "fuzz.toml") {
        assert_eq!(linux::parse(&linux::render(&settings), "x").unwrap(), settings);
    }
    let names = ["", "exe_path", "config_dir", "bin_dir", "config_ext", "log_dir", "priority",
        "log_append", "ovpn_admin_group", "ovpn_service_user", "max_sessions", "msg_protocol"];
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(k, _)| names.get(usize::from(*k) % names.len()) == Some(&name))
            .map_or(RegValue::Missing, |(k, v)| if k & 0x80 != 0 { RegValue::OtherType } else { RegValue::Sz(v.clone()) })
    };
    let _ = read(&Instance::default(), lookup);
});
