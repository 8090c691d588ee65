//! The service's socket: systemd activation and readiness (with a harness that does what
//! systemd does), refusing to start next to a live service, never removing what is not a
//! socket, replacing a stale socket, and refusing an unsafe run directory.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use openvpnserv_e2e::fixture::read_record;
use openvpnserv_e2e::service::{
    binary, probe, probe_command, unique_instance, wait_timeout, Send, Service, TestDir,
};
use openvpnserv_e2e::users::TestUser;

fn settings(dir: &TestDir) -> String {
    let config = dir.mkdir("config", 0o755);
    let fake = dir.join("fake-openvpn");
    std::fs::copy(binary("fake-openvpn"), &fake).unwrap();
    format!(
        "exe_path = \"{}\"\nconfig_dir = \"{}\"\n",
        fake.display(),
        config.display()
    )
}

fn run_dir(instance: &str) -> String {
    format!("/run/openvpn{instance}")
}

/// Runs the service to completion (it is expected to refuse to start) and returns its output.
fn failing_start(dir: &TestDir, settings: &str, instance: &str) -> String {
    let (mut cmd, _, log) = Service::command(dir, settings, instance);
    let mut child = cmd.spawn().unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("the service exits");
    assert!(!status.success(), "the service must refuse to start");
    std::fs::read_to_string(log).unwrap()
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn socket_activation_and_readiness() {
    let dir = TestDir::new("sd");
    let settings = settings(&dir);
    let instance = unique_instance();
    let rundir = run_dir(&instance);
    std::fs::create_dir_all(&rundir).unwrap();
    let path = format!("{rundir}/service");
    // What `systemd-socket-activate --seqpacket` does: a listening socket, mode 0755.
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(listener.as_raw_fd(), &UnixAddr::new(path.as_str()).unwrap()).unwrap();
    listen(&listener, Backlog::new(16).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let notify_path = dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let listen_fd = listener.as_raw_fd();
    let mut service = Service::start_with(&dir, &settings, &instance, |cmd| {
        let log = dir.join(&format!("service-{instance}.log"));
        let log_file = std::fs::File::options().append(true).open(&log).unwrap();
        let mut sh = Command::new("/bin/sh");
        // LISTEN_PID must be the service's own pid; `exec` keeps the shell's.
        sh.arg("-c")
            .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env("LISTEN_FDS", "1")
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        // SAFETY: dup2 in the child only.
        unsafe {
            sh.pre_exec(move || {
                if libc::dup2(listen_fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        sh
    });
    drop(listener);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the service");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().mode() & 0o777,
        0o666,
        "the socket mode is fixed"
    );

    // It serves clients on the inherited socket, and openvpn does not inherit the listener.
    let user = TestUser::create(&[]);
    let record = dir.mkdir("records", 0o777).join("rec.json");
    dir.write(
        "config/a.ovpn",
        &format!("record {}\n", record.display()),
        0o644,
    );
    let t = probe(
        probe_command(&user),
        Path::new(&path),
        &Send::Startup {
            dir: dir.join("config").display().to_string(),
            options: "--config a.ovpn".into(),
            stdin: String::new(),
        },
        Duration::from_secs(5),
        false,
    );
    t.pid();
    let fds = read_record(&record)["fds"].as_object().unwrap().clone();
    assert_eq!(fds.len(), 5, "{fds:?}");

    assert!(service.stop().success());
    let n = notify.recv(&mut buf).expect("STOPPING=1 from the service");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(
        Path::new(&path).exists(),
        "systemd's socket is systemd's to remove"
    );
    let _ = std::fs::remove_dir_all(rundir);
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn a_second_service_on_the_same_socket_is_refused() {
    let dir = TestDir::new("dup");
    let settings = settings(&dir);
    let instance = unique_instance();
    let first = Service::start_with(&dir, &settings, &instance, |c| c);
    let output = failing_start(&dir, &settings, &instance);
    assert!(output.contains("already listening"), "{output}");
    // The first one still serves.
    let t = probe(
        probe_command(&TestUser::create(&[])),
        &first.socket,
        &Send::Nothing,
        Duration::from_secs(5),
        false,
    );
    assert_eq!(t.code(), openvpnserv_proto::codes::ERROR_STARTUP_DATA);
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn a_path_that_is_not_a_socket_is_never_removed() {
    let dir = TestDir::new("nosock");
    let settings = settings(&dir);
    let instance = unique_instance();
    let rundir = run_dir(&instance);
    std::fs::create_dir_all(&rundir).unwrap();
    let path = format!("{rundir}/service");
    std::fs::write(&path, "precious").unwrap();
    let output = failing_start(&dir, &settings, &instance);
    assert!(
        output.contains("is not a socket; not removing it"),
        "{output}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    let _ = std::fs::remove_dir_all(rundir);
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn a_stale_socket_is_replaced() {
    let dir = TestDir::new("stale");
    let settings = settings(&dir);
    let instance = unique_instance();
    let rundir = run_dir(&instance);
    std::fs::create_dir_all(&rundir).unwrap();
    let path = format!("{rundir}/service");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let service = Service::start_with(&dir, &settings, &instance, |c| c);
    assert!(
        service.log().contains("removing the stale socket"),
        "{}",
        service.log()
    );
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666);
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn an_unsafe_run_directory_is_refused() {
    let dir = TestDir::new("rundir");
    let settings = settings(&dir);
    let instance = unique_instance();
    let rundir = run_dir(&instance);
    std::fs::create_dir_all(&rundir).unwrap();
    std::fs::set_permissions(&rundir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = failing_start(&dir, &settings, &instance);
    assert!(
        output.contains("must be a directory owned by root and not writable by group or others"),
        "{output}"
    );
    let user = TestUser::create(&[]);
    std::fs::set_permissions(&rundir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&rundir, Some(user.uid), None).unwrap();
    let output = failing_start(&dir, &settings, &instance);
    assert!(
        output.contains(&format!("owned by uid {}", user.uid)),
        "{output}"
    );
    let _ = std::fs::remove_dir_all(rundir);
}

#[test]
#[ignore = "needs root: binds under /run and runs the service (e2e stage)"]
fn a_clean_stop_leaves_no_socket_and_no_run_directory() {
    let dir = TestDir::new("clean");
    let settings = settings(&dir);
    let instance = unique_instance();
    let mut service = Service::start_with(&dir, &settings, &instance, |c| c);
    assert!(service.stop().success());
    assert!(
        !Path::new(&run_dir(&instance)).exists(),
        "{}",
        service.log()
    );
}
