//! The Windows config-path rule: total, its canonical form is canonical (a fixed point, with no
//! `.` or `..` components and no forward slashes), and acceptance implies the prefix.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_policy::path::windows::{canonicalize, check, is_under};

const CONFIG: &str = r"C:\Program Files\OpenVPN\config\";

fuzz_target!(|input: (&str, &str)| {
    let (dir, path) = input;
    if let Some(canonical) = canonicalize(dir, path) {
        assert!(!canonical.contains('/'));
        assert!(canonical.split('\\').all(|c| c != "." && c != ".."));
        assert_eq!(canonicalize("C:\\", &canonical).as_deref(), Some(canonical.as_str()));
    }
    if let Some(accepted) = check(CONFIG, dir, path) {
        assert!(is_under(&accepted, CONFIG));
        assert_ne!(path, "stdin");
    }
});
