//! One test per row of the security history (spec §9), against the Linux service, named after
//! the flaw it guards. docs/upstream-cve.md maps every row to its tests on both platforms.
//! Rows already covered by a test of that name elsewhere are listed there.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use openvpnserv_e2e::fixture::{as_user, refusal_text, start, Fixture};
use openvpnserv_e2e::service::{connect_seqpacket, probe, probe_command, Send};
use openvpnserv_e2e::users::TestUser;
use openvpnserv_proto::codes::{ERROR_CANT_WAIT, ERROR_STARTUP_DATA};
use openvpnserv_proto::Reply;

/// The next client is still served.
fn still_serving(fx: &Fixture, user: &TestUser) {
    fx.config("ok.ovpn", "exit 0");
    as_user(fx, user, &start(&fx.config_dir(), "--config ok.ovpn", "")).pid();
}

/// A normal user asking for `options` (which name `ok.ovpn`) gets upstream's text for an
/// option that needs an administrator, naming `token`.
fn option_refused(options: &str, token: &str) {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    fx.config("ok.ovpn", "exit 0");
    let text = refusal_text(&as_user(&fx, &user, &start(&fx.config_dir(), options, "")));
    assert!(
        text.starts_with(&format!(
            "You have specified an option ({token}) that may be used only with admin approval"
        )),
        "{options}: {text}"
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn bug_2017_one_byte_startup_data() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let t = as_user(&fx, &user, &Send::Raw(vec![0x41]));
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_STARTUP_DATA, "GetStartupData", "")
    );
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2018_9336_malformed_startup_data_is_answered_and_survived() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    for bytes in [
        vec![],
        vec![0],
        vec![0x41, 0, 0x42],
        vec![0x41, 0, 0x42, 0],
        vec![0x41, 0, 0, 0],
        vec![0x41, 0, 0, 0, 0x42, 0, 0, 0],
        vec![0x41; 8195],
    ] {
        let t = as_user(&fx, &user, &Send::Raw(bytes.clone()));
        assert_eq!(t.code(), ERROR_STARTUP_DATA, "{} bytes", bytes.len());
    }
    still_serving(&fx, &user);
}

/// Spec: remote clients reached the Windows pipe over SMB. The Linux service holds no IP
/// socket at all: its clients reach it only through the unix socket.
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2024_24974_no_remote_access() {
    let fx = Fixture::new("");
    let pid = fx.service.pid();
    let mut ip_inodes = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        ip_inodes.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned)),
        );
    }
    let mut sockets = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path())
            .unwrap_or_default()
            .display()
            .to_string();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            sockets += 1;
            assert!(
                !ip_inodes.iter().any(|i| i == inode),
                "fd {target} is an IP socket"
            );
        }
    }
    assert!(sockets >= 1, "the listening socket is among them");
    assert!(fx.service.socket.exists());
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2024_27903_plugin_is_refused() {
    option_refused("--config ok.ovpn --plugin /tmp/evil.so", "--plugin");
}

/// Spec: any user could create another instance of the service pipe. Here the socket lives in
/// a root-owned 0755 directory: a user can neither replace it nor create a name beside it,
/// and a second service on the same name refuses to start (`service_socket.rs`).
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2024_4877_socket_cannot_be_squatted() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let dir = fx.service.socket.parent().unwrap().to_path_buf();
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o755));
    assert_eq!(
        std::fs::symlink_metadata(&fx.service.socket).unwrap().uid(),
        0
    );
    for (program, args) in [
        ("rm", vec!["-f".to_owned(), fx.service.socket.display().to_string()]),
        ("touch", vec![dir.join("service2").display().to_string()]),
        ("python3", vec!["-c".into(), format!("import socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind('{}')", dir.join("rogue").display())]),
    ] {
        let mut cmd = user.command(program);
        cmd.args(&args);
        assert!(!cmd.output().unwrap().status.success(), "{program} {args:?} succeeded as a user");
    }
    assert!(fx.service.socket.exists());
    still_serving(&fx, &user);
}

/// Spec: the per-session pipe had a predictable name and a default DACL. Here the channel is an
/// anonymous socketpair: it has no name anywhere, and another user cannot reach openvpn's end.
#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn hardening_2026_channel_is_private() {
    let fx = Fixture::new("");
    let (alice, mallory) = (TestUser::create(&[]), TestUser::create(&[]));
    let record = fx.config("hold.ovpn", "wait");
    let t = probe(
        probe_command(&alice),
        &fx.service.socket,
        &start(&fx.config_dir(), "--config hold.ovpn", ""),
        Duration::from_secs(5),
        true,
    );
    let pid = t.pid();
    openvpnserv_e2e::fixture::read_record(&record);
    let channel = std::fs::read_link(format!("/proc/{pid}/fd/3"))
        .unwrap()
        .display()
        .to_string();
    let inode = channel
        .strip_prefix("socket:[")
        .and_then(|s| s.strip_suffix(']'))
        .expect("a socket");
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    let row = unix
        .lines()
        .find(|l| l.split_whitespace().nth(6) == Some(inode))
        .expect("listed");
    assert_eq!(row.split_whitespace().count(), 7, "no path: {row}");
    let mut open = mallory.command("cat");
    open.arg(format!("/proc/{pid}/fd/3"));
    assert!(!open.output().unwrap().status.success());
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn srlabs_config_stdin_is_refused() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let text = refusal_text(&as_user(
        &fx,
        &user,
        &start(
            &fx.config_dir(),
            "--config stdin",
            "client\nplugin /tmp/x.so\n",
        ),
    ));
    assert!(
        text.starts_with("You have specified a config file location (stdin relative to"),
        "{text}"
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn config_path_hardening_dotdot_case_and_sibling_prefix() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    fx.config("ok.ovpn", "exit 0");
    let sibling = fx.dir.mkdir("config-evil", 0o755);
    fx.dir.write("config-evil/x.ovpn", "exit 0\n", 0o644);
    let cfg = fx.config_dir();
    for (dir, options) in [
        (cfg.clone(), "--config ../config-evil/x.ovpn".to_owned()),
        (sibling.display().to_string(), "--config x.ovpn".to_owned()),
        (cfg.clone(), "--config ./../config-evil/x.ovpn".to_owned()),
        // Linux paths are case-sensitive: another case is another (absent) directory.
        (cfg.to_uppercase(), "--config ok.ovpn".to_owned()),
    ] {
        assert_eq!(
            as_user(&fx, &user, &start(&dir, &options, "")).code(),
            ERROR_STARTUP_DATA,
            "{options} in {dir}"
        );
    }
    // Relative with a working directory outside that resolves inside is fine.
    as_user(
        &fx,
        &user,
        &start(
            &fx.dir.path.display().to_string(),
            "--config config/./ok.ovpn",
            "",
        ),
    )
    .pid();
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn startup_size_bound_8194_bytes() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    assert_eq!(
        as_user(&fx, &user, &Send::Raw(vec![0x41; 8194])).code(),
        ERROR_STARTUP_DATA
    );
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2025_13751_connect_and_close_loop() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    let path = fx.service.socket.display().to_string();
    for _ in 0..1000 {
        drop(connect_seqpacket(&path).unwrap());
    }
    still_serving(&fx, &user);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2025_13751_session_limit_is_answered() {
    let fx = Fixture::new("max_sessions = 3");
    let user = TestUser::create(&[]);
    fx.config("hold.ovpn", "wait");
    for _ in 0..3 {
        probe(
            probe_command(&user),
            &fx.service.socket,
            &start(&fx.config_dir(), "--config hold.ovpn", ""),
            Duration::from_secs(5),
            true,
        )
        .pid();
    }
    let t = as_user(
        &fx,
        &user,
        &start(&fx.config_dir(), "--config hold.ovpn", ""),
    );
    assert_eq!(
        t.first(),
        &Reply::error(ERROR_CANT_WAIT, "Too many concurrent clients", "")
    );
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn cve_2026_63649_setenv_opt_is_refused() {
    option_refused(
        "--config ok.ovpn --setenv opt plugin /tmp/evil.so",
        "--setenv",
    );
}
