//! The startup exchange against a scripted fake service (no real service needed).

use std::io::ErrorKind;
use std::time::Duration;

use iservice::service::testing::{ScriptedTransport, Step};
use iservice::service::{start, ServiceEvent, StartError, Timeouts};
use iservice::{Reply, StartupMessage};
use openvpnserv_proto::codes::{ERROR_CANT_WAIT, ERROR_OPENVPN_STARTUP, ERROR_STARTUP_DATA};

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn message() -> StartupMessage {
    StartupMessage::new("/etc/openvpn/client", "--config a.conf", "pw\n")
}

const QUICK: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    reply: Duration::from_millis(300),
};

#[tokio::test]
async fn pid_reply_then_late_exit_error() {
    // What upstream sent under Wine for "openvpn exits with 3" (spec §12).
    let transport = ScriptedTransport::new([
        Step::Message(Reply::Pid(0x1dc).encode()),
        Step::Message(utf16(
            "0x20000000\r\nOpenVPN exited with error: exit code = 3\r\n",
        )),
        Step::Close,
    ]);
    let mut session = start(transport.clone(), &message(), QUICK).await.unwrap();
    assert_eq!(session.pid(), 0x1dc);
    assert_eq!(transport.sent(), vec![message().encode()]);
    let late = session.next_event().await;
    assert_eq!(
        late,
        ServiceEvent::Error {
            code: ERROR_OPENVPN_STARTUP,
            function: "OpenVPN exited with error: exit code = 3".into(),
            text: String::new(),
        }
    );
    assert_eq!(late.openvpn_exit_code(), Some(3));
    assert_eq!(session.next_event().await, ServiceEvent::Closed);
    assert_eq!(session.next_event().await, ServiceEvent::Closed);
}

#[tokio::test]
async fn refusal_is_typed_and_explained() {
    let text = "0x20000001\nYou have specified a config file location (../x.conf relative to /tmp) that requires admin approval. This error may be avoided by adding your account to the \"openvpn-admin\" group\n";
    let transport = ScriptedTransport::new([Step::Message(utf16(text))]);
    let err = start(transport, &message(), QUICK).await.unwrap_err();
    let StartError::Refused {
        code,
        ref function,
        ref text,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(code, ERROR_STARTUP_DATA);
    assert!(function.starts_with("You have specified a config file location"));
    assert_eq!(text, "");
    let shown = err.to_string();
    assert!(shown.contains("0x20000001 (ERROR_STARTUP_DATA)"), "{shown}");
    assert!(shown.contains("openvpn-admin"), "{shown}");
}

/// Wine's `FormatMessage` output: CRLF and `(null)` for the missing system text.
#[tokio::test]
async fn wine_style_busy_reply() {
    let transport = ScriptedTransport::new([Step::Message(utf16(
        "0x0000022a\r\nToo many concurrent clients\r\n(null)",
    ))]);
    let err = start(transport, &message(), QUICK).await.unwrap_err();
    assert_eq!(err.code(), Some(ERROR_CANT_WAIT));
    assert_eq!(
        err.to_string(),
        "the service refused to start openvpn: 0x0000022a (ERROR_CANT_WAIT): Too many concurrent clients"
    );
}

/// A service that accepts and stays silent is "slow", not "not running".
#[tokio::test(start_paused = true)]
async fn silence_is_a_timeout() {
    let transport = ScriptedTransport::new([Step::Delay(Duration::from_secs(60))]);
    let err = start(transport, &message(), QUICK).await.unwrap_err();
    assert!(matches!(err, StartError::Timeout { waited } if waited == QUICK.reply));
    assert!(
        err.to_string().contains("running but slow or stuck"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_reply_within_the_timeout_is_fine() {
    let transport = ScriptedTransport::new([
        Step::Delay(Duration::from_millis(200)),
        Step::Message(Reply::Pid(42).encode()),
    ]);
    let session = start(transport, &message(), QUICK).await.unwrap();
    assert_eq!(session.pid(), 42);
}

#[tokio::test]
async fn closed_without_reply() {
    let transport = ScriptedTransport::new([Step::Close]);
    assert!(matches!(
        start(transport, &message(), QUICK).await,
        Err(StartError::Closed)
    ));
    let transport = ScriptedTransport::new([Step::Fail(ErrorKind::ConnectionReset)]);
    assert!(matches!(
        start(transport, &message(), QUICK).await,
        Err(StartError::Io(_))
    ));
}

#[tokio::test]
async fn garbage_reply() {
    let transport = ScriptedTransport::new([Step::Message(utf16("hello"))]);
    assert!(matches!(
        start(transport, &message(), QUICK).await,
        Err(StartError::BadReply(_))
    ));
}

/// What the service would cut at a NUL or refuse as too long is refused before sending.
#[tokio::test]
async fn invalid_requests_are_not_sent() {
    for bad in [
        StartupMessage::new("/d", "--config a\0--plugin x", ""),
        StartupMessage::new("/d", "x".repeat(4096), ""),
    ] {
        let transport = ScriptedTransport::new([Step::Message(Reply::Pid(1).encode())]);
        let err = start(transport.clone(), &bad, QUICK).await.unwrap_err();
        assert!(matches!(err, StartError::InvalidRequest(_)), "{err:?}");
        assert!(transport.sent().is_empty());
    }
    // Exactly at the limit is sent: 4096 units including the three terminators.
    let at_limit = StartupMessage::new("/d", "x".repeat(4096 - 3 - 2), "");
    let transport = ScriptedTransport::new([Step::Message(Reply::Pid(1).encode())]);
    start(transport.clone(), &at_limit, QUICK).await.unwrap();
    assert_eq!(transport.sent()[0].len(), 4096 * 2);
}

#[tokio::test]
async fn unexpected_late_messages_are_garbage_not_fatal() {
    let transport = ScriptedTransport::new([
        Step::Message(Reply::Pid(7).encode()),
        Step::Message(Reply::Pid(8).encode()),
        Step::Message(utf16("nonsense")),
        Step::Close,
    ]);
    let mut session = start(transport, &message(), QUICK).await.unwrap();
    assert!(matches!(
        session.next_event().await,
        ServiceEvent::Garbage(_)
    ));
    assert!(matches!(
        session.next_event().await,
        ServiceEvent::Garbage(_)
    ));
    assert_eq!(session.next_event().await, ServiceEvent::Closed);
}
