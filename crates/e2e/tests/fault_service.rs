//! The service killed with `kill -9` at random moments, a hundred times, while sessions make
//! their changes (issue 7, "Faults"). Each time it is started again and must undo, from the
//! journals alone, everything the dead run left: after every restart the whole state is as
//! it was before. Now and then the restarted service is killed again while it replays the
//! journals. Run as root by the e2e stage.

use std::time::{Duration, Instant};

use openvpnserv_e2e::faults::{
    assert_clean_log, configs_per_session, kill_9, requests_per_session, seed, FakeSession,
    Progress, Window,
};
use openvpnserv_e2e::fixture::{alive, eventually};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::vpn::{assert_same, Dns, Openvpn, Setup, Vpn};

/// What the runs saw.
#[derive(Debug, Default)]
struct Seen {
    kills: u32,
    kills_at_start: u32,
    kills_while_replaying: u32,
    sessions: u32,
    journals_replayed: usize,
    progress: Progress,
}

/// Starts session `k` (a fake openvpn making a real session's changes) if the service lets
/// it; returns openvpn's pid.
fn start(vpn: &Vpn, k: u32) -> Option<u32> {
    let name = format!("s{k}");
    let mut s = FakeSession::numbered(k);
    s.done_file = Some(done_file(vpn, k));
    vpn.fake_config(&name, &s.directives());
    // A service killed meanwhile may have closed the connection without a reply.
    match vpn.start(&name)?.replies.first() {
        Some(Ok(openvpnserv_proto::Reply::Pid(pid))) => Some(*pid),
        _ => None,
    }
}

fn done_file(vpn: &Vpn, k: u32) -> std::path::PathBuf {
    vpn.logs.join(format!("s{k}.done"))
}

/// Kills the service `kills` times with `dns`, sessions numbered from `first`.
fn kill_the_service(dns: Dns, kills: u32, first: u32, run_seed: u64) -> Seen {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(run_seed ^ u64::from(first));
    let mut vpn = Vpn::with(&Setup {
        openvpn: Openvpn::Fake,
        ..Setup::new(&Pushes::default(), false, dns)
    });
    let before = vpn.snapshot();
    let window = Window::new(Duration::from_millis(300));
    let mut seen = Seen::default();
    let mut children = Vec::new();
    let mut k = first;
    for round in 0..kills {
        // A few sessions at work, and one more asking to start as the service dies.
        let mut ks = Vec::new();
        for _ in 0..rng.u32(1..=3) {
            if let Some(pid) = start(&vpn, k) {
                children.push(pid);
                ks.push(k);
            }
            k += 1;
        }
        let late = k;
        k += 1;
        let service_pid = vpn.service.pid();
        let at = window.draw(&mut rng);
        std::thread::scope(|s| {
            let vpn = &vpn;
            let racer = s.spawn(move || start(vpn, late));
            std::thread::sleep(at);
            kill_9(service_pid);
            if let Ok(Some(pid)) = racer.join() {
                children.push(pid);
            }
        });
        vpn.service.crash();
        let finished = ks.iter().filter(|&&k| done_file(&vpn, k).exists()).count();
        window.learn(finished == ks.len());
        let log = vpn.service.log();
        let handled = requests_per_session(&log);
        for (id, name) in configs_per_session(&log) {
            let k: u32 = name[1..].parse().expect("config name");
            let n = handled.get(&id).copied().unwrap_or(0);
            seen.progress.add(n, done_file(&vpn, k).exists());
        }
        seen.sessions += ks.len() as u32 + 1;
        seen.kills += 1;

        // Every fourth time, the restarted service dies too, at a random moment of its
        // start (often while it replays the journals).
        if round % 4 == 3 {
            vpn.spawn_service();
            std::thread::sleep(Duration::from_millis(rng.u64(0..=80)));
            vpn.service.crash();
            if vpn.service.log().contains("undoing what") {
                seen.kills_while_replaying += 1;
            }
            seen.kills_at_start += 1;
        }
        vpn.restart_service();
        let log = vpn.service.log();
        seen.journals_replayed += log.matches("undoing what").count();
        assert_clean_log(&log);
        // Replayed before the service said it was ready: nothing is left now.
        let now = vpn.snapshot();
        if now != before {
            eprintln!(
                "round {round}: killed {} ms after the sessions started",
                at.as_millis()
            );
            assert_same(&before, &now, &vpn);
        }
    }
    // The openvpn children of the dead runs were told to stop when their service died.
    for pid in &children {
        assert!(
            eventually(Duration::from_secs(10), || !alive(*pid)),
            "openvpn {pid} outlived its service"
        );
    }
    assert_same(&before, &vpn.snapshot(), &vpn);
    eprintln!(
        "{dns:?}: {} kills of the service in {:.1} s, and {} more of its restart ({} while it replayed journals); {} sessions, {} journals replayed, sessions at the kill: {:?} (window at the end {} ms)",
        seen.kills,
        started.elapsed().as_secs_f64(),
        seen.kills_at_start,
        seen.kills_while_replaying,
        seen.sessions,
        seen.journals_replayed,
        seen.progress,
        window.get().as_millis()
    );
    seen
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn the_service_killed_a_hundred_times_at_random_moments_leaves_nothing() {
    let run_seed = seed("the service killed a hundred times");
    let mut kills = 0;
    let mut replayed = 0;
    let mut while_replaying = 0;
    let mut progress = Progress::default();
    for (dns, count, first) in [
        (Dns::Direct, 34, 0),
        (Dns::MockResolved, 33, 1000),
        (Dns::FakeResolvconf, 33, 2000),
    ] {
        let seen = kill_the_service(dns, count, first, run_seed);
        kills += seen.kills;
        replayed += seen.journals_replayed;
        while_replaying += seen.kills_while_replaying;
        progress.merge(seen.progress);
    }
    assert_eq!(kills, 100);
    // The random moments must have hit sessions at every stage, and replays, or the test
    // proves little.
    assert!(replayed > 100, "so few journals were replayed: {replayed}");
    assert!(
        while_replaying >= 5,
        "only {while_replaying} kills hit a replay"
    );
    for (stage, n) in [
        ("before any request", progress.none),
        ("in the middle", progress.partial),
        ("after the last request", progress.all),
    ] {
        assert!(
            n >= 10,
            "only {n} sessions were at work {stage}: {progress:?}"
        );
    }
}

/// Puts a slow stand-in for `program` first on the service's `PATH`: when its arguments
/// contain `when`, it marks that it runs, then takes a second before it does its work.
fn slow(vpn: &Vpn, program: &str, when: &str, then: &str) -> std::path::PathBuf {
    let mark = vpn.dir.join(&format!("{program}.running"));
    vpn.dir.write(
        &format!("bin/{program}"),
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" {when} \"*) touch {}; sleep 1;; esac\n{then}\n",
            mark.display()
        ),
        0o755,
    );
    mark
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn a_helper_still_running_when_the_service_dies_changes_nothing_after_the_replay() {
    let mut vpn = Vpn::with(&Setup {
        openvpn: Openvpn::Fake,
        ..Setup::new(&Pushes::default(), false, Dns::FakeResolvconf)
    });
    let before = vpn.snapshot();
    let resolvconf = std::fs::read_to_string(vpn.dir.join("bin/resolvconf")).unwrap();
    let resolvconf = resolvconf
        .trim_start_matches("#!/bin/sh\n")
        .trim()
        .to_owned();
    // Session 3 asks for DNS (resolvconf -a) in its up hook and for the leak block (nft -f)
    // in its route-up hook. Each time the service dies while the helper runs; the helper
    // would make its change after the next run has replayed the journal, unless it dies too.
    for (program, when, then) in [
        ("resolvconf", "-a", resolvconf.clone()),
        ("nft", "-f", "exec /usr/sbin/nft \"$@\"".to_owned()),
    ] {
        let mark = slow(&vpn, program, when, &then);
        let pid = start(&vpn, 3).expect("session 3 starts");
        assert!(
            eventually(Duration::from_secs(20), || mark.exists()),
            "{program} never ran:\n{}",
            vpn.service.log()
        );
        vpn.service.crash();
        vpn.restart_service();
        assert!(
            vpn.service.log().contains("undoing what"),
            "{}",
            vpn.service.log()
        );
        // Long enough for an orphaned helper to have finished its work.
        std::thread::sleep(Duration::from_millis(1500));
        assert_same(&before, &vpn.snapshot(), &vpn);
        assert!(eventually(Duration::from_secs(10), || !alive(pid)));
        std::fs::remove_file(&mark).unwrap();
        // Fast again for the next round.
        vpn.dir.write(
            &format!("bin/{program}"),
            &format!("#!/bin/sh\n{then}\n"),
            0o755,
        );
        let _ = std::fs::remove_file(done_file(&vpn, 3));
    }
}
