//! The driver of `iservice connect` in-process: a scripted service transport, a real
//! loopback socket as the management peer, a recording sink and a scripted prompter.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iservice::connect::options::free_loopback_port;
use iservice::connect::{
    run, Answer, Event, LaunchPlan, NeedAnswer, Outcome, PasswordSource, PromptError,
    PromptRequest, Prompter, RunOptions, Sink,
};
use iservice::mgmt::NeedRequest;
use iservice::service::testing::{ScriptedTransport, Step};
use iservice::Reply;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Sink for Recorder {
    fn event(&mut self, _elapsed: Duration, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// Answers every prompt with alice / sesame and counts the prompts.
#[derive(Default)]
struct Alice(Mutex<u32>);

impl Prompter for Alice {
    fn ask(&self, _request: &PromptRequest) -> Result<Answer, PromptError> {
        *self.0.lock().unwrap() += 1;
        Ok(Answer {
            username: Some(Zeroizing::new("alice".into())),
            secret: Zeroizing::new("sesame".into()),
            response: None,
        })
    }
}

/// The listener of the fake management peer lives in this process, so this process is
/// "openvpn" for the client's check of who listens on the port (and the client never
/// signals its own process).
fn own_pid() -> u32 {
    std::process::id()
}

fn plan(management: SocketAddrV4) -> LaunchPlan {
    LaunchPlan::new(
        std::path::Path::new("/etc/openvpn/client/x.conf"),
        Zeroizing::new("MgmtPw".into()),
        PasswordSource::Stdin,
        management,
    )
    .unwrap()
}

fn quick() -> RunOptions {
    let mut options = RunOptions {
        management_connect: Duration::from_millis(600),
        exit_wait: Duration::from_millis(300),
        ..RunOptions::default()
    };
    options.session.interactive = true;
    options
}

/// A closed interrupt channel is no interrupt; openvpn that never opens its management
/// interface is reported as failed after the wait.
#[tokio::test]
async fn management_that_never_comes_up() {
    let transport = ScriptedTransport::new([Step::Message(Reply::Pid(4_000_000_000).encode())]);
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    drop(tx);
    let mut sink = Recorder::default();
    let addr = free_loopback_port().unwrap();
    let outcome = run(
        transport,
        &plan(addr),
        &quick(),
        &mut sink,
        Arc::new(Alice::default()),
        &mut rx,
    )
    .await;
    assert_eq!(outcome, Outcome::OpenvpnFailed);
    let Some(Event::Exit { message, .. }) = sink.events().pop() else {
        panic!()
    };
    assert!(
        message.contains("did not open its management interface"),
        "{message}"
    );
}

/// A management port on loopback for a scripted peer.
async fn management_listener() -> (TcpListener, SocketAddrV4) {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let std::net::SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
        panic!()
    };
    (listener, addr)
}

type PeerLines = tokio::io::Lines<BufReader<OwnedReadHalf>>;

/// The scripted openvpn side up to the session proper: accepts the client, checks the
/// management password, sends `after_login` with the `SUCCESS` line, and answers `setup`
/// commands as openvpn does. Returns the connection and the commands, in arrival order.
async fn logged_in_peer(
    listener: TcpListener,
    after_login: &[u8],
    setup: usize,
) -> (PeerLines, OwnedWriteHalf, Vec<String>) {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"ENTER PASSWORD:").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "MgmtPw");
    write
        .write_all(&[b"SUCCESS: password is correct\r\n", after_login].concat())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..setup {
        let line = lines.next_line().await.unwrap().unwrap();
        let reply: &[u8] = if line.ends_with("all") {
            b"SUCCESS: on\r\nEND\r\n"
        } else {
            b"SUCCESS: ok\r\n"
        };
        write.write_all(reply).await.unwrap();
        got.push(line);
    }
    (lines, write, got)
}

/// openvpn's answer to `signal SIGTERM`.
async fn exits_on_sigterm(write: &mut OwnedWriteHalf) {
    write
        .write_all(b"SUCCESS: signal SIGTERM thrown\r\n>STATE:2,EXITING,SIGTERM,,,,,\r\n")
        .await
        .unwrap();
}

/// The whole conversation with a prompt answered by the prompter, then Ctrl-C.
#[tokio::test]
async fn prompt_connect_and_interrupt() {
    let (listener, addr) = management_listener().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut lines, mut write, mut got) =
            logged_in_peer(listener, b">HOLD:Waiting for hold release:0\r\n", 4).await;
        write
            .write_all(b">PASSWORD:Need 'Auth' username/password\r\n")
            .await
            .unwrap();
        got.push(lines.next_line().await.unwrap().unwrap());
        got.push(lines.next_line().await.unwrap().unwrap());
        write
            .write_all(b">STATE:1,CONNECTED,SUCCESS,10.8.0.2,10.0.0.1,1194,,\r\n")
            .await
            .unwrap();
        tx.send(()).unwrap();
        got.push(lines.next_line().await.unwrap().unwrap());
        exits_on_sigterm(&mut write).await;
        got
    });
    let transport = ScriptedTransport::new([
        Step::Message(Reply::Pid(own_pid()).encode()),
        Step::Delay(Duration::from_secs(3600)),
    ]);
    let mut sink = Recorder::default();
    let alice = Arc::new(Alice::default());
    let outcome = run(
        transport.clone(),
        &plan(addr),
        &quick(),
        &mut sink,
        alice.clone(),
        &mut rx,
    )
    .await;
    assert_eq!(outcome, Outcome::Disconnected);
    assert_eq!(*alice.0.lock().unwrap(), 1);
    let mut got = peer.await.unwrap();
    got[..4].sort();
    assert_eq!(
        got,
        [
            "bytecount 5",
            "hold release",
            "log on all",
            "state on all",
            "username \"Auth\" \"alice\"",
            "password \"Auth\" \"sesame\"",
            "signal SIGTERM"
        ]
    );
    // The startup message carried the password line on stdin.
    let sent = transport.sent();
    let message = openvpnserv_proto::StartupMessage::decode(&sent[0])
        .unwrap()
        .message;
    assert_eq!(message.stdin, "MgmtPw\n");
    assert!(sink
        .events()
        .iter()
        .any(|e| matches!(e, Event::State { state, .. } if state == "CONNECTED")));
}

/// A program that took the management port before openvpn (here: a listener in this test
/// process, while the service names another PID) gets nothing: no password, no prompt.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn impostor_on_the_management_port_gets_nothing() {
    let (listener, addr) = management_listener().await;
    let impostor = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"ENTER PASSWORD:").await.unwrap();
        let mut got = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got).await;
        got
    });
    // No process has this PID (above i32::MAX), so nothing can be signalled either.
    let transport = ScriptedTransport::new([Step::Message(Reply::Pid(4_000_000_000).encode())]);
    let (_tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut sink = Recorder::default();
    let outcome = run(
        transport,
        &plan(addr),
        &quick(),
        &mut sink,
        Arc::new(Alice::default()),
        &mut rx,
    )
    .await;
    assert_eq!(outcome, Outcome::OpenvpnFailed);
    assert_eq!(
        impostor.await.unwrap(),
        b"",
        "the impostor received nothing"
    );
    let Some(Event::Exit { message, .. }) = sink.events().pop() else {
        panic!()
    };
    assert!(message.contains("is not openvpn"), "{message}");
}

/// Confirms every `>NEED-OK:` and counts the questions.
#[derive(Default)]
struct Confirms(Mutex<Vec<NeedRequest>>);

impl Prompter for Confirms {
    fn ask(&self, _request: &PromptRequest) -> Result<Answer, PromptError> {
        Err(PromptError::Unsupported)
    }

    fn need(&self, request: &NeedRequest) -> Result<NeedAnswer, PromptError> {
        self.0.lock().unwrap().push(request.clone());
        Ok(NeedAnswer::Ok)
    }
}

/// A management peer that logs in, asks for a token and reports what the client sent after
/// the setup commands: one line, and when that was `needok`, the line after CONNECTED and
/// Ctrl-C (sent through `interrupt`).
async fn token_peer(listener: TcpListener, interrupt: mpsc::UnboundedSender<()>) -> Vec<String> {
    let (mut lines, mut write, _) = logged_in_peer(listener, b"", 3).await;
    write
        .write_all(b">NEED-OK:Need 'token-insertion-request' confirmation MSG:Insert token\r\n")
        .await
        .unwrap();
    let mut got = vec![lines.next_line().await.unwrap().unwrap()];
    if got[0].starts_with("needok") {
        write
            .write_all(b"SUCCESS: needok command succeeded\r\n>STATE:1,CONNECTED,SUCCESS,10.8.0.2,10.0.0.1,1194,,\r\n")
            .await
            .unwrap();
        interrupt.send(()).unwrap();
        got.push(lines.next_line().await.unwrap().unwrap());
    }
    exits_on_sigterm(&mut write).await;
    got
}

/// `>NEED-OK:` goes to the prompter and its answer back to openvpn as `needok`; a prompter
/// that cannot answer (the trait's default) makes the client stop openvpn instead of
/// leaving it blocked.
#[tokio::test]
async fn need_ok_reaches_the_prompter_or_stops_openvpn() {
    for confirm in [true, false] {
        let (listener, addr) = management_listener().await;
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let peer = tokio::spawn(token_peer(listener, tx));
        let transport = ScriptedTransport::new([
            Step::Message(Reply::Pid(own_pid()).encode()),
            Step::Delay(Duration::from_secs(3600)),
        ]);
        let mut sink = Recorder::default();
        let confirms = Arc::new(Confirms::default());
        let prompter: Arc<dyn Prompter> = if confirm {
            confirms.clone()
        } else {
            Arc::new(Alice::default())
        };
        let outcome = run(
            transport,
            &plan(addr),
            &quick(),
            &mut sink,
            prompter,
            &mut rx,
        )
        .await;
        let got = peer.await.unwrap();
        let events = sink.events();
        assert!(events.contains(&Event::Question {
            name: "token-insertion-request".into(),
            message: "Insert token".into(),
            input: false,
        }));
        if confirm {
            assert_eq!(
                got,
                ["needok \"token-insertion-request\" ok", "signal SIGTERM"]
            );
            assert_eq!(confirms.0.lock().unwrap().len(), 1);
            assert_eq!(outcome, Outcome::Disconnected);
        } else {
            assert_eq!(got, ["signal SIGTERM"]);
            assert_eq!(outcome, Outcome::OpenvpnFailed);
            let Some(Event::Exit { message, .. }) = events.last() else {
                panic!()
            };
            assert!(
                message.contains("'token-insertion-request'")
                    && message.contains("cannot answer such questions"),
                "{message}"
            );
        }
    }
}

#[test]
fn listener_inode_from_proc_net_tcp() {
    use iservice::connect::owner::listener_inode;
    // Addresses are printed as numbers in host byte order (here little-endian).
    let ip = |a: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(a));
    let table = format!(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
         0: {lo}:A0B1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
         1: {lo}:9C40 {lo}:A0B1 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0\n\
         2: {lo}:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n\
         3: {any}:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0\n",
        lo = ip([127, 0, 0, 1]),
        any = ip([0, 0, 0, 0]),
    );
    let at = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    assert_eq!(
        listener_inode(&Ok(table.clone()), at(0x9C40)).unwrap(),
        Some(333)
    );
    assert_eq!(
        listener_inode(&Ok(table.clone()), at(0xA0B1)).unwrap(),
        Some(111)
    );
    assert_eq!(
        listener_inode(&Ok(table.clone()), at(0x9C41)).unwrap(),
        None,
        "bound to 0.0.0.0"
    );
    assert_eq!(listener_inode(&Ok(table), at(1)).unwrap(), None);
    assert!(listener_inode(&Err(std::io::Error::other("x")), at(1)).is_err());
}
