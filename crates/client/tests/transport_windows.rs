//! The Windows transport against a tiny message-mode pipe server in the test (run under
//! Wine here): framing, the server-PID check of spec §1.5, and the ways a connect fails.
#![cfg(windows)]

use std::time::Duration;

use iservice::service::windows::PipeTransport;
use iservice::service::{start, ConnectError, ServerCheck, ServiceEvent, Timeouts, Transport};
use iservice::{Reply, StartupMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};

const T: Duration = Duration::from_millis(500);

fn name(test: &str) -> String {
    format!(r"\\.\pipe\iservice-test-{}-{test}", std::process::id())
}

fn server(path: &str, first: bool) -> NamedPipeServer {
    ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .first_pipe_instance(first)
        .max_instances(1)
        .in_buffer_size(1024)
        .out_buffer_size(1024)
        .create(path)
        .unwrap()
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn own() -> ServerCheck {
    ServerCheck::Pid(std::process::id())
}

/// The whole startup exchange over a pipe: the request in one message, the PID reply, a
/// Wine-style CRLF late error, then the end of the session.
#[tokio::test]
async fn startup_exchange_over_a_message_pipe() {
    let path = name("startup");
    let mut pipe = server(&path, true);
    let service = tokio::spawn(async move {
        pipe.connect().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = pipe.read(&mut buf).await.unwrap();
        let got = StartupMessage::decode(&buf[..n]).unwrap().message;
        pipe.write_all(&Reply::Pid(0x1dc).encode()).await.unwrap();
        pipe.write_all(&utf16(
            "0x20000000\r\nOpenVPN exited with error: exit code = 3\r\n",
        ))
        .await
        .unwrap();
        pipe.disconnect().unwrap();
        got
    });
    let transport = PipeTransport::connect(&path, &own(), T).await.unwrap();
    let message = StartupMessage::new(r"C:\c", "--config a.ovpn", "pw\n");
    let timeouts = Timeouts {
        connect: T,
        reply: Duration::from_secs(5),
    };
    let mut session = start(transport, &message, timeouts).await.unwrap();
    assert_eq!(session.pid(), 0x1dc);
    assert_eq!(session.next_event().await.openvpn_exit_code(), Some(3));
    assert_eq!(session.next_event().await, ServiceEvent::Closed);
    assert_eq!(service.await.unwrap(), message);
}

/// Two replies written back to back arrive as two messages.
#[tokio::test]
async fn messages_keep_their_boundaries() {
    let path = name("frames");
    let mut pipe = server(&path, true);
    let service = tokio::spawn(async move {
        pipe.connect().await.unwrap();
        pipe.write_all(b"one").await.unwrap();
        pipe.write_all(&[9u8; 700]).await.unwrap();
        let mut buf = vec![0u8; 100];
        let n = pipe.read(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    });
    let mut t = PipeTransport::connect(&path, &own(), T).await.unwrap();
    assert_eq!(t.recv().await.unwrap().unwrap(), b"one");
    assert_eq!(t.recv().await.unwrap().unwrap(), vec![9u8; 700]);
    t.send(b"back").await.unwrap();
    assert_eq!(service.await.unwrap(), b"back");
}

/// CVE-2024-4877, client half: a pipe served by another process than the expected one is
/// refused before anything is sent.
#[tokio::test]
async fn cve_2024_4877_wrong_server_pid_is_refused() {
    let path = name("pid");
    let mut pipe = server(&path, true);
    let accept = tokio::spawn(async move {
        pipe.connect().await.unwrap();
        let mut buf = [0u8; 16];
        // The client must close without sending.
        pipe.read(&mut buf).await.unwrap_or(0)
    });
    let err = PipeTransport::connect(&path, &ServerCheck::Pid(std::process::id() + 1), T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::WrongServer { actual, .. } if actual == std::process::id()),
        "{err:?}"
    );
    assert!(err.to_string().contains("impersonating"), "{err}");
    assert_eq!(accept.await.unwrap(), 0, "nothing was sent");
}

#[tokio::test]
async fn missing_pipe_means_not_running() {
    let err = PipeTransport::connect(&name("missing"), &own(), T)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NotRunning { .. }), "{err:?}");
}

#[tokio::test]
async fn unknown_service_means_not_installed() {
    let check = ServerCheck::Service("iservice-test-no-such-service".into());
    let err = PipeTransport::connect(&name("scm"), &check, T)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NotInstalled { .. }), "{err:?}");
}

/// All instances taken: busy, retried until the timeout, then reported as busy.
#[tokio::test]
async fn all_instances_busy_means_busy() {
    let path = name("busy");
    let pipe = server(&path, true);
    let held = tokio::spawn(async move {
        pipe.connect().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(pipe);
    });
    let _first = PipeTransport::connect(&path, &own(), T).await.unwrap();
    let started = std::time::Instant::now();
    let err = PipeTransport::connect(&path, &own(), T).await.unwrap_err();
    assert!(matches!(err, ConnectError::Busy { .. }), "{err:?}");
    assert!(started.elapsed() >= T);
    held.abort();
}
