//! `iservice connect` as an unprivileged user against the real Linux service, which starts
//! the recording fake openvpn: what the user sees when the service refuses, when openvpn
//! fails, and when no service runs, and what openvpn was given.
#![cfg(target_os = "linux")]

use std::process::{Output, Stdio};

use openvpnserv_e2e::fixture::{read_record, Fixture};
use openvpnserv_e2e::service::binary;
use openvpnserv_e2e::users::TestUser;

/// `iservice connect <config> -instance interactive <id> --non-interactive [extra]` as `user`.
fn iservice(user: &TestUser, config: &str, instance: &str, extra: &[&str]) -> Output {
    user.command(binary("iservice"))
        .args([
            "connect",
            config,
            "-instance",
            "interactive",
            instance,
            "--non-interactive",
        ])
        .args(extra)
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run iservice")
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn refused_by_the_service_exit_code_and_reason() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let outside = fx.dir.write("elsewhere.ovpn", "exit 0\n", 0o644);
    let out = iservice(
        &user,
        outside.to_str().unwrap(),
        &fx.service.instance,
        &["--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = events
        .iter()
        .find(|e| e["event"] == "refused")
        .expect("refused event");
    assert_eq!(refused["code"], 0x2000_0001);
    let why = refused["function"].as_str().unwrap();
    assert!(
        why.contains("requires admin approval") && why.contains(&fx.admin.name),
        "{why}"
    );
}

/// openvpn runs as the user, gets the loopback management interface with a password file
/// it can read, and its non-zero exit reaches the user as "openvpn failed".
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn openvpn_failure_exit_code_and_what_openvpn_was_given() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let record = fx.config("fails.ovpn", "exit 3");
    let config = fx.config_dir.join("fails.ovpn");
    let out = iservice(&user, config.to_str().unwrap(), &fx.service.instance, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("openvpn exited with error code 3"),
        "{stderr}"
    );
    let seen = read_record(&record);
    assert_eq!(seen["uid"], user.uid);
    let argv: Vec<&str> = seen["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = argv
        .iter()
        .position(|a| *a == "--management")
        .expect("--management");
    assert_eq!(argv[at + 1], "127.0.0.1");
    assert!(argv[at + 2].parse::<u16>().is_ok_and(|p| p > 0), "{argv:?}");
    let password_file = argv[at + 3];
    assert!(password_file.ends_with("/management-password"), "{argv:?}");
    for flag in [
        "--management-hold",
        "--management-query-passwords",
        "--auth-retry",
    ] {
        assert!(argv.contains(&flag), "{flag} in {argv:?}");
    }
    // The private file is gone once iservice has ended.
    assert!(!std::path::Path::new(password_file).exists());
    assert_eq!(
        seen["stdin"], "",
        "on Linux the password does not go by stdin"
    );
}

#[test]
#[ignore = "needs root: creates users (e2e stage)"]
fn no_service_is_reported_as_not_running() {
    let user = TestUser::create(&[]);
    let out = iservice(
        &user,
        "/etc/openvpn/client/x.conf",
        "e2enosuchinstance",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("is not running")
            && stderr.contains("/run/openvpne2enosuchinstance/service"),
        "{stderr}"
    );
}
