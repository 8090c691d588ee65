//! The Windows transport: the service's message-mode pipe, opened and checked the way
//! OpenVPN-GUI does (spec §1.5): message read mode, then the pipe server's process id must
//! be the process the service control manager reports for the running service.
#![allow(unsafe_code)]

use std::io;
use std::os::windows::io::AsRawHandle;
use std::time::Duration;

use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient, PipeMode};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_PIPE_BUSY,
};
use windows_sys::Win32::System::Pipes::GetNamedPipeServerProcessId;

use super::framing::{oversized, recv_message, retry_while_busy, send_message};
use super::{ConnectError, ServerCheck, Transport};

/// `ERROR_SERVICE_DOES_NOT_EXIST`.
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;

/// A connected, checked pipe.
#[derive(Debug)]
pub struct PipeTransport {
    pipe: NamedPipeClient,
}

impl PipeTransport {
    /// Opens `path`, retrying while all instances are busy for up to `timeout`, then checks
    /// the server process. Needs a Tokio runtime with I/O enabled.
    pub async fn connect(
        path: &str,
        server: &ServerCheck,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let endpoint = path.to_owned();
        // Ask the SCM first: "not installed" and "stopped" are clearer than a missing pipe.
        let expected = match server {
            ServerCheck::Pid(pid) => *pid,
            ServerCheck::Service(name) => service_pid(name, &endpoint)?,
        };
        let pipe = retry_while_busy(&endpoint, timeout, || {
            match ClientOptions::new().pipe_mode(PipeMode::Message).open(path) {
                Ok(pipe) => Ok(Some(pipe)),
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => Ok(None),
                Err(e) => Err(classify(&endpoint, e)),
            }
        })
        .await?;
        let actual = server_pid(&pipe).map_err(|source| ConnectError::Io {
            endpoint: endpoint.clone(),
            source,
        })?;
        if actual != expected {
            return Err(ConnectError::WrongServer {
                endpoint,
                expected,
                actual,
            });
        }
        Ok(Self { pipe })
    }
}

fn classify(endpoint: &str, e: io::Error) -> ConnectError {
    let endpoint = endpoint.to_owned();
    let detail = e.to_string();
    match e.raw_os_error() {
        Some(code) if code == ERROR_FILE_NOT_FOUND as i32 => {
            ConnectError::NotRunning { endpoint, detail }
        }
        Some(code) if code == ERROR_ACCESS_DENIED as i32 => {
            ConnectError::AccessDenied { endpoint, detail }
        }
        _ => ConnectError::Io {
            endpoint,
            source: e,
        },
    }
}

/// The process id of the pipe's server end.
fn server_pid(pipe: &NamedPipeClient) -> io::Result<u32> {
    let mut pid = 0u32;
    // SAFETY: the handle is a live pipe client handle owned by `pipe` for the whole call,
    // and `pid` is a valid, writable u32 the function fills in.
    let ok = unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle(), &raw mut pid) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// The process id the SCM reports for `name`, which must be running.
fn service_pid(name: &str, endpoint: &str) -> Result<u32, ConnectError> {
    use windows_service::service::{ServiceAccess, ServiceState};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    let scm_error = |e: windows_service::Error| {
        let detail = e.to_string();
        match e {
            windows_service::Error::Winapi(ref io)
                if io.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST) =>
            {
                ConnectError::NotInstalled {
                    service: name.to_owned(),
                    detail,
                }
            }
            _ => ConnectError::Io {
                endpoint: endpoint.to_owned(),
                source: io::Error::other(format!("querying the service {name}: {detail}")),
            },
        }
    };
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(scm_error)?;
    let service = manager
        .open_service(name, ServiceAccess::QUERY_STATUS)
        .map_err(scm_error)?;
    let status = service.query_status().map_err(scm_error)?;
    match (status.current_state, status.process_id) {
        (ServiceState::Running, Some(pid)) if pid != 0 => Ok(pid),
        (state, _) => Err(ConnectError::NotRunning {
            endpoint: endpoint.to_owned(),
            detail: format!("the service {name} is {state:?}, not running"),
        }),
    }
}

impl Transport for PipeTransport {
    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let pipe = &self.pipe;
        send_message(message, || pipe.writable(), |m| pipe.try_write(m)).await
    }

    async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        let pipe = &self.pipe;
        recv_message(
            super::MAX_MESSAGE,
            || pipe.readable(),
            |buf| match pipe.try_read(buf) {
                // A message longer than the buffer.
                Err(e) if e.raw_os_error() == Some(ERROR_MORE_DATA as i32) => Err(oversized()),
                other => other,
            },
        )
        .await
    }
}
