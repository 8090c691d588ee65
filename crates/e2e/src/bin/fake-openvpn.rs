//! A stand-in for openvpn that records how the service started it.
//!
//! It reads its instructions from the file given with `--config` (one directive per line):
//!
//! ```text
//! record /path/out.json     write what it saw there (argv, cwd, ids, groups, env, fds, stdin, acks)
//! send register_dns         send a channel request on fd 3 and record the ack
//! send-hex 0100…            send raw bytes on the channel and record the ack (or its absence)
//! exit 3                    exit with this code when done (default 0)
//! wait                      after recording, wait for SIGTERM instead of exiting
//! ignore-term               ignore SIGTERM (so the service has to kill it)
//! sleep-ms 500              sleep before exiting
//! ```
//!
//! The record is written atomically (temp file + rename) to `<record>.started` before the
//! channel is used and to `<record>` after, before waiting, so tests can read it while the
//! process runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openvpnserv_proto::channel::{Codec, Envelope, Request};
use serde::Serialize;

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

#[derive(Serialize, Default)]
struct Record {
    argv: Vec<String>,
    cwd: String,
    pid: u32,
    ppid: u32,
    uid: u32,
    euid: u32,
    gid: u32,
    egid: u32,
    groups: Vec<u32>,
    nice: i32,
    env: BTreeMap<String, String>,
    fds: BTreeMap<i32, String>,
    stdin: String,
    acks: Vec<Option<(i32, u32, usize)>>,
}

fn read_stdin() -> String {
    // stdin stays open for the whole session: read what arrives within a short while.
    // SAFETY: fd 0 is open for the life of the process; we only borrow it.
    let fd = unsafe { BorrowedFd::borrow_raw(0) };
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(700);
    let mut stdin = std::io::stdin().lock();
    while Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"\n") {
                    break;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fds() -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let target = std::fs::read_link(entry.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            out.insert(n, target);
        }
    }
    out
}

/// Sends bytes on the channel (fd 3) and waits up to 3 s for one ack.
fn exchange(bytes: &[u8]) -> Option<(i32, u32, usize)> {
    let codec = Codec::NATIVE;
    // SAFETY: fd 3 is the channel the service passed; borrowed for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(3) };
    nix::sys::socket::send(fd.as_raw_fd(), bytes, nix::sys::socket::MsgFlags::empty()).ok()?;
    let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(3000u16)).ok()? == 0 {
        return None;
    }
    let mut buf = [0u8; 64];
    let n = nix::sys::socket::recv(
        fd.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::empty(),
    )
    .ok()?;
    if n == 0 {
        return None;
    }
    codec
        .decode_ack(&buf[..n])
        .ok()
        .map(|a| (a.message_id, a.error_number, n))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let config = argv
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone());
    let directives = config
        .as_deref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    let mut record_path = None;
    let mut exit_code = 0;
    let mut wait = false;
    let mut ignore_term = false;
    let mut sleep_ms = 0u64;
    let mut sends: Vec<Vec<u8>> = Vec::new();
    for line in directives.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "record" => record_path = Some(value.to_owned()),
            "exit" => exit_code = value.parse().unwrap_or(1),
            "wait" => wait = true,
            "ignore-term" => ignore_term = true,
            "sleep-ms" => sleep_ms = value.parse().unwrap_or(0),
            "send" if value == "register_dns" => sends.push(
                Codec::NATIVE
                    .encode(&Envelope {
                        message_id: 7,
                        request: Request::RegisterDns,
                    })
                    .unwrap_or_default(),
            ),
            "send-hex" => sends.push(hex(value)),
            _ => {}
        }
    }
    let handler = if ignore_term {
        libc::SIG_IGN
    } else {
        on_term as *const () as usize
    };
    // SAFETY: installs a handler that only stores to an atomic, or ignores the signal.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
    }

    let mut record = Record {
        argv,
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        pid: std::process::id(),
        ppid: nix::unistd::getppid().as_raw() as u32,
        uid: nix::unistd::getuid().as_raw(),
        euid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        groups: nix::unistd::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(nix::unistd::Gid::as_raw)
            .collect(),
        // SAFETY: getpriority has no memory effects.
        nice: unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) },
        env: std::env::vars().collect(),
        fds: fds(),
        ..Record::default()
    };
    record.stdin = read_stdin();
    let write = |record: &Record, path: &str| {
        let tmp = format!("{path}.tmp");
        if let Ok(json) = serde_json::to_vec_pretty(record) {
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    };
    // What it saw at start, before talking on the channel (which may get it killed).
    if let Some(path) = &record_path {
        write(&record, &format!("{path}.started"));
    }
    for bytes in &sends {
        record.acks.push(exchange(bytes));
    }
    if let Some(path) = &record_path {
        write(&record, path);
    }
    if wait {
        while !TERMINATED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(path) = &record_path {
            let _ = std::fs::write(format!("{path}.terminated"), b"SIGTERM");
        }
    }
    std::thread::sleep(Duration::from_millis(sleep_ms));
    std::process::exit(exit_code);
}
