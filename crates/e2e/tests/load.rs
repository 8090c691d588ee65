//! Load: many concurrent clients, silent clients with a connect-and-close flood while a
//! legitimate client is served, and bounded service memory.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};
use std::process::Stdio;

use openvpnserv_e2e::fixture::{eventually, Fixture};
use openvpnserv_e2e::service::{binary, connect_seqpacket};
use openvpnserv_e2e::users::TestUser;
use openvpnserv_proto::{Reply, StartupMessage};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn connect_to(path: &str) -> OwnedFd {
    connect_seqpacket(path).expect("connect")
}

fn read_reply(fd: &OwnedFd, timeout_ms: u16) -> Option<Reply> {
    let mut pfd = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
    if poll(&mut pfd, PollTimeout::from(timeout_ms)).ok()? == 0 {
        return None;
    }
    let mut buf = [0u8; 1024];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
    Reply::decode(&buf[..n]).ok()
}

#[test]
#[ignore = "needs root: runs the service and a thousand openvpn stand-ins (e2e stage)"]
fn a_thousand_concurrent_clients() {
    let fx = Fixture::new("max_sessions = 1100\nmax_sessions_per_user = 1100");
    fx.config("quick.ovpn", "exit 0");
    let socket = fx.service.socket.display().to_string();
    let msg = StartupMessage::new(fx.config_dir(), "--config quick.ovpn", "\n").encode();
    // All connected before any sends: a thousand clients at once.
    let clients: Vec<OwnedFd> = (0..1000).map(|_| connect_to(&socket)).collect();
    for fd in &clients {
        send(fd.as_raw_fd(), &msg, MsgFlags::empty()).expect("send");
    }
    let mut pids = 0;
    for fd in &clients {
        match read_reply(fd, 30_000) {
            Some(Reply::Pid(_)) => pids += 1,
            other => panic!("client got {other:?}"),
        }
    }
    assert_eq!(pids, 1000);
    // Every session ends and gives its slot back.
    drop(clients);
    assert!(
        eventually(Duration::from_secs(30), || {
            let log = fx.service.log();
            log.matches("session ended").count() >= 1000
        }),
        "sessions did not all end"
    );
}

#[test]
#[ignore = "needs root: runs the service under a connection flood (e2e stage)"]
fn silent_clients_and_a_flood_do_not_starve_a_real_client() {
    // The attacker may hold 600 connections at once; the 500 silent ones fit under that.
    let fx = Fixture::new("max_sessions = 2048\nmax_sessions_per_user = 600");
    fx.config("quick.ovpn", "exit 0");
    let socket = fx.service.socket.display().to_string();
    let pid = fx.service.pid();
    let idle = rss_kib(pid);

    // Another user: 500 clients that connect and say nothing, and a connect-and-close flood
    // from two threads for 4 s.
    let attacker = TestUser::create(&[]);
    let mut flood = attacker.command(binary("probe"));
    flood
        .args([&socket, "4000", "-", "flood", "500", "2"])
        .stdout(Stdio::piped());
    let flood = flood.spawn().expect("flood");
    std::thread::sleep(Duration::from_millis(500));

    // Meanwhile a legitimate client starts openvpn, ten times.
    let msg = StartupMessage::new(fx.config_dir(), "--config quick.ovpn", "\n").encode();
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let fd = connect_to(&socket);
        send(fd.as_raw_fd(), &msg, MsgFlags::empty()).expect("send");
        let reply = read_reply(&fd, 5000);
        times.push(t.elapsed());
        assert!(matches!(reply, Some(Reply::Pid(_))), "{reply:?}");
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = flood.wait_with_output().expect("flood ends");
    let out = String::from_utf8_lossy(&out.stdout);
    let flooded: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("FLOODED "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(out.contains("SILENT 500"), "{out}");
    times.sort();
    let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
    println!("legit client during {flooded} flood connections and 500 silent ones: median {median:?}, max {max:?}; RSS idle {idle} KiB, peak {peak} KiB");
    assert!(flooded > 1000, "the flood ran: {out}");
    assert!(
        max < Duration::from_millis(100),
        "served in under 100 ms: {times:?}"
    );
    assert!(
        peak < idle + 64 * 1024,
        "memory stays bounded: idle {idle} KiB, peak {peak} KiB"
    );

    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(pid);
    println!("RSS after the flood: {after} KiB");
    assert!(
        after < idle + 16 * 1024,
        "memory returns near idle: idle {idle} KiB, after {after} KiB"
    );
}
