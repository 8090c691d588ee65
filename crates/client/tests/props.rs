//! Properties over arbitrary input: the management parser never panics and stays bounded
//! whatever a peer sends; quoting survives the service's splitters for any argument; the
//! management quoting survives openvpn's lexer rules for any value.

use iservice::connect::options::quote_arg;
use iservice::mgmt::command::push_quoted;
use iservice::mgmt::{Expect, Output, Parser, MAX_LINE};
use openvpnserv_policy::split::{command_line_to_argv, crt_args};
use proptest::prelude::*;

/// Undoes the management interface's double-quote quoting (the notes' "Command Parsing").
fn unquote(quoted: &[u8]) -> Option<Vec<u8>> {
    let inner = quoted.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut out = Vec::new();
    let mut escaped = false;
    for &b in inner {
        if escaped {
            out.push(b);
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return None; // an unescaped quote would end the parameter early
        } else {
            out.push(b);
        }
    }
    (!escaped).then_some(out)
}

proptest! {
    #[test]
    fn parser_never_panics_and_lines_are_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
        expects in proptest::collection::vec(0u8..3, 0..10),
    ) {
        let mut p = Parser::new();
        for e in expects {
            p.expect(match e { 0 => Expect::Status, 1 => Expect::Lines, _ => Expect::StatusThenLines });
        }
        for chunk in &chunks {
            p.feed(chunk);
            while let Some(item) = p.next_output() {
                if let Ok(Output::Unexpected(line)) = item {
                    prop_assert!(line.len() <= MAX_LINE * 3);
                }
            }
        }
    }

    #[test]
    fn service_quoting_round_trips(arg in "[^\u{0}]*") {
        let line = format!("--x {}", quote_arg(&arg));
        let split = command_line_to_argv(&line);
        prop_assert_eq!(&split[1..], &[arg.clone()][..]);
        let (crt, open) = crt_args(&line);
        prop_assert!(!open);
        prop_assert_eq!(&crt[1..], &[arg][..]);
    }

    #[test]
    fn management_quoting_round_trips(value in "[^\r\n\u{0}]*") {
        let mut out = Vec::new();
        push_quoted(&mut out, &value).unwrap();
        prop_assert_eq!(unquote(&out), Some(value.into_bytes()));
    }
}
