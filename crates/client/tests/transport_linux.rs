//! The Linux transport against tiny seqpacket servers in the test.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::time::Duration;

use iservice::service::linux::SeqpacketTransport;
use iservice::service::{ConnectError, Transport, MAX_MESSAGE};
use socket2::{Domain, SockAddr, Socket, Type};

fn listener(path: &std::path::Path, backlog: i32) -> Socket {
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    s.bind(&SockAddr::unix(path).unwrap()).unwrap();
    s.listen(backlog).unwrap();
    s
}

const T: Duration = Duration::from_millis(300);

#[tokio::test]
async fn messages_keep_their_boundaries_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service");
    let server = listener(&path, 4);
    let handle = std::thread::spawn(move || {
        let (conn, _) = server.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let n = (&conn).read(&mut buf).unwrap();
        let got = buf[..n].to_vec();
        conn.send(b"first").unwrap();
        conn.send(&[7u8; 1000]).unwrap();
        conn.send(&vec![1u8; MAX_MESSAGE]).unwrap();
        got
    });
    let mut t = SeqpacketTransport::connect(&path, T).await.unwrap();
    t.send(b"hello\0world").await.unwrap();
    assert_eq!(t.recv().await.unwrap().unwrap(), b"first");
    assert_eq!(t.recv().await.unwrap().unwrap(), vec![7u8; 1000]);
    assert_eq!(t.recv().await.unwrap().unwrap().len(), MAX_MESSAGE);
    assert_eq!(handle.join().unwrap(), b"hello\0world");
    assert_eq!(t.recv().await.unwrap(), None, "closed");
}

#[tokio::test]
async fn oversized_message_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service");
    let server = listener(&path, 4);
    let handle = std::thread::spawn(move || {
        let (conn, _) = server.accept().unwrap();
        conn.send(&vec![0u8; MAX_MESSAGE + 100]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let mut t = SeqpacketTransport::connect(&path, T).await.unwrap();
    let err = t.recv().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    handle.join().unwrap();
}

#[tokio::test]
async fn missing_socket_means_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let err = SeqpacketTransport::connect(&dir.path().join("service"), T)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("is not running"), "{err}");
}

/// A socket file left behind by a dead service: nothing listens.
#[tokio::test]
async fn stale_socket_means_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service");
    drop(listener(&path, 4));
    assert!(path.exists());
    let err = SeqpacketTransport::connect(&path, T).await.unwrap_err();
    assert!(matches!(err, ConnectError::NotRunning { .. }), "{err:?}");
}

/// A service whose backlog is full is running but busy, not "not running".
#[tokio::test]
async fn full_backlog_means_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service");
    let _server = listener(&path, 0);
    let mut held = Vec::new();
    let err = loop {
        match SeqpacketTransport::connect(&path, T).await {
            Ok(t) => held.push(t),
            Err(e) => break e,
        }
        assert!(held.len() < 64, "the backlog never filled");
    };
    assert!(matches!(err, ConnectError::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("running but busy"), "{err}");
}
