//! The compliance stage's side-by-side run (`scripts/compliance.sh`): upstream's
//! `openvpnserv.exe`, built at test time from Debian's source package, and ours, both as
//! real SCM services in one Wine prefix, get the same cases; what each client and each fake
//! openvpn saw is compared byte for byte after the few values that must differ (process ids,
//! handle numbers, each service's own directory) are replaced by placeholders.
//!
//! Every difference must be a row of the table in `docs/WINDOWS.md` (section "Compared with
//! upstream"), keyed by the upstream version (or `all`) and the case name.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use openvpnserv_proto::channel::Revision;
use openvpnserv_proto::StartupMessage;
use openvpnserv_settings::Instance;
use windows_service::service::{ServiceAccess, ServiceState};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::client::{Client, Read};
use crate::harness::{registry_instance, wine_path, RegistryKey, WorkDir};
use crate::scenario::{self, Scenario, RECORD_FILE, SCENARIO_FILE};

/// What the client does after connecting.
#[derive(Debug, Clone)]
pub enum Send {
    /// Writes these bytes as one message.
    Raw(Vec<u8>),
    /// Writes a startup message with the service's own directory as the working directory;
    /// `<WORK>` in the options stands for that directory.
    Start {
        /// openvpn's options.
        options: String,
        /// The third string.
        stdin: String,
    },
    /// Writes nothing.
    Silent,
}

/// One case: what the client sends and what the fake openvpn does.
#[derive(Debug, Clone)]
pub struct Case {
    /// `group/name`, the key of the table's rows.
    pub name: String,
    /// The client's message.
    pub send: Send,
    /// The fake openvpn's scenario.
    pub scenario: Scenario,
}

fn start(options: &str) -> Send {
    Send::Start {
        options: options.to_owned(),
        stdin: String::new(),
    }
}

fn quiet() -> Scenario {
    Scenario {
        send_messages: false,
        ..Scenario::default()
    }
}

/// Every startup, validation, reply and channel case of the test kit, with the channel
/// messages of `revision` (the numbering the upstream version speaks).
pub fn cases(revision: Revision) -> Vec<Case> {
    let case = |name: &str, send: Send, scenario: Scenario| Case {
        name: name.to_owned(),
        send,
        scenario,
    };
    let mut unterminated = StartupMessage::new("d", "o", "s").encode();
    unterminated.truncate(unterminated.len() - 2);
    let mut out = vec![
        case(
            "startup/valid",
            Send::Start {
                options: "--config a.ovpn --verb 3".into(),
                stdin: "pw\n".into(),
            },
            quiet(),
        ),
        case("startup/one_byte", Send::Raw(vec![0x41]), quiet()),
        case("startup/zero_bytes", Send::Raw(Vec::new()), quiet()),
        case("startup/no_final_nul", Send::Raw(unterminated), quiet()),
        case(
            "startup/one_string",
            Send::Raw(StartupMessage::new("d", "", "").encode()[..4].to_vec()),
            quiet(),
        ),
        case(
            "startup/two_strings",
            Send::Raw(StartupMessage::new("d", "o", "").encode()[..8].to_vec()),
            quiet(),
        ),
        case("startup/8194_bytes", Send::Raw(vec![0x41; 8194]), quiet()),
        case(
            "startup/unpaired_surrogate",
            Send::Raw(vec![0x00, 0xD8, 0, 0, 0, 0, 0, 0]),
            quiet(),
        ),
        case("startup/silence", Send::Silent, quiet()),
        case(
            "reply/exit_code_3",
            start("--config a.ovpn"),
            Scenario {
                exit_code: 3,
                ..quiet()
            },
        ),
    ];
    let validation = [
        ("plugin", "--config a.ovpn --plugin x.dll"),
        ("setenv_opt", "--config a.ovpn --setenv opt plugin x.dll"),
        ("config_stdin", "--config stdin"),
        ("dotdot", r"--config ..\evil.ovpn"),
        ("absolute_outside", r"--config C:\Windows\x.ovpn"),
        ("sibling", r"--config <WORK>-evil\x.ovpn"),
        ("absolute_inside_upper_case", r"--config <WORK>\A.OVPN"),
        ("relative_inside_dotdot", r"--config sub\..\a.ovpn"),
        ("lone_config_name", "a.ovpn"),
        ("empty_options", ""),
        (
            "whitelisted_options",
            "--config a.ovpn --verb 3 --log x.log --auth-retry interact",
        ),
        ("first_token_quote", "\"x --plugin y"),
        ("first_token_backslash_quote", "a\\\" --plugin y \""),
        ("script_security", "--config a.ovpn --script-security 2"),
    ];
    for (name, options) in validation {
        out.push(case(&format!("validation/{name}"), start(options), quiet()));
    }
    for step in scenario::messages(revision) {
        out.push(case(
            &format!("channel/{}", step.name),
            start("--config a.ovpn"),
            Scenario {
                revision,
                only: vec![step.name.clone()],
                ..Scenario::default()
            },
        ));
    }
    out.push(case(
        "channel/oversize",
        start("--config a.ovpn"),
        Scenario {
            revision,
            send_messages: false,
            oversize: true,
            linger_ms: 20_000,
            ..Scenario::default()
        },
    ));
    out
}

/// Runs `sc.exe`; its output.
fn sc(args: &[&str]) -> String {
    Command::new("sc.exe")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn state(name: &str) -> Option<ServiceState> {
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).ok()?;
    let service = manager
        .open_service(name, ServiceAccess::QUERY_STATUS)
        .ok()?;
    service.query_status().ok().map(|s| s.current_state)
}

/// One service under test, installed with `sc create` on its own instance; stopped and
/// deleted on drop.
pub struct Service {
    /// A label for messages (`upstream 2.6.14`, `ours`).
    pub label: String,
    instance: Instance,
    work: WorkDir,
    _registry: RegistryKey,
}

impl Service {
    /// Installs and starts `exe` (a Linux path) as the service of instance `id`, with `openvpn`
    /// (a Linux path) as its openvpn.exe.
    pub fn start(label: &str, id: &str, exe: &str, openvpn: &str) -> Self {
        let instance = Instance::new(id).expect("instance id");
        let work = WorkDir::new(&format!("compliance-{}", id.trim_start_matches('$')));
        let registry = registry_instance(
            &instance,
            &[
                ("", r"C:\OpenVPN".to_owned()),
                ("exe_path", wine_path(openvpn)),
                ("config_dir", work.config_dir()),
            ],
        );
        let name = instance.service_name();
        sc(&["stop", &name]);
        sc(&["delete", &name]);
        let bin = format!("\"{}\" -instance interactive {id}", wine_path(exe));
        let out = sc(&["create", &name, "binPath=", &bin]);
        assert!(state(&name).is_some(), "sc create {name}: {out}");
        let s = Self {
            label: label.to_owned(),
            instance,
            work,
            _registry: registry,
        };
        s.ensure_running();
        s
    }

    /// Starts the service if it is not running (upstream dies under Wine on IP Helper
    /// functions Wine lacks); whether it had to.
    pub fn ensure_running(&self) -> bool {
        let name = self.instance.service_name();
        if state(&name) == Some(ServiceState::Running) && self.pipe_answers() {
            return false;
        }
        sc(&["start", &name]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if state(&name) == Some(ServiceState::Running) && self.pipe_answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{}: the service {name} does not start", self.label);
    }

    /// Waits up to 20 s for the SCM to see the service stopped.
    fn wait_stopped(&self) {
        let name = self.instance.service_name();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && state(&name) == Some(ServiceState::Running) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pipe_answers(&self) -> bool {
        let name = openvpnserv::windows::sys::wide::wide(&self.instance.pipe_path());
        // A pipe exists when WaitNamedPipe finds it (busy or free); this does not connect.
        crate::client::pipe_exists(&name)
    }

    /// The pipe's path.
    pub fn pipe_path(&self) -> String {
        self.instance.pipe_path()
    }

    /// The directory that is its config directory and openvpn's working directory.
    pub fn work(&self) -> &WorkDir {
        &self.work
    }

    /// Runs `case` against this service; what was seen, normalized.
    pub fn observe(&self, case: &Case) -> String {
        let work = self.work.text();
        self.work.write(SCENARIO_FILE, &case.scenario.to_text());
        let _ = std::fs::remove_file(self.work.path().join(RECORD_FILE));
        let mut out = String::new();
        self.ensure_running();
        // A service that died just now (upstream, on a function Wine lacks) may still have
        // looked alive: start it and try once more.
        let client = if let Ok(c) = Client::connect(&self.pipe_path()) {
            c
        } else {
            self.wait_stopped();
            self.ensure_running();
            match Client::connect(&self.pipe_path()) {
                Ok(c) => c,
                Err(e) => return format!("connect failed {e}\n"),
            }
        };
        let sent = match &case.send {
            Send::Raw(bytes) => client.write(bytes),
            Send::Start { options, stdin } => client.send(&StartupMessage::new(
                work.clone(),
                options.replace("<WORK>", &work),
                stdin.clone(),
            )),
            Send::Silent => Ok(()),
        };
        if let Err(e) = sent {
            let _ = writeln!(out, "write failed {e}");
        }
        let begun = Instant::now();
        let mut first = true;
        loop {
            // 5 s for the first reply (2.6 never answers a silent client); then up to 20 s
            // for the session's end (a crashing service takes a while to go).
            let wait = if first { 5 } else { 20 };
            match client.read(Duration::from_secs(wait)) {
                Read::Message(bytes) => {
                    if first {
                        let _ = writeln!(out, "first reply {}", bucket(begun.elapsed()));
                        first = false;
                    }
                    let _ = writeln!(out, "reply {}", reply_text(&bytes, &work));
                }
                Read::Closed => {
                    out.push_str("closed\n");
                    break;
                }
                Read::Timeout => {
                    let _ = writeln!(out, "no more within {wait} s");
                    break;
                }
            }
        }
        drop(client);
        // The fake's last line is `exit` (a fake that is being killed writes none; where no
        // openvpn was started there is no record at all).
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline
            && self
                .work
                .read(RECORD_FILE)
                .is_some_and(|r| !r.lines().any(|l| l == "exit"))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let record = self.work.read(RECORD_FILE);
        // An ack that never came means the service died under the message: wait until the
        // SCM sees it gone, so that the next case does not meet a dying service.
        if record
            .as_deref()
            .is_some_and(|r| r.lines().any(|l| l.starts_with("no ack ")))
        {
            self.wait_stopped();
        }
        if self.ensure_running() {
            let _ = writeln!(out, "service died (restarted)");
        }
        if let Some(record) = record {
            for line in record.lines() {
                let _ = writeln!(out, "openvpn {}", record_line(line, &work));
            }
        }
        out
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let name = self.instance.service_name();
        sc(&["stop", &name]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && state(&name) != Some(ServiceState::Stopped) {
            std::thread::sleep(Duration::from_millis(100));
        }
        sc(&["delete", &name]);
    }
}

fn bucket(d: Duration) -> &'static str {
    if d < Duration::from_secs(1) {
        "within 1 s"
    } else if d < Duration::from_secs(3) {
        "after 1-3 s"
    } else {
        "after 3 s or more"
    }
}

/// A reply as text (UTF-16LE; escapes for line ends), the PID and directory replaced.
pub fn reply_text(bytes: &[u8], work: &str) -> String {
    if bytes.len() % 2 != 0 {
        return format!("odd bytes {bytes:02x?}");
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let Ok(mut text) = String::from_utf16(&units) else {
        return format!("not UTF-16 {bytes:02x?}");
    };
    if let Some(rest) = text.strip_prefix("0x00000000\n0x") {
        if rest.len() >= 8 && rest[..8].chars().all(|c| c.is_ascii_hexdigit()) {
            text = format!("0x00000000\n0x<pid>{}", &rest[8..]);
        }
    }
    text.replace(work, "<WORK>").escape_debug().to_string()
}

/// A line of the fake's record, with the channel handle and the directory replaced.
pub fn record_line(line: &str, work: &str) -> String {
    let line = line.replace(work, "<WORK>");
    match line.split_once("--msg-channel ") {
        Some((head, tail)) => {
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}--msg-channel <handle>{rest}")
        }
        None => line,
    }
}

/// A row of the table of differences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `all` or an upstream version.
    pub version: String,
    /// The case name.
    pub case: String,
    /// The `code` spans of the upstream cell: each must be in what upstream was seen doing.
    pub upstream: Vec<String>,
    /// The `code` spans of the ours cell: each must be in what ours was seen doing.
    pub ours: Vec<String>,
}

/// The `code` spans of a table cell.
fn spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Whether every span is in `seen` (compared also with the escaping of backslashes undone).
fn shows(spans: &[String], seen: &str) -> bool {
    let plain = seen.replace("\\\\", "\\");
    spans
        .iter()
        .all(|s| seen.contains(s.as_str()) || plain.contains(s.as_str()))
}

/// The rows of the table under the heading `## Compared with upstream` of `markdown`: the
/// first cell of each row is `` `<version> <case>` ``; the upstream and ours cells quote, in
/// `code` spans, text that each side's observation must contain.
pub fn documented(markdown: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        if line.starts_with("## ") {
            inside = line.starts_with("## Compared with upstream");
            continue;
        }
        if !inside {
            continue;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let Some((key, rest)) = cell.split_once('`') else {
            continue;
        };
        let cells: Vec<&str> = rest.split(" | ").collect();
        if let (Some((version, case)), true) = (key.split_once(' '), cells.len() >= 3) {
            rows.push(Row {
                version: version.to_owned(),
                case: case.to_owned(),
                upstream: spans(cells[1]),
                ours: spans(cells[2]),
            });
        }
    }
    rows
}

impl Row {
    /// Whether the row is about upstream `version` (`all`, or `2.6` for `2.6.14`).
    pub fn covers(&self, version: &str) -> bool {
        self.version == "all"
            || self.version == version
            || version.starts_with(&format!("{}.", self.version))
    }
}

/// The row that documents a difference between `upstream` and `ours` in `case` against
/// upstream `version`, if there is one. A difference that is only the third line of error
/// replies (`(null)` under Wine) is the row `any/third_line`.
pub fn documenting<'a>(
    rows: &'a [Row],
    version: &str,
    case: &str,
    upstream: &str,
    ours: &str,
) -> Option<&'a Row> {
    // A row documents the difference only if both sides show what its cells quote.
    let find = |name: &str| {
        rows.iter().find(|r| {
            r.case == name
                && r.covers(version)
                && shows(&r.upstream, upstream)
                && shows(&r.ours, ours)
        })
    };
    if upstream.replace("\\r\\n(null)", "\\r\\n") == ours {
        if let Some(r) = find("any/third_line") {
            return Some(r);
        }
    }
    find(case)
}

/// The lines only one side has, `-` for upstream's and `+` for ours.
pub fn diff(upstream: &str, ours: &str) -> String {
    let a: Vec<&str> = upstream.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    let mut out = String::new();
    for l in &a {
        if !b.contains(l) {
            let _ = writeln!(out, "  - {l}");
        }
    }
    for l in &b {
        if !a.contains(l) {
            let _ = writeln!(out, "  + {l}");
        }
    }
    if out.is_empty() {
        out.push_str("  (the same lines in another order)\n");
    }
    out
}

/// Whether `path` exists (a Linux path).
pub fn exists(path: &str) -> bool {
    Path::new(&wine_path(path)).exists() || Path::new(path).exists()
}
