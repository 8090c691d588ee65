//! The library's startup cases against the real Windows service, installed with its own
//! `-install` switch and started by the SCM under Wine: not installed, stopped, the GUI's
//! server-PID check against the SCM, the PID reply, the late exit-code error, and a pipe
//! that is not the service's.
#![cfg(windows)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use iservice::service::windows::PipeTransport;
use iservice::service::{start, ConnectError, Endpoint, ServerCheck, ServiceEvent, Timeouts};
use iservice::StartupMessage;
use openvpnserv_settings::Instance;
use openvpnserv_testkit_win::harness::{registry_instance, wine_path, WorkDir};

/// `openvpnserv.exe` from this target directory (built by the workspace's tests, which the
/// service's own SCM tests need too).
fn service_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("openvpnserv.exe");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p openvpnserv --target x86_64-pc-windows-gnu`",
        path.display()
    );
    path
}

/// The service installed for an instance; stopped and removed (`-remove`) on drop.
struct Installed {
    exe: PathBuf,
    id: String,
}

impl Installed {
    fn install(exe: PathBuf, id: &str) -> Self {
        remove(&exe, id);
        let installed = Self {
            exe,
            id: id.to_owned(),
        };
        succeed(Command::new(&installed.exe).args(["-instance", "interactive", id, "-install"]));
        installed
    }
}

/// Runs a command that must succeed.
fn succeed(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `openvpnserv -instance interactive <id> -remove` (stops and deletes; fine if absent).
fn remove(exe: &std::path::Path, id: &str) {
    let _ = Command::new(exe)
        .args(["-instance", "interactive", id, "-remove"])
        .output();
}

impl Drop for Installed {
    fn drop(&mut self) {
        remove(&self.exe, &self.id);
    }
}

const T: Duration = Duration::from_secs(2);

fn connect(
    endpoint: &Endpoint,
    runtime: &tokio::runtime::Runtime,
) -> Result<PipeTransport, ConnectError> {
    let Endpoint::Pipe { path, server } = endpoint else {
        panic!("a pipe")
    };
    runtime.block_on(PipeTransport::connect(path, server, T))
}

#[test]
fn startup_cases_against_the_windows_service() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let instance = Instance::new("$client").unwrap();
    let endpoint = Endpoint::for_instance(&instance);
    let work = WorkDir::new("client-service");
    let exe = service_exe();
    // openvpnserv.exe itself stands in for openvpn: it refuses openvpn's options and exits
    // with 2, which gives the PID reply and then the exit-code reply.
    let _registry = registry_instance(
        &instance,
        &[
            ("", r"C:\OpenVPN".to_owned()),
            ("exe_path", exe.display().to_string()),
            ("config_dir", work.config_dir()),
        ],
    );

    // Not installed: said so, before any pipe is tried.
    remove(&exe, instance.id());
    let err = connect(&endpoint, &runtime).unwrap_err();
    assert!(matches!(err, ConnectError::NotInstalled { .. }), "{err:?}");

    // Installed but stopped: not running.
    let _service = Installed::install(exe, instance.id());
    let err = connect(&endpoint, &runtime).unwrap_err();
    assert!(matches!(err, ConnectError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("not running"), "{err}");

    // Started by the SCM: the pipe's server is the process the SCM reports.
    succeed(Command::new("sc.exe").args(["start", &instance.service_name()]));
    let deadline = Instant::now() + Duration::from_secs(15);
    let transport = loop {
        match connect(&endpoint, &runtime) {
            Ok(t) => break t,
            Err(e) => {
                assert!(Instant::now() < deadline, "the service never came up: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let message = StartupMessage::new(work.text(), "--config a.ovpn", "pw\n");
    let timeouts = Timeouts {
        connect: T,
        reply: Duration::from_secs(10),
    };
    let mut session = runtime
        .block_on(start(transport, &message, timeouts))
        .unwrap();
    assert_ne!(session.pid(), 0);
    let late = runtime.block_on(session.next_event());
    assert_eq!(late.openvpn_exit_code(), Some(2), "{late:?}");
    assert_eq!(runtime.block_on(session.next_event()), ServiceEvent::Closed);

    // The default endpoint checks the SCM's process; the same pipe checked against another
    // process id is refused (CVE-2024-4877).
    assert!(matches!(
        &endpoint,
        Endpoint::Pipe { server: ServerCheck::Service(name), .. } if *name == instance.service_name()
    ));
    let err = runtime
        .block_on(PipeTransport::connect(
            &instance.pipe_path(),
            &ServerCheck::Pid(std::process::id()),
            T,
        ))
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::WrongServer { expected, .. } if expected == std::process::id()),
        "{err:?}"
    );

    // The command itself: the SCM check passes, openvpn (here openvpnserv.exe) starts and
    // exits with 2, and the user learns that openvpn failed, with its exit code.
    work.write("a.ovpn", "client\n");
    let out = Command::new(wine_path(env!("CARGO_BIN_EXE_iservice")))
        .arg("connect")
        .arg(work.path().join("a.ovpn"))
        .args([
            "-instance",
            "interactive",
            instance.id(),
            "--json",
            "--non-interactive",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"service_connected"), "{text}");
    assert!(
        names.contains(&"started") && names.contains(&"service_error"),
        "{text}"
    );
    let exit = events.last().unwrap();
    assert_eq!(exit["outcome"], "openvpn_failed");
    assert!(
        exit["message"].as_str().unwrap().contains("error code 2"),
        "{text}"
    );
}
