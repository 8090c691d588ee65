//! The attack suite: hostile input from real unprivileged users, one table per surface
//! (startup bytes, options, config paths, identity, channel messages, resources). Every case
//! expects a clear refusal and no change of state: nothing started (the fake openvpn would
//! have left a record), and the service still serving. See docs/attack-surface.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openvpnserv_e2e::fixture::{
    alive, as_user, hex_message, read_record, refusal_text, start, Fixture,
};
use openvpnserv_e2e::service::{probe, probe_command, Send};
use openvpnserv_e2e::users::TestUser;
use openvpnserv_proto::codes::{
    ERROR_CANT_WAIT, ERROR_MESSAGE_DATA, ERROR_MESSAGE_TYPE, ERROR_STARTUP_DATA,
};
use openvpnserv_proto::Reply;

/// Every fake-openvpn config in these tests records into the fixture's records directory,
/// so an empty directory proves that nothing was started.
fn nothing_started(fx: &Fixture) {
    let entries: Vec<_> = std::fs::read_dir(&fx.records)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(entries.is_empty(), "something was started: {entries:?}");
}

/// A valid request still succeeds (the service survived everything before it).
fn still_serving(fx: &Fixture, user: &TestUser) {
    let record = fx.config("canary.ovpn", "exit 0");
    as_user(
        fx,
        user,
        &start(&fx.config_dir(), "--config canary.ovpn", ""),
    )
    .pid();
    read_record(&record);
    std::fs::remove_file(record).unwrap();
}

/// The fds and environment every launched openvpn must have.
fn check_child(record: &serde_json::Value, user: &TestUser) {
    assert_eq!(record["uid"], user.uid);
    assert_eq!(record["euid"], user.uid);
    let fds = record["fds"].as_object().unwrap();
    assert_eq!(
        fds.len(),
        5,
        "only 0-3 (and the fake's own listing): {fds:?}"
    );
    let env = record["env"].as_object().unwrap();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(keys, ["HOME", "LANG", "LOGNAME", "PATH", "SHELL", "USER"]);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_startup_bytes() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let bad = Reply::error(ERROR_STARTUP_DATA, "GetStartupData", "");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty datagram", vec![]),
        ("one byte (the 2017 out-of-bounds read)", vec![0x41]),
        ("three bytes, no terminator", vec![0x41, 0, 0x42]),
        ("no final NUL", vec![0x41, 0, 0x42, 0]),
        ("one string", vec![0x41, 0, 0, 0]),
        ("two strings", vec![0x41, 0, 0, 0, 0x42, 0, 0, 0]),
        ("8194 bytes (size bound)", vec![0; 8194]),
        ("20000 bytes", vec![0x41; 20000]),
        (
            "unpaired high surrogate",
            vec![0x00, 0xD8, 0, 0, 0, 0, 0, 0],
        ),
        (
            "lone low surrogate in options",
            vec![0x41, 0, 0, 0, 0x00, 0xDC, 0, 0, 0, 0],
        ),
    ];
    for (what, bytes) in cases {
        let t = as_user(&fx, &user, &Send::Raw(bytes));
        assert_eq!(t.first(), &bad, "{what}: {t:?}");
        assert!(t.closed, "{what}");
    }
    // CVE-2025-13751: a silent client gets the timeout reply after 2 s.
    let t = as_user(&fx, &user, &Send::Nothing);
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
    );
    nothing_started(&fx);
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_options() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    fx.dir.write("config/ok.ovpn", "exit 0\n", 0o644);
    let cfg = fx.config_dir();
    let cases: &[(&str, &str)] = &[
        ("--config ok.ovpn --plugin /tmp/x.so", "--plugin"),
        ("--config ok.ovpn --up /bin/sh", "--up"),
        ("--config ok.ovpn --down /bin/sh", "--down"),
        ("--config ok.ovpn --route-up /bin/sh", "--route-up"),
        ("--config ok.ovpn --cd /", "--cd"),
        ("--config ok.ovpn --setenv opt plugin x.so", "--setenv"),
        ("--config ok.ovpn --Verb 3", "--Verb"),
        ("--config ok.ovpn --", "--"),
        ("--config ok.ovpn --dev tun9", "--dev"),
        ("--config ok.ovpn --iproute /bin/sh", "--iproute"),
        ("--config ok.ovpn --daemon", "--daemon"),
        ("--config ok.ovpn --writepid /etc/x", "--writepid"),
        ("--config ok.ovpn --tls-verify /bin/sh", "--tls-verify"),
        (
            "--config ok.ovpn --auth-user-pass-verify /bin/sh via-env",
            "--auth-user-pass-verify",
        ),
        (
            "--config ok.ovpn --client-connect /bin/sh",
            "--client-connect",
        ),
        (
            "--config ok.ovpn --learn-address /bin/sh",
            "--learn-address",
        ),
        ("--config ok.ovpn --ipchange /bin/sh", "--ipchange"),
        ("--config ok.ovpn --setenv --plugin x", "--plugin"),
        ("--verb 3 --config ok.ovpn --plugin", "--plugin"),
        ("--config ok.ovpn \"--plugin\" x.so", "--plugin"),
    ];
    for (options, token) in cases {
        let text = refusal_text(&as_user(&fx, &user, &start(&cfg, options, "")));
        assert!(
            text.starts_with(&format!(
                "You have specified an option ({token}) that may be used only with admin approval"
            )),
            "{options}: {text}"
        );
    }
    nothing_started(&fx);
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_config_paths() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let cfg = fx.config_dir();
    let rec = |name: &str| format!("record {}\n", fx.records.join(name).display());
    fx.dir.write("config/ok.ovpn", "exit 0\n", 0o644);
    let outside = fx.dir.write("outside.ovpn", &rec("outside"), 0o644);
    let sibling = fx.dir.mkdir("config-evil", 0o755);
    fx.dir.write("config-evil/x.ovpn", &rec("sibling"), 0o644);
    std::os::unix::fs::symlink(&outside, fx.config_dir.join("link.ovpn")).unwrap();
    std::os::unix::fs::symlink(&sibling, fx.config_dir.join("linkdir")).unwrap();
    fx.dir.mkdir("config/sub", 0o755);
    fx.dir.mkdir("config/open", 0o777);
    fx.dir.write("config/open/o.ovpn", &rec("open"), 0o644);
    let location = |path: &str, dir: &str| {
        format!("You have specified a config file location ({path} relative to {dir})")
    };
    let sib = sibling.display().to_string();
    let cases: Vec<(String, String, String)> = vec![
        (
            cfg.clone(),
            "--config stdin".into(),
            location("stdin", &cfg),
        ),
        (
            cfg.clone(),
            "--config ../outside.ovpn".into(),
            location("../outside.ovpn", &cfg),
        ),
        (
            cfg.clone(),
            format!("--config {}", outside.display()),
            location(&outside.display().to_string(), &cfg),
        ),
        (
            sib.clone(),
            "--config x.ovpn".into(),
            location("x.ovpn", &sib),
        ),
        (
            cfg.clone(),
            "--config ../config-evil/x.ovpn".into(),
            location("../config-evil/x.ovpn", &cfg),
        ),
        (
            cfg.clone(),
            "--config link.ovpn".into(),
            location("link.ovpn", &cfg),
        ),
        (
            cfg.clone(),
            "--config linkdir/x.ovpn".into(),
            location("linkdir/x.ovpn", &cfg),
        ),
        (
            "config".into(),
            "--config ok.ovpn".into(),
            location("ok.ovpn", "config"),
        ),
        (
            cfg.clone(),
            "--config missing.ovpn".into(),
            location("missing.ovpn", &cfg),
        ),
        (cfg.clone(), "--config sub".into(), location("sub", &cfg)),
        (
            cfg.clone(),
            "--config /dev/stdin".into(),
            location("/dev/stdin", &cfg),
        ),
        (
            cfg.clone(),
            "--config /proc/self/fd/0".into(),
            location("/proc/self/fd/0", &cfg),
        ),
        (
            cfg.clone(),
            "../outside.ovpn".into(),
            location("../outside.ovpn", &cfg),
        ),
        (
            cfg.clone(),
            "--config open/o.ovpn".into(),
            location("open/o.ovpn", &cfg),
        ),
    ];
    for (dir, options, expected) in cases {
        let text = refusal_text(&as_user(&fx, &user, &start(&dir, &options, "")));
        assert!(
            text.starts_with(&expected),
            "{options:?} in {dir:?}: {text}"
        );
    }
    nothing_started(&fx);
    still_serving(&fx, &user);
}

/// Swapping a symlink between a config in `config_dir` and one outside, as fast as possible,
/// while asking for it: every start must run the config that was checked.
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_symlink_swap_between_check_and_use() {
    let fx = Fixture::new("max_sessions_per_user = 64");
    let user = TestUser::create(&[]);
    let good = fx.config("good.ovpn", "exit 0");
    let evil_marker = fx.records.join("EVIL");
    let evil = fx.dir.write(
        "evil.ovpn",
        &format!("record {}\n", evil_marker.display()),
        0o644,
    );
    let home = fx.dir.mkdir("home", 0o755);
    std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).unwrap();
    let link = home.join("cfg");
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, link, good_path, evil) = (
            Arc::clone(&stop),
            link.clone(),
            fx.config_dir.join("good.ovpn"),
            evil.clone(),
        );
        std::thread::spawn(move || {
            let tmp = link.with_extension("tmp");
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::os::unix::fs::symlink(if flip { &evil } else { &good_path }, &tmp);
                let _ = std::fs::rename(&tmp, &link);
                flip = !flip;
            }
        })
    };
    let (mut started, mut refused) = (0, 0);
    for _ in 0..60 {
        let t = as_user(
            &fx,
            &user,
            &start(
                &home.display().to_string(),
                &format!("--config {}", link.display()),
                "",
            ),
        );
        match t.first() {
            Reply::Pid(_) => {
                started += 1;
                let r = read_record(&good);
                assert_eq!(
                    r["argv"][2],
                    fx.config_dir.join("good.ovpn").display().to_string(),
                    "openvpn got the canonical path"
                );
                std::fs::remove_file(&good).unwrap();
            }
            Reply::Error { code, .. } => {
                assert_eq!(*code, ERROR_STARTUP_DATA);
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    println!("started {started}, refused {refused}");
    assert!(
        started > 0 && refused > 0,
        "the race was exercised: {started} started, {refused} refused"
    );
    assert!(
        !evil_marker.exists(),
        "the config outside config_dir was never run"
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_identity() {
    let fx = Fixture::new("");
    let (alice, mallory) = (TestUser::create(&[]), TestUser::create(&[]));
    // Not an administrator: a config outside config_dir is refused.
    let outside = fx.dir.write(
        "outside.ovpn",
        &format!("record {}\n", fx.records.join("x").display()),
        0o644,
    );
    let text = refusal_text(&as_user(
        &fx,
        &mallory,
        &start("/", &format!("--config {}", outside.display()), ""),
    ));
    assert!(
        text.contains(&format!("\"{}\" group", fx.admin.name)),
        "{text}"
    );
    // Message content cannot change who openvpn runs as.
    let record = fx.config("who.ovpn", "wait");
    let t = probe(
        probe_command(&alice),
        &fx.service.socket,
        &start(
            &fx.config_dir(),
            "--config who.ovpn --setenv USER root --setenv HOME /root",
            "",
        ),
        Duration::from_secs(5),
        true,
    );
    let pid = t.pid();
    let r = read_record(&record);
    check_child(&r, &alice);
    assert_eq!(r["env"]["USER"], alice.name.as_str());
    // Another user cannot touch alice's session: no signal, no environment, no channel fd.
    let mut kill = mallory.command("kill");
    kill.args(["-0", &pid.to_string()]);
    assert!(
        !kill.output().unwrap().status.success(),
        "mallory cannot signal alice's openvpn"
    );
    for what in ["environ", "fd/3", "mem"] {
        let mut cat = mallory.command("cat");
        cat.arg(format!("/proc/{pid}/{what}"));
        let out = cat.output().unwrap();
        assert!(!out.status.success(), "mallory can read /proc/{pid}/{what}");
    }
    assert!(alive(pid));
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_channel_messages() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let data = u64::from(ERROR_MESSAGE_DATA);
    let cases: Vec<(&str, String, serde_json::Value)> = vec![
        (
            "8 bytes",
            "0100000000000000".into(),
            serde_json::json!([-1, data, 32]),
        ),
        (
            "header minus one",
            hex_message(14, 23, 5),
            serde_json::json!([-1, data, 32]),
        ),
        (
            "type 99",
            hex_message(99, 24, 42),
            serde_json::json!([42, ERROR_MESSAGE_TYPE, 32]),
        ),
        (
            "type 0 (an ack)",
            hex_message(0, 32, 6),
            serde_json::json!([6, ERROR_MESSAGE_TYPE, 32]),
        ),
        (
            "nbt (never handled)",
            hex_message(9, 560, 7),
            serde_json::json!([7, ERROR_MESSAGE_TYPE, 32]),
        ),
        (
            "route one byte too long",
            hex_message(3, 329, 9),
            serde_json::json!([9, data, 32]),
        ),
        (
            "short DNS message",
            hex_message(5, 300, 10),
            serde_json::json!([10, data, 32]),
        ),
        (
            "register_dns of 32 bytes",
            hex_message(14, 32, 11),
            serde_json::json!([11, data, 32]),
        ),
        (
            "size field not the length",
            hex_message(3, 300, 9).replace("2c01000000000000", "4801000000000000"),
            serde_json::json!([-1, data, 32]),
        ),
    ];
    let script: String = cases.iter().fold(String::new(), |acc, (_, hex, _)| {
        acc + "send-hex "
            + hex
            + "
"
    });
    let record = fx.config("garbage.ovpn", &format!("{script}exit 0"));
    as_user(
        &fx,
        &user,
        &start(&fx.config_dir(), "--config garbage.ovpn", ""),
    )
    .pid();
    let r = read_record(&record);
    for (i, (what, _, expected)) in cases.iter().enumerate() {
        assert_eq!(&r["acks"][i], expected, "{what}");
    }
    check_child(&r, &user);
    std::fs::remove_file(&record).unwrap();
    std::fs::remove_file(record.with_extension("json.started")).unwrap();

    // One byte larger than any request is service_linux.rs's
    // cve_2024_27459_oversized_channel_message: no ack, channel dropped, openvpn killed.
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn attack_resources() {
    let fx = Fixture::new("max_sessions = 4\nmax_sessions_per_user = 2");
    let (u1, u2, u3) = (
        TestUser::create(&[]),
        TestUser::create(&[]),
        TestUser::create(&[]),
    );
    fx.config("hold.ovpn", "wait");
    let hold = |u: &TestUser| {
        probe(
            probe_command(u),
            &fx.service.socket,
            &start(&fx.config_dir(), "--config hold.ovpn", ""),
            Duration::from_secs(5),
            true,
        )
    };
    hold(&u1).pid();
    hold(&u1).pid();
    // Per-user limit.
    assert_eq!(hold(&u1).code(), ERROR_CANT_WAIT);
    hold(&u2).pid();
    hold(&u2).pid();
    // Total limit, for a user who has none yet.
    let t = hold(&u3);
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_CANT_WAIT, "Too many concurrent clients", "")
    );
    // A huge startup message is bounded (and refused) even at the limit.
    let t = as_user(&fx, &u3, &Send::Raw(vec![0x41; 20000]));
    assert_eq!(t.code(), ERROR_CANT_WAIT);
}
