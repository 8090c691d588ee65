//! The `iservice connect` binary against a seqpacket fake service and a scripted openvpn
//! management peer (no root, no real openvpn). Every `--json` line is checked against the
//! shipped schema.
#![cfg(target_os = "linux")]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use support::{
    connect_states, finish, iservice, json_events, names, setup_and_release, states, Behaviour,
    FakeService, Step,
};

fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vpn.conf"), "client\n").unwrap();
    dir
}

fn exiting_and_close(reason: &str) -> Step {
    Step::Send(format!(">STATE:1795694070,EXITING,{reason},,,,,\r\n"))
}

/// A fake service that starts a scripted openvpn, a config file and a runtime directory.
struct Scenario {
    service: FakeService,
    conf: tempfile::TempDir,
    run: tempfile::TempDir,
}

impl Scenario {
    fn new(script: Vec<Step>, late: Option<&str>) -> Self {
        Self {
            service: FakeService::start(Behaviour::Start {
                script,
                late: late.map(str::to_owned),
                listen: true,
            }),
            conf: config_dir(),
            run: tempfile::tempdir().unwrap(),
        }
    }

    /// The usual session: login, the states up to CONNECTED, then openvpn ends it.
    fn connect_then_exit() -> Self {
        let mut script = setup_and_release();
        script.push(Step::Send(connect_states()));
        script.push(exiting_and_close("exit-notify"));
        Self::new(script, None)
    }

    fn config(&self) -> String {
        self.conf
            .path()
            .join("vpn.conf")
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn spawn(&self, extra: &[&str]) -> std::process::Child {
        let config = self.config();
        let mut args = vec![config.as_str()];
        args.extend_from_slice(extra);
        iservice(&self.service.path, self.run.path(), &args)
            .spawn()
            .unwrap()
    }
}

#[test]
fn connects_and_reports_each_state_as_json() {
    let sc = Scenario::connect_then_exit();
    let out = finish(sc.spawn(&["--json"]));
    let events = json_events(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{events:#?}");
    assert_eq!(
        states(&events),
        [
            "CONNECTING",
            "WAIT",
            "AUTH",
            "GET_CONFIG",
            "ASSIGN_IP",
            "ADD_ROUTES",
            "CONNECTED",
            "EXITING"
        ]
    );
    let connected = events.iter().find(|e| e["state"] == "CONNECTED").unwrap();
    assert_eq!(connected["local_ipv4"], "10.8.0.2");
    assert_eq!(connected["local_ipv6"], "fd00:8::1000");
    assert_eq!(connected["remote_address"], "10.200.0.1");
    assert_eq!(connected["remote_port"], 1194);
    let names = names(&events);
    assert_eq!(
        names[..3],
        ["service_connected", "started", "management_connected"]
    );
    assert!(names.contains(&"hold".to_owned()) && names.contains(&"bytecount".to_owned()));
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["outcome"].as_str()),
        (Some("exit"), Some("disconnected"))
    );
    // What the service was asked to run.
    let message = sc.service.received();
    assert_eq!(std::path::Path::new(&message.working_dir), sc.conf.path());
    assert!(
        message
            .options
            .starts_with("--config vpn.conf --setenv IV_GUI_VER"),
        "{}",
        message.options
    );
    assert!(message.options.contains("--management-hold"));
    assert_eq!(message.stdin, "", "on Linux the password goes by file");
    // The password file is gone.
    assert_eq!(std::fs::read_dir(sc.run.path()).unwrap().count(), 0);
}

#[test]
fn ctrl_c_sends_sigterm_and_waits_for_the_exit() {
    let mut script = setup_and_release();
    script.push(Step::Send(connect_states()));
    script.push(Step::Expect("signal SIGTERM".into()));
    script.push(Step::Send("SUCCESS: signal SIGTERM thrown\r\n".into()));
    script.push(Step::Sleep(Duration::from_millis(300)));
    script.push(exiting_and_close("SIGTERM"));
    let sc = Scenario::new(script, None);
    let mut child = sc.spawn(&["--json"]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
        if line.contains("\"CONNECTED\"") {
            break;
        }
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    stdout.read_to_string(&mut seen).unwrap();
    let out = finish(child);
    let events = json_events(seen.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{seen}");
    let names = names(&events);
    let stop = names
        .iter()
        .position(|n| n == "stopping")
        .expect("stopping");
    let exiting = events
        .iter()
        .position(|e| e["state"] == "EXITING")
        .expect("EXITING");
    assert!(stop < exiting, "{names:?}");
    sc.service.received();
}

#[test]
fn refusal_has_its_exit_code() {
    let service = FakeService::start(Behaviour::Refuse(
        "0x20000001\nYou have specified an option (--plugin) that may be used only with admin approval. This error may be avoided by adding your account to the \"openvpn-admin\" group\n".into(),
    ));
    let run = tempfile::tempdir().unwrap();
    let out = finish(
        iservice(
            &service.path,
            run.path(),
            &["/etc/openvpn/client/x.conf", "--json"],
        )
        .spawn()
        .unwrap(),
    );
    let events = json_events(&out.stdout);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(names(&events), ["service_connected", "refused", "exit"]);
    assert_eq!(events[1]["code"], 0x2000_0001);
    assert_eq!(events[1]["code_name"], "ERROR_STARTUP_DATA");
    assert!(events[2]["message"].as_str().unwrap().contains("--plugin"));
}

#[test]
fn no_service_and_slow_service_are_told_apart() {
    let run = tempfile::tempdir().unwrap();
    let missing = run.path().join("nothing-here");
    let out = finish(iservice(&missing, run.path(), &["a.conf"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("is not running"), "{text}");

    let service = FakeService::start(Behaviour::Silent);
    let started = std::time::Instant::now();
    let out = finish(
        iservice(
            &service.path,
            run.path(),
            &["a.conf", "--timeout", "1", "--json"],
        )
        .spawn()
        .unwrap(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(4));
    let events = json_events(&out.stdout);
    let message = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("running but slow or stuck"), "{message}");
}

#[test]
fn wrong_credentials_from_auth_file() {
    let mut script = setup_and_release();
    script.push(Step::Send(
        ">STATE:1795694065,AUTH,,,,,,\r\n>PASSWORD:Need 'Auth' username/password\r\n".into(),
    ));
    script.push(Step::Expect("username \"Auth\" \"alice\"".into()));
    script.push(Step::Expect("password \"Auth\" \"not\\\"right\"".into()));
    script.push(Step::Send("SUCCESS: 'Auth' username entered, but not yet verified\r\nSUCCESS: 'Auth' password entered, but not yet verified\r\n>PASSWORD:Verification Failed: 'Auth'\r\n".into()));
    script.push(Step::Expect("signal SIGTERM".into()));
    script.push(exiting_and_close("auth-failure"));
    let sc = Scenario::new(
        script,
        Some("0x20000000\nOpenVPN exited with error: exit code = 1\n"),
    );
    let auth = sc.conf.path().join("auth.txt");
    std::fs::write(&auth, "alice\nnot\"right\n").unwrap();
    let out = finish(sc.spawn(&["--json", "--auth-file", auth.to_str().unwrap()]));
    let events = json_events(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{events:#?}");
    let names = names(&events);
    for name in [
        "password_request",
        "auth_failed",
        "stopping",
        "service_error",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("not\\\"right"),
        "no secret in the output"
    );
    sc.service.received();
}

#[test]
fn openvpn_dying_at_start_is_openvpn_failed() {
    let service = FakeService::start(Behaviour::Start {
        script: vec![],
        late: Some("0x20000000\nOpenVPN exited with error: exit code = 1\n".into()),
        listen: false,
    });
    let run = tempfile::tempdir().unwrap();
    let out = finish(
        iservice(&service.path, run.path(), &["/x/y.conf"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("openvpn exited with error code 1"), "{text}");
}

/// Without --json the terminal display names each state and the addresses.
#[test]
fn terminal_display_lists_states_and_addresses() {
    let sc = Scenario::connect_then_exit();
    let out = finish(sc.spawn(&[]));
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(out.stdout.is_empty());
    for needle in [
        "WAIT",
        "AUTH",
        "GET_CONFIG",
        "ASSIGN_IP",
        "ADD_ROUTES",
        "EXITING",
        "CONNECTED    connected: 10.8.0.2, fd00:8::1000 via 10.200.0.1:1194",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    sc.service.received();
}
