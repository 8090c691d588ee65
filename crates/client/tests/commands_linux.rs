//! `iservice start`, `list`, `status`, `stop`, `restart` and `log` against a fake control
//! socket (and, for start, the fake service and management peer): their text, their JSON
//! (checked against the shipped schemas) and their exit codes.
#![cfg(target_os = "linux")]

mod support;

use openvpnserv_proto::control::{ErrorCode, Request, Response, State};
use support::{
    command_objects, connect_states, connection, finish, iservice_sub, json_events, manage, names,
    setup_and_release, Behaviour, FakeControl, FakeService, Step,
};

fn listing() -> FakeControl {
    FakeControl::start(Box::new(|request| match request {
        Request::List => {
            let mut other = connection("home", 43);
            other.user = "bob".into();
            other.state = State::Exited;
            other.exit_code = Some(1);
            other.tun = None;
            other.addresses.clear();
            Response::Connections {
                connections: vec![connection("work", 42), other],
            }
        }
        Request::Status { name } if name == "work" => Response::Connection {
            connection: connection("work", 42),
        },
        Request::Status { name } if name == "bobs" => {
            Response::error(ErrorCode::Forbidden, "bobs belongs to another user")
        }
        _ => Response::error(ErrorCode::NotFound, "no connection named that"),
    }))
}

#[test]
fn list_shows_a_table_with_readable_sizes() {
    let control = listing();
    let out = finish(manage(&control.path, &["list"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>().join(" "),
        "NAME USER STATE SINCE TUN ADDRESSES IN OUT"
    );
    for cell in [
        "work",
        "alice",
        "connected",
        "ovs0",
        "10.8.0.2/24,fd00:8::1000/64",
        "1.5 KiB",
        "3.0 MiB",
    ] {
        assert!(lines[1].contains(cell), "{cell} in {}", lines[1]);
    }
    assert!(lines[2].contains("exited (1)"), "{}", lines[2]);
    assert_eq!(control.requests(), vec![Request::List]);
}

#[test]
fn list_json_is_the_services_connections() {
    let control = listing();
    let out = finish(manage(&control.path, &["list", "--json"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(0));
    let objects = command_objects(&out.stdout);
    assert_eq!(objects.len(), 1);
    let list = objects[0]["connections"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "work");
    assert_eq!(list[0]["bytes_in"], 1536);
    assert_eq!(list[1]["state"], "exited");
}

#[test]
fn status_shows_one_connection_and_refusals_have_their_exit_codes() {
    let control = listing();
    let out = finish(manage(&control.path, &["status", "work"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "name:      work",
        "state:     connected",
        "tun:       ovs0",
        "traffic:   in 1.5 KiB, out 3.0 MiB",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    let out = finish(
        manage(&control.path, &["status", "work", "--json"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(command_objects(&out.stdout)[0]["connection"]["pid"], 42);

    for (name, code, outcome) in [("nobody", 8, "not_found"), ("bobs", 9, "forbidden")] {
        let out = finish(manage(&control.path, &["status", name]).spawn().unwrap());
        assert_eq!(out.status.code(), Some(code), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("iservice: error: "), "{err}");
        let out = finish(
            manage(&control.path, &["status", name, "--json"])
                .spawn()
                .unwrap(),
        );
        assert_eq!(out.status.code(), Some(code));
        let objects = command_objects(&out.stdout);
        assert_eq!(objects[0]["error"]["outcome"], outcome);
        assert_eq!(objects[0]["error"]["code"], code);
    }
}

#[test]
fn stop_waits_until_openvpn_has_exited() {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = asked.clone();
    let control = FakeControl::start(Box::new(move |request| match request {
        Request::Stop { name } if name == "work" => Response::Stopping {
            names: vec!["work".into()],
        },
        Request::StopAll => Response::Stopping { names: vec![] },
        Request::Status { .. } => {
            // Exiting at the first look, exited at the second.
            let mut c = connection("work", 42);
            c.state = if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                State::Exiting
            } else {
                State::Exited
            };
            Response::Connection { connection: c }
        }
        _ => Response::error(ErrorCode::NotFound, "no such connection"),
    }));
    let out = finish(manage(&control.path, &["stop", "work"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stopping work\nwork has exited\n"
    );
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    let out = finish(
        manage(&control.path, &["stop", "--all", "--json"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(0));
    let objects = command_objects(&out.stdout);
    assert_eq!(objects[0]["stopping"], serde_json::json!([]));
    assert!(control.requests().contains(&Request::StopAll));

    let out = finish(manage(&control.path, &["stop", "other"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn stop_needs_a_name_or_all() {
    let control = listing();
    let out = finish(manage(&control.path, &["stop"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(2));
    let out = finish(
        manage(&control.path, &["stop", "work", "--all"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(2));
}

fn logging(ended_after: u64) -> FakeControl {
    let lines = ["first", "second", "third", "fourth"];
    FakeControl::start(Box::new(move |request| match request {
        Request::Log { name, from, .. } if name == "work" => {
            // One line per answer, so that paging and following are exercised.
            let at = usize::try_from(*from).unwrap();
            let lines: Vec<String> = lines.get(at).map(|l| (*l).to_owned()).into_iter().collect();
            Response::Log {
                next: *from + lines.len() as u64,
                first: *from,
                lines,
                ended: *from + 1 >= ended_after,
            }
        }
        Request::Log { .. } => Response::error(ErrorCode::Forbidden, "not yours"),
        _ => Response::error(ErrorCode::BadRequest, "unexpected"),
    }))
}

#[test]
fn log_shows_every_line_or_the_last_ones() {
    let control = logging(4);
    let out = finish(manage(&control.path, &["log", "work"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first\nsecond\nthird\nfourth\n"
    );
    let out = finish(
        manage(&control.path, &["log", "work", "-n", "2", "--json"])
            .spawn()
            .unwrap(),
    );
    let objects = command_objects(&out.stdout);
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[0]["number"], 2);
    assert_eq!(objects[0]["text"], "third");
    assert_eq!(objects[1]["text"], "fourth");
    assert_eq!(objects[2]["next"], 4);
    assert_eq!(objects[2]["ended"], true);

    let out = finish(manage(&control.path, &["log", "bobs"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(9));
}

#[test]
fn log_follow_goes_on_until_openvpn_has_exited() {
    // The log "ends" only at line 4; the first pages say more may come.
    let control = logging(4);
    let out = finish(
        manage(&control.path, &["log", "work", "--follow"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first\nsecond\nthird\nfourth\n"
    );
}

#[test]
fn without_a_control_socket_the_service_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("control");
    let out = finish(manage(&missing, &["list"]).spawn().unwrap());
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control socket"), "{err}");
    let out = finish(manage(&missing, &["list", "--json"]).spawn().unwrap());
    assert_eq!(
        command_objects(&out.stdout)[0]["error"]["outcome"],
        "service_unavailable"
    );
}

#[test]
fn restart_of_another_users_connection_is_refused_before_anything_is_stopped() {
    let control = FakeControl::start(Box::new(|request| match request {
        Request::Status { .. } => {
            let mut c = connection("work", 42);
            c.uid = rustix::process::getuid().as_raw() + 1;
            c.user = "bob".into();
            Response::Connection { connection: c }
        }
        _ => Response::Stopping {
            names: vec!["work".into()],
        },
    }));
    let out = finish(
        manage(&control.path, &["restart", "work", "--json"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(9));
    let events = json_events(&out.stdout);
    let exit = events.last().unwrap();
    assert_eq!(exit["outcome"], "forbidden");
    assert!(
        exit["message"].as_str().unwrap().contains("only its owner"),
        "{exit}"
    );
    assert!(
        !control
            .requests()
            .iter()
            .any(|r| matches!(r, Request::Stop { .. })),
        "nothing is stopped"
    );
}

/// The fake service's "openvpn" is the test process (it holds the management port).
fn test_pid() -> u32 {
    std::process::id()
}

#[test]
fn start_returns_once_connected_and_leaves_openvpn_running() {
    let mut script = setup_and_release();
    script.push(Step::Send(connect_states()));
    // Before it leaves, the client makes sure openvpn never holds again.
    script.push(Step::Expect("hold off".into()));
    script.push(Step::Send("SUCCESS: hold flag set to OFF\r\n".into()));
    let service = FakeService::start(Behaviour::Start {
        script,
        late: None,
        listen: true,
    });
    let control = FakeControl::at(
        service.path.with_file_name("control"),
        Box::new(|request| match request {
            Request::List => Response::Connections {
                connections: vec![connection("other", 1), connection("vpn-2", test_pid())],
            },
            _ => Response::error(ErrorCode::BadRequest, "unexpected"),
        }),
    );
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("vpn.conf"), "client\n").unwrap();
    let run = tempfile::tempdir().unwrap();
    let config = conf.path().join("vpn.conf");
    let out = finish(
        iservice_sub(
            "start",
            &service.path,
            run.path(),
            &[config.to_str().unwrap(), "--json"],
        )
        .spawn()
        .unwrap(),
    );
    let events = json_events(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{events:#?}");
    let names = names(&events);
    assert!(!names.contains(&"stopping".to_owned()), "{names:?}");
    let connection = events.iter().find(|e| e["event"] == "connection").unwrap();
    assert_eq!(connection["name"], "vpn-2");
    let exit = events.last().unwrap();
    assert_eq!(exit["outcome"], "connected");
    assert!(
        exit["message"]
            .as_str()
            .unwrap()
            .contains("iservice stop vpn-2"),
        "{exit}"
    );
    // The script ran to its end: `hold off` was sent, and nothing else after it.
    service.received();
    // The password file is gone: openvpn read it at its start.
    assert_eq!(std::fs::read_dir(run.path()).unwrap().count(), 0);

    drop(control);
}

/// A service whose openvpn dies at start, and a control socket with its log: 12 lines and
/// openvpn's reason.
fn failing_world() -> (FakeService, FakeControl) {
    let service = FakeService::start(Behaviour::Start {
        script: vec![],
        late: Some("0x20000000\nOpenVPN exited with error: exit code = 1\n".into()),
        listen: false,
    });
    let lines: Vec<String> = (1..=12)
        .map(|i| format!("line {i}"))
        .chain(["Options error: Unrecognized option or missing or extra parameter(s) in vpn.conf:3: bogus-option (2.6.14)".to_owned()])
        .collect();
    let control = FakeControl::at(
        service.path.with_file_name("control"),
        Box::new(move |request| match request {
            Request::List => {
                let mut c = connection("vpn", test_pid());
                c.state = State::Exited;
                c.exit_code = Some(1);
                Response::Connections {
                    connections: vec![c],
                }
            }
            Request::Log { from, .. } => {
                let at = usize::try_from(*from).unwrap().min(lines.len());
                Response::Log {
                    lines: lines[at..].to_vec(),
                    first: *from,
                    next: lines.len() as u64,
                    ended: true,
                }
            }
            _ => Response::error(ErrorCode::BadRequest, "unexpected"),
        }),
    );
    (service, control)
}

#[test]
fn a_failing_openvpn_brings_its_last_lines_in_json() {
    let (service, _control) = failing_world();
    let run = tempfile::tempdir().unwrap();
    let out = finish(
        iservice_sub(
            "connect",
            &service.path,
            run.path(),
            &["/x/vpn.conf", "--json"],
        )
        .spawn()
        .unwrap(),
    );
    assert_eq!(out.status.code(), Some(6));
    let events = json_events(&out.stdout);
    let exit = events.last().unwrap();
    let log = exit["openvpn_log"].as_array().unwrap();
    assert_eq!(log.len(), 10, "the last 10 lines");
    assert_eq!(log[0], "line 4");
    assert!(log[9].as_str().unwrap().contains("Unrecognized option"));
    assert!(exit["message"]
        .as_str()
        .unwrap()
        .contains("Unrecognized option"));
}

#[test]
fn a_failing_openvpn_brings_its_last_lines_on_the_terminal() {
    let (service, _control) = failing_world();
    let run = tempfile::tempdir().unwrap();
    let out = finish(
        iservice_sub("start", &service.path, run.path(), &["/x/vpn.conf"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("openvpn exited with error code 1"), "{err}");
    assert!(err.contains("openvpn's last lines:\n  line 4\n"), "{err}");
    assert!(err.contains("Unrecognized option"), "{err}");
}
