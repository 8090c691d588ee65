//! The Linux service end to end, with real unprivileged users and a fake openvpn that records
//! how it was started (issue: Linux service). Run as root by the e2e stage:
//! `cargo test -p openvpnserv-e2e -- --ignored --test-threads=1`.

use std::time::Duration;

use openvpnserv_e2e::fixture::{
    alive, as_user, eventually, hex_message, read_record, refusal_text, start, Fixture,
};
use openvpnserv_e2e::service::{probe, probe_command, root_probe_command, Send, TestDir};
use openvpnserv_e2e::users::{TestGroup, TestUser};
use openvpnserv_proto::codes::{ERROR_CANT_WAIT, ERROR_OPENVPN_STARTUP, ERROR_STARTUP_DATA};
use openvpnserv_proto::Reply;

const LINGER: Duration = Duration::from_secs(5);

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn valid_start_runs_openvpn_as_the_user() {
    let fx = Fixture::new("priority = \"BELOW_NORMAL_PRIORITY_CLASS\"");
    let extra = TestGroup::create();
    let user = TestUser::create(&[&extra]);
    let record = fx.config("a.ovpn", "send register_dns\nexit 0");
    let t = as_user(
        &fx,
        &user,
        &start(&fx.config_dir(), "--config a.ovpn --verb 3", "s3cret-pw\n"),
    );
    let pid = t.pid();
    assert!(
        t.closed,
        "the service closes the connection when the session ends: {t:?}"
    );
    assert_eq!(t.replies.len(), 1, "exit code 0 sends no late reply: {t:?}");
    let r = read_record(&record);
    assert_eq!(r["pid"], pid);
    let config = fx.config_dir.join("a.ovpn").display().to_string();
    assert_eq!(
        r["argv"],
        serde_json::json!(["openvpn", "--config", config, "--verb", "3"])
    );
    assert_eq!(r["cwd"], fx.config_dir());
    for id in ["uid", "euid"] {
        assert_eq!(r[id], user.uid, "{id}");
    }
    for id in ["gid", "egid"] {
        assert_eq!(r[id], user.gid, "{id}");
    }
    let mut groups: Vec<u64> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_u64().unwrap())
        .collect();
    groups.sort_unstable();
    let mut expected = vec![u64::from(user.gid), u64::from(extra.gid)];
    expected.sort_unstable();
    assert_eq!(groups, expected, "supplementary groups");
    assert_eq!(r["nice"], 10, "BELOW_NORMAL_PRIORITY_CLASS");
    assert_eq!(r["stdin"], "s3cret-pw\n");
    // A clean environment for the user, nothing from the service.
    let env = r["env"].as_object().unwrap();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(keys, ["HOME", "LANG", "LOGNAME", "PATH", "SHELL", "USER"]);
    assert_eq!(env["USER"], user.name.as_str());
    assert_eq!(env["LOGNAME"], user.name.as_str());
    // Only 0-2 and the channel (3) are inherited (4 is the fake's own /proc listing).
    let fds = r["fds"].as_object().unwrap();
    assert!(fds["0"].as_str().unwrap().starts_with("pipe:"), "{fds:?}");
    // stdout and stderr: one pipe to the service (the control socket's `log`), not stdin's.
    let output = fds["1"].as_str().unwrap();
    assert!(output.starts_with("pipe:") && output != fds["0"], "{fds:?}");
    assert_eq!(fds["2"], fds["1"], "{fds:?}");
    assert!(fds["3"].as_str().unwrap().starts_with("socket:"), "{fds:?}");
    assert_eq!(fds.len(), 5, "no other fd leaks into openvpn: {fds:?}");
    // The channel answers (the network layer is not part of this test: any ack will do).
    let ack = &r["acks"][0];
    assert_eq!(ack[0], 7, "ack echoes the message id");
    assert_eq!(ack[2], 32, "x86-64 ack size");
    // The password never reaches the log.
    assert!(!fx.service.log().contains("s3cret-pw"));
    assert!(fx.service.log().contains(&format!("user={}", user.name)));
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn config_outside_config_dir_needs_an_administrator() {
    let fx = Fixture::new("");
    let outside = TestDir::new("outside");
    let record = outside.join("x.json");
    std::fs::set_permissions(
        &outside.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    outside.write("x.ovpn", &format!("record {}\n", record.display()), 0o644);
    let what = start(&outside.path.display().to_string(), "--config x.ovpn", "");

    let user = TestUser::create(&[]);
    let t = as_user(&fx, &user, &what);
    let text = refusal_text(&t);
    assert!(
        text.contains("You have specified a config file location (x.ovpn relative to"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"{}\" group", fx.admin.name)),
        "{text}"
    );
    assert!(!record.exists(), "nothing was started");

    let admin = TestUser::create(&[&fx.admin]);
    let t = as_user(&fx, &admin, &what);
    t.pid();
    assert!(
        read_record(&record)["argv"][2] == "x.ovpn",
        "an administrator's options pass verbatim"
    );
    std::fs::remove_file(&record).unwrap();

    let t = probe(
        root_probe_command(),
        &fx.service.socket,
        &what,
        LINGER,
        false,
    );
    t.pid();
    assert_eq!(read_record(&record)["uid"], 0);
}

/// Every rule of spec §3 for an ordinary user, end to end: each must be refused with the
/// exact text and start nothing.
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2025_13751_silent_client_times_out() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let t = as_user(&fx, &user, &Send::Nothing);
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
    );
    let ms = t.first_reply_ms.unwrap();
    assert!((1900..3000).contains(&ms), "timeout after {ms} ms");
    assert!(t.closed);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn openvpn_exit_code_is_reported() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    fx.config("three.ovpn", "exit 3");
    let t = as_user(
        &fx,
        &user,
        &start(&fx.config_dir(), "--config three.ovpn", ""),
    );
    t.pid();
    assert_eq!(t.replies.len(), 2, "{t:?}");
    assert_eq!(t.replies[1], Ok(Reply::exit_error(3)));
    assert!(matches!(
        &t.replies[1],
        Ok(Reply::Error {
            code: ERROR_OPENVPN_STARTUP,
            ..
        })
    ));
    assert!(t.closed);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn working_directory_the_user_cannot_enter() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    fx.config("ok.ovpn", "exit 0");
    let private = fx.dir.mkdir("private", 0o700);
    let config = fx.config_dir.join("ok.ovpn").display().to_string();
    let t = as_user(
        &fx,
        &user,
        &start(
            &private.display().to_string(),
            &format!("--config {config}"),
            "",
        ),
    );
    match t.first() {
        Reply::Error {
            code,
            function,
            text,
        } => {
            assert_eq!(*code, 5, "ERROR_ACCESS_DENIED: {t:?}");
            assert_eq!(function, "CreateProcessAsUser");
            assert!(
                text.contains("working directory") && text.contains("Permission denied"),
                "{text}"
            );
        }
        other @ Reply::Pid(_) => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn early_client_disconnect_keeps_the_session() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let record = fx.config("long.ovpn", "sleep-ms 1500\nexit 4");
    let t = probe(
        probe_command(&user),
        &fx.service.socket,
        &start(&fx.config_dir(), "--config long.ovpn", ""),
        LINGER,
        true,
    );
    let pid = t.pid();
    assert!(!t.closed, "the probe left first");
    assert!(alive(pid), "openvpn runs on without its client");
    read_record(&record);
    assert!(
        eventually(Duration::from_secs(5), || fx
            .service
            .log()
            .contains("exit code = 4")),
        "{}",
        fx.service.log()
    );
    assert!(fx
        .service
        .log()
        .contains("client disconnected; the session goes on"));
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn service_stop_ends_every_openvpn() {
    let mut fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let polite = fx.config("polite.ovpn", "wait\nexit 0");
    let stubborn = fx.config("stubborn.ovpn", "wait\nignore-term");
    let a = probe(
        probe_command(&user),
        &fx.service.socket,
        &start(&fx.config_dir(), "--config polite.ovpn", ""),
        LINGER,
        true,
    )
    .pid();
    let b = probe(
        probe_command(&user),
        &fx.service.socket,
        &start(&fx.config_dir(), "--config stubborn.ovpn", ""),
        LINGER,
        true,
    )
    .pid();
    read_record(&polite);
    read_record(&stubborn);
    assert!(alive(a) && alive(b));
    let started = std::time::Instant::now();
    let status = fx.service.stop();
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    assert!(!alive(a) && !alive(b), "no openvpn survives the service");
    assert!(
        polite.with_extension("json.terminated").exists(),
        "the polite one got SIGTERM"
    );
    assert!(!stubborn.with_extension("json.terminated").exists());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "2 s grace, then SIGKILL: {took:?}"
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn two_hundred_concurrent_sessions() {
    let fx = Fixture::new("max_sessions = 300\nmax_sessions_per_user = 300");
    let user = TestUser::create(&[]);
    fx.config("hold.ovpn", "wait\nexit 0");
    let mut children = Vec::new();
    for _ in 0..200 {
        let mut cmd = probe_command(&user);
        cmd.arg(&fx.service.socket)
            .arg("8000")
            .arg("leave")
            .args(["startup", &fx.config_dir(), "--config hold.ovpn", ""])
            .stdout(std::process::Stdio::piped());
        children.push(cmd.spawn().expect("probe"));
    }
    let mut pids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let (_, text): (u64, String) =
            serde_json::from_str(line.strip_prefix("REPLY ").expect("a reply")).unwrap();
        match Reply::parse(&text).unwrap() {
            Reply::Pid(pid) => pids.push(pid),
            other @ Reply::Error { .. } => panic!("{other:?}"),
        }
    }
    assert_eq!(pids.len(), 200);
    assert!(eventually(Duration::from_secs(10), || pids
        .iter()
        .all(|&p| alive(p))));
    drop(fx);
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "all ended with the service"
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn session_limits_have_clear_replies() {
    let fx = Fixture::new("max_sessions = 3\nmax_sessions_per_user = 2");
    let (u1, u2) = (TestUser::create(&[]), TestUser::create(&[]));
    fx.config("hold.ovpn", "wait");
    let go = |u: &TestUser| {
        probe(
            probe_command(u),
            &fx.service.socket,
            &start(&fx.config_dir(), "--config hold.ovpn", ""),
            LINGER,
            true,
        )
    };
    go(&u1).pid();
    go(&u1).pid();
    let t = go(&u1);
    assert_eq!(t.code(), ERROR_CANT_WAIT);
    assert!(
        matches!(t.first(), Reply::Error { function, .. } if function.contains("max_sessions_per_user")),
        "{t:?}"
    );
    go(&u2).pid();
    let t = go(&u2);
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_CANT_WAIT, "Too many concurrent clients", "")
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn identity_comes_from_the_kernel() {
    // Whatever the message says, openvpn runs as the connecting user.
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let record = fx.config("who.ovpn", "exit 0");
    as_user(
        &fx,
        &user,
        &start(&fx.config_dir(), "--config who.ovpn --setenv USER root", ""),
    )
    .pid();
    let r = read_record(&record);
    assert_eq!(r["uid"], user.uid);
    assert_eq!(r["env"]["USER"], user.name.as_str());
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2024_27459_oversized_channel_message() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let record = fx.config(
        "big.ovpn",
        &format!("send-hex {}\nwait\nignore-term", hex_message(7, 1697, 1)),
    );
    let t = probe(
        probe_command(&user),
        &fx.service.socket,
        &start(&fx.config_dir(), "--config big.ovpn", ""),
        Duration::from_secs(8),
        false,
    );
    let pid = t.pid();
    read_record(&record.with_extension("json.started"));
    assert!(!record.exists(), "the fake never got an ack to record");
    assert!(t.closed, "the session ends: {t:?}");
    assert_eq!(
        t.replies.len(),
        1,
        "a killed openvpn gets no exit reply: {t:?}"
    );
    assert!(!alive(pid), "openvpn is killed after the grace period");
    let log = fx.service.log();
    assert!(
        log.contains("oversized channel message") && log.contains("killing it"),
        "{log}"
    );
}
