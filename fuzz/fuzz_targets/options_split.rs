//! The options splitters and the whitelist: never panic, and agree with a naive oracle on
//! text without quotes or backslashes (where both Windows parsers split on blanks only).
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_policy::options::{validate_tokens, validate_windows, ConfigPathCheck};
use openvpnserv_policy::split::{command_line_to_argv, crt_args};

struct AcceptAll;
impl ConfigPathCheck for AcceptAll {
    fn check(&self, _dir: &str, path: &str) -> Option<String> {
        (!path.contains("bad")).then(|| format!("/canon/{path}"))
    }
}

fuzz_target!(|text: &str| {
    let upstream = command_line_to_argv(text);
    let (crt, _open) = crt_args(text);
    if !text.contains(['"', '\\']) && !text.is_empty() {
        let naive: Vec<&str> = text.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
        assert_eq!(crt, naive);
        // CommandLineToArgvW differs only by an empty first token for leading blanks.
        let skip = usize::from(text.starts_with([' ', '\t']));
        assert_eq!(&upstream[skip..], &naive[..]);
    }
    // Validation is total, and refusals name a token that exists in the input.
    let _ = validate_windows(text, "/d", &AcceptAll);
    if let Err(openvpnserv_policy::Refusal::Option { token }) = validate_tokens(&upstream, "/d", &AcceptAll) {
        assert!(upstream.contains(&token));
    }
});
