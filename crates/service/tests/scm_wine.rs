//! The service as a real SCM service under Wine: `sc create/start/stop/delete`, the
//! `$test` instance (`HKLM\SOFTWARE\OpenVPN$test`, `\\.\pipe\openvpn$test\service`), the
//! GUI's server-pid check, and `-install`/`-remove`.
#![cfg(windows)]

use std::process::Command;
use std::time::{Duration, Instant};

use openvpnserv_proto::codes::ERROR_STARTUP_DATA;
use openvpnserv_proto::{Reply, StartupMessage};
use openvpnserv_settings::Instance;
use openvpnserv_testkit_win::client::{Client, Read};
use openvpnserv_testkit_win::harness::{registry_instance, wine_path, RegistryKey, WorkDir};
use windows_service::service::{ServiceAccess, ServiceState};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

const EXE: &str = env!("CARGO_BIN_EXE_openvpnserv");

/// Runs `sc`; whether it succeeded, and what it printed.
fn sc(args: &[&str]) -> (bool, String) {
    let out = Command::new("sc.exe").args(args).output().expect("run sc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A service created with `sc create`; stopped and deleted on drop.
struct ScService(String);

impl ScService {
    fn create(name: &str, bin_path: &str) -> Self {
        let _ = sc(&["delete", name]);
        let (ok, out) = sc(&["create", name, "binPath=", bin_path]);
        assert!(ok, "sc create: {out}");
        Self(name.to_owned())
    }

    fn status(&self) -> (ServiceState, Option<u32>, u32) {
        let manager =
            ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).unwrap();
        let Ok(service) = manager.open_service(&self.0, ServiceAccess::QUERY_STATUS) else {
            // Already deleted.
            return (ServiceState::Stopped, None, 0);
        };
        let s = service.query_status().unwrap();
        let (windows_service::service::ServiceExitCode::Win32(exit)
        | windows_service::service::ServiceExitCode::ServiceSpecific(exit)) = s.exit_code;
        (s.current_state, s.process_id, exit)
    }

    fn wait_for(&self, state: ServiceState) -> (Option<u32>, u32) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (now, pid, exit) = self.status();
            if now == state {
                return (pid, exit);
            }
            assert!(
                Instant::now() < deadline,
                "service {} stuck in {now:?}, wanted {state:?}",
                self.0
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ScService {
    fn drop(&mut self) {
        let _ = sc(&["stop", &self.0]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.status().0 != ServiceState::Stopped {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = sc(&["delete", &self.0]);
    }
}

fn read_all(c: &Client) -> Vec<Reply> {
    let mut replies = Vec::new();
    loop {
        match c.read(Duration::from_secs(10)) {
            Read::Message(m) => replies.push(Reply::decode(&m).unwrap()),
            Read::Closed => return replies,
            Read::Timeout => panic!("session did not end: {replies:?}"),
        }
    }
}

/// Started by the SCM, the service creates its pipe from its own process (the GUI compares
/// the pipe server's pid with the SCM's), answers clients, and stops on STOP.
#[test]
fn runs_as_an_scm_service_on_the_test_instance() {
    let instance = Instance::new("$test").unwrap();
    let work = WorkDir::new("scm-test");
    // openvpnserv.exe itself stands in for openvpn: it refuses the options and exits with 2,
    // which exercises CreateProcessAsUserW, the PID reply and the exit-code reply.
    let _reg = registry_instance(
        &instance,
        &[
            ("", r"C:\OpenVPN".to_owned()),
            ("exe_path", wine_path(EXE)),
            ("config_dir", work.config_dir()),
        ],
    );
    let service = ScService::create(
        &instance.service_name(),
        &format!("\"{}\" -instance interactive $test", wine_path(EXE)),
    );
    // A rule a crashed earlier run left behind; the start-up clean-up removes it.
    let stale = RegistryKey::new(
        r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig\OpenVPNDNSRouting-99999",
        &[("GenericDNSServers", "10.9.9.9".to_owned())],
    );
    let (_, out) = sc(&["start", &service.0]);
    let (pid, _) = service.wait_for(ServiceState::Running);
    assert!(
        !stale.exists(),
        "start-up clean-up removes stale NRPT rules"
    );
    let silent = Client::connect(r"\\.\pipe\openvpn$test\service")
        .unwrap_or_else(|e| panic!("connect: {e}; sc start said {out}"));
    assert_eq!(
        silent.server_pid(),
        pid,
        "the pipe belongs to the process the SCM reports"
    );
    assert_eq!(
        silent.reply(Duration::from_secs(5)),
        Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
    );

    let c = Client::connect(&instance.pipe_path()).unwrap();
    c.send(&StartupMessage::new(work.text(), "--config a.ovpn", ""))
        .unwrap();
    let first = c.reply(Duration::from_secs(10));
    assert!(matches!(first, Reply::Pid(p) if p != 0), "{first:?}");
    assert_eq!(read_all(&c), vec![Reply::exit_error(2)]);

    sc(&["stop", &service.0]);
    let (_, exit) = service.wait_for(ServiceState::Stopped);
    assert_eq!(exit, 0);
    assert!(
        Client::connect(&instance.pipe_path()).is_err(),
        "the pipe is gone after STOP"
    );
}

/// Without its registry key the service does not start, and says why in its exit code.
#[test]
fn missing_registry_key_stops_the_service() {
    let service = ScService::create(
        "OpenVPNServiceInteractive$noreg",
        &format!("\"{}\" -instance interactive $noreg", wine_path(EXE)),
    );
    sc(&["start", &service.0]);
    let (_, exit) = service.wait_for(ServiceState::Stopped);
    assert_eq!(exit, 2, "ERROR_FILE_NOT_FOUND");
}

#[test]
fn install_and_remove_use_upstream_switches() {
    let run = |args: &[&str]| {
        let out = Command::new(EXE).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // A service left by an interrupted earlier run goes first; the guard removes ours.
    let _ = sc(&["delete", "OpenVPNServiceInteractive$inst"]);
    let guard = ScService("OpenVPNServiceInteractive$inst".to_owned());
    let (code, out) = run(&["/Instance", "INTERACTIVE", "$inst", "-INSTALL"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("OpenVPN Interactive Service ($inst) installed."),
        "{out}"
    );
    {
        let manager =
            ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).unwrap();
        let service = manager
            .open_service(
                "OpenVPNServiceInteractive$inst",
                ServiceAccess::QUERY_CONFIG,
            )
            .unwrap();
        let config = service.query_config().unwrap();
        let path = config.executable_path.to_string_lossy().into_owned();
        // The path is quoted when it needs to be (windows-service quotes paths with spaces,
        // as under Program Files; upstream always quotes).
        assert!(path.ends_with(" -instance interactive $inst"), "{path}");
        assert_eq!(
            path.starts_with('"'),
            wine_path(EXE).contains(' '),
            "{path}"
        );
        assert_eq!(
            config.start_type,
            windows_service::service::ServiceStartType::AutoStart
        );
        // Wine's QueryServiceConfig leaves the dependencies out; the SCM's registry has them.
        let reg = Command::new("reg.exe")
            .args([
                "query",
                r"HKLM\System\CurrentControlSet\Services\OpenVPNServiceInteractive$inst",
                "/v",
                "DependOnService",
            ])
            .output()
            .unwrap();
        let reg = String::from_utf8_lossy(&reg.stdout);
        assert!(reg.contains(r"tap0901\0Dhcp"), "{reg}");
    }
    // A running service is stopped first: upstream's lines, CRLF, no blank line between.
    let instance = Instance::new("$inst").unwrap();
    let work = WorkDir::new("scm-inst");
    let _reg = registry_instance(
        &instance,
        &[
            ("", r"C:\OpenVPN".to_owned()),
            ("exe_path", wine_path(EXE)),
            ("config_dir", work.config_dir()),
        ],
    );
    sc(&["start", "OpenVPNServiceInteractive$inst"]);
    guard.wait_for(ServiceState::Running);
    let (code, out) = run(&["-instance", "interactive", "$inst", "-remove"]);
    assert_eq!(code, Some(0), "{out}");
    let display = "OpenVPN Interactive Service ($inst)";
    let dots = out
        .strip_prefix(&format!("Stopping {display}."))
        .and_then(|rest| {
            rest.strip_suffix(&format!("\r\n{display} stopped.\r\n{display} removed.\r\n"))
        })
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(dots.chars().all(|c| c == '.'), "{out:?}");
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).unwrap();
    assert!(manager
        .open_service(
            "OpenVPNServiceInteractive$inst",
            ServiceAccess::QUERY_STATUS
        )
        .is_err());
    // A missing service: upstream's `OpenService failed - <system text> (0x424)`, exit 1.
    let (code, out) = run(&["-instance", "interactive", "$inst", "-remove"]);
    assert_eq!(code, Some(1), "{out:?}");
    assert!(
        out.starts_with("OpenService failed - ") && out.ends_with(" (0x424)\r\n"),
        "{out:?}"
    );
    assert_eq!(out.matches('\n').count(), 1, "{out:?}");
}
