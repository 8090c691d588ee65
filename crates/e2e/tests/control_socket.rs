//! The control socket (issue 16, "Who may do what"): real users talk the control protocol
//! (`proto::control`) to the real service, which runs stock openvpn against a real server in
//! network namespaces (the harness of `openvpnserv_e2e::vpn`). A user sees, reads and stops
//! only their own connections; root and the admin group all; another user gets nothing of
//! mine, not even through openvpn's management interface. Run as root by the e2e stage, one
//! at a time: `cargo test -p openvpnserv-e2e --test control_socket -- --ignored
//! --test-threads=1`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use openvpnserv_e2e::fixture::{alive, eventually};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::service::{binary, probe_command, try_probe, Send, Service, TestDir};
use openvpnserv_e2e::users::{TestGroup, TestUser};
use openvpnserv_e2e::vpn::{assert_same, Dns, Openvpn, Setup, Vpn};
use openvpnserv_proto::control::{Connection, ErrorCode, Request, Response, State};
use openvpnserv_proto::Reply;

/// Sends `requests` on one control connection, run as `command`; returns the responses.
fn ask_as(mut command: Command, socket: &PathBuf, requests: &[Request]) -> Vec<Response> {
    command.arg(socket);
    for r in requests {
        command.arg(String::from_utf8(r.encode()).unwrap());
    }
    let out = command.output().expect("run control-probe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let responses: Vec<Response> = text
        .lines()
        .filter_map(|l| l.strip_prefix("RESPONSE "))
        .map(|j| Response::decode(j.as_bytes()).unwrap_or_else(|e| panic!("{e}: {j}")))
        .collect();
    assert_eq!(
        responses.len(),
        requests.len(),
        "control-probe: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    responses
}

fn probe(user: Option<&TestUser>) -> Command {
    let program = binary("control-probe");
    user.map_or_else(|| Command::new(&program), |u| u.command(&program))
}

fn socket_of(instance: &str) -> PathBuf {
    PathBuf::from(format!("/run/openvpn{instance}/control"))
}

fn ask(user: Option<&TestUser>, socket: &PathBuf, request: Request) -> Response {
    ask_as(probe(user), socket, &[request]).remove(0)
}

fn list(user: Option<&TestUser>, socket: &PathBuf) -> Vec<Connection> {
    match ask(user, socket, Request::List) {
        Response::Connections { connections } => connections,
        other => panic!("list: {other:?}"),
    }
}

fn status(user: Option<&TestUser>, socket: &PathBuf, name: &str) -> Response {
    ask(user, socket, Request::Status { name: name.into() })
}

fn connection(user: Option<&TestUser>, socket: &PathBuf, name: &str) -> Connection {
    match status(user, socket, name) {
        Response::Connection { connection } => connection,
        other => panic!("status {name}: {other:?}"),
    }
}

fn log(user: Option<&TestUser>, socket: &PathBuf, name: &str) -> Response {
    ask(
        user,
        socket,
        Request::Log {
            name: name.into(),
            from: 0,
            max_lines: None,
        },
    )
}

/// Asserts a refusal with `code` whose message names `owner`.
fn assert_refused(r: &Response, code: ErrorCode, owner: Option<&str>) {
    match r {
        Response::Error { code: c, message } => {
            assert_eq!(*c, code, "{message}");
            if let Some(owner) = owner {
                assert!(message.contains(owner), "{message}");
            }
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// A world with the admin group set to `admins`.
fn world(admins: &TestGroup) -> Vpn {
    let mut setup = Setup::new(&Pushes::default(), false, Dns::Direct);
    setup.extra_settings = format!("ovpn_admin_group = \"{}\"", admins.name);
    Vpn::with(&setup)
}

/// What another user may get from a management interface on loopback without its password:
/// connects as `user` inside the client namespace, sends commands, returns what came back.
fn management_as(vpn: &Vpn, user: &TestUser, port: u16) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 9; printf 'status\\nstate\\nsignal SIGTERM\\nhold release\\n' >&3; timeout 3 cat <&3"
    );
    let out = vpn
        .topo
        .client
        .command("setpriv")
        .args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--clear-groups",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .expect("setpriv");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Bob: not listed; status, log and stop refused with whose it is; nothing happens to it.
fn bob_gets_nothing(vpn: &Vpn, bob: &TestUser, socket: &PathBuf, pid: u32, port: u16) {
    let alice = &vpn.user;
    assert!(list(Some(bob), socket).is_empty());
    for r in [
        status(Some(bob), socket, "work"),
        log(Some(bob), socket, "work"),
        ask(
            Some(bob),
            socket,
            Request::Stop {
                name: "work".into(),
            },
        ),
    ] {
        assert_refused(&r, ErrorCode::Forbidden, Some(&alice.name));
    }
    assert_eq!(
        ask(Some(bob), socket, Request::StopAll),
        Response::Stopping { names: vec![] }
    );
    assert_refused(
        &status(Some(bob), socket, "nothing"),
        ErrorCode::NotFound,
        None,
    );
    // Nor through openvpn's management interface: without the password nothing but the
    // prompt, and his commands are taken as a wrong password.
    let mgmt = management_as(vpn, bob, port);
    assert!(mgmt.contains("ENTER PASSWORD"), "{mgmt}");
    for secret in ["OpenVPN CLIENT LIST", "TUN/TAP", "CONNECTED", "SUCCESS"] {
        assert!(!mgmt.contains(secret), "bob got {secret:?}: {mgmt}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid), "openvpn went away after bob's attempts");
    assert_eq!(
        connection(Some(alice), socket, "work").state,
        State::Connected
    );
}

/// Carol (admin group) stops alice's connection: the down sequence runs, everything is undone.
fn carol_stops_it(vpn: &Vpn, carol: &TestUser, socket: &PathBuf, pid: u32, before: &str) {
    let alice = &vpn.user;
    assert_eq!(
        ask(
            Some(carol),
            socket,
            Request::Stop {
                name: "work".into()
            }
        ),
        Response::Stopping {
            names: vec!["work".into()]
        }
    );
    assert!(
        eventually(Duration::from_secs(20), || !alive(pid)),
        "openvpn still runs after the stop"
    );
    vpn.wait_undone(1);
    let ended = eventually(Duration::from_secs(10), || {
        connection(Some(alice), socket, "work").state == State::Exited
    });
    assert!(ended, "{:?}", connection(Some(alice), socket, "work"));
    let gone = connection(Some(alice), socket, "work");
    assert_eq!(gone.exit_code, Some(0), "{gone:?}");
    assert!(gone.addresses.is_empty());
    let service_log = vpn.service.log();
    let from_stop = service_log
        .split("asked to stop over the control socket")
        .nth(1)
        .unwrap_or_else(|| panic!("no control stop in the log:\n{service_log}"));
    // It ended by itself (its channel closing first or its exit seen first), not killed.
    assert!(
        !from_stop.contains("killing it")
            && (from_stop.contains("openvpn ended its down sequence after SIGTERM")
                || from_stop.contains("openvpn exited with code 0")),
        "openvpn was killed instead of ending by itself:\n{from_stop}"
    );
    assert!(
        from_stop.contains("kind=DelRoute") && from_stop.contains("kind=DelAddress"),
        "the down hooks were not served:\n{from_stop}"
    );
    assert_same(before, &vpn.snapshot(), vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn owners_and_admins_see_and_stop_a_connection_other_users_get_nothing() {
    let admins = TestGroup::create();
    let vpn = world(&admins);
    let alice = &vpn.user;
    let bob = TestUser::create(&[]);
    let carol = TestUser::create(&[&admins]);
    let socket = socket_of(&vpn.instance);

    // A management interface on loopback, as iservice asks for, with a password file only
    // alice can read.
    let port = 17_505;
    let pass = vpn.config_dir.join("mgmt.pass");
    std::fs::write(&pass, "s3cret-of-alice\n").unwrap();
    nix::unistd::chown(&pass, Some(nix::unistd::Uid::from_raw(alice.uid)), None).unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    vpn.config(
        "work.conf",
        &format!("management 127.0.0.1 {port} {}", pass.display()),
    );
    let before = vpn.snapshot();
    let pid = vpn.connect("work.conf");
    let tun = vpn.tun().expect("the session's tun");

    // Alice sees it, connected, with its tun, addresses and growing counters.
    let mine = list(Some(alice), &socket);
    assert_eq!(mine.len(), 1, "{mine:?}");
    let c = &mine[0];
    assert_eq!(c.name, "work");
    assert_eq!(
        (c.uid, c.user.as_str(), c.pid),
        (alice.uid, alice.name.as_str(), pid)
    );
    assert!(c.config.ends_with("/work.conf"), "{}", c.config);
    assert_eq!(c.state, State::Connected);
    assert_eq!(c.tun.as_deref(), Some(tun.as_str()));
    assert!(
        c.addresses.iter().any(|a| a == "10.8.0.2/24"),
        "{:?}",
        c.addresses
    );
    assert!(c.since > 0 && c.state_since >= c.since && c.exit_code.is_none());
    let (ok, out) = vpn.topo.client.try_exec(
        "ping",
        &["-n", "-c", "5", "-i", "0.2", "-W", "2", "10.9.0.1"],
    );
    assert!(ok, "ping through the tunnel: {out}");
    let after = connection(Some(alice), &socket, "work");
    assert!(
        after.bytes_out >= c.bytes_out + 5 * 84 && after.bytes_in >= c.bytes_in + 5 * 84,
        "counters before {c:?}\nafter {after:?}"
    );

    bob_gets_nothing(&vpn, &bob, &socket, pid, port);

    // Alice reads her log (openvpn's own lines: this config logs to a file, so only what
    // it wrote before opening it, if anything; the request works either way).
    assert!(matches!(
        log(Some(alice), &socket, "work"),
        Response::Log { .. }
    ));

    // Root and carol (admin group) see it.
    assert_eq!(list(None, &socket).len(), 1);
    let seen = list(Some(&carol), &socket);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].uid, alice.uid);

    carol_stops_it(&vpn, &carol, &socket, pid, &before);
    // Stopping what already exited is not an error; it is just not listed.
    assert_eq!(
        ask(
            Some(alice),
            &socket,
            Request::Stop {
                name: "work".into()
            }
        ),
        Response::Stopping { names: vec![] }
    );
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn a_config_openvpn_refuses_is_listed_as_exited_with_openvpns_own_reason() {
    let admins = TestGroup::create();
    let vpn = world(&admins);
    let alice = &vpn.user;
    let bob = TestUser::create(&[]);
    let socket = socket_of(&vpn.instance);
    // No `log` line: openvpn's reason goes to its stderr, which the service keeps.
    let path = vpn.config_dir.join("broken.conf");
    std::fs::write(
        &path,
        "client\ndev tun\nremote 10.200.0.1 1194\nbogus-option-xyz 1\n",
    )
    .unwrap();
    // The session's client stays for the late error reply; once it has it, the connection
    // is listed as exited and its log is complete (no waiting).
    let t = try_probe(
        probe_command(alice),
        &vpn.service.socket,
        &Send::Startup {
            dir: vpn.config_dir.display().to_string(),
            options: "--config broken.conf".into(),
            stdin: String::new(),
        },
        Duration::from_secs(10),
        false,
    )
    .expect("the service answers");
    let pid = t.pid();
    assert_eq!(t.replies.get(1), Some(&Ok(Reply::exit_error(1))), "{t:?}");
    let c = connection(Some(alice), &socket, "broken");
    assert_eq!(
        (c.pid, c.state, c.exit_code),
        (pid, State::Exited, Some(1)),
        "{c:?}"
    );

    let Response::Log {
        lines,
        first,
        next,
        ended,
    } = log(Some(alice), &socket, "broken")
    else {
        panic!("no log")
    };
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Unrecognized option") && l.contains("bogus-option-xyz")),
        "{lines:#?}"
    );
    assert_eq!((first, next, ended), (0, lines.len() as u64, true));
    // Reading on from `next` gives nothing more.
    match ask(
        Some(alice),
        &socket,
        Request::Log {
            name: "broken".into(),
            from: next,
            max_lines: None,
        },
    ) {
        Response::Log { lines, first, .. } => assert!(lines.is_empty() && first == next),
        other => panic!("{other:?}"),
    }
    // The service's own log line carries openvpn's last line.
    let service_log = vpn.service.log();
    assert!(
        service_log.contains("openvpn exited with error: exit code = 1; its last output line"),
        "{service_log}"
    );
    // Bob may not read it.
    assert_refused(
        &log(Some(&bob), &socket, "broken"),
        ErrorCode::Forbidden,
        Some(&alice.name),
    );
}

#[test]
#[ignore = "needs root: a service, users (e2e stage)"]
fn one_user_holding_control_connections_does_not_hold_up_another_and_bad_requests_are_refused() {
    let dir = TestDir::new("control");
    let service = Service::start(&dir, "");
    let socket = socket_of(&service.instance);
    let meta = std::fs::metadata(&socket).expect("the control socket exists");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o666
    );
    let bob = TestUser::create(&[]);
    let alice = TestUser::create(&[]);

    // Bob holds more connections than he may, each with a request already sent; the extra
    // ones are refused at once, and the refusal reaches him (his request is read first, or
    // closing the socket with it unread would reset the connection and lose the answer).
    let mut hold = probe(Some(&bob));
    hold.arg(&socket)
        .args(["--hold", "10", "4000", r#"{"op":"list"}"#]);
    let holder = hold
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("control-probe --hold");
    std::thread::sleep(Duration::from_millis(500));
    // Alice is answered meanwhile, quickly.
    let started = std::time::Instant::now();
    assert!(list(Some(&alice), &socket).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let out = holder.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let refused = text
        .lines()
        .filter_map(|l| l.strip_prefix("RESPONSE "))
        .filter(|j| j.contains("\"unavailable\"") && j.contains("control connections"))
        .count();
    assert_eq!(refused, 6, "{text}");
    assert_eq!(
        text.matches(r#""result":"connections""#).count(),
        4,
        "{text}"
    );
    assert!(
        text.contains("CLOSED_AFTER 6\n"),
        "only the refused ones are closed: {text}"
    );

    // A connection that sends nothing is closed after the idle timeout (10 s).
    let mut idle = probe(Some(&bob));
    idle.arg(&socket).args(["--hold", "1", "11500"]);
    let out = idle.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CLOSED_AFTER 1\n"), "{text}");

    // Not JSON, an unknown op, a field naming someone, too long: BadRequest, and the
    // connection still answers the next request.
    let raw = |body: &str| {
        let mut c = probe(Some(&alice));
        c.arg(&socket).arg(body).arg(r#"{"op":"list"}"#);
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for bad in [
        "not json".to_owned(),
        r#"{"op":"kill"}"#.to_owned(),
        r#"{"op":"stop","name":"x","uid":0}"#.to_owned(),
        format!(r#"{{"op":"status","name":"{}"}}"#, "a".repeat(5000)),
    ] {
        let text = raw(&bad);
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        assert!(first.contains("\"bad_request\""), "{bad:.40}: {text}");
        assert!(
            lines.next().unwrap_or_default().contains("\"connections\""),
            "{text}"
        );
    }
    drop(service);
    assert!(!socket.exists(), "the control socket is removed at stop");
}

/// A session writing its output as fast as it can: its log keeps only the newest lines, and
/// another user's requests are answered quickly all along.
#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn a_session_flooding_its_output_keeps_its_newest_lines_and_delays_no_one() {
    const LINES: u64 = 3_000_000;
    let mut setup = Setup::new(&Pushes::default(), false, Dns::Direct);
    setup.openvpn = Openvpn::Fake;
    let vpn = Vpn::with(&setup);
    let alice = &vpn.user;
    let bob = TestUser::create(&[]);
    let socket = socket_of(&vpn.instance);
    vpn.fake_config("flood.conf", &format!("print {LINES} flood line\nwait\n"));
    let pid = vpn.start("flood.conf").expect("the service answers").pid();

    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    let mut seen_midway = false;
    let (lines, first, next) = loop {
        let asked = std::time::Instant::now();
        assert!(list(Some(&bob), &socket).is_empty());
        slowest = slowest.max(asked.elapsed());
        let Response::Log {
            lines, first, next, ..
        } = log(Some(alice), &socket, "flood")
        else {
            panic!("no log")
        };
        assert!(lines.len() <= 1000, "{} lines", lines.len());
        if lines.last().map(String::as_str) == Some("printed") {
            break (lines, first, next);
        }
        seen_midway |= first > 0;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the flood did not end: {:?}",
            lines.last()
        );
    };
    eprintln!(
        "{LINES} lines in {:?}; the slowest answer to another user took {slowest:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "another user waited {slowest:?} during the flood"
    );
    assert!(seen_midway, "the flood ended before it was seen going on");
    assert_eq!(next, LINES + 1, "every line was counted");
    assert_eq!(first, next - lines.len() as u64);
    assert_eq!(lines.len(), 1000, "the newest 1000 lines are kept");
    assert_eq!(lines[998], format!("flood line {}", LINES - 1));
    assert_eq!(
        ask(
            Some(alice),
            &socket,
            Request::Stop {
                name: "flood".into()
            }
        ),
        Response::Stopping {
            names: vec!["flood".into()]
        }
    );
    assert!(eventually(Duration::from_secs(10), || !alive(pid)));
    vpn.wait_undone(1);
}

/// openvpn's soft restart (SIGUSR1) runs its down hooks, which take the addresses away, then
/// its up hooks again: the connection shows `reconnecting`, then `connected` again.
#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn a_restart_shows_reconnecting_then_connected_again() {
    let admins = TestGroup::create();
    let vpn = world(&admins);
    let alice = &vpn.user;
    let socket = socket_of(&vpn.instance);
    vpn.config("restart.conf", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("restart.conf");
    let up = connection(Some(alice), &socket, "restart");
    assert_eq!(up.state, State::Connected, "{up:?}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGUSR1,
    );
    let mut states = vec![up.state];
    let again = eventually(Duration::from_secs(30), || {
        let c = connection(Some(alice), &socket, "restart");
        if states.last() != Some(&c.state) {
            states.push(c.state);
        }
        c.state == State::Connected && states.contains(&State::Reconnecting)
    });
    assert!(again, "states seen: {states:?}");
    let back = connection(Some(alice), &socket, "restart");
    assert!(back.state_since >= up.state_since, "{back:?}");
    // The server may hand out another address to the new connection.
    assert!(
        back.addresses.iter().any(|a| a.starts_with("10.8.0.")),
        "{back:?}"
    );
    assert_eq!(back.pid, pid);
    assert_eq!(
        ask(Some(alice), &socket, Request::StopAll),
        Response::Stopping {
            names: vec!["restart".into()]
        }
    );
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
}
