//! The service control manager side (spec §1.1, §6.4): `-install`, `-remove`, `-start`, and
//! running as a service with STOP handling.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use openvpnserv_settings::Instance;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceDependency, ServiceErrorControl,
    ServiceExitCode, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::server::MembershipSource;
use super::sys::kernel::{system_text, Event};

/// The instance the dispatcher's callback serves (set once before dispatching).
static INSTANCE: OnceLock<Instance> = OnceLock::new();

/// Upstream: share-process for the default instance, own-process with `-instance`.
fn service_type(instance: &Instance) -> ServiceType {
    if instance.id().is_empty() {
        ServiceType::from_bits_truncate(0x20) // SERVICE_WIN32_SHARE_PROCESS
    } else {
        ServiceType::OWN_PROCESS
    }
}

/// `-install`: creates the service (auto start, `LocalSystem`, depends on `tap0901` and
/// `Dhcp`), binary path = this executable, quoted (plus `-instance interactive <id>` for
/// another instance). Exit code = number of failures.
pub fn install(instance: &Instance) -> ExitCode {
    let result = (|| -> windows_service::Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )?;
        let exe = std::env::current_exe().map_err(windows_service::Error::Winapi)?;
        let launch_arguments: Vec<OsString> = if instance.id().is_empty() {
            Vec::new()
        } else {
            vec![
                "-instance".into(),
                "interactive".into(),
                instance.id().into(),
            ]
        };
        let info = ServiceInfo {
            name: instance.service_name().into(),
            display_name: instance.display_name().into(),
            service_type: service_type(instance),
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe,
            launch_arguments,
            dependencies: vec![
                ServiceDependency::Service("tap0901".into()),
                ServiceDependency::Service("Dhcp".into()),
            ],
            account_name: None,
            account_password: None,
        };
        let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
        service.set_description(
            "Allows OpenVPN GUI and other clients to establish OpenVPN connections without administrative privileges in a secure way.",
        )?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            say(&format!("{} installed.\n", instance.display_name()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("CreateService failed - {}\n", error_text(&e)));
            ExitCode::from(1)
        }
    }
}

/// Writes console text as upstream's C runtime does: each `\n` becomes CRLF.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.replace('\n', "\r\n").as_bytes());
    let _ = out.flush();
}

/// The text upstream prints after `<call> failed - `: the system's message for the code
/// without its line end, then ` (0x<code>)`; empty when the system has no text.
fn error_text(e: &windows_service::Error) -> String {
    let code = match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    };
    let Some(code) = code else {
        return e.to_string();
    };
    let code = code as u32;
    let text = system_text(code);
    match text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
    {
        Some(t) if !t.is_empty() => format!("{t} (0x{code:x})"),
        _ => String::new(),
    }
}

/// `-remove`: sends STOP; if the service took it, `Stopping <name>.` and a dot a second
/// while it stops, then the outcome; then deletes it. Exit code = number of failures.
/// The texts and line ends are upstream's (`OpenService failed - …` for a missing service).
pub fn remove(instance: &Instance) -> ExitCode {
    let display = instance.display_name();
    let manager = match ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
    {
        Ok(m) => m,
        Err(e) => {
            say(&format!("OpenSCManager failed - {}\n", error_text(&e)));
            return ExitCode::from(1);
        }
    };
    let service = match manager.open_service(
        instance.service_name(),
        ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::DELETE,
    ) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("OpenService failed - {}\n", error_text(&e)));
            return ExitCode::from(1);
        }
    };
    if service.stop().is_ok() {
        say(&format!("Stopping {display}."));
        std::thread::sleep(Duration::from_secs(1));
        let mut state = ServiceState::StopPending;
        while let Ok(status) = service.query_status() {
            state = status.current_state;
            if state != ServiceState::StopPending {
                break;
            }
            say(".");
            std::thread::sleep(Duration::from_secs(1));
        }
        if state == ServiceState::Stopped {
            say(&format!("\n{display} stopped.\n"));
        } else {
            say(&format!("\n{display} failed to stop.\n"));
        }
    }
    match service.delete() {
        Ok(()) => {
            say(&format!("{display} removed.\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("DeleteService failed - {}\n", error_text(&e)));
            ExitCode::from(1)
        }
    }
}

/// `-start`, with upstream's texts.
pub fn start(instance: &Instance) -> ExitCode {
    let manager = match ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
    {
        Ok(m) => m,
        Err(e) => {
            say(&format!("OpenSCManager failed - {}\n", error_text(&e)));
            return ExitCode::from(1);
        }
    };
    let service = match manager.open_service(instance.service_name(), ServiceAccess::START) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("OpenService failed - {}\n", error_text(&e)));
            return ExitCode::from(1);
        }
    };
    match service.start::<&str>(&[]) {
        Ok(()) => {
            say("Service Started\n");
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("StartService failed - {}\n", error_text(&e)));
            ExitCode::from(1)
        }
    }
}

windows_service::define_windows_service!(ffi_service_main, service_main);

/// Where the dispatched service takes group membership from (set once before dispatching).
static MEMBERSHIP: OnceLock<MembershipSource> = OnceLock::new();

/// Hands the thread to the SCM. Fails when not started by the SCM (e.g. from a console).
pub fn dispatch(instance: Instance) -> Result<(), windows_service::Error> {
    dispatch_with(instance, MembershipSource::Token)
}

/// [`dispatch`] with another membership source: the test kit's service that finds no
/// groups, for the compliance stage's ordinary-user cases under Wine (where everyone is an
/// administrator). It can only take rights away.
pub fn dispatch_with(
    instance: Instance,
    membership: MembershipSource,
) -> Result<(), windows_service::Error> {
    let name = instance.service_name();
    let _ = INSTANCE.set(instance);
    let _ = MEMBERSHIP.set(membership);
    service_dispatcher::start(name, ffi_service_main)
}

fn service_main(_arguments: Vec<OsString>) {
    let instance = INSTANCE.get().cloned().unwrap_or_default();
    let membership = MEMBERSHIP.get().copied().unwrap_or(MembershipSource::Token);
    let Ok(stop) = Event::new() else { return };
    let Ok(stop_for_handler) = stop.try_clone() else {
        return;
    };
    let handler = move |control| match control {
        ServiceControl::Stop => {
            stop_for_handler.set();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(instance.service_name(), handler) else {
        return;
    };
    let kind = service_type(&instance);
    let report = |state, accept, exit: u32, checkpoint, hint| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: kind,
            current_state: state,
            controls_accepted: accept,
            exit_code: ServiceExitCode::Win32(exit),
            checkpoint,
            wait_hint: hint,
            process_id: None,
        });
    };
    report(
        ServiceState::StartPending,
        ServiceControlAccept::empty(),
        0,
        1,
        Duration::from_secs(3),
    );
    let exit = super::run_service(&instance, membership, &stop, || {
        report(
            ServiceState::Running,
            ServiceControlAccept::STOP,
            0,
            0,
            Duration::ZERO,
        );
    });
    if exit != 0 {
        report(
            ServiceState::StopPending,
            ServiceControlAccept::empty(),
            exit,
            2,
            Duration::from_secs(3),
        );
    }
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
        0,
        Duration::ZERO,
    );
}
