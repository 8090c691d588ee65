//! The compliance stage (`scripts/compliance.sh`, stage `compliance` of
//! `scripts/test-all.sh`): every case of `openvpnserv_testkit_win::compliance::cases`
//! against upstream's `openvpnserv.exe` and against ours, both real SCM services in this Wine
//! prefix, compared byte for byte. A difference must be a row of the table in
//! `docs/WINDOWS.md`; any other fails the test.
//!
//! `OVS_UPSTREAM` names upstream's builds, `version=path;…` (Linux paths, built by the
//! script from Debian's source packages, never committed).
#![cfg(windows)]

use openvpnserv_proto::channel::Revision;
use openvpnserv_testkit_win::compliance::{self, cases, diff, documenting, Service};
use openvpnserv_testkit_win::harness::{stamp_version, wine_path, WorkDir};

const OURS: &str = env!("CARGO_BIN_EXE_openvpnserv-nogroups");
const FAKE: &str = env!("CARGO_BIN_EXE_fake-openvpn-win");
const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/WINDOWS.md");

#[test]
#[ignore = "needs upstream's openvpnserv.exe, which scripts/compliance.sh builds (OVS_UPSTREAM)"]
fn upstream_and_ours_answer_every_case_alike() {
    let spec = std::env::var("OVS_UPSTREAM").expect("OVS_UPSTREAM=version=path;…");
    let table = std::fs::read_to_string(wine_path(TABLE)).expect("read docs/WINDOWS.md");
    let rows = compliance::documented(&table);
    assert!(
        !rows.is_empty(),
        "no table of differences in docs/WINDOWS.md"
    );
    let bin = WorkDir::new("compliance-bin");
    let (mut compared, mut documented, mut failures) = (0, 0, Vec::new());
    let mut used = Vec::new();
    for entry in spec.split(';').filter(|e| !e.is_empty()) {
        let (version, exe) = entry.split_once('=').expect("version=path");
        assert!(compliance::exists(exe), "{exe} is missing");
        let minor: u16 = version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap();
        // Both services start the same openvpn.exe, which says it is this version, so ours
        // (msg_protocol = auto) speaks the numbering upstream's version speaks.
        let openvpn = bin.path().join(format!("openvpn-{version}.exe"));
        stamp_version(std::path::Path::new(FAKE), &openvpn, 2, minor);
        let openvpn = openvpn.to_string_lossy().into_owned();
        let revision = if minor < 7 {
            Revision::V26
        } else {
            Revision::V27
        };
        let theirs = Service::start(&format!("upstream {version}"), "$cmpup", exe, &openvpn);
        let ours = Service::start("ours", "$cmpours", OURS, &openvpn);
        for case in cases(revision) {
            let a = theirs.observe(&case);
            let b = ours.observe(&case);
            compared += 1;
            if a == b {
                continue;
            }
            if let Some(row) = documenting(&rows, version, &case.name, &a, &b) {
                documented += 1;
                used.push(row.clone());
                println!(
                    "documented difference {version} {} (row {} {}):\n{}",
                    case.name,
                    row.version,
                    row.case,
                    diff(&a, &b)
                );
            } else {
                failures.push(format!(
                    "{version} {}: not in the table of docs/WINDOWS.md\n{}upstream saw:\n{a}ours saw:\n{b}",
                    case.name,
                    diff(&a, &b)
                ));
            }
        }
    }
    let stale: Vec<String> = rows
        .iter()
        .filter(|r| !used.contains(r))
        .map(|r| format!("{} {}", r.version, r.case))
        .collect();
    println!(
        "compliance: {compared} cases compared, {documented} documented differences, {} undocumented",
        failures.len()
    );
    if !stale.is_empty() {
        println!(
            "rows of the table no case needed (this run): {}",
            stale.join(", ")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Connect → PID reply, ours against upstream's, both real SCM services here, in
/// interleaved rounds (scripts/compliance-bench.sh; docs/BENCHMARKS.md). `BENCH_RUNS`
/// rounds (default 50) after 5 warm-up rounds; prints min/median/max and the ratio of the
/// medians.
#[test]
#[ignore = "a benchmark; needs upstream's openvpnserv.exe, which scripts/compliance.sh builds (OVS_UPSTREAM)"]
fn bench_connect_to_pid_reply() {
    use std::time::{Duration, Instant};

    use openvpnserv_proto::{Reply, StartupMessage};
    use openvpnserv_testkit_win::client::{Client, Read};
    use openvpnserv_testkit_win::scenario::{Scenario, SCENARIO_FILE};

    let spec = std::env::var("OVS_UPSTREAM").expect("OVS_UPSTREAM=version=path;…");
    // The newest upstream named.
    let (version, exe) = spec
        .split(';')
        .filter(|e| !e.is_empty())
        .filter_map(|e| e.split_once('='))
        .next_back()
        .expect("version=path");
    let rounds: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bin = WorkDir::new("bench-bin");
    let openvpn = bin.path().join("openvpn.exe");
    let minor: u16 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap();
    stamp_version(std::path::Path::new(FAKE), &openvpn, 2, minor);
    let openvpn = openvpn.to_string_lossy().into_owned();
    let services = [
        Service::start(&format!("upstream {version}"), "$benchup", exe, &openvpn),
        Service::start("ours", "$benchours", OURS, &openvpn),
    ];
    let quiet = Scenario {
        send_messages: false,
        ..Scenario::default()
    };
    for s in &services {
        s.work().write(SCENARIO_FILE, &quiet.to_text());
    }
    let once = |s: &Service| -> Duration {
        let begun = Instant::now();
        let c = Client::connect(&s.pipe_path()).expect("connect");
        c.send(&StartupMessage::new(s.work().text(), "--config a.ovpn", ""))
            .unwrap();
        let reply = c.reply(Duration::from_secs(10));
        let took = begun.elapsed();
        assert!(matches!(reply, Reply::Pid(_)), "{}: {reply:?}", s.label);
        // The session ends (the fake exits at once) before the next round.
        while let Read::Message(_) = c.read(Duration::from_secs(10)) {}
        took
    };
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds + 5 {
        // Interleaved, and each service first in every other round.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let t = once(&services[i]);
            if round >= 5 {
                times[i].push(t);
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut medians = [0.0; 2];
    for (i, t) in times.iter_mut().enumerate() {
        t.sort();
        medians[i] = ms(t[t.len() / 2]);
        println!(
            "bench {}: {} rounds, connect → PID reply min {:.1} ms, median {:.1} ms, max {:.1} ms",
            services[i].label,
            t.len(),
            ms(t[0]),
            medians[i],
            ms(t[t.len() - 1])
        );
    }
    println!(
        "bench ratio ours/upstream (medians): {:.2}",
        medians[1] / medians[0]
    );
    drop(services);
    steps_in_process(rounds);
}

/// Where ours spends connect → PID reply: the same sessions in-process (the recording
/// network layer, no SCM), with the service's per-step times (its debug line "from accept")
/// collected; prints the median of each step.
fn steps_in_process(rounds: usize) {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use openvpnserv::windows::server::MembershipSource;
    use openvpnserv_core::windows::fake::RecordingNet;
    use openvpnserv_proto::{Reply, StartupMessage};
    use openvpnserv_settings::Instance;
    use openvpnserv_testkit_win::client::{Client, Read};
    use openvpnserv_testkit_win::harness::{self, InProcess};
    use openvpnserv_testkit_win::scenario::{Scenario, SCENARIO_FILE};

    let sink = harness::capture_logs("debug");
    let instance = Instance::new("$benchsteps").unwrap();
    let work = WorkDir::new("bench-steps");
    let service = InProcess::start(
        &instance,
        harness::test_settings(&instance, &work, FAKE),
        MembershipSource::NoGroups,
        RecordingNet::new(),
    );
    work.write(
        SCENARIO_FILE,
        &Scenario {
            send_messages: false,
            ..Scenario::default()
        }
        .to_text(),
    );
    for _ in 0..rounds {
        let c = Client::connect(&service.pipe_path).unwrap();
        c.send(&StartupMessage::new(work.text(), "--config a.ovpn", ""))
            .unwrap();
        assert!(matches!(c.reply(Duration::from_secs(10)), Reply::Pid(_)));
        while let Read::Message(_) = c.read(Duration::from_secs(10)) {}
    }
    drop(service);
    let text = sink.text();
    let mut steps: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let Some((_, tail)) = line.split_once("from accept: ") else {
            continue;
        };
        for (i, part) in tail.split(' ').collect::<Vec<_>>().chunks(2).enumerate() {
            if let [name, value] = part {
                let ms = value.trim_start_matches(['+', '=']).trim_end_matches("ms");
                let key = if *name == "=" { "total" } else { name };
                if let Ok(v) = ms.parse::<f64>() {
                    steps.entry((i, key.to_owned())).or_default().push(v);
                }
            }
        }
    }
    for ((_, name), mut v) in steps {
        v.sort_by(f64::total_cmp);
        println!(
            "bench step {name}: median {:.2} ms (n = {})",
            v[v.len() / 2],
            v.len()
        );
    }
}
