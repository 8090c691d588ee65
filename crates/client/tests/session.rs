//! The management conversation of `iservice connect`, sans-IO: scripted openvpn output in,
//! the client's commands, prompts and events out.

use iservice::connect::{
    Action, Answer, Credentials, Event, NeedAnswer, Outcome, PromptError, PromptRequest, Session,
    SessionConfig,
};
use iservice::mgmt::{NeedRequest, StaticChallenge};
use iservice::service::ServiceEvent;
use zeroize::Zeroizing;

/// What a terminal prompter returns when its input ends.
fn end_of_input() -> PromptError {
    PromptError::Terminal(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "end of input",
    ))
}

const PASSWORD: &str = "Mgmt0Password";

/// Sent bytes as text, prompts and events, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Sent(String),
    Prompt(PromptRequest),
    Need(NeedRequest),
    Event(Event),
    Disconnect,
}

fn drain(session: &mut Session) -> Vec<Seen> {
    std::iter::from_fn(|| session.next_action())
        .map(|a| match a {
            Action::Send(bytes) => Seen::Sent(String::from_utf8(bytes.to_vec()).unwrap()),
            Action::Prompt(p) => Seen::Prompt(p),
            Action::Need(n) => Seen::Need(n),
            Action::Emit(e) => Seen::Event(e),
            Action::Disconnect => Seen::Disconnect,
        })
        .collect()
}

fn sent(seen: &[Seen]) -> Vec<&str> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Sent(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn events(seen: &[Seen]) -> Vec<&Event> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn session(config: SessionConfig) -> Session {
    Session::new(Zeroizing::new(PASSWORD.to_owned()), config)
}

/// Logs in and answers the setup commands, as openvpn does.
fn logged_in(config: SessionConfig) -> Session {
    let mut s = session(config);
    s.feed(b"ENTER PASSWORD:");
    assert_eq!(sent(&drain(&mut s)), [format!("{PASSWORD}\n")]);
    s.feed(b"SUCCESS: password is correct\r\n>INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n");
    let seen = drain(&mut s);
    assert_eq!(
        sent(&seen),
        ["state on all\n", "log on all\n", "bytecount 5\n"]
    );
    assert_eq!(events(&seen)[0], &Event::ManagementConnected);
    s.feed(b"SUCCESS: real-time state notification set to ON\r\n1795694064,CONNECTING,,,,,,\r\nEND\r\nSUCCESS: real-time log notification set to ON\r\n1795694064,W,hello, world\r\nEND\r\nSUCCESS: bytecount interval changed\r\n");
    let seen = drain(&mut s);
    assert!(
        matches!(events(&seen)[..], [Event::State { state, .. }, Event::Log { level: "warning", message }] if state == "CONNECTING" && message == "hello, world"),
        "{seen:?}"
    );
    s
}

fn state(s: &mut Session, line: &str) -> Vec<Seen> {
    s.feed(format!(">STATE:{line}\r\n").as_bytes());
    drain(s)
}

#[test]
fn full_connection_then_ctrl_c() {
    let mut s = logged_in(SessionConfig::default());
    s.feed(b">HOLD:Waiting for hold release:0\r\n");
    let seen = drain(&mut s);
    assert_eq!(sent(&seen), ["hold release\n"]);
    s.feed(b"SUCCESS: hold release succeeded\r\n");
    let mut names = Vec::new();
    for line in [
        "1,RESOLVE,,,,,,",
        "1,WAIT,,,,,,",
        "1,AUTH,,,,,,",
        "1,GET_CONFIG,,,,,,",
        "1,ASSIGN_IP,,10.8.0.2,,,,,fd00:8::1000",
        "1,ADD_ROUTES,,,,,,",
        "2,CONNECTED,SUCCESS,10.8.0.2,10.200.0.1,1194,10.200.0.2,40000,fd00:8::1000",
    ] {
        for e in events(&state(&mut s, line)) {
            if let Event::State { state, .. } = e {
                names.push(state.clone());
            }
        }
    }
    assert_eq!(
        names,
        [
            "RESOLVE",
            "WAIT",
            "AUTH",
            "GET_CONFIG",
            "ASSIGN_IP",
            "ADD_ROUTES",
            "CONNECTED"
        ]
    );
    assert!(s.facts().connected);
    s.feed(b">BYTECOUNT:1000,2000\r\n");
    assert_eq!(
        events(&drain(&mut s)),
        [&Event::Bytecount {
            bytes_in: 1000,
            bytes_out: 2000
        }]
    );
    s.interrupt();
    let seen = drain(&mut s);
    assert_eq!(sent(&seen), ["signal SIGTERM\n"]);
    assert!(s.stopping());
    // A second interrupt does not send again.
    s.interrupt();
    assert!(sent(&drain(&mut s)).is_empty());
    s.feed(b"SUCCESS: signal SIGTERM thrown\r\n>STATE:3,EXITING,SIGTERM,,,,,\r\n");
    // Held again while stopping: no release.
    s.feed(b">HOLD:Waiting for hold release:0\r\n");
    assert!(sent(&drain(&mut s)).is_empty());
    s.management_closed();
    assert_eq!(s.facts().outcome().0, Outcome::Disconnected);
}

#[test]
fn interrupt_before_login_is_sent_after_it() {
    let mut s = session(SessionConfig::default());
    s.interrupt();
    assert!(drain(&mut s).is_empty());
    s.feed(b"ENTER PASSWORD:");
    drain(&mut s);
    s.feed(b"SUCCESS: password is correct\r\n");
    let seen = drain(&mut s);
    assert_eq!(sent(&seen).last(), Some(&"signal SIGTERM\n"));
    s.management_closed();
    assert_eq!(s.facts().outcome().0, Outcome::Interrupted);
}

/// Another program on the port (it never asks for the password) gets nothing.
#[test]
fn impostor_on_the_management_port_is_refused() {
    let mut s = session(SessionConfig::default());
    s.feed(b">INFO:OpenVPN Management Interface Version 5\r\n>PASSWORD:Need 'Auth' username/password\r\n");
    let seen = drain(&mut s);
    assert_eq!(seen, [Seen::Disconnect, Seen::Disconnect]);
    let (outcome, why) = s.facts().outcome();
    assert_eq!(outcome, Outcome::OpenvpnFailed);
    assert!(
        why.contains("did not ask for the management password"),
        "{why}"
    );
}

#[test]
fn wrong_management_password() {
    let mut s = session(SessionConfig::default());
    s.feed(b"ENTER PASSWORD:");
    drain(&mut s);
    s.feed(b"ENTER PASSWORD:");
    assert_eq!(drain(&mut s), [Seen::Disconnect]);
    assert!(s
        .facts()
        .management_error
        .as_deref()
        .unwrap()
        .contains("refused the password"));
}

#[test]
fn closed_before_prompt() {
    let mut s = session(SessionConfig::default());
    s.management_closed();
    assert_eq!(s.facts().outcome().0, Outcome::OpenvpnFailed);
}

fn interactive() -> SessionConfig {
    SessionConfig {
        interactive: true,
        ..SessionConfig::default()
    }
}

fn answer(user: Option<&str>, secret: &str, response: Option<&str>) -> Answer {
    Answer {
        username: user.map(|u| Zeroizing::new(u.to_owned())),
        secret: Zeroizing::new(secret.to_owned()),
        response: response.map(|r| Zeroizing::new(r.to_owned())),
    }
}

#[test]
fn username_password_prompt_then_retry_then_give_up() {
    let mut s = logged_in(interactive());
    for attempt in 1..=3 {
        s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
        let seen = drain(&mut s);
        assert!(seen.contains(&Seen::Prompt(PromptRequest {
            kind: "Auth".into(),
            username: true,
            secret: true,
            challenge: None
        })));
        s.answer(Ok(answer(Some("alice"), "wr\"ong", None)));
        assert_eq!(
            sent(&drain(&mut s)),
            [
                "username \"Auth\" \"alice\"\n",
                "password \"Auth\" \"wr\\\"ong\"\n"
            ]
        );
        s.feed(b"SUCCESS: 'Auth' username entered, but not yet verified\r\nSUCCESS: 'Auth' password entered, but not yet verified\r\n>PASSWORD:Verification Failed: 'Auth'\r\n");
        let seen = drain(&mut s);
        let retry = attempt < 3;
        assert!(
            events(&seen).contains(&&Event::AuthFailed {
                kind: "Auth".into(),
                retry
            }),
            "{seen:?}"
        );
        assert_eq!(sent(&seen).contains(&"signal SIGTERM\n"), !retry);
    }
    assert_eq!(s.facts().outcome().0, Outcome::AuthFailed);
}

#[test]
fn auth_file_is_used_once_then_failure_is_final() {
    let creds = Credentials::from_auth_file("bob\nsecret\n").unwrap();
    let mut s = logged_in(SessionConfig {
        auth_file: Some(creds),
        ..interactive()
    });
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    let seen = drain(&mut s);
    assert!(!seen.iter().any(|x| matches!(x, Seen::Prompt(_))));
    assert_eq!(
        sent(&seen),
        [
            "username \"Auth\" \"bob\"\n",
            "password \"Auth\" \"secret\"\n"
        ]
    );
    s.feed(b">PASSWORD:Verification Failed: 'Auth'\r\n");
    let seen = drain(&mut s);
    assert_eq!(sent(&seen), ["signal SIGTERM\n"]);
    // openvpn exits non-zero after the failure; the outcome stays "auth failed".
    s.service_event(&ServiceEvent::Error {
        code: 0x2000_0000,
        function: "OpenVPN exited with error: exit code = 1".into(),
        text: String::new(),
    });
    let (outcome, why) = s.facts().outcome();
    assert_eq!(outcome, Outcome::AuthFailed);
    assert!(why.contains("authentication failed"), "{why}");
}

#[test]
fn no_terminal_and_no_auth_file() {
    let mut s = logged_in(SessionConfig::default());
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    let seen = drain(&mut s);
    assert!(!seen.iter().any(|x| matches!(x, Seen::Prompt(_))));
    assert_eq!(sent(&seen), ["signal SIGTERM\n"]);
    assert!(events(&seen)
        .iter()
        .any(|e| matches!(e, Event::Warning { message } if message.contains("--auth-file"))));
    assert_eq!(s.facts().outcome().0, Outcome::AuthFailed);
}

#[test]
fn private_key_passphrase() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Need 'Private Key' password\r\n");
    let seen = drain(&mut s);
    let Some(Seen::Prompt(request)) = seen.iter().find(|x| matches!(x, Seen::Prompt(_))) else {
        panic!("{seen:?}");
    };
    assert!(!request.username && request.secret);
    assert_eq!(request.secret_label(), "Private key passphrase");
    s.answer(Ok(answer(None, "pass phrase", None)));
    assert_eq!(
        sent(&drain(&mut s)),
        ["password \"Private Key\" \"pass phrase\"\n"]
    );
    s.feed(b">PASSWORD:Verification Failed: 'Private Key'\r\n");
    drain(&mut s);
    assert_eq!(s.facts().outcome().0, Outcome::AuthFailed);
}

/// Static challenge: the password becomes `SCRV1:<b64 password>:<b64 response>`.
#[test]
fn static_challenge_response() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Need 'Auth' username/password SC:1,Please enter token PIN\r\n");
    let seen = drain(&mut s);
    assert!(seen.contains(&Seen::Prompt(PromptRequest {
        kind: "Auth".into(),
        username: true,
        secret: true,
        challenge: Some(StaticChallenge {
            echo: true,
            text: "Please enter token PIN".into()
        }),
    })));
    s.answer(Ok(answer(Some("foo"), "bar", Some("8675309"))));
    assert_eq!(
        sent(&drain(&mut s)),
        [
            "username \"Auth\" \"foo\"\n",
            "password \"Auth\" \"SCRV1:YmFy:ODY3NTMwOQ==\"\n"
        ]
    );
}

/// Dynamic challenge (management notes' example): the next request is answered with
/// `CRV1::<state id>::<response>` and the user name from the challenge.
#[test]
fn dynamic_challenge_response() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Verification Failed: ['CRV1:R,E:Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l:Y3Ix:Please enter token PIN']\r\n");
    let seen = drain(&mut s);
    assert!(sent(&seen).is_empty(), "a challenge is not a failure");
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    let seen = drain(&mut s);
    assert!(seen.contains(&Seen::Prompt(PromptRequest {
        kind: "Auth".into(),
        username: false,
        secret: false,
        challenge: Some(StaticChallenge {
            echo: true,
            text: "Please enter token PIN".into()
        }),
    })));
    s.answer(Ok(answer(None, "", Some("8675309"))));
    assert_eq!(
        sent(&drain(&mut s)),
        [
            "username \"Auth\" \"cr1\"\n",
            "password \"Auth\" \"CRV1::Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l::8675309\"\n"
        ]
    );
}

#[test]
fn prompt_failure_gives_up() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    drain(&mut s);
    s.answer(Err(end_of_input()));
    assert_eq!(sent(&drain(&mut s)), ["signal SIGTERM\n"]);
    assert_eq!(s.facts().outcome().0, Outcome::AuthFailed);
}

#[test]
fn fatal_and_exit_code_make_openvpn_failed() {
    let mut s = logged_in(SessionConfig::default());
    s.feed(b">FATAL:Cannot open TUN/TAP dev /dev/net/tun: Permission denied\r\n");
    drain(&mut s);
    s.service_event(&ServiceEvent::Error {
        code: 0x2000_0000,
        function: "OpenVPN exited with error: exit code = 1".into(),
        text: String::new(),
    });
    let seen = drain(&mut s);
    assert!(matches!(
        events(&seen)[..],
        [Event::ServiceError {
            code: 0x2000_0000,
            code_name: Some("ERROR_OPENVPN_STARTUP"),
            ..
        }]
    ));
    let (outcome, why) = s.facts().outcome();
    assert_eq!(outcome, Outcome::OpenvpnFailed);
    assert_eq!(
        why,
        "openvpn exited with error code 1: Cannot open TUN/TAP dev /dev/net/tun: Permission denied"
    );
}

#[test]
fn command_errors_become_warnings() {
    let mut s = session(SessionConfig::default());
    s.feed(b"ENTER PASSWORD:");
    drain(&mut s);
    s.feed(b"SUCCESS: password is correct\r\nERROR: state off\r\n");
    let seen = drain(&mut s);
    assert!(
        events(&seen)
            .iter()
            .any(|e| matches!(e, Event::Warning { message } if message.contains("`state on all`"))),
        "{seen:?}"
    );
}

#[test]
fn exit_codes_are_distinct() {
    let mut codes: Vec<u8> = Outcome::ALL.iter().map(|o| o.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Outcome::ALL.len());
    assert_eq!(Outcome::Disconnected.code(), 0);
    assert!(!codes.contains(&2), "2 is clap's usage error");
}

const TOKEN: &[u8] =
    b">NEED-OK:Need 'token-insertion-request' confirmation MSG:Please insert your token\r\n";

fn token_request() -> NeedRequest {
    NeedRequest {
        name: "token-insertion-request".into(),
        message: "Please insert your token".into(),
        input: false,
    }
}

/// `>NEED-OK:` is shown to the user; the answer goes back as `needok`, `ok` or `cancel`.
#[test]
fn need_ok_is_asked_and_answered() {
    for (answer, word) in [(NeedAnswer::Ok, "ok"), (NeedAnswer::Cancel, "cancel")] {
        let mut s = logged_in(interactive());
        s.feed(TOKEN);
        let seen = drain(&mut s);
        assert_eq!(
            events(&seen),
            [&Event::Question {
                name: "token-insertion-request".into(),
                message: "Please insert your token".into(),
                input: false,
            }]
        );
        assert!(seen.contains(&Seen::Need(token_request())), "{seen:?}");
        assert!(sent(&seen).is_empty());
        s.answer_need(Ok(answer));
        assert_eq!(
            sent(&drain(&mut s)),
            [format!("needok \"token-insertion-request\" {word}\n")]
        );
        s.feed(b"SUCCESS: needok command succeeded\r\n");
        assert!(events(&drain(&mut s)).is_empty());
        assert!(!s.stopping());
    }
}

/// `>NEED-STR:` gets the typed line back as `needstr`, quoted.
#[test]
fn need_str_is_asked_and_answered() {
    let mut s = logged_in(interactive());
    s.feed(b">NEED-STR:Need 'name' input MSG:Please specify your name\r\n");
    let seen = drain(&mut s);
    assert!(seen.contains(&Seen::Need(NeedRequest {
        name: "name".into(),
        message: "Please specify your name".into(),
        input: true,
    })));
    s.answer_need(Ok(NeedAnswer::Text(Zeroizing::new("John \"Q\"".into()))));
    assert_eq!(
        sent(&drain(&mut s)),
        ["needstr \"name\" \"John \\\"Q\\\"\"\n"]
    );
}

/// openvpn waits for ever on an unanswered question, so when there is no answer (no
/// terminal, the prompt failed, or a `NEED-STR` was cancelled) openvpn is stopped, and the
/// command ends as an openvpn failure that says why.
#[test]
fn unanswerable_questions_stop_openvpn() {
    let mut s = logged_in(SessionConfig::default());
    s.feed(TOKEN);
    let seen = drain(&mut s);
    assert!(!seen.iter().any(|x| matches!(x, Seen::Need(_))), "{seen:?}");
    assert_eq!(sent(&seen), ["signal SIGTERM\n"]);
    let (outcome, message) = s.facts().outcome();
    assert_eq!(outcome, Outcome::OpenvpnFailed);
    assert!(
        message.contains("'token-insertion-request' (Please insert your token)")
            && message.contains("no terminal"),
        "{message}"
    );

    let mut s = logged_in(interactive());
    s.feed(TOKEN);
    drain(&mut s);
    s.answer_need(Err(end_of_input()));
    assert_eq!(sent(&drain(&mut s)), ["signal SIGTERM\n"]);
    assert!(s.facts().outcome().1.contains("end of input"));

    let mut s = logged_in(interactive());
    s.feed(b">NEED-STR:Need 'name' input MSG:Name\r\n");
    drain(&mut s);
    s.answer_need(Ok(NeedAnswer::Cancel));
    assert_eq!(sent(&drain(&mut s)), ["signal SIGTERM\n"]);
    assert_eq!(s.facts().outcome().0, Outcome::OpenvpnFailed);
}

/// One question at a time: a `NEED-OK` that arrives while the user types a password waits
/// until the password is answered; answers never cross over.
#[test]
fn questions_wait_their_turn() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    drain(&mut s);
    s.feed(TOKEN);
    let seen = drain(&mut s);
    assert!(!seen.iter().any(|x| matches!(x, Seen::Need(_))), "{seen:?}");
    // An answer of the wrong kind is ignored: the password prompt is still the one open.
    s.answer_need(Ok(NeedAnswer::Ok));
    assert!(sent(&drain(&mut s)).is_empty());
    s.answer(Ok(answer(Some("alice"), "pw", None)));
    let seen = drain(&mut s);
    assert_eq!(
        sent(&seen),
        [
            "username \"Auth\" \"alice\"\n",
            "password \"Auth\" \"pw\"\n"
        ]
    );
    assert!(seen.contains(&Seen::Need(token_request())), "{seen:?}");
    s.answer_need(Ok(NeedAnswer::Ok));
    assert_eq!(
        sent(&drain(&mut s)),
        ["needok \"token-insertion-request\" ok\n"]
    );
}

/// A malformed `NEED-OK` is passed on as a notification and never answered.
#[test]
fn malformed_need_is_only_reported() {
    let mut s = logged_in(interactive());
    s.feed(b">NEED-OK:Need token confirmation\r\n");
    let seen = drain(&mut s);
    assert_eq!(
        events(&seen),
        [&Event::Notification {
            kind: "NEED-OK".into(),
            body: "Need token confirmation".into(),
        }]
    );
    assert!(sent(&seen).is_empty());
    assert!(!seen.iter().any(|x| matches!(x, Seen::Need(_))));
}

/// Ctrl-C while openvpn waits for a password: openvpn, stopped, exits with an error of its own
/// ("could not read Auth username/password"); the command still ends as interrupted. Once
/// connected, an exit error is still reported as such.
#[test]
fn ctrl_c_before_connecting_is_an_interrupt_whatever_openvpn_exits_with() {
    let mut s = logged_in(interactive());
    s.feed(b">PASSWORD:Need 'Auth' username/password\r\n");
    drain(&mut s);
    s.interrupt();
    assert_eq!(sent(&drain(&mut s)), ["signal SIGTERM\n"]);
    s.feed(b"SUCCESS: signal SIGTERM thrown\r\n>FATAL:ERROR: could not read Auth username/password/ok/string from management interface\r\n");
    s.service_event(&ServiceEvent::Error {
        code: 0x2000_0000,
        function: "OpenVPN exited with error: exit code = 1".into(),
        text: String::new(),
    });
    drain(&mut s);
    assert_eq!(s.facts().outcome().0, Outcome::Interrupted);

    let mut s = logged_in(interactive());
    state(&mut s, "1,CONNECTED,SUCCESS,10.8.0.2,10.0.0.1,1194,,");
    s.interrupt();
    s.service_event(&ServiceEvent::Error {
        code: 0x2000_0000,
        function: "OpenVPN exited with error: exit code = 1".into(),
        text: String::new(),
    });
    assert_eq!(s.facts().outcome().0, Outcome::OpenvpnFailed);
}

#[test]
fn start_detaches_only_once_connected_and_after_openvpn_confirms_hold_off() {
    let mut s = logged_in(SessionConfig::default());
    // Before CONNECTED there is nothing to leave running.
    s.detach();
    assert!(drain(&mut s).is_empty());
    assert!(!s.detaching());
    state(&mut s, "2,CONNECTED,SUCCESS,10.8.0.2,10.200.0.1,1194,,");
    s.detach();
    assert_eq!(sent(&drain(&mut s)), ["hold off\n"]);
    // Asked twice (the driver asks on every turn): sent once.
    s.detach();
    assert!(drain(&mut s).is_empty());
    assert!(!s.facts().detached, "not before openvpn confirmed");
    s.feed(b"SUCCESS: hold flag set to OFF\r\n");
    assert_eq!(drain(&mut s), [Seen::Disconnect]);
    assert!(s.facts().detached);
    assert_eq!(s.facts().outcome().0, Outcome::Connected);
    assert_eq!(Outcome::Connected.code(), 0);
}

#[test]
fn a_refused_hold_off_still_detaches_with_a_warning() {
    let mut s = logged_in(SessionConfig::default());
    state(&mut s, "2,CONNECTED,SUCCESS,10.8.0.2,10.200.0.1,1194,,");
    s.detach();
    drain(&mut s);
    s.feed(b"ERROR: unknown command\r\n");
    let seen = drain(&mut s);
    assert!(
        matches!(&seen[..], [Seen::Event(Event::Warning { message }), Seen::Disconnect] if message.contains("hold off")),
        "{seen:?}"
    );
    assert_eq!(s.facts().outcome().0, Outcome::Connected);
}
