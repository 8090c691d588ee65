//! Connect time through the service against root openvpn, side by side in one run (run by
//! `scripts/bench-connect.sh`; docs/BENCHMARKS.md).
//!
//! One world (`openvpnserv_e2e::vpn`): a real openvpn server in one namespace; in the other
//! the release service with its network layer and an unprivileged user. Each round, in turn:
//!
//! * **through the service**: the user runs `iservice connect CONFIG --json`; the time from
//!   spawning it to reading its `CONNECTED` state event (the service starts openvpn as the
//!   user, `iservice` reaches its management interface, releases the hold, openvpn connects,
//!   the hook has the service apply addresses, routes and DNS). Then Ctrl-C, and a wait until
//!   the service has undone the session.
//! * **root openvpn**: `openvpn --config CONFIG` as root on the same config and server; the
//!   time from spawning it to its `Initialization Sequence Completed` line on stdout (openvpn
//!   sets its CONNECTED state just before writing it). Then SIGTERM and a wait for its exit.
//!
//! Both are spawned through `ip netns exec`. Prints a Markdown report on stdout. Needs root.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openvpnserv_e2e::bench::cpu_model;
use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::openvpn::{client_binary, Pushes};
use openvpnserv_e2e::service::binary;
use openvpnserv_e2e::vpn::{Dns, Setup, Vpn};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The output a child wrote before it ended without the line a benchmark waited for.
#[derive(Debug)]
struct EndedFirst(String);

impl std::fmt::Display for EndedFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads `child`'s stdout until a line contains `needle`; the time since `start` and the
/// lines before it, or the text seen when the output ended first.
fn time_until(
    child: &mut Child,
    needle: &str,
    start: Instant,
) -> Result<(f64, String), EndedFirst> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return Err(EndedFirst(seen)),
            Ok(_) => {}
        }
        if line.contains(needle) {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            // Keep draining the output so that the process never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            seen.push_str(&line);
            return Ok((ms, seen));
        }
        seen.push_str(&line);
    }
}

/// Signals `child` and waits (at most 30 s) for it to exit.
fn stop(child: &mut Child, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let _ = kill(pid, signal);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "process {} did not exit within 30 s of {signal}",
        child.id()
    );
}

/// Where `iservice` says the time went, from its events' `elapsed_ms`: milliseconds from its
/// start to the service's PID reply, to the management interface, to the first state
/// after the hold release, and to CONNECTED.
const PHASES: [&str; 4] = [
    "PID reply (`started`)",
    "management interface (`management_connected`)",
    "first state after the hold release",
    "CONNECTED",
];

fn phases(events: &str) -> [f64; 4] {
    let mut at = [f64::NAN; 4];
    for line in events.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        #[allow(clippy::cast_precision_loss)] // milliseconds
        let ms = e["elapsed_ms"].as_u64().unwrap_or(0) as f64;
        let slot = match (e["event"].as_str(), e["state"].as_str()) {
            (Some("started"), _) => 0,
            (Some("management_connected"), _) => 1,
            (Some("state"), Some("CONNECTED")) => 3,
            (Some("state"), Some(s)) if s != "CONNECTING" && at[2].is_nan() => 2,
            _ => continue,
        };
        if at[slot].is_nan() {
            at[slot] = ms;
        }
    }
    at
}

/// One connect through the service as the user; milliseconds to CONNECTED, and where
/// `iservice` says the time went.
fn via_service(vpn: &Vpn, config: &Path, runtime: &Path, undone: usize) -> (f64, [f64; 4]) {
    let mut cmd = vpn.topo.client.command("setpriv");
    cmd.args(["--reuid", &vpn.user.uid.to_string()])
        .args(["--regid", &vpn.user.gid.to_string(), "--init-groups"])
        .arg(binary("iservice"))
        .arg("connect")
        .arg(config)
        .args(["-instance", "interactive", &vpn.instance])
        .args(["--json", "--non-interactive"])
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("run iservice");
    let (ms, events) =
        time_until(&mut child, r#""state":"CONNECTED""#, start).unwrap_or_else(|seen| {
            panic!(
                "iservice ended without CONNECTED:\n{seen}\nservice log:\n{}",
                vpn.service.log()
            )
        });
    if std::env::var_os("BENCH_TRACE").is_some() {
        // iservice's events, then openvpn's own output as the service kept it (with
        // `machine-readable-output` in the config its lines carry microseconds).
        eprintln!("{events}");
        let out = vpn
            .topo
            .client
            .command("setpriv")
            .args(["--reuid", &vpn.user.uid.to_string()])
            .args(["--regid", &vpn.user.gid.to_string(), "--init-groups"])
            .arg(binary("iservice"))
            .args(["log", "bench", "-instance", "interactive", &vpn.instance])
            .output()
            .expect("run iservice log");
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    stop(&mut child, Signal::SIGINT);
    vpn.wait_undone(undone);
    (ms, phases(&events))
}

/// One connect of root openvpn on the same config; milliseconds to its
/// "Initialization Sequence Completed".
fn root_openvpn(vpn: &Vpn, config: &Path) -> f64 {
    let mut cmd = vpn.topo.client.command(client_binary());
    cmd.arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("run openvpn");
    let (ms, _) = time_until(&mut child, "Initialization Sequence Completed", start)
        .unwrap_or_else(|seen| panic!("root openvpn ended without connecting:\n{seen}"));
    stop(&mut child, Signal::SIGTERM);
    // Its tun is gone with it; wait for that so that the next round starts from the same
    // network.
    let gone = eventually(Duration::from_secs(10), || {
        !vpn.topo.client.ip(&["-o", "link", "show"]).contains("tun")
    });
    assert!(gone, "root openvpn's tun stayed after it exited");
    ms
}

/// Min, median, max.
fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 0 {
        f64::midpoint(s[s.len() / 2 - 1], s[s.len() / 2])
    } else {
        s[s.len() / 2]
    };
    (s[0], median, s[s.len() - 1])
}

fn openvpn_version() -> String {
    let out = Command::new(client_binary()).arg("--version").output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    })
    .unwrap_or_default()
}

fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 20);
    let warmup = env_usize("BENCH_WARMUP", 2);
    // BENCH_NO_DNS=1: the server pushes no DNS (root openvpn applies none anyway; through
    // the service the `direct` backend rewrites resolv.conf).
    let pushes = Pushes {
        no_dns: std::env::var_os("BENCH_NO_DNS").is_some(),
        ..Pushes::default()
    };
    // BENCH_SERVICE_LOG=debug (with BENCH_TRACE) shows the service's own steps.
    let level: &'static str = match std::env::var("BENCH_SERVICE_LOG").as_deref() {
        Ok("debug") => "debug",
        _ => "info",
    };
    // BENCH_DNS=resolved: DNS through a mock systemd-resolved on a private bus instead of the
    // `direct` backend's resolv.conf.
    let dns = match std::env::var("BENCH_DNS").as_deref() {
        Ok("resolved") => Dns::MockResolved,
        _ => Dns::Direct,
    };
    let vpn = Vpn::with(&Setup {
        log_level: level,
        ..Setup::new(&pushes, false, dns)
    });
    // openvpn writes to stdout, where root openvpn's "Initialization Sequence Completed" is
    // read (and, through the service, the service keeps it as the connection's log).
    let extra = std::env::var("BENCH_CONFIG_EXTRA").unwrap_or_default();
    let config = vpn.config_to_stdout("bench.conf", &extra);
    let runtime = vpn.runtime_dir();

    let mut service_ms = Vec::with_capacity(rounds);
    let mut root_ms = Vec::with_capacity(rounds);
    let mut phase_ms: [Vec<f64>; 4] = Default::default();
    for round in 0..warmup + rounds {
        let (s, at) = via_service(&vpn, &config, &runtime, round + 1);
        let r = root_openvpn(&vpn, &config);
        eprintln!("round {round}: through the service {s:.1} ms, root openvpn {r:.1} ms");
        if round >= warmup {
            service_ms.push(s);
            root_ms.push(r);
            for (v, ms) in phase_ms.iter_mut().zip(at) {
                v.push(ms);
            }
        }
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        eprintln!("service log:\n{}", vpn.service.log());
    }
    let (smin, smed, smax) = summary(&service_ms);
    let (rmin, rmed, rmax) = summary(&root_ms);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "### Connect → CONNECTED ({rounds} rounds, interleaved, after {warmup} warm-up rounds)\n"
    );
    println!(
        "Machine: {cores} cores, {}; {}; release build; the service at log level {level}; the server pushes {}.\n",
        cpu_model(),
        openvpn_version(),
        match (pushes.no_dns, dns) {
            (true, _) => "addresses and routes, no DNS",
            (false, Dns::MockResolved) =>
                "addresses, routes and DNS (applied through the service to a mock systemd-resolved on a private bus)",
            (false, _) =>
                "addresses, routes and DNS (applied through the service by its `direct` backend, which rewrites resolv.conf)",
        }
    );
    println!("| path | min | median | max |");
    println!("|---|---|---|---|");
    println!("| `iservice connect --json` through the service, to its CONNECTED event | {smin:.1} ms | {smed:.1} ms | {smax:.1} ms |");
    println!("| root `openvpn --config`, to \"Initialization Sequence Completed\" | {rmin:.1} ms | {rmed:.1} ms | {rmax:.1} ms |");
    println!(
        "\nDifference of medians (through the service − root openvpn): {:.1} ms (target: ≤ 20 ms).",
        smed - rmed
    );
    println!("\nWhere the time goes through the service (`iservice`'s own `elapsed_ms`, from its start):\n");
    println!("| reached | min | median | max |");
    println!("|---|---|---|---|");
    for (name, v) in PHASES.iter().zip(&phase_ms) {
        let (min, med, max) = summary(v);
        println!("| {name} | {min:.0} ms | {med:.0} ms | {max:.0} ms |");
    }
}
