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
//! env ifconfig_local 10.8.0.2  an entry of the script environment for `hook` (`dev` is the
//!                           tun the service appended with `--dev`)
//! block-outside-dns         the config asks for the DNS-leak block (for `hook`)
//! pause-ms 0 20             before each request of a `hook`, sleep a random 0–20 ms
//! delay-ms 20 60            at this point of the steps, sleep a random 20–60 ms
//! touch /path/done          create this (empty) file at this point of the steps
//! hook up                   send the requests openvpnserv-hook sends for this script hook
//!                           (up, route-up, route-pre-down, down), each after the ack of the
//!                           one before; without an ack (the service is gone) exit with 1
//! ip link set dev tunX up   run the `--iproute` program with these `ip` words, as an
//!                           openvpn built with `--enable-iproute2` does (`tunX` is the tun)
//! script up                 run the `--up` (`--route-up`, …) command as openvpn runs it
//! after-term                the steps below run after SIGTERM (openvpn's teardown)
//! print 1000 some text      write `some text 0` … `some text 999` on stdout, one a line
//!                           (as fast as the reader takes them), and `printed` on stderr
//! ```
//!
//! `ip` and `script` run the real programs the service appended, with the environment
//! openvpn gives them: its own, the `env` entries and every `--setenv`. Their exit codes are
//! recorded in `commands`.
//!
//! `--version` prints a version line like openvpn's (the service reads it at start) and
//! exits; a copy named `…-iproute` says its build takes `--iproute`. SIGTERM ends the hooks
//! between two requests.
//!
//! The record is written atomically (temp file + rename) to `<record>.started` before the
//! channel is used and to `<record>` after, before waiting, so tests can read it while the
//! process runs; after the `after-term` steps, to `<record>.teardown`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openvpnserv_core::linux::hook::{self, Env, Options, Phase};
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
    /// What `ip` and `script` ran, with the exit code (-1: could not run or killed).
    commands: Vec<(String, i32)>,
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

/// Sends bytes on the channel (fd 3) and waits up to `timeout_ms` for one ack.
fn exchange(bytes: &[u8], timeout_ms: u16) -> Option<(i32, u32, usize)> {
    let codec = Codec::NATIVE;
    // SAFETY: fd 3 is the channel the service passed; borrowed for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(3) };
    nix::sys::socket::send(fd.as_raw_fd(), bytes, nix::sys::socket::MsgFlags::empty()).ok()?;
    let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(timeout_ms)).ok()? == 0 {
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

/// One thing to do on the channel, in the config's order.
enum Step {
    /// Raw bytes, one ack awaited.
    Send(Vec<u8>),
    /// The requests of one script hook.
    Hook(Phase),
    /// Create an empty file (tells a test how far the steps got).
    Touch(String),
    /// Sleep a random time in this range (ms).
    Delay(u64, u64),
    /// Run the `--iproute` program with these words.
    Ip(Vec<String>),
    /// Run a script hook's command.
    Script(Phase),
    /// Write this many numbered lines of this text on stdout.
    Print(u64, String),
}

/// Runs `program` as openvpn runs its `--iproute` program and scripts; returns what it ran
/// and its exit code.
fn run_program(program: &[String], args: &[String], env: &Env, setenv: &Env) -> (String, i32) {
    let line = program
        .iter()
        .chain(args)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let Some((exe, own)) = program.split_first() else {
        return (line, -1);
    };
    let status = std::process::Command::new(exe)
        .args(own)
        .args(args)
        .envs(env)
        .envs(setenv)
        .status();
    (line, status.ok().and_then(|s| s.code()).unwrap_or(-1))
}

/// How the hook steps behave.
struct HookSetup {
    env: Env,
    options: Options,
    pause_ms: (u64, u64),
}

/// Sends the requests of `phase` one by one, each after the ack of the one before, as the
/// hook does; returns false when an ack did not come (the channel is gone).
fn run_hook(phase: Phase, setup: &HookSetup, acks: &mut Vec<Option<(i32, u32, usize)>>) -> bool {
    let requests = match hook::translate(phase, &setup.env, setup.options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-openvpn: {}: {e}", phase.name());
            return true;
        }
    };
    for (i, request) in requests.into_iter().enumerate() {
        let (lo, hi) = setup.pause_ms;
        if hi > 0 {
            std::thread::sleep(Duration::from_millis(fastrand::u64(lo..=hi.max(lo))));
        }
        if TERMINATED.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(bytes) = Codec::NATIVE.encode(&Envelope {
            message_id: i as i32,
            request,
        }) else {
            continue;
        };
        // As long as the hook waits: the service may be slow under load, but it answers.
        let ack = exchange(&bytes, 30_000);
        acks.push(ack);
        if ack.is_none() {
            return false;
        }
    }
    true
}

/// What the config's directives ask for.
struct Plan {
    record_path: Option<String>,
    exit_code: i32,
    wait: bool,
    ignore_term: bool,
    sleep_ms: u64,
    steps: Vec<Step>,
    /// Steps after SIGTERM.
    term_steps: Vec<Step>,
    hook: HookSetup,
    /// `--setenv` pairs.
    setenv: Env,
    /// The `--iproute` program and the script commands, split into words.
    programs: BTreeMap<String, Vec<String>>,
}

/// `print COUNT TEXT`.
fn print_step(value: &str) -> Step {
    let (n, text) = value.split_once(' ').unwrap_or((value, ""));
    Step::Print(n.parse().unwrap_or(0), text.to_owned())
}

fn plan(directives: &str, argv: &[String]) -> Plan {
    let mut p = Plan {
        record_path: None,
        exit_code: 0,
        wait: false,
        ignore_term: false,
        sleep_ms: 0,
        steps: Vec::new(),
        term_steps: Vec::new(),
        setenv: Env::new(),
        programs: BTreeMap::new(),
        hook: HookSetup {
            env: Env::new(),
            options: Options::default(),
            pause_ms: (0, 0),
        },
    };
    // openvpn's `dev` is the last --dev given (the service appends its tun).
    if let Some(dev) = argv.windows(2).rev().find(|w| w[0] == "--dev") {
        p.hook.env.insert("dev".into(), dev[1].clone());
    }
    for (i, a) in argv.iter().enumerate() {
        match a.as_str() {
            "--setenv" if i + 2 < argv.len() => {
                p.setenv.insert(argv[i + 1].clone(), argv[i + 2].clone());
            }
            "--iproute" | "--up" | "--route-up" | "--route-pre-down" | "--down"
                if i + 1 < argv.len() =>
            {
                let words = argv[i + 1].split_whitespace().map(String::from).collect();
                p.programs.insert(a[2..].to_owned(), words);
            }
            _ => {}
        }
    }
    let dev = p.hook.env.get("dev").cloned().unwrap_or_default();
    let mut after_term = false;
    for line in directives.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let steps = if after_term {
            &mut p.term_steps
        } else {
            &mut p.steps
        };
        match key {
            "record" => p.record_path = Some(value.to_owned()),
            "exit" => p.exit_code = value.parse().unwrap_or(1),
            "wait" => p.wait = true,
            "ignore-term" => p.ignore_term = true,
            "sleep-ms" => p.sleep_ms = value.parse().unwrap_or(0),
            "send" if value == "register_dns" => steps.push(Step::Send(
                Codec::NATIVE
                    .encode(&Envelope {
                        message_id: 7,
                        request: Request::RegisterDns,
                    })
                    .unwrap_or_default(),
            )),
            "send-hex" => steps.push(Step::Send(hex(value))),
            "env" => {
                let (k, v) = value.split_once(' ').unwrap_or((value, ""));
                p.hook.env.insert(k.to_owned(), v.to_owned());
            }
            "block-outside-dns" => p.hook.options.block_outside_dns = true,
            "pause-ms" => {
                let mut w = value.split_whitespace().map(|n| n.parse().unwrap_or(0));
                p.hook.pause_ms = (w.next().unwrap_or(0), w.next().unwrap_or(0));
            }
            "touch" => steps.push(Step::Touch(value.to_owned())),
            "delay-ms" => {
                let mut w = value.split_whitespace().map(|n| n.parse().unwrap_or(0));
                let lo = w.next().unwrap_or(0);
                steps.push(Step::Delay(lo, w.next().unwrap_or(lo).max(lo)));
            }
            "hook" => {
                if let Some(phase) = Phase::parse(value) {
                    steps.push(Step::Hook(phase));
                }
            }
            "ip" => steps.push(Step::Ip(
                value
                    .split_whitespace()
                    .map(|w| {
                        if w == "tunX" {
                            dev.clone()
                        } else {
                            w.to_owned()
                        }
                    })
                    .collect(),
            )),
            "script" => {
                if let Some(phase) = Phase::parse(value) {
                    steps.push(Step::Script(phase));
                }
            }
            "print" => steps.push(print_step(value)),
            "after-term" => after_term = true,
            _ => {}
        }
    }
    p
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.iter().any(|a| a == "--version") {
        // What the service looks for: whether this build takes --iproute.
        let iproute = std::env::current_exe()
            .ok()
            .and_then(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().ends_with("-iproute"))
            })
            .unwrap_or(false);
        let yes_no = if iproute { "yes" } else { "no" };
        println!(
            "OpenVPN 2.6 fake-openvpn (openvpnserv end-to-end tests)\nenable_iproute2={yes_no}"
        );
        return;
    }
    let config = argv
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone());
    let directives = config
        .as_deref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    let plan = plan(&directives, &argv);
    let record_path = plan.record_path.clone();
    let handler = if plan.ignore_term {
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
    // Only a record needs stdin (reading it waits a while for a password line).
    if record_path.is_some() {
        record.stdin = read_stdin();
    }
    // What it saw at start, before talking on the channel (which may get it killed).
    if let Some(path) = &record_path {
        write_record(&record, &format!("{path}.started"));
    }
    if !run_steps(&plan.steps, &plan, &mut record) {
        // openvpn whose service is gone (or that was told to stop) ends.
        std::process::exit(1);
    }
    if let Some(path) = &record_path {
        write_record(&record, path);
    }
    if plan.wait {
        while !TERMINATED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(path) = &record_path {
            let _ = std::fs::write(format!("{path}.terminated"), b"SIGTERM");
        }
        if !plan.term_steps.is_empty() {
            let done = run_steps(&plan.term_steps, &plan, &mut record);
            if let Some(path) = &record_path {
                write_record(&record, &format!("{path}.teardown"));
            }
            if !done {
                std::process::exit(1);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(plan.sleep_ms));
    std::process::exit(plan.exit_code);
}

/// Writes the record atomically (temp file + rename).
fn write_record(record: &Record, path: &str) {
    let tmp = format!("{path}.tmp");
    if let Ok(json) = serde_json::to_vec_pretty(record) {
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// Runs `steps`; false when a hook lost the service (the record is written then).
fn run_steps(steps: &[Step], plan: &Plan, record: &mut Record) -> bool {
    for step in steps {
        match step {
            Step::Send(bytes) => record.acks.push(exchange(bytes, 3000)),
            Step::Touch(path) => {
                let _ = std::fs::write(path, b"");
            }
            Step::Print(n, text) => {
                use std::io::Write;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for i in 0..*n {
                    let _ = writeln!(out, "{text} {i}");
                }
                let _ = out.flush();
                eprintln!("printed");
            }
            Step::Delay(lo, hi) => {
                std::thread::sleep(Duration::from_millis(fastrand::u64(*lo..=*hi)));
            }
            Step::Hook(phase) => {
                if !run_hook(*phase, &plan.hook, &mut record.acks) {
                    if let Some(path) = &plan.record_path {
                        write_record(record, path);
                    }
                    return false;
                }
            }
            Step::Ip(words) => {
                let program = plan.programs.get("iproute").cloned().unwrap_or_default();
                record
                    .commands
                    .push(run_program(&program, words, &plan.hook.env, &plan.setenv));
            }
            Step::Script(phase) => {
                let program = plan.programs.get(phase.name()).cloned().unwrap_or_default();
                let mut env = plan.hook.env.clone();
                env.insert("script_type".into(), phase.name().to_owned());
                let dev = env.get("dev").cloned().unwrap_or_default();
                record
                    .commands
                    .push(run_program(&program, &[dev], &env, &plan.setenv));
            }
        }
    }
    true
}
