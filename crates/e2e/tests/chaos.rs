//! Chaos with real openvpn (issue: reliability of the Linux service), measured:
//!
//! * openvpn killed with `kill -9` at a random moment of a real connection — while it
//!   connects, while it is connected, or while it disconnects — round after round;
//! * the service killed with `kill -9` at a random moment while real sessions live, each time
//!   followed by a restart, whose journal replay must undo the dead run's sessions.
//!
//! After every round the full snapshot (links, addresses, routes of every table, rules,
//! nftables, DNS state, the run directory's device nodes and journals) must equal the one
//! taken before the first. `CHAOS_ROUNDS` sets the rounds of each (default 100;
//! `scripts/chaos.sh` runs both and prints the counts that docs/BENCHMARKS.md records).
//! Run as root: `cargo test -p openvpnserv-e2e --test chaos -- --ignored --test-threads=1`.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use openvpnserv_e2e::faults::{assert_clean_log, kill_9, seed, wait_for_log};
use openvpnserv_e2e::fixture::{alive, eventually};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::vpn::{assert_same, Dns, Vpn};

fn rounds() -> u32 {
    std::env::var("CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100)
}

/// The most a session changes: host route to the server, both halves of the default route,
/// IPv6 routes and address, DNS with domains, the leak block.
fn full_tunnel() -> Pushes {
    Pushes {
        def1: true,
        def1_ipv6: true,
        dns_option: false,
        ..Pushes::default()
    }
}

/// When a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connecting,
    Connected,
    Disconnecting,
}

fn up(vpn: &Vpn, name: &str) -> bool {
    vpn.client_log(name)
        .contains("Initialization Sequence Completed")
}

fn wait_up(vpn: &Vpn, name: &str, round: u32) {
    assert!(
        eventually(Duration::from_secs(20), || up(vpn, name)),
        "round {round}: openvpn did not come up:\n{}",
        vpn.client_log(name)
    );
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage, scripts/chaos.sh)"]
fn real_openvpn_killed_at_random_moments_leaves_nothing_each_time() {
    let rounds = rounds();
    let mut rng = fastrand::Rng::with_seed(seed("chaos: openvpn killed"));
    let vpn = Vpn::new(&full_tunnel(), true, Dns::MockResolved);
    let before = vpn.snapshot();

    // A first connection measures how long connecting and disconnecting take here.
    vpn.config("m.ovpn", "");
    let t0 = Instant::now();
    let pid = vpn.connect("m.ovpn");
    let connect = t0.elapsed();
    let t0 = Instant::now();
    openvpnserv_e2e::vpn::kill_and_wait(pid, Signal::SIGTERM);
    let disconnect = t0.elapsed();
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);

    let mut counts = [0u32; 3];
    let started = Instant::now();
    for round in 0..rounds {
        let name = format!("c{round}.ovpn");
        vpn.config(&name, "");
        let stage = [Stage::Connecting, Stage::Connected, Stage::Disconnecting][rng.usize(0..3)];
        let pid = vpn
            .start(&name)
            .unwrap_or_else(|| panic!("round {round}: the service is unreachable"))
            .pid();
        let landed = match stage {
            Stage::Connecting => {
                std::thread::sleep(connect.mul_f64(rng.f64()));
                if up(&vpn, &name) {
                    Stage::Connected
                } else {
                    Stage::Connecting
                }
            }
            Stage::Connected => {
                wait_up(&vpn, &name, round);
                std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
                Stage::Connected
            }
            Stage::Disconnecting => {
                wait_up(&vpn, &name, round);
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM);
                std::thread::sleep(disconnect.mul_f64(rng.f64()));
                Stage::Disconnecting
            }
        };
        if alive(pid) {
            kill_9(pid);
        }
        counts[landed as usize] += 1;
        // Undone by the service that saw its openvpn die: the world is as it was.
        let undone = wait_for_log(
            &vpn.service,
            "network changes undone",
            round as usize + 2,
            Duration::from_secs(30),
        );
        assert!(
            undone,
            "round {round} ({landed:?}): the session was not undone"
        );
        let now = vpn.snapshot();
        if now != before {
            eprintln!("round {round}: killed while {landed:?}");
            assert_same(&before, &now, &vpn);
        }
    }
    assert_clean_log(&vpn.service.log());
    eprintln!(
        "CHAOS openvpn: {rounds} kills in {:.0} s (connecting {}, connected {}, disconnecting {}); \
         connect takes {} ms, disconnect {} ms here; the snapshot equalled the baseline after every one",
        started.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
        connect.as_millis(),
        disconnect.as_millis()
    );
    if rounds >= 30 {
        for (stage, n) in ["connecting", "connected", "disconnecting"]
            .iter()
            .zip(counts)
        {
            assert!(
                n >= rounds / 10,
                "only {n} kills landed while {stage}: {counts:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage, scripts/chaos.sh)"]
fn the_service_killed_with_live_real_sessions_is_undone_by_its_restart_each_time() {
    let rounds = rounds();
    let mut rng = fastrand::Rng::with_seed(seed("chaos: service killed"));
    let mut vpn = Vpn::new(&full_tunnel(), true, Dns::MockResolved);
    let before = vpn.snapshot();
    vpn.config("m.ovpn", "");
    let t0 = Instant::now();
    let pid = vpn.connect("m.ovpn");
    let connect = t0.elapsed();
    kill_9(pid);
    vpn.wait_undone(1);

    let started = Instant::now();
    let (mut sessions, mut replayed, mut connected_at_kill) = (0u32, 0usize, 0u32);
    let mut k = 0u32;
    for round in 0..rounds {
        let mut children = Vec::new();
        let mut names = Vec::new();
        for _ in 0..rng.u32(1..=2) {
            let name = format!("s{k}.ovpn");
            k += 1;
            vpn.config(&name, "");
            if let Some(t) = vpn.start(&name) {
                children.push(t.pid());
                names.push(name);
            }
        }
        sessions += children.len() as u32;
        // Anywhere from just started to a while after connecting (about half are connected).
        std::thread::sleep(connect.mul_f64(2.0 * rng.f64()));
        connected_at_kill += names.iter().filter(|n| up(&vpn, n)).count() as u32;
        kill_9(vpn.service.pid());
        vpn.service.crash();
        // openvpn is told to stop when its service dies.
        for pid in &children {
            assert!(
                eventually(Duration::from_secs(20), || !alive(*pid)),
                "round {round}: openvpn {pid} outlived its service"
            );
        }
        vpn.restart_service();
        let log = vpn.service.log();
        replayed += log.matches("undoing what").count();
        assert_clean_log(&log);
        let now = vpn.snapshot();
        if now != before {
            eprintln!(
                "round {round}: {} session(s) live at the kill",
                children.len()
            );
            assert_same(&before, &now, &vpn);
        }
    }
    eprintln!(
        "CHAOS service: {rounds} kills in {:.0} s with {sessions} live real sessions ({connected_at_kill} of them connected); \
         {replayed} journals replayed by the restarts; the snapshot equalled the baseline after every restart",
        started.elapsed().as_secs_f64()
    );
    assert!(replayed > 0, "no kill left a journal to replay");
}
