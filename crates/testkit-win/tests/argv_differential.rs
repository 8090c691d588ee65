//! Differential tests of our two command-line splitters against Windows itself (under Wine):
//! `openvpnserv_policy::split::command_line_to_argv` against shell32's `CommandLineToArgvW`,
//! and `crt_args` against how a C-runtime-style program (Rust's std, which follows the
//! Microsoft C/C++ rules) splits the same text after its program name.
#![cfg(windows)]

use std::os::windows::process::CommandExt;

use openvpnserv::windows::sys::kernel::wide_at;
use openvpnserv::windows::sys::wide::wide;
use openvpnserv_policy::split::{command_line_to_argv, crt_args};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::UI::Shell::CommandLineToArgvW;

/// shell32's answer.
fn shell32(line: &str) -> Vec<String> {
    let wide = wide(line);
    let mut n = 0i32;
    // SAFETY: `wide` is NUL-terminated and outlives the call; `n` is a valid out pointer.
    let argv = unsafe { CommandLineToArgvW(wide.as_ptr(), &raw mut n) };
    assert!(!argv.is_null(), "CommandLineToArgvW failed for {line:?}");
    let mut out = Vec::new();
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: the array holds `n` valid NUL-terminated strings until LocalFree.
        out.push(unsafe { wide_at(*argv.add(i)) });
    }
    // SAFETY: `argv` was allocated by CommandLineToArgvW and is freed once.
    unsafe { LocalFree(argv.cast()) };
    out
}

/// A tiny deterministic generator (no dependency needed for test inputs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A string over the characters the splitters care about.
    fn text(&mut self) -> String {
        const ALPHABET: [char; 7] = ['a', 'b', ' ', '\t', '"', '\\', '-'];
        let len = self.next() % 14;
        (0..len)
            .map(|_| ALPHABET[(self.next() % 7) as usize])
            .collect()
    }
}

fn tricky() -> Vec<String> {
    let mut cases: Vec<String> = [
        "--config a.ovpn",
        r#"--log "C:\Users\u\OpenVPN\log\x.log" --config "x.ovpn" --setenv IV_GUI_VER "OpenVPN GUI 11""#,
        r#""C:\dir\" x"#,
        r#""a b"c d"#,
        r#""x --plugin y"#,
        r#"a\" --plugin y ""#,
        r#"x a\\"b c""#,
        r#"x "a""b c""#,
        r#"x """a""""#,
        r#"x a""""b"#,
        r#"x "a\"" b"#,
        "  ",
        " a",
        "a\t\tb",
    ]
    .map(String::from)
    .to_vec();
    let mut g = Lcg(0x5EED);
    cases.extend((0..400).map(|_| g.text()));
    cases
}

#[test]
fn command_line_to_argv_matches_shell32() {
    for line in tricky() {
        if line.is_empty() {
            // Our documented decision: no tokens (shell32 returns the program's path).
            assert!(command_line_to_argv(&line).is_empty());
            continue;
        }
        assert_eq!(command_line_to_argv(&line), shell32(&line), "{line:?}");
    }
}

#[test]
fn crt_args_match_a_c_runtime_program() {
    for line in tricky() {
        let (expected, open) = crt_args(&line);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_argv-echo"))
            .raw_arg(&line)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        let got: Vec<String> = printed
            .lines()
            .filter_map(|l| l.strip_prefix("ARG "))
            .map(|l| l.replace("\\n", "\n"))
            .collect();
        assert_eq!(expected, got, "{line:?} (ends inside quotes: {open})");
    }
}
