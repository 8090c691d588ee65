//! The undo journal under faults (issue 7, "Faults"): a disk that fills up while sessions
//! write their journals, and journals left damaged or cut short in the run directory before
//! the service starts. Each gives a clear log line, no crash, and as much clean-up as the
//! readable records allow. Run as root by the e2e stage.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openvpnserv_core::linux::hook::{translate, Phase};
use openvpnserv_core::linux::journal::{parse, Change, DnsUndo, Journal};
use openvpnserv_e2e::faults::{assert_clean_log, FakeSession, Tmpfs};
use openvpnserv_e2e::fixture::{eventually, read_record};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::vpn::{assert_same, Dns, Openvpn, Setup, Vpn};
use openvpnserv_proto::channel::Request;
use openvpnserv_proto::Reply;

/// Routes a session asks for besides the pushed ones, so that its journal outgrows a page.
const EXTRA_ROUTES: u32 = 40;

fn world(dns: Dns) -> Vpn {
    Vpn::with(&Setup {
        openvpn: Openvpn::Fake,
        ..Setup::new(&Pushes::default(), false, dns)
    })
}

/// Session `k` with [`EXTRA_ROUTES`] more routes (`198.18.<i>.0/24`).
fn many_routes(k: u32) -> FakeSession {
    let mut s = FakeSession::numbered(k);
    let gw = s.env["route_vpn_gateway"].clone();
    for i in 0..EXTRA_ROUTES {
        let n = 3 + i;
        s.env
            .insert(format!("route_network_{n}"), format!("198.18.{i}.0"));
        s.env
            .insert(format!("route_netmask_{n}"), "255.255.255.0".into());
        s.env.insert(format!("route_gateway_{n}"), gw.clone());
    }
    s
}

fn marker(vpn: &Vpn, name: &str) -> PathBuf {
    vpn.logs.join(name)
}

fn wait_for(path: &Path, vpn: &Vpn) {
    assert!(
        eventually(Duration::from_secs(30), || path.exists()),
        "{} never appeared:\n{}",
        path.display(),
        vpn.service.log()
    );
}

/// The acks the fake openvpn recorded: the error code of each, in order (`None`: no ack).
fn acks(record: &serde_json::Value) -> Vec<Option<u64>> {
    record["acks"]
        .as_array()
        .expect("acks")
        .iter()
        .map(|a| a.get(1).and_then(serde_json::Value::as_u64))
        .collect()
}

/// The extra routes `requests` asks for, with the ack each got.
fn extra_routes(requests: &[Request], acks: &[Option<u64>]) -> Vec<(IpAddr, Option<u64>)> {
    requests
        .iter()
        .zip(acks)
        .filter_map(|(r, a)| match r {
            Request::AddRoute(m) => {
                let dst = m.prefix.to_ip(m.family)?;
                dst.to_string().starts_with("198.18.").then_some((dst, *a))
            }
            _ => None,
        })
        .collect()
}

/// A new session while the disk is full cannot even create its journal: it is refused,
/// with the reason, and nothing of it is left.
fn refused_without_a_journal(vpn: &Vpn) {
    vpn.fake_config("b", &FakeSession::numbered(6).directives());
    let b = vpn.start("b").expect("service");
    match b.first() {
        Reply::Error { function, text, .. } => {
            assert!(
                format!("{function} {text}").contains("No space left on device"),
                "{b:?}"
            );
        }
        Reply::Pid(_) => panic!("a session started without a journal"),
    }
    let run_files: Vec<String> = std::fs::read_dir(vpn.run_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !run_files.iter().any(|f| f.contains("net-2")),
        "the refused session left {run_files:?}"
    );
}

/// Each of A's extra routes was refused or made, never made without its journal record
/// (`table` is the routing table while the disk was full); and once there was room again,
/// A's second round went through entirely.
fn check_routes(record: &serde_json::Value, a: &FakeSession, table: &str) {
    let tun = record["argv"]
        .as_array()
        .unwrap()
        .windows(2)
        .rev()
        .find(|w| w[0] == "--dev")
        .and_then(|w| w[1].as_str())
        .expect("--dev")
        .to_owned();
    let mut env = a.env.clone();
    env.insert("dev".into(), tun);
    let up = translate(Phase::Up, &env, a.options).unwrap();
    let route_up = translate(Phase::RouteUp, &env, a.options).unwrap();
    let got = acks(record);
    let routes = extra_routes(&route_up, &got[up.len()..up.len() + route_up.len()]);
    assert_eq!(routes.len(), EXTRA_ROUTES as usize);
    let refused = routes.iter().filter(|(_, a)| *a != Some(0)).count();
    assert!(refused > 0, "the full disk refused nothing: {routes:?}");
    eprintln!(
        "full disk: {refused} of {EXTRA_ROUTES} routes refused: {:?}",
        routes.iter().map(|(_, a)| *a).collect::<Vec<_>>()
    );
    for (dst, ack) in &routes {
        let present = table.contains(&format!("{dst}/24 via"));
        assert_eq!(
            present,
            *ack == Some(0),
            "{dst}: ack {ack:?}, in the table: {present}\n{table}"
        );
    }
    let last = &got[got.len() - up.len() - route_up.len()..];
    assert!(last.iter().all(|a| *a == Some(0)), "{got:?}");
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, mounts (e2e stage)"]
fn a_full_disk_refuses_changes_it_cannot_journal_and_the_service_goes_on() {
    let mut vpn = world(Dns::Direct);
    // The run directory becomes a 64 KiB tmpfs (mounted over it while no service runs).
    vpn.service.crash();
    let run = Tmpfs::mount(&vpn.run_dir(), "64k");
    vpn.restart_service();
    let before = vpn.snapshot();

    // Session A makes its changes (up), then, while the disk is full, asks for its routes
    // (route-up), then, once there is room again, goes down and up once more.
    let up_done = marker(&vpn, "a.up");
    let routes_done = marker(&vpn, "a.routes");
    let record = marker(&vpn, "a.json");
    let a = many_routes(5);
    let directives = a.directives().replacen(
        "hook route-up\n",
        &format!(
            "touch {}\ndelay-ms 1500 1500\nhook route-up\ntouch {}\ndelay-ms 1500 1500\n\
             hook route-pre-down\nhook down\nhook up\nhook route-up\n",
            up_done.display(),
            routes_done.display()
        ),
        1,
    );
    vpn.fake_config("a", &format!("record {}\n{directives}", record.display()));
    let pid_a = vpn.start("a").expect("service").pid();
    wait_for(&up_done, &vpn);
    let filler = run.fill("filler");

    refused_without_a_journal(&vpn);

    // A's routes: each one refused or made, never made without its journal record.
    wait_for(&routes_done, &vpn);
    let table = vpn.topo.client.ip(&["route", "show"]);
    let log = vpn.service.log();
    let clear = log.lines().any(|l| {
        l.contains("session{id=1 ") && l.contains("undo journal") && l.contains("No space left")
    });
    assert!(clear, "no clear log line about the full disk:\n{log}");
    std::fs::remove_file(&filler).unwrap();
    check_routes(&read_record(&record), &a, &table);

    // The service never stopped serving: a new session works.
    assert!(vpn.service.exited().is_none(), "the service died");
    let c_done = marker(&vpn, "c.done");
    let mut c = FakeSession::numbered(7);
    c.done_file = Some(c_done.clone());
    vpn.fake_config("c", &c.directives());
    let pid_c = vpn.start("c").expect("service").pid();
    wait_for(&c_done, &vpn);

    // The journals written through all this still undo everything after a crash.
    vpn.service.crash();
    vpn.restart_service();
    let log = vpn.service.log();
    assert_eq!(log.matches("undoing what").count(), 2, "{log}");
    // Written through a full disk, the journal has no torn or glued line: a write cut
    // short was cut off again.
    let replays: Vec<&str> = log.lines().filter(|l| l.contains("undoing what")).collect();
    assert!(
        replays.iter().all(|l| l.contains("unreadable=0")),
        "{replays:#?}"
    );
    assert_clean_log(&log);
    assert_same(&before, &vpn.snapshot(), &vpn);
    for pid in [pid_a, pid_c] {
        assert!(eventually(Duration::from_secs(10), || {
            !openvpnserv_e2e::fixture::alive(pid)
        }));
    }
    // `run` drops first (declared last): the tmpfs is unmounted, then the service's guard
    // removes the run directory underneath, stale socket and all.
}

/// What a journal's text says is still to undo.
fn plan(text: &[u8]) -> Vec<Change> {
    let (records, _) = parse(&String::from_utf8_lossy(text));
    Journal::from_records(&records)
        .undo_plan()
        .into_iter()
        .map(|(_, c)| c)
        .collect()
}

/// The changes that damaging a journal from `original` to `damaged` hid from the replay,
/// less those that go anyway: what lived on a tun the replay deletes, and the direct DNS
/// backend's settings (the replay puts the original resolv.conf back whatever it reads).
fn hidden(original: &[u8], damaged: &[u8]) -> Vec<Change> {
    let left = plan(damaged);
    let tuns: Vec<&str> = left
        .iter()
        .filter_map(|c| match c {
            Change::Tun { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    plan(original)
        .into_iter()
        .filter(|c| !left.contains(c))
        .filter(|c| !c.on_link().is_some_and(|l| tuns.contains(&l)))
        .filter(|c| !matches!(c, Change::Dns(DnsUndo::Direct { .. })))
        .collect()
}

/// Asserts that a change the replay could not see is still there, and takes it away.
fn remove_by_hand(vpn: &Vpn, change: &Change) {
    let c = &vpn.topo.client;
    match change {
        Change::Firewall { table } => {
            c.exec("nft", &["delete", "table", "inet", table]);
        }
        Change::Route(r) => {
            c.ip(&[
                "route",
                "del",
                &format!("{}/{}", r.dst, r.prefix_len),
                "dev",
                &r.dev,
            ]);
        }
        other => panic!("no way to check {other:?} by hand"),
    }
}

/// How a journal is damaged.
fn damage(path: &Path, how: &str) {
    let text = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let mut out: Vec<u8> = Vec::new();
    match how {
        // A write torn by a crash of the machine: the last line cut in half.
        "torn-last-line" => {
            let last = lines.last().unwrap();
            out.extend(text[..text.len() - last.len() / 2].iter());
        }
        // Garbage between the records.
        "garbage-lines" => {
            for (i, l) in lines.iter().enumerate() {
                out.extend_from_slice(l);
                match i % 4 {
                    0 => out.extend_from_slice(b"\xff\xfe\x00binary\x80\x81\n"),
                    1 => out.extend_from_slice(b"{\"op\":\"intent\",\"seq\":\n"),
                    2 => out.extend_from_slice(
                        b"{\"op\":\"launch\",\"seq\":1}\n{\"op\":\"intent\",\"seq\":7,\"change\":{\"kind\":\"wormhole\"}}\n",
                    ),
                    _ => {
                        out.extend(std::iter::repeat_n(b'x', 70_000));
                        out.push(b'\n');
                    }
                }
            }
        }
        // No session line, and cut in the middle of a line halfway through.
        "headless-and-cut" => {
            let body = &text[lines[0].len()..];
            out.extend_from_slice(&body[..body.len() / 2]);
        }
        // Zeros after the records, as a file system may show after a power loss.
        "zero-tail" => {
            out.extend_from_slice(&text);
            out.extend(std::iter::repeat_n(0u8, 4096));
        }
        // A sequence number at the very top of its range (a flipped bit).
        "huge-seq" => {
            out.extend_from_slice(&text);
            out.extend_from_slice(
                format!(
                    "{{\"op\":\"done\",\"seq\":{}}}\n{{\"op\":\"intent\",\"seq\":{},\"change\":{{\"kind\":\"firewall\",\"table\":\"openvpnserv_none\"}}}}\n",
                    u64::MAX,
                    u64::MAX
                )
                .as_bytes(),
            );
        }
        other => panic!("no such damage: {other}"),
    }
    std::fs::write(path, out).unwrap();
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn damaged_or_truncated_journals_are_undone_as_far_as_they_can_be_read() {
    let mut vpn = world(Dns::Direct);
    let before = vpn.snapshot();
    // Five sessions make their changes (a full tunnel with its host route outside the
    // tunnel, the leak block, DNS, a down-and-up), then the service dies.
    let sessions = [
        (0, "torn-last-line"),
        (1, "garbage-lines"),
        (2, "headless-and-cut"),
        (3, "zero-tail"),
        (10, "huge-seq"),
    ];
    let mut pids = Vec::new();
    for (k, _) in sessions {
        let mut s = FakeSession::numbered(k);
        let done = marker(&vpn, &format!("s{k}.done"));
        s.done_file = Some(done.clone());
        vpn.fake_config(&format!("s{k}"), &s.directives());
        pids.push(vpn.start(&format!("s{k}")).expect("service").pid());
        wait_for(&done, &vpn);
    }
    vpn.service.crash();
    let run = vpn.run_dir();
    // Sessions are numbered from 1 in the order they started.
    let mut lost = Vec::new();
    for (id, (_, how)) in sessions.iter().enumerate() {
        let path = run.join(format!("net-{}.journal", id + 1));
        let original = std::fs::read(&path).unwrap();
        damage(&path, how);
        lost.extend(hidden(&original, &std::fs::read(&path).unwrap()));
    }
    // And journals that hold nothing of use.
    let mut rng = fastrand::Rng::with_seed(7);
    let noise: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(4096).collect();
    std::fs::write(run.join("net-90.journal"), noise).unwrap();
    std::fs::write(run.join("net-91.journal"), b"").unwrap();
    std::fs::write(
        run.join("net-92.journal"),
        b"{\"op\":\"done\",\"seq\":3}\n{\"op\":\"gone\",\"seq\":99}\n",
    )
    .unwrap();

    vpn.restart_service();
    let log = vpn.service.log();
    // A clear line for each journal with lines that could not be read (the huge number is
    // readable: it just must not crash the replay).
    for (id, (_, how)) in sessions.iter().enumerate() {
        let path = run.join(format!("net-{}.journal", id + 1));
        let path = path.display().to_string();
        let said = log
            .lines()
            .any(|l| l.contains(" WARN ") && l.contains(&path) && l.contains("could not be read"));
        assert_eq!(said, *how != "huge-seq", "{how}: {path}:\n{log}");
        assert!(
            log.contains(&format!("undoing what session {} ", id + 1))
                || *how == "headless-and-cut",
            "{how}:\n{log}"
        );
    }
    assert!(
        log.contains("net-90.journal: 15 line(s) could not be read"),
        "{log}"
    );
    assert_clean_log(&log);
    // Journals of which no line could be read are set aside for an administrator, never
    // deleted (net-92 has readable lines: it is replayed, which undoes nothing, and goes).
    for (name, kept) in [("net-90", true), ("net-91", true), ("net-92", false)] {
        let aside = run.join(format!("{name}.journal.unreadable"));
        assert_eq!(aside.exists(), kept, "{}", aside.display());
        assert!(!run.join(format!("{name}.journal")).exists(), "{name}");
        if kept {
            std::fs::remove_file(aside).unwrap();
        }
    }
    // Everything the readable records name is undone (a tun takes its addresses and routes
    // along, and the original resolv.conf comes back even where a DNS record was lost);
    // what only an unreadable line named stays, and nothing else.
    eprintln!("left by the damage, as expected: {lost:?}");
    for change in &lost {
        remove_by_hand(&vpn, change);
    }
    assert_same(&before, &vpn.snapshot(), &vpn);
    for pid in pids {
        assert!(eventually(Duration::from_secs(10), || {
            !openvpnserv_e2e::fixture::alive(pid)
        }));
    }
    // And the service serves.
    let mut s = FakeSession::numbered(20);
    let done = marker(&vpn, "s20.done");
    s.done_file = Some(done.clone());
    vpn.fake_config("s20", &s.directives());
    vpn.start("s20").expect("service").pid();
    wait_for(&done, &vpn);
    assert!(vpn.service.stop().success());
    assert_same(&before, &vpn.snapshot(), &vpn);
}
