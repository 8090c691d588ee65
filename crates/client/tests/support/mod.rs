//! Test doubles for the `iservice` command on Linux: a tiny seqpacket service and a scripted
//! openvpn management peer, both in the test process.
#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use openvpnserv_policy::split::command_line_to_argv;
use openvpnserv_proto::{Reply, StartupMessage};
use socket2::{Domain, SockAddr, Socket, Type};

/// UTF-16LE bytes of `text`.
pub fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// What the fake service does with a startup message.
pub enum Behaviour {
    /// Reply with this text and close.
    Refuse(String),
    /// Accept and never answer.
    Silent,
    /// Reply with a PID, run the management script, then send `late` (if any) and close.
    Start {
        /// The management peer's script.
        script: Vec<Step>,
        /// A late error after the script ends.
        late: Option<String>,
        /// Bind the management port at all.
        listen: bool,
    },
}

/// One step of the fake management peer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(String),
    /// Read one line and check it.
    Expect(String),
    /// Read lines, answering each of these commands with its reply, until all were seen.
    Answer(Vec<(&'static str, &'static str)>),
    /// Pause.
    Sleep(Duration),
}

/// A running fake service.
pub struct FakeService {
    /// Its socket.
    pub path: PathBuf,
    dir: tempfile::TempDir,
    thread: Option<JoinHandle<Result<StartupMessage, String>>>,
}

impl FakeService {
    /// Starts a service that handles one client with `behaviour`.
    pub fn start(behaviour: Behaviour) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service");
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        listener.listen(4).unwrap();
        let thread = std::thread::spawn(move || serve(&listener, behaviour));
        Self {
            path,
            dir,
            thread: Some(thread),
        }
    }

    /// The startup message the client sent (after the client is done).
    pub fn received(mut self) -> StartupMessage {
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("service thread")
            .expect("service script")
    }
}

fn serve(listener: &Socket, behaviour: Behaviour) -> Result<StartupMessage, String> {
    let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16384];
    let n = (&conn).read_message(&mut buf)?;
    let message = StartupMessage::decode(&buf[..n])
        .map_err(|e| e.to_string())?
        .message;
    match behaviour {
        Behaviour::Refuse(text) => {
            conn.send(&utf16(&text)).map_err(|e| e.to_string())?;
        }
        Behaviour::Silent => std::thread::sleep(Duration::from_secs(5)),
        Behaviour::Start {
            script,
            late,
            listen,
        } => {
            let (addr, password) = management_of(&message)?;
            let listener = if listen {
                Some(TcpListener::bind(addr).map_err(|e| e.to_string())?)
            } else {
                None
            };
            // The management listener lives in this process, so this process is "openvpn"
            // for the client's check of who listens on the port.
            conn.send(&Reply::Pid(std::process::id()).encode())
                .map_err(|e| e.to_string())?;
            if let Some(listener) = listener {
                play(&listener, &password, &script)?;
            }
            if let Some(late) = late {
                conn.send(&utf16(&late)).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(message)
}

trait ReadMessage {
    fn read_message(self, buf: &mut [u8]) -> Result<usize, String>;
}

impl ReadMessage for &Socket {
    fn read_message(self, buf: &mut [u8]) -> Result<usize, String> {
        use std::io::Read;
        let mut s = self;
        s.read(buf).map_err(|e| e.to_string())
    }
}

/// The management address and password the options give openvpn.
pub fn management_of(message: &StartupMessage) -> Result<(SocketAddrV4, String), String> {
    let argv = command_line_to_argv(&message.options);
    let at = argv
        .iter()
        .position(|a| a == "--management")
        .ok_or("no --management")?;
    let addr: SocketAddrV4 = format!("{}:{}", argv[at + 1], argv[at + 2])
        .parse()
        .map_err(|e| format!("{e}"))?;
    let source = &argv[at + 3];
    let password = if source == "stdin" {
        message.stdin.trim_end().to_owned()
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| format!("{source}: {e}"))?
            .trim_end()
            .to_owned()
    };
    Ok((addr, password))
}

/// Plays openvpn's side: the password prompt, then `script`.
fn play(listener: &TcpListener, password: &str, script: &[Step]) -> Result<(), String> {
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut read_line = |reader: &mut BufReader<TcpStream>| -> Result<String, String> {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("the client closed the management connection".into());
        }
        Ok(line.trim_end().to_owned())
    };
    writer
        .write_all(b"ENTER PASSWORD:")
        .map_err(|e| e.to_string())?;
    let got = read_line(&mut reader)?;
    if got != password {
        return Err(format!("wrong management password {got:?}"));
    }
    writer
        .write_all(b"SUCCESS: password is correct\r\n>INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n")
        .map_err(|e| e.to_string())?;
    for step in script {
        match step {
            Step::Send(text) => writer
                .write_all(text.as_bytes())
                .map_err(|e| e.to_string())?,
            Step::Expect(want) => {
                let got = read_line(&mut reader)?;
                if &got != want {
                    return Err(format!("expected {want:?}, got {got:?}"));
                }
            }
            Step::Answer(table) => {
                let mut left: Vec<_> = table.clone();
                while !left.is_empty() {
                    let got = read_line(&mut reader)?;
                    let Some(at) = left.iter().position(|(cmd, _)| *cmd == got) else {
                        return Err(format!("unexpected command {got:?}"));
                    };
                    let (_, reply) = left.remove(at);
                    writer
                        .write_all(reply.as_bytes())
                        .map_err(|e| e.to_string())?;
                }
            }
            Step::Sleep(d) => std::thread::sleep(*d),
        }
    }
    Ok(())
}

/// The login of a session: openvpn holds, the client sets up and releases.
pub fn setup_and_release() -> Vec<Step> {
    vec![
        Step::Send(">HOLD:Waiting for hold release:0\r\n".into()),
        Step::Answer(vec![
            (
                "state on all",
                "SUCCESS: real-time state notification set to ON\r\n1795694064,CONNECTING,,,,,,\r\nEND\r\n",
            ),
            (
                "log on all",
                "SUCCESS: real-time log notification set to ON\r\n1795694064,I,OpenVPN 2.6.14\r\nEND\r\n",
            ),
            ("bytecount 5", "SUCCESS: bytecount interval changed\r\n"),
            ("hold release", "SUCCESS: hold release succeeded\r\n"),
        ]),
    ]
}

/// The state lines of a connection up to CONNECTED with pushed addresses.
pub fn connect_states() -> String {
    [
        ">STATE:1795694065,WAIT,,,,,,",
        ">STATE:1795694065,AUTH,,,,,,",
        ">STATE:1795694066,GET_CONFIG,,,,,,",
        ">STATE:1795694066,ASSIGN_IP,,10.8.0.2,,,,,fd00:8::1000",
        ">STATE:1795694066,ADD_ROUTES,,,,,,",
        ">STATE:1795694066,CONNECTED,SUCCESS,10.8.0.2,10.200.0.1,1194,10.200.0.2,50000,fd00:8::1000",
        ">BYTECOUNT:4096,2048",
    ]
    .map(|l| format!("{l}\r\n"))
    .concat()
}

/// The `iservice` binary under test: `connect ARGS`.
pub fn iservice(socket: &Path, runtime_dir: &Path, args: &[&str]) -> Command {
    iservice_sub("connect", socket, runtime_dir, args)
}

/// `iservice SUBCOMMAND ARGS` (connect, start) against the fake service at `socket` (its
/// control socket, if any, is `control` next to it).
pub fn iservice_sub(sub: &str, socket: &Path, runtime_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iservice"));
    cmd.arg(sub)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .arg("--non-interactive")
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs to the end, with a time limit.
pub fn finish(child: Child) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(out) = rx.recv_timeout(Duration::from_secs(60)) {
        return out.unwrap();
    }
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    panic!("iservice did not finish within 60 s");
}

/// The JSON lines of stdout, each checked against the shipped schema.
pub fn json_events(stdout: &[u8]) -> Vec<serde_json::Value> {
    lines_matching(iservice::connect::EVENTS_SCHEMA, stdout)
}

/// Every line of stdout, checked against the management commands' schema.
pub fn command_objects(stdout: &[u8]) -> Vec<serde_json::Value> {
    lines_matching(iservice::commands::output::COMMANDS_SCHEMA, stdout)
}

/// Every line of stdout as JSON, each checked against `schema`.
fn lines_matching(schema: &str, stdout: &[u8]) -> Vec<serde_json::Value> {
    let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{line}\ndoes not match the schema: {errors:?}"
            );
            value
        })
        .collect()
}

/// The `event` names in order.
pub fn names(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

/// The `state` values of the state events, in order.
pub fn states(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "state")
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect()
}

/// A fake control socket: answers each request with what `answer` says, for any number of
/// connections, and records the requests.
pub struct FakeControl {
    /// Its socket.
    pub path: PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<openvpnserv_proto::control::Request>>>,
    dir: Option<tempfile::TempDir>,
}

/// How the fake control socket answers.
pub type Answer = Box<
    dyn Fn(&openvpnserv_proto::control::Request) -> openvpnserv_proto::control::Response
        + Send
        + Sync,
>;

impl FakeControl {
    /// A control socket in a directory of its own.
    pub fn start(answer: Answer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut control = Self::at(dir.path().join("control"), answer);
        control.dir = Some(dir);
        control
    }

    /// A control socket at `path` (e.g. next to a fake service's socket).
    pub fn at(path: PathBuf, answer: Answer) -> Self {
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        listener.listen(8).unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            while let Ok((conn, _)) = listener.accept() {
                let seen = seen.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 8192];
                    while let Ok(n) = (&conn).read_message(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        let Ok(request) = openvpnserv_proto::control::Request::decode(&buf[..n])
                        else {
                            return;
                        };
                        let response = answer(&request);
                        seen.lock().unwrap().push(request);
                        if conn.send(&response.encode()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            path,
            requests,
            dir: None,
        }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<openvpnserv_proto::control::Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A connection as the fake control socket reports it.
pub fn connection(name: &str, pid: u32) -> openvpnserv_proto::control::Connection {
    openvpnserv_proto::control::Connection {
        name: name.to_owned(),
        user: "alice".to_owned(),
        uid: rustix::process::getuid().as_raw(),
        config: format!("/etc/openvpn/client/{name}.conf"),
        pid,
        state: openvpnserv_proto::control::State::Connected,
        since: 1,
        state_since: 2,
        tun: Some("ovs0".to_owned()),
        addresses: vec!["10.8.0.2/24".to_owned(), "fd00:8::1000/64".to_owned()],
        bytes_in: 1536,
        bytes_out: 3 * 1024 * 1024,
        exit_code: None,
    }
}

/// `iservice ARGS --control-socket PATH`.
pub fn manage(control: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iservice"));
    cmd.args(args)
        .arg("--control-socket")
        .arg(control)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}
