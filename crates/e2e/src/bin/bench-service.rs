//! Service benchmarks, measured side by side in one run (run by `scripts/bench.sh`).
//!
//! * connect → PID reply through the service, against a bare fork/exec of the same
//!   executable, interleaved so that both see the same machine load;
//! * idle service RSS, and RSS per live session with many sessions held;
//! * how many sessions the service holds at once, and how long stopping them takes.
//!
//! Prints a Markdown report on stdout. Needs root.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::socket::{recv, send, MsgFlags};
use openvpnserv_e2e::bench::cpu_model;
use openvpnserv_e2e::netns::Netns;
use openvpnserv_e2e::service::{
    binary, connect_seqpacket, in_namespace, unique_instance, Service, TestDir,
};
use openvpnserv_proto::{Reply, StartupMessage};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Connects as root, sends a startup message, returns the socket and the first reply.
fn start_session(socket_path: &str, msg: &[u8]) -> (std::os::fd::OwnedFd, Reply) {
    let fd = connect_seqpacket(socket_path).expect("connect");
    send(fd.as_raw_fd(), msg, MsgFlags::empty()).expect("send");
    let mut buf = [0u8; 1024];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
    (fd, Reply::decode(&buf[..n]).expect("reply"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Paired latencies in milliseconds: through the service, and bare fork/exec.
struct Latency {
    via_service: Vec<f64>,
    bare: Vec<f64>,
}

/// Starts the quick config `runs` times through the service and directly, alternating, after
/// 20 warm-up rounds.
fn measure_latency(socket_path: &str, config_dir: &Path, fake: &Path, runs: usize) -> Latency {
    let quick = StartupMessage::new(
        config_dir.display().to_string(),
        "--config quick.ovpn",
        "\n",
    )
    .encode();
    let quick_path = config_dir.join("quick.ovpn");
    let mut l = Latency {
        via_service: Vec::with_capacity(runs),
        bare: Vec::with_capacity(runs),
    };
    for i in 0..runs + 20 {
        let t = Instant::now();
        let (fd, reply) = start_session(socket_path, &quick);
        let service_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(matches!(reply, Reply::Pid(_)), "{reply:?}");
        drop(fd);
        let t = Instant::now();
        let mut child = Command::new(fake)
            .arg("--config")
            .arg(&quick_path)
            .spawn()
            .expect("spawn");
        let bare_ms = t.elapsed().as_secs_f64() * 1e3;
        let _ = child.wait();
        if i >= 20 {
            l.via_service.push(service_ms);
            l.bare.push(bare_ms);
        }
    }
    l
}

/// Opens `held` sessions that stay up; returns their sockets and the seconds it took.
fn hold_sessions(
    socket_path: &str,
    config_dir: &Path,
    held: usize,
) -> (Vec<std::os::fd::OwnedFd>, f64) {
    let message =
        StartupMessage::new(config_dir.display().to_string(), "--config hold.ovpn", "\n").encode();
    let t = Instant::now();
    let sessions = (0..held)
        .map(|_| {
            let (fd, reply) = start_session(socket_path, &message);
            assert!(matches!(reply, Reply::Pid(_)), "{reply:?}");
            fd
        })
        .collect();
    (sessions, t.elapsed().as_secs_f64())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 300);
    let held = env_usize("BENCH_SESSIONS", 1000);
    let dir = TestDir::new("bench");
    let config_dir = dir.mkdir("config", 0o755);
    let fake = dir.join("fake-openvpn");
    std::fs::copy(binary("fake-openvpn"), &fake).expect("copy fake openvpn");
    dir.write("config/quick.ovpn", "exit 0\n", 0o644);
    dir.write("config/hold.ovpn", "wait\n", 0o644);
    let settings = format!(
        "exe_path = \"{}\"\nconfig_dir = \"{}\"\nmax_sessions = {}\nmax_sessions_per_user = {}\ndns_backend = \"none\"\n",
        fake.display(),
        config_dir.display(),
        held + 100,
        held + 100
    );
    // Logging at the default level (info), as in production.
    // The service as in production, with its network layer (a tun and a device node per
    // session), inside a namespace of its own so that no tun appears on the host.
    let ns = Netns::create("bench");
    let instance = unique_instance();
    let log = dir.join(&format!("service-{instance}.log"));
    let mut service = Service::start_with(&dir, &settings, &instance, |cmd| {
        in_namespace(&ns, &cmd, &log, "info")
    });
    let socket_path = service.socket.display().to_string();
    let pid = service.pid();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss_kib(pid);

    let mut latency = measure_latency(&socket_path, &config_dir, &fake, runs);
    std::thread::sleep(Duration::from_secs(1));
    let warm_rss = rss_kib(pid);
    let mut overhead: Vec<f64> = latency
        .via_service
        .iter()
        .zip(&latency.bare)
        .map(|(s, b)| s - b)
        .collect();

    let (sessions, fill_s) = hold_sessions(&socket_path, &config_dir, held);
    std::thread::sleep(Duration::from_secs(2));
    let held_rss = rss_kib(pid);
    let per_session = held_rss.saturating_sub(warm_rss) as f64 / held as f64;
    let t = Instant::now();
    assert!(service.stop().success());
    let stop_s = t.elapsed().as_secs_f64();
    drop(sessions);

    let (sm, s95) = (
        median(&mut latency.via_service),
        percentile(&mut latency.via_service, 0.95),
    );
    let bm = median(&mut latency.bare);
    let (om, o95) = (median(&mut overhead), percentile(&mut overhead, 0.95));
    println!("### Service ({runs} starts, {held} sessions held)\n");
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("Machine: {cores} cores, {}; release build; the service with its network layer (a tun and a device node per session) in a namespace of its own.\n", cpu_model());
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| connect → PID reply, median (p95) | {sm:.3} ms ({s95:.3} ms) | |");
    println!("| bare fork/exec of the same binary, median | {bm:.3} ms | |");
    println!("| service overhead (paired difference), median (p95) | {om:.3} ms ({o95:.3} ms) | ≤ 1 ms median |");
    println!("| ratio service / bare, medians | {:.2}× | |", sm / bm);
    println!("| idle service RSS | {:.1} MiB | ≤ 10 MiB |", mib(idle_rss));
    println!(
        "| RSS after {runs} sessions came and went | {:.1} MiB | bounded |",
        mib(warm_rss)
    );
    println!("| sessions held at once | {held} (in {fill_s:.1} s) | ≥ 1,000 (upstream: 63) |");
    println!(
        "| RSS with {held} sessions held | {:.1} MiB | |",
        mib(held_rss)
    );
    println!("| memory per live session | {per_session:.1} KiB | ≤ 100 KiB |");
    println!("| stop with {held} sessions (SIGTERM to each, clean-up) | {stop_s:.2} s | |");
}
