//! The service in-process under Wine: every startup case of spec §2 and §3 from a client,
//! the fake openvpn through the channel, the security descriptors read back, and the
//! session limits. The network layer is the recording fake (Wine lacks IP Helper and WFP).
#![cfg(windows)]

use std::time::{Duration, Instant};

use openvpnserv::windows::launch::create_channel;
use openvpnserv::windows::server::{Context, MembershipSource, Server};
use openvpnserv::windows::sys::security::normalize_dacl_sddl;
use openvpnserv_core::windows::fake::RecordingNet;
use openvpnserv_core::windows::sddl;
use openvpnserv_proto::channel::{Arch, Revision};
use openvpnserv_proto::codes::{ERROR_CANT_WAIT, ERROR_STARTUP_DATA};
use openvpnserv_proto::{Reply, StartupMessage};
use openvpnserv_settings::Instance;
use openvpnserv_testkit_win::client::{Client, Read};
use openvpnserv_testkit_win::harness::{self, FakeFactory, InProcess, WorkDir};
use openvpnserv_testkit_win::scenario::{self, Scenario, RECORD_FILE, SCENARIO_FILE};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-openvpn-win");
const LONG: Duration = Duration::from_secs(10);

struct Setup {
    work: WorkDir,
    net: RecordingNet,
    service: InProcess,
}

fn setup(id: &str, membership: MembershipSource, extra: &[(&str, &str)]) -> Setup {
    let instance = Instance::new(id).unwrap();
    let work = WorkDir::new(id);
    let mut values = harness::values(&work, FAKE);
    values.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = harness::settings(&instance, &pairs);
    let net = RecordingNet::new();
    let service = InProcess::start(&instance, settings, membership, net.clone());
    Setup { work, net, service }
}

impl Setup {
    fn client(&self) -> Client {
        Client::connect(&self.service.pipe_path).expect("connect to the service pipe")
    }

    fn start(&self, options: &str, stdin: &str) -> (Client, Reply) {
        let c = self.client();
        c.send(&StartupMessage::new(self.work.text(), options, stdin))
            .unwrap();
        let r = c.reply(LONG);
        (c, r)
    }

    /// Starts openvpn and expects the PID reply.
    fn start_ok(&self, options: &str) -> Client {
        let (c, reply) = self.start(options, "");
        assert!(
            matches!(reply, Reply::Pid(p) if p != 0),
            "{options}: {reply:?}"
        );
        c
    }

    fn scenario(&self, s: &Scenario) {
        self.work.write(SCENARIO_FILE, &s.to_text());
    }

    fn record(&self) -> String {
        self.work.read(RECORD_FILE).unwrap_or_default()
    }
}

fn error_code(r: &Reply) -> u32 {
    match r {
        Reply::Error { code, .. } => *code,
        Reply::Pid(_) => 0,
    }
}

fn wait_closed(c: &Client) -> Vec<Reply> {
    let mut replies = Vec::new();
    loop {
        match c.read(LONG) {
            Read::Message(m) => replies.push(Reply::decode(&m).unwrap()),
            Read::Closed => return replies,
            Read::Timeout => panic!("the session did not end; replies so far {replies:?}"),
        }
    }
}

/// The test instance of the brief: `\\.\pipe\openvpn$test\service`, the fake openvpn
/// through the channel, every message acked as expected, and the undo done.
#[test]
fn valid_start_on_the_test_instance_runs_the_channel() {
    let s = setup("$test", MembershipSource::NoGroups, &[]);
    assert_eq!(s.service.pipe_path, r"\\.\pipe\openvpn$test\service");
    s.scenario(&Scenario::default());
    let (c, reply) = s.start("--config a.ovpn --verb 3", "pw\n");
    let Reply::Pid(pid) = reply else {
        panic!("{reply:?}")
    };
    assert_ne!(pid, 0);
    assert_eq!(
        wait_closed(&c),
        Vec::<Reply>::new(),
        "exit code 0: no late reply"
    );
    let record = s.record();
    let cmdline = record.lines().next().unwrap();
    assert!(
        cmdline.starts_with("cmdline openvpn --config a.ovpn --verb 3 --msg-channel "),
        "{record}"
    );
    assert!(
        record.contains(&format!("cwd {}", s.work.text())),
        "{record}"
    );
    assert!(
        record.contains("stdin [112, 119, 10]"),
        "stdin is the UTF-8 of the third string: {record}"
    );
    for step in scenario::messages(Revision::V27) {
        let line = record
            .lines()
            .find(|l| l.starts_with(&format!("ack {} ", step.name)));
        let line = line.unwrap_or_else(|| panic!("no ack for {}: {record}", step.name));
        assert!(line.ends_with("ok=1"), "{line}");
        // Every well-formed request succeeds against the recording fake.
        let expected = step.ack_error.unwrap_or(0);
        assert!(line.contains(&format!(" error={expected} ")), "{line}");
    }
    let t = s.net.transcript();
    for verb in [
        "add_address",
        "add_route",
        "wfp_open",
        "set_mtu",
        "flush_neighbors",
        "del_route",
        "del_address",
        "register_dns",
    ] {
        assert!(
            t.iter().any(|l| l.starts_with(verb)),
            "{verb} missing from {t:#?}"
        );
    }
    assert_eq!(s.net.open_engines(), 0);
}

/// openvpn leaves without undoing anything: the service's undo runs in the order of spec
/// §5.7 once the session ends.
#[test]
fn session_end_undoes_what_openvpn_left() {
    let s = setup("undo", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        skip_deletes: true,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    wait_closed(&c);
    let t = s.net.transcript();
    let at = |prefix: &str| {
        t.iter()
            .rposition(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing from {t:#?}"))
    };
    let order = [
        at("del_address"),
        at("del_route"),
        at(
            r#"set HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{00000000-0000-0000-0000-000000000007}\NameServer = """#,
        ),
        at(
            r"delete tree HKLM\SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig\OpenVPNDNSRouting-",
        ),
        at("run C:\\windows\\system32\\netsh.exe [netsh interface ip delete wins 7  all]"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "undo order {order:?} in {t:#?}"
    );
    assert_eq!(s.net.open_engines(), 0);
}

/// openvpn runs with NUL as stdout and inherits only its own three handles: an inheritable
/// handle of the service does not reach it (spec §11).
#[test]
fn launch_stdio_and_inherited_handles() {
    use std::os::windows::io::AsRawHandle;
    let s = setup("launch", MembershipSource::NoGroups, &[]);
    // An inheritable handle in the service's process at launch time.
    let sa = windows_sys::Win32::Security::SECURITY_ATTRIBUTES {
        nLength: size_of::<windows_sys::Win32::Security::SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: 1,
    };
    // SAFETY: valid attributes; an unnamed manual-reset event, closed by OwnedHandle.
    let event = unsafe {
        <std::os::windows::io::OwnedHandle as std::os::windows::io::FromRawHandle>::from_raw_handle(
            windows_sys::Win32::System::Threading::CreateEventW(
                &raw const sa,
                1,
                0,
                std::ptr::null(),
            ),
        )
    };
    s.scenario(&Scenario {
        send_messages: false,
        foreign_handle: event.as_raw_handle() as u64,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    wait_closed(&c);
    let record = s.record();
    assert!(record.contains("stdout char"), "NUL: {record}");
    assert!(record.contains("foreign_handle invalid"), "{record}");
}

/// openvpn runs with the registry's priority class (spec §4.2).
#[test]
#[ignore = "Wine ignores the priority class given to CreateProcess (GetPriorityClass reports NORMAL)"]
fn launch_uses_the_registry_priority_class() {
    let s = setup(
        "priority",
        MembershipSource::NoGroups,
        &[("priority", "IDLE_PRIORITY_CLASS")],
    );
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    wait_closed(&c);
    assert!(s.record().contains("priority 0x40"), "{}", s.record());
}

/// The client leaving does not end openvpn's session (spec §6.3).
#[test]
fn client_leaving_does_not_end_the_session() {
    let s = setup("leave", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        linger_ms: 1500,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    drop(c);
    let deadline = Instant::now() + LONG;
    while !s.record().contains("exit") {
        assert!(
            Instant::now() < deadline,
            "openvpn did not finish: {}",
            s.record()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.record().contains("ack del_address"), "{}", s.record());
}

/// `max_sessions_per_user` = 1: a second session of the same user is refused at once.
#[test]
fn per_user_session_limit() {
    let s = setup(
        "peruser",
        MembershipSource::NoGroups,
        &[("max_sessions_per_user", "1")],
    );
    s.scenario(&Scenario {
        send_messages: false,
        linger_ms: 3000,
        ..Scenario::default()
    });
    let first = s.start_ok("--config a.ovpn");
    let (_second, reply) = s.start("--config a.ovpn", "");
    assert_eq!(
        error_code(&reply),
        openvpnserv_proto::codes::ERROR_TOO_MANY_SESS,
        "{reply:?}"
    );
    wait_closed(&first);
    // The slot is given back.
    let _third = s.start_ok("--config a.ovpn");
}

/// At default settings one account may hold as many sessions as upstream gives it (63: an
/// autostart service runs every config under one account); the 32 we had refused the 33rd.
#[test]
fn one_account_holds_upstreams_63_sessions_at_defaults() {
    let s = setup("peruser63", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        linger_ms: 60_000,
        ..Scenario::default()
    });
    let held: Vec<Client> = (1..=63)
        .map(|n| {
            let (c, reply) = s.start("--config a.ovpn", "");
            assert!(
                matches!(reply, Reply::Pid(p) if p != 0),
                "session {n}: {reply:?}"
            );
            c
        })
        .collect();
    drop(held);
}

#[test]
fn nonzero_exit_code_is_reported_after_the_pid() {
    let s = setup("exit3", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        exit_code: 3,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    let late = wait_closed(&c);
    assert_eq!(late, vec![Reply::exit_error(3)]);
}

#[test]
fn openvpn_numbering_2_6_is_served() {
    let s = setup(
        "v26",
        MembershipSource::NoGroups,
        &[("msg_protocol", "2.6")],
    );
    s.scenario(&Scenario {
        revision: Revision::V26,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    wait_closed(&c);
    let record = s.record();
    for step in scenario::messages(Revision::V26) {
        let expected = step.ack_error.unwrap_or(0);
        let line = format!("ack {} id={} error={expected} ok=1", step.name, step.ack_id);
        assert!(record.contains(&line), "{line} not in {record}");
    }
}

/// With `msg_protocol = auto` each session speaks the numbering of the openvpn.exe it
/// starts: openvpn 2.6 replaced by 2.7 while the service runs is served with 2.7's numbers
/// (deciding once at start broke block-outside-dns: `message type 12 has 288 bytes`).
#[test]
fn msg_protocol_auto_follows_the_openvpn_exe_of_each_session() {
    let work_exe = WorkDir::new("autover-bin");
    let exe = work_exe.path().join("openvpn.exe");
    harness::stamp_version(std::path::Path::new(FAKE), &exe, 2, 6);
    let exe_text = exe.to_string_lossy().into_owned();
    let s = setup(
        "autover",
        MembershipSource::NoGroups,
        &[("exe_path", exe_text.as_str()), ("msg_protocol", "auto")],
    );
    for (major_minor, revision) in [((2, 6), Revision::V26), ((2, 7), Revision::V27)] {
        if major_minor.1 == 7 {
            // Replaced while the service runs (a later modification time).
            std::thread::sleep(Duration::from_millis(50));
            let _ = std::fs::remove_file(&exe);
            harness::stamp_version(std::path::Path::new(FAKE), &exe, 2, 7);
        }
        let _ = std::fs::remove_file(s.work.path().join(RECORD_FILE));
        s.scenario(&Scenario {
            revision,
            ..Scenario::default()
        });
        wait_closed(&s.start_ok("--config a.ovpn"));
        let record = s.record();
        for step in scenario::messages(revision) {
            let expected = step.ack_error.unwrap_or(0);
            let line = format!("ack {} id={} error={expected} ok=1", step.name, step.ack_id);
            assert!(
                record.contains(&line),
                "{major_minor:?}: {line} not in {record}"
            );
        }
    }
}

/// A request that needs an IP Helper function the system lacks (Wine 8 has no
/// `GetIpInterfaceEntry`, `CreateIpForwardEntry2`, …) gets an error ack, and the service,
/// with every other session, lives on (it used to die at the first `set_mtu`).
#[test]
fn missing_ip_helper_function_gets_an_error_ack_not_a_crash() {
    use openvpnserv::windows::net::RealNetFactory;
    use openvpnserv::windows::sys::network::{ip_helper_available, PROC_NOT_FOUND};
    let instance = Instance::new("realmtu").unwrap();
    let work = WorkDir::new("realmtu");
    let service = InProcess::start_with(
        &instance,
        harness::test_settings(&instance, &work, FAKE),
        MembershipSource::NoGroups,
        RealNetFactory,
    );
    let names = ["set_mtu", "add_route", "add_address", "flush_neighbors"];
    let scenario = Scenario {
        only: names.iter().map(|n| (*n).to_owned()).collect(),
        ..Scenario::default()
    };
    for round in 0..2 {
        work.write(SCENARIO_FILE, &scenario.to_text());
        let _ = std::fs::remove_file(work.path().join(RECORD_FILE));
        let c = Client::connect(&service.pipe_path).unwrap();
        c.send(&StartupMessage::new(work.text(), "--config a.ovpn", ""))
            .unwrap();
        let reply = c.reply(LONG);
        assert!(
            matches!(reply, Reply::Pid(p) if p != 0),
            "round {round}: {reply:?}"
        );
        wait_closed(&c);
        let record = work.read(RECORD_FILE).unwrap_or_default();
        for name in names {
            let line = record
                .lines()
                .find(|l| l.starts_with(&format!("ack {name} ")))
                .unwrap_or_else(|| panic!("round {round}: no ack for {name}: {record}"));
            assert!(line.ends_with("ok=1"), "{line}");
        }
        // Where this system lacks the function, the ack says so.
        let needs = [
            ("set_mtu", "GetIpInterfaceEntry"),
            ("add_route", "CreateIpForwardEntry2"),
            ("add_address", "CreateUnicastIpAddressEntry"),
        ];
        for (name, function) in needs {
            if ip_helper_available(function) == Some(false) {
                let want = format!("ack {name} id=");
                let line = record.lines().find(|l| l.starts_with(&want)).unwrap();
                assert!(
                    line.contains(&format!(" error={PROC_NOT_FOUND} ")),
                    "{function} is missing: {line}"
                );
            }
        }
    }
}

#[test]
fn cve_2024_27459_oversized_channel_message() {
    let s = setup("oversize", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        oversize: true,
        linger_ms: 20_000,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    let begun = Instant::now();
    // No ack; the channel is dropped and openvpn killed after the 2 s grace (no exit-code
    // reply for a killed openvpn).
    assert_eq!(wait_closed(&c), Vec::<Reply>::new());
    let took = begun.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let record = s.record();
    assert!(record.contains("oversize no ack"), "{record}");
    assert!(
        !record.contains("exit"),
        "openvpn was killed, not left to exit: {record}"
    );
}

fn startup_error(s: &Setup, bytes: &[u8]) -> Reply {
    let c = s.client();
    c.write(bytes).unwrap();
    c.reply(LONG)
}

/// Malformed startup data of spec §2.2 and §9: each gets `ERROR_STARTUP_DATA` with the label
/// `GetStartupData`, delivered (not lost), and the service keeps serving.
#[test]
fn cve_2018_9336_malformed_startup_data_is_refused_and_the_service_survives() {
    let s = setup("malformed", MembershipSource::NoGroups, &[]);
    let one_string: Vec<u8> = StartupMessage::new("d", "", "").encode()[..4].to_vec();
    let two_strings: Vec<u8> = StartupMessage::new("d", "o", "").encode()[..8].to_vec();
    let mut unterminated = StartupMessage::new("d", "o", "s").encode();
    unterminated.truncate(unterminated.len() - 2);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("one byte (2017 crash fix)", vec![0x41]),
        ("no final NUL", unterminated),
        ("one string", one_string),
        ("two strings", two_strings),
        ("8194 bytes (startup size bound)", vec![0x41; 8194]),
        ("unpaired surrogate", vec![0x00, 0xD8, 0, 0, 0, 0, 0, 0]),
    ];
    for (name, bytes) in cases {
        assert_eq!(
            startup_error(&s, &bytes),
            Reply::error(ERROR_STARTUP_DATA, "GetStartupData", ""),
            "{name}"
        );
    }
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let _c = s.start_ok("--config a.ovpn");
}

/// A 0-byte message is what upstream 2.7's timed peek sees as "no data": it answers at once
/// with the timeout's label (2.6.14 said `0x00000057 PeekNamedPipeAsync`; we follow 2.7).
#[test]
fn zero_byte_startup_message_gets_the_timeout_label_at_once() {
    let s = setup("zerobyte", MembershipSource::NoGroups, &[]);
    let begun = Instant::now();
    assert_eq!(
        startup_error(&s, &[]),
        Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
    );
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
}

#[test]
fn cve_2025_13751_silent_client_times_out() {
    let s = setup("silent", MembershipSource::NoGroups, &[]);
    let c = s.client();
    let begun = Instant::now();
    let reply = c.reply(LONG);
    let took = begun.elapsed();
    assert_eq!(
        reply,
        Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Connecting and leaving at once must not stop the service (`ERROR_NO_DATA` is retried).
#[test]
fn cve_2025_13751_connect_and_close_loop() {
    let s = setup("connloop", MembershipSource::NoGroups, &[]);
    for _ in 0..200 {
        drop(s.client());
    }
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let _c = s.start_ok("--config a.ovpn");
}

/// With `max_sessions` = 3, three silent clients hold every worker; the fourth is told at
/// once (upstream's fixed cap is 63).
#[test]
fn cve_2025_13751_too_many_concurrent_clients() {
    let s = setup("cap", MembershipSource::NoGroups, &[("max_sessions", "3")]);
    let held: Vec<Client> = (0..3).map(|_| s.client()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let fourth = s.client();
    let begun = Instant::now();
    let reply = fourth.reply(Duration::from_secs(1));
    assert_eq!(error_code(&reply), ERROR_CANT_WAIT, "{reply:?}");
    assert!(begun.elapsed() < Duration::from_secs(1));
    drop(held);
}

fn refused(s: &Setup, options: &str) -> String {
    let (_c, reply) = s.start(options, "");
    match reply {
        Reply::Error {
            code: ERROR_STARTUP_DATA,
            function,
            ..
        } => function,
        other => panic!("{options}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn bug_2017_one_byte_startup_data() {
    let s = setup("onebyte", MembershipSource::NoGroups, &[]);
    assert_eq!(
        startup_error(&s, &[0x41]),
        Reply::error(ERROR_STARTUP_DATA, "GetStartupData", "")
    );
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let _c = s.start_ok("--config a.ovpn");
}

#[test]
fn startup_size_bound_8194_bytes() {
    let s = setup("sizebound", MembershipSource::NoGroups, &[]);
    assert_eq!(
        startup_error(&s, &vec![0x41; 8194]),
        Reply::error(ERROR_STARTUP_DATA, "GetStartupData", "")
    );
}

#[test]
fn cve_2024_27903_plugin_is_refused() {
    let s = setup("plugin", MembershipSource::NoGroups, &[]);
    assert!(refused(&s, "--config a.ovpn --plugin x.dll")
        .starts_with("You have specified an option (--plugin)"));
}

#[test]
fn cve_2026_63649_setenv_opt_is_refused() {
    let s = setup("setenvopt", MembershipSource::NoGroups, &[]);
    assert!(refused(&s, "--config a.ovpn --setenv opt plugin x.dll")
        .starts_with("You have specified an option (--setenv)"));
}

#[test]
fn srlabs_config_stdin_is_refused() {
    let s = setup("stdin", MembershipSource::NoGroups, &[]);
    assert!(refused(&s, "--config stdin").contains("config file location (stdin relative to"));
}

/// The config-path cases of spec §3 and §9 for an ordinary user (Wine runs everything as an
/// administrator, so this service instance is told nobody is in any group): `..`, a sibling
/// prefix, absolute outside, and mixed case inside.
#[test]
fn config_path_hardening_dotdot_sibling_and_mixed_case() {
    let s = setup("policy", MembershipSource::NoGroups, &[]);
    let group = "\"OpenVPN Administrators\" group";
    let text = refused(&s, r"--config ..\evil.ovpn");
    assert_eq!(
        text,
        format!(
            r"You have specified a config file location (..\evil.ovpn relative to {}) that requires admin approval. This error may be avoided by adding your account to the {group}",
            s.work.text()
        )
    );
    assert!(refused(&s, r"--config C:\Windows\x.ovpn").contains("config file location"));
    let sibling = format!(
        r"--config {}-evil\x.ovpn",
        s.work.config_dir().trim_end_matches('\\')
    );
    assert!(
        refused(&s, &sibling).contains("config file location"),
        "{sibling}"
    );
    // Inside the config directory, relative or absolute, any case: allowed.
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let abs = format!(r"--config {}A.OVPN", s.work.config_dir().to_uppercase());
    for ok in ["--config a.ovpn", r"--config sub\..\a.ovpn", abs.as_str()] {
        wait_closed(&s.start_ok(ok));
    }
}

/// Under Wine every process is an administrator: with membership read from the token, the
/// caller is authorized by the Administrators group and may use any option.
#[test]
fn administrator_from_the_token_is_authorized() {
    let s = setup("admin", MembershipSource::Token, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn --plugin x.dll");
    wait_closed(&c);
    assert!(s.record().contains("--plugin x.dll --msg-channel"));
}

#[test]
fn launch_failure_reports_the_system_error() {
    let s = setup(
        "nofile",
        MembershipSource::NoGroups,
        &[("exe_path", r"C:\nowhere\openvpn.exe")],
    );
    let (_c, reply) = s.start("--config a.ovpn", "");
    match reply {
        Reply::Error {
            code,
            function,
            text,
        } => {
            assert!(code == 2 || code == 3, "file or path not found, got {code}");
            assert_eq!(function, "CreateProcessAsUser");
            assert!(!text.is_empty(), "line 3 is the system's text");
        }
        Reply::Pid(pid) => panic!("started {pid} from a missing file"),
    }
}

/// Stopping the service ends a running session: openvpn gets its 2 s grace, then is killed.
#[test]
fn service_stop_ends_sessions() {
    let s = setup("stop", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        linger_ms: 60_000,
        ..Scenario::default()
    });
    let c = s.start_ok("--config a.ovpn");
    let begun = Instant::now();
    s.service.stop().unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(8),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(c.read(Duration::from_secs(1)), Read::Closed);
}

/// A service context for `instance` (not yet bound), with its work directory.
fn context(instance: &Instance) -> (Context<FakeFactory>, WorkDir) {
    let work = WorkDir::new(instance.id());
    let values = harness::values(&work, FAKE);
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ctx = Context::new(
        instance.clone(),
        harness::settings(instance, &pairs),
        Arch::NATIVE,
        MembershipSource::NoGroups,
        FakeFactory::default(),
    )
    .unwrap();
    (ctx, work)
}

/// The client pipe's DACL, read back, is the SDDL of spec §1.3 (CVE-2024-4877).
#[test]
fn cve_2024_4877_client_pipe_descriptor() {
    let instance = Instance::new("sddl").unwrap();
    let (ctx, _work) = context(&instance);
    let server = Server::bind(ctx).unwrap();
    let got = server.listening().dacl_sddl().unwrap();
    assert_eq!(got, normalize_dacl_sddl(sddl::CLIENT_PIPE).unwrap());
    // 0x4 (FILE_CREATE_PIPE_INSTANCE) is rendered with its SDDL alias LC; the deny stays second.
    assert!(
        got.starts_with("D:(A;OICI;GA;;;SY)(D;OICI;LC;;;WD)"),
        "deny Everyone FILE_CREATE_PIPE_INSTANCE: {got}"
    );
}

#[test]
fn channel_pipe_descriptor_and_name() {
    let instance = Instance::new("chan").unwrap();
    let uuid = openvpnserv::windows::launch::new_uuid();
    assert_eq!(uuid.len(), 36);
    assert!(
        uuid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-'),
        "{uuid}"
    );
    let name = instance.session_pipe_path(openvpnserv::windows::launch::thread_id(), &uuid);
    let (pipe, _client) = create_channel(&name).unwrap();
    let got = pipe.dacl_sddl().unwrap();
    assert_eq!(got, normalize_dacl_sddl(sddl::CHANNEL_PIPE).unwrap());
}

/// openvpn's process gets exactly the two ACEs of spec §4.1 step 5: the service everything,
/// the user watch-and-kill only (it holds the privileged channel).
#[test]
fn launched_process_has_the_intended_descriptor() {
    use openvpnserv::windows::launch::{launch, LaunchRequest};
    use openvpnserv::windows::sys::security::Token;
    let work = WorkDir::new("procsd");
    work.write(
        SCENARIO_FILE,
        &Scenario {
            send_messages: false,
            ..Scenario::default()
        }
        .to_text(),
    );
    let token = Token::process().unwrap();
    let sid = token
        .user("GetTokenInformation (service token)")
        .unwrap()
        .sid;
    let instance = Instance::new("procsd").unwrap();
    let launched = launch(
        &token,
        &LaunchRequest {
            exe_path: &harness::wine_path(FAKE),
            options: "--config a.ovpn",
            working_dir: &work.text(),
            priority_class: 0x20,
            channel_name: instance.session_pipe_path(1, &openvpnserv::windows::launch::new_uuid()),
            service_sid: &sid,
            user_sid: &sid,
            stdin_len: 0,
        },
    )
    .unwrap();
    let got = launched.process_dacl_sddl().unwrap();
    let want = sddl::object_sddl(&sid, &sid, sddl::USER_PROCESS_RIGHTS);
    let want_dacl = &want[want.find("D:").unwrap()..];
    assert_eq!(got, normalize_dacl_sddl(want_dacl).unwrap());
}

/// Someone else owning the pipe name before the service starts must make it fail.
#[test]
#[ignore = "Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE"]
fn cve_2024_4877_pre_created_pipe_name_stops_the_service() {
    let instance = Instance::new("squat").unwrap();
    let sd = openvpnserv::windows::sys::security::SecurityDescriptor::from_sddl("D:(A;;GA;;;WD)")
        .unwrap();
    let _squatter = openvpnserv::windows::sys::kernel::Pipe::create(
        &instance.pipe_path(),
        openvpnserv::windows::sys::kernel::PipeSpec::client(false),
        &sd,
    )
    .unwrap();
    let (ctx, _work) = context(&instance);
    assert!(Server::bind(ctx).is_err());
}

#[test]
#[ignore = "Wine stores pipe DACLs but does not enforce them, and runs everything as one administrator"]
fn cve_2024_4877_other_user_cannot_create_an_instance() {
    // Run as a non-SYSTEM user while the service runs: CreateNamedPipe on its name must fail
    // with ERROR_ACCESS_DENIED because Everyone is denied FILE_CREATE_PIPE_INSTANCE.
    let s = setup("squat2", MembershipSource::NoGroups, &[]);
    let sd = openvpnserv::windows::sys::security::SecurityDescriptor::from_sddl("D:(A;;GA;;;WD)")
        .unwrap();
    let err = openvpnserv::windows::sys::kernel::Pipe::create(
        &s.service.pipe_path,
        openvpnserv::windows::sys::kernel::PipeSpec::client(false),
        &sd,
    )
    .unwrap_err();
    assert_eq!(err.code, 5);
}

#[test]
#[ignore = "Wine has no SMB loopback; PIPE_REJECT_REMOTE_CLIENTS can only be seen on Windows"]
fn cve_2024_24974_remote_client_is_rejected() {
    let s = setup("remote", MembershipSource::NoGroups, &[]);
    let remote = s.service.pipe_path.replace(r"\\.\", r"\\127.0.0.1\");
    assert!(Client::connect(&remote).is_err());
}

/// An ordinary user, judged by its real token, is refused what needs an administrator.
#[test]
#[ignore = "needs a non-administrator Windows account; Wine runs everything as one administrator"]
fn non_administrator_token_is_refused() {
    let s = setup("nonadmin", MembershipSource::Token, &[]);
    let (_c, reply) = s.start("--config a.ovpn --plugin x.dll", "");
    assert!(
        matches!(
            reply,
            Reply::Error {
                code: ERROR_STARTUP_DATA,
                ..
            }
        ),
        "{reply:?}"
    );
}

/// openvpnserv2's virtual account `NT SERVICE\OpenVPNService` may start any config.
#[test]
#[ignore = "needs the NT SERVICE\\OpenVPNService virtual account, which Wine cannot create"]
fn openvpnserv2_service_account_is_authorized() {
    let s = setup("svcacct", MembershipSource::NoGroups, &[]);
    s.scenario(&Scenario {
        send_messages: false,
        ..Scenario::default()
    });
    let _c = s.start_ok(r"--config C:\autostart\x.ovpn");
}

#[test]
#[ignore = "needs a second, non-administrator Windows account; Wine runs everything as one administrator"]
fn second_user_cannot_open_the_channel_pipe() {
    // As user B, open user A's \\.\pipe\openvpn\service_<tid>_<uuid>: must fail with
    // ERROR_ACCESS_DENIED (the DACL grants SYSTEM and the owner only) — and a second open by
    // anyone fails with ERROR_PIPE_BUSY (one instance).
    let instance = Instance::new("chan2").unwrap();
    let name = instance.session_pipe_path(1, &openvpnserv::windows::launch::new_uuid());
    let (_pipe, _client) = create_channel(&name).unwrap();
    assert!(Client::connect(&name).is_err());
}
