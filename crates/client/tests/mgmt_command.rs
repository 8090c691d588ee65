//! Encoding of management commands, and quoting by the management notes' "Command Parsing"
//! rules.

use iservice::mgmt::command::{password_line, push_quoted};
use iservice::mgmt::{Command, CommandError, Expect, Signal};

fn text(command: &Command<'_>) -> (String, Expect) {
    let (bytes, expect) = command.encode().unwrap();
    (String::from_utf8(bytes.to_vec()).unwrap(), expect)
}

#[test]
fn commands_table() {
    let cases = [
        (Command::HoldRelease, "hold release\n", Expect::Status),
        (
            Command::StateOnAll,
            "state on all\n",
            Expect::StatusThenLines,
        ),
        (Command::LogOnAll, "log on all\n", Expect::StatusThenLines),
        (Command::ByteCount(5), "bytecount 5\n", Expect::Status),
        (
            Command::Signal(Signal::Term),
            "signal SIGTERM\n",
            Expect::Status,
        ),
        (
            Command::Signal(Signal::Usr1),
            "signal SIGUSR1\n",
            Expect::Status,
        ),
        (Command::State, "state\n", Expect::Lines),
        (
            Command::Username {
                kind: "Auth",
                value: "alice",
            },
            "username \"Auth\" \"alice\"\n",
            Expect::Status,
        ),
        (
            Command::Password {
                kind: "Private Key",
                value: r#"fo"o\bar baz"#,
            },
            "password \"Private Key\" \"fo\\\"o\\\\bar baz\"\n",
            Expect::Status,
        ),
        (
            Command::Password {
                kind: "Auth",
                value: "",
            },
            "password \"Auth\" \"\"\n",
            Expect::Status,
        ),
        (
            Command::NeedOk {
                name: "token-insertion-request",
                ok: true,
            },
            "needok \"token-insertion-request\" ok\n",
            Expect::Status,
        ),
        (
            Command::NeedOk {
                name: "token-insertion-request",
                ok: false,
            },
            "needok \"token-insertion-request\" cancel\n",
            Expect::Status,
        ),
        (
            Command::NeedStr {
                name: "pkcs11-id-request",
                value: r#"pkcs11:id="1" x\y"#,
            },
            "needstr \"pkcs11-id-request\" \"pkcs11:id=\\\"1\\\" x\\\\y\"\n",
            Expect::Status,
        ),
    ];
    for (command, want, expect) in cases {
        assert_eq!(text(&command), (want.to_owned(), expect), "{command:?}");
    }
}

/// A line break inside a value would let the value inject a second command.
#[test]
fn control_characters_are_refused() {
    for value in ["a\nsignal SIGTERM", "a\rb", "a\0b"] {
        assert_eq!(
            Command::Password {
                kind: "Auth",
                value
            }
            .encode()
            .unwrap_err(),
            CommandError::ControlCharacter
        );
        assert_eq!(
            Command::NeedStr { name: "n", value }.encode().unwrap_err(),
            CommandError::ControlCharacter
        );
        // The name comes from openvpn's notification; it is checked like a value.
        assert_eq!(
            Command::NeedOk {
                name: value,
                ok: true
            }
            .encode()
            .unwrap_err(),
            CommandError::ControlCharacter
        );
        assert!(password_line(value).is_err());
        assert!(push_quoted(&mut Vec::new(), value).is_err());
    }
    assert_eq!(&*password_line("abc").unwrap(), b"abc\n");
}

#[test]
fn debug_hides_secrets() {
    let shown = format!(
        "{:?} {:?}",
        Command::Password {
            kind: "Auth",
            value: "hunter2"
        },
        Command::Username {
            kind: "Auth",
            value: "alice"
        }
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("alice"),
        "{shown}"
    );
}
