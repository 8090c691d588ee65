//! `iservice start`, `list`, `status`, `log`, `stop` and `restart` end to end (issue 16):
//! real users run `iservice` in the client namespace; the real service starts stock openvpn
//! as them against a real openvpn server and keeps each connection in its registry, which
//! the commands reach through the control socket. Another user can neither see the details
//! of, read the log of, stop nor restart the first user's connection; a member of the admin
//! group can list and stop it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::json_lines;
use openvpnserv_e2e::fixture::{alive, eventually};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::service::binary;
use openvpnserv_e2e::users::{TestGroup, TestUser};
use openvpnserv_e2e::vpn::{assert_same, Dns, Setup, Vpn};
use serde_json::Value;

const EVENTS: &str = include_str!("../../client/schema/events.schema.json");
const COMMANDS: &str = include_str!("../../client/schema/commands.schema.json");

/// A VPN world with an admin group, the owner's private runtime directory and the config
/// `vpn.conf` whose openvpn writes to stdout (so the service keeps its output).
struct Lab {
    runtime: PathBuf,
    vpn: Vpn,
    admins: TestGroup,
}

impl Lab {
    fn new() -> Self {
        let admins = TestGroup::create();
        let vpn = Vpn::with(&Setup {
            extra_settings: format!("ovpn_admin_group = \"{}\"\n", admins.name),
            ..Setup::new(&Pushes::default(), false, Dns::Direct)
        });
        vpn.config_to_stdout("vpn.conf", "");
        let runtime = vpn.runtime_dir();
        Self {
            runtime,
            vpn,
            admins,
        }
    }

    fn config(&self, name: &str) -> PathBuf {
        self.vpn.config_dir.join(name)
    }

    /// `iservice ARGS -instance interactive <id>` as `user` in the client namespace.
    fn iservice_as(&self, user: &TestUser, args: &[&str]) -> Command {
        let mut cmd = self.vpn.topo.client.command("setpriv");
        cmd.args(["--reuid", &user.uid.to_string()])
            .args(["--regid", &user.gid.to_string(), "--init-groups"])
            .arg(binary("iservice"))
            .args(args)
            .args(["-instance", "interactive", &self.vpn.instance])
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs it to its end (at most 90 s), reading its output meanwhile.
    fn run_as(&self, user: &TestUser, args: &[&str]) -> Output {
        let child = self.iservice_as(user, args).spawn().unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        if let Ok(out) = rx.recv_timeout(Duration::from_secs(90)) {
            return out.unwrap();
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("iservice {args:?} (process {pid}) did not end within 90 s");
    }

    /// The same as the owner.
    fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.vpn.user, args)
    }

    /// `iservice start CONFIG --json --non-interactive` as the owner: its events.
    fn start(&self, config: &Path) -> (Output, Vec<Value>) {
        let out = self.run(&[
            "start",
            config.to_str().unwrap(),
            "--json",
            "--non-interactive",
        ]);
        let events = lines(EVENTS, &out.stdout);
        (out, events)
    }

    /// `status NAME --json` as the owner.
    fn status(&self, name: &str) -> Value {
        let out = self.run(&["status", name, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        lines(COMMANDS, &out.stdout).remove(0)["connection"].clone()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every line of stdout as JSON, checked against `schema`.
fn lines(schema: &str, stdout: &[u8]) -> Vec<Value> {
    json_lines(schema, &String::from_utf8_lossy(stdout))
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:#?}"))
}

fn pid_of(events: &[Value]) -> u32 {
    u32::try_from(event(events, "started")["pid"].as_u64().unwrap()).unwrap()
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, the service and real openvpn (e2e stage)"]
fn start_returns_and_the_tunnel_goes_on_until_stop_undoes_everything() {
    let lab = Lab::new();
    let before = lab.vpn.snapshot();
    let (out, events) = lab.start(&lab.config("vpn.conf"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(event(&events, "connection")["name"], "vpn");
    assert_eq!(events.last().unwrap()["outcome"], "connected");
    let pid = pid_of(&events);

    // iservice has exited; openvpn goes on, neither held nor stopped.
    std::thread::sleep(Duration::from_secs(3));
    assert!(alive(pid), "openvpn ended after start returned");
    let tun = lab.vpn.tun().expect("the tun stays up");
    assert_eq!(
        std::fs::read_dir(&lab.runtime).unwrap().count(),
        0,
        "the password file is gone (openvpn read it at its start)"
    );

    // list and status show it, with its tun and addresses.
    let out = lab.run(&["list", "--json"]);
    let list = lines(COMMANDS, &out.stdout).remove(0);
    let connections = list["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{list}");
    let c = &connections[0];
    assert_eq!(c["name"], "vpn");
    assert_eq!(c["state"], "connected");
    assert_eq!(c["pid"], pid);
    assert_eq!(c["tun"], tun.as_str());
    assert!(
        c["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("10.8.0.")),
        "{c}"
    );
    let out = lab.run(&["list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("vpn "), "{table}");

    // The counters grow with traffic through the tunnel.
    let before_ping = lab.status("vpn");
    lab.vpn
        .topo
        .client
        .exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "10.8.0.1"]);
    let after_ping = lab.status("vpn");
    for counter in ["bytes_in", "bytes_out"] {
        assert!(
            after_ping[counter].as_u64() > before_ping[counter].as_u64(),
            "{counter}: {before_ping} then {after_ping}"
        );
    }

    // A restart of openvpn (SIGUSR1, as after a ping timeout) goes on alone: openvpn does
    // not hold again for a management client that is gone.
    let since = after_ping["state_since"].clone();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let again = eventually(Duration::from_secs(30), || {
        let now = lab.status("vpn");
        now["state"] == "connected" && now["state_since"] != since
    });
    assert!(again, "not connected again: {}", lab.status("vpn"));

    // log shows openvpn's own lines: both connections (the service may call the tun
    // connected a moment before openvpn's route-up and its line), one hold (the first).
    let mut log = String::new();
    let both = eventually(Duration::from_secs(10), || {
        let out = lab.run(&["log", "vpn"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.matches("Initialization Sequence Completed").count() == 2
    });
    assert!(both, "{log}");
    assert_eq!(log.matches("Need hold release").count(), 1, "{log}");

    // log --follow goes on until openvpn has exited, and shows its last words.
    let log_child = lab
        .iservice_as(&lab.vpn.user, &["log", "vpn", "--follow", "-n", "1"])
        .spawn()
        .unwrap();
    let log_pid = log_child.id();
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = log_tx.send(log_child.wait_with_output());
    });

    // stop brings it down and everything is undone.
    std::thread::sleep(Duration::from_millis(500));
    let out = lab.run(&["stop", "vpn"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vpn has exited"),
        "{}",
        text(&out)
    );
    assert!(eventually(Duration::from_secs(10), || !alive(pid)));
    let Ok(followed) = log_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(log_pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("log --follow did not end after openvpn exited");
    };
    let followed = followed.unwrap();
    assert_eq!(followed.status.code(), Some(0), "{}", text(&followed));
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.contains("SIGTERM"), "{followed}");
    lab.vpn.wait_undone(1);
    assert_same(&before, &lab.vpn.snapshot(), &lab.vpn);
    assert_eq!(lab.status("vpn")["state"], "exited");
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, the service and real openvpn (e2e stage)"]
fn restart_starts_the_same_config_again() {
    let lab = Lab::new();
    let before = lab.vpn.snapshot();
    let (out, events) = lab.start(&lab.config("vpn.conf"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first = pid_of(&events);

    let out = lab.run(&["restart", "vpn", "--json", "--non-interactive"]);
    let events = lines(EVENTS, &out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let restarting = event(&events, "restarting");
    assert_eq!(restarting["name"], "vpn");
    // The config as the service resolved it.
    assert!(
        restarting["config"]
            .as_str()
            .unwrap()
            .ends_with("/vpn.conf"),
        "{restarting}"
    );
    assert_eq!(event(&events, "connection")["name"], "vpn");
    let second = pid_of(&events);
    assert_ne!(first, second);
    assert!(!alive(first), "the first openvpn has exited");
    let now = lab.status("vpn");
    assert_eq!(now["state"], "connected");
    assert_eq!(now["pid"], second);

    let out = lab.run(&["stop", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.vpn.wait_undone(2);
    assert_same(&before, &lab.vpn.snapshot(), &lab.vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, the service and real openvpn (e2e stage)"]
fn an_unknown_option_fails_with_openvpns_own_reason() {
    let lab = Lab::new();
    lab.vpn
        .config_to_stdout("bad.conf", "no-such-option-in-openvpn 1");
    let (out, events) = lab.start(&lab.config("bad.conf"));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let exit = events.last().unwrap();
    assert_eq!(exit["outcome"], "openvpn_failed");
    let message = exit["message"].as_str().unwrap();
    assert!(message.contains("Unrecognized option"), "{message}");
    let log = exit["openvpn_log"].as_array().expect("openvpn_log");
    assert!(
        log.iter()
            .any(|l| l.as_str().unwrap().contains("Unrecognized option")),
        "{log:?}"
    );

    // The same without --json, on the terminal; and in `log`.
    let out = lab.run(&[
        "start",
        lab.config("bad.conf").to_str().unwrap(),
        "--non-interactive",
    ]);
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("openvpn's last lines:"), "{err}");
    assert!(err.contains("Unrecognized option"), "{err}");
    let out = lab.run(&["log", "bad"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Unrecognized option"),
        "{}",
        text(&out)
    );
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, the service and real openvpn (e2e stage)"]
fn another_user_cannot_touch_my_connection_but_an_admin_can_list_and_stop_it() {
    let lab = Lab::new();
    let before = lab.vpn.snapshot();
    let (out, events) = lab.start(&lab.config("vpn.conf"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pid = pid_of(&events);
    let other = TestUser::create(&[]);
    let admin = TestUser::create(&[&lab.admins]);

    // The other user sees nothing of it.
    let out = lab.run_as(&other, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        lines(COMMANDS, &out.stdout)[0]["connections"],
        serde_json::json!([])
    );
    for args in [
        &["status", "vpn"][..],
        &["log", "vpn"],
        &["stop", "vpn"],
        &["restart", "vpn", "--non-interactive"],
    ] {
        let out = lab.run_as(&other, args);
        assert_eq!(out.status.code(), Some(9), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("iservice: error: "), "{args:?}: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("Initialization"),
            "{args:?}: no log line leaks"
        );
    }
    let out = lab.run_as(&other, &["status", "vpn", "--json"]);
    assert_eq!(
        lines(COMMANDS, &out.stdout)[0]["error"]["outcome"],
        "forbidden"
    );
    let out = lab.run_as(&other, &["stop", "--all"]);
    assert_eq!(out.status.code(), Some(0));
    // Nor its management interface: it asks for a password nobody else has (the file is
    // gone) and refuses a wrong one.
    let management = event(&events, "started")["management"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = management.rsplit(':').next().unwrap();
    let probe = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; head -c 15 <&3; echo; echo not-the-password >&3; timeout 3 cat <&3"
    );
    let out = lab
        .vpn
        .topo
        .client
        .command("setpriv")
        .args(["--reuid", &other.uid.to_string()])
        .args(["--regid", &other.gid.to_string(), "--init-groups"])
        .args(["bash", "-c", &probe])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("ENTER PASSWORD:"), "{answer}");
    assert!(!answer.contains("SUCCESS"), "{answer}");
    assert!(alive(pid), "nobody else stopped it");
    assert_eq!(lab.status("vpn")["state"], "connected");

    // An admin lists and stops it; restarting it stays the owner's.
    let out = lab.run_as(&admin, &["list", "--json"]);
    let list = lines(COMMANDS, &out.stdout).remove(0);
    let connections = list["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{list}");
    assert_eq!(connections[0]["user"], lab.vpn.user.name.as_str());
    let out = lab.run_as(&admin, &["restart", "vpn", "--non-interactive"]);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    assert!(alive(pid));
    let out = lab.run_as(&admin, &["stop", "vpn"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(eventually(Duration::from_secs(10), || !alive(pid)));
    lab.vpn.wait_undone(1);
    assert_same(&before, &lab.vpn.snapshot(), &lab.vpn);
}
