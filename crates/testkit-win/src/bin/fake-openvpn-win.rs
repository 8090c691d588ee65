//! A stand-in for openvpn.exe in the service's tests: takes `--msg-channel <handle>`, sends
//! the messages of its scenario (see `openvpnserv_testkit_win::scenario`), checks each
//! acknowledgement, records what it saw, and exits with the scenario's code.

#[cfg(windows)]
fn main() {
    fake::main();
}

#[cfg(not(windows))]
fn main() {
    eprintln!("fake-openvpn-win: a Windows test program");
    std::process::exit(2);
}

#[cfg(windows)]
mod fake {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::ptr;
    use std::time::{Duration, Instant};

    use openvpnserv::windows::sys::kernel::wide_at;
    use openvpnserv_proto::channel::{Arch, Codec};
    use openvpnserv_testkit_win::scenario::{self, Scenario};
    use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE};
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileType, ReadFile, WriteFile, FILE_TYPE_CHAR,
    };
    use windows_sys::Win32::System::Console::{GetStdHandle, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE};
    use windows_sys::Win32::System::Environment::GetCommandLineW;
    use windows_sys::Win32::System::Pipes::PeekNamedPipe;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetPriorityClass};

    fn record(line: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(scenario::RECORD_FILE)
            .expect("open the record file");
        writeln!(f, "{line}").expect("write the record");
    }

    fn command_line() -> String {
        // SAFETY: GetCommandLineW returns this process's NUL-terminated command line, valid
        // for the life of the process.
        unsafe { wide_at(GetCommandLineW()) }
    }

    /// What is waiting on stdin after up to 1 s (the service keeps stdin open).
    fn stdin_text() -> String {
        // SAFETY: no preconditions.
        let h = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut avail = 0u32;
        while Instant::now() < deadline {
            // SAFETY: `h` is our stdin pipe; only the count is asked for.
            let ok = unsafe {
                PeekNamedPipe(
                    h,
                    ptr::null_mut(),
                    0,
                    ptr::null_mut(),
                    &raw mut avail,
                    ptr::null_mut(),
                )
            };
            if ok == 0 || avail > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if avail == 0 {
            return String::new();
        }
        let mut buf = vec![0u8; avail as usize];
        let mut n = 0;
        // SAFETY: `buf` holds `avail` bytes, which are available.
        unsafe { ReadFile(h, buf.as_mut_ptr(), avail, &raw mut n, ptr::null_mut()) };
        buf.truncate(n as usize);
        format!("{buf:?}")
    }

    fn priority_class() -> u32 {
        // SAFETY: the pseudo handle of this process.
        unsafe { GetPriorityClass(GetCurrentProcess()) }
    }

    /// `char` for a character device such as NUL, else `other`.
    fn stdout_kind() -> &'static str {
        // SAFETY: no preconditions; the handle is only inspected.
        let kind = unsafe { GetFileType(GetStdHandle(STD_OUTPUT_HANDLE)) };
        if kind == FILE_TYPE_CHAR {
            "char"
        } else {
            "other"
        }
    }

    fn handle_is_valid(h: HANDLE) -> bool {
        let mut flags = 0;
        // SAFETY: only asks about the handle value; an invalid one yields an error.
        unsafe { GetHandleInformation(h, &raw mut flags) != 0 }
    }

    fn write(h: HANDLE, bytes: &[u8]) -> bool {
        let mut n = 0;
        // SAFETY: `h` is the inherited channel handle; the buffer outlives the call.
        unsafe {
            WriteFile(
                h,
                bytes.as_ptr(),
                bytes.len() as u32,
                &raw mut n,
                ptr::null_mut(),
            ) != 0
        }
    }

    fn read(h: HANDLE) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        let mut n = 0;
        // SAFETY: `buf` holds 256 bytes.
        let ok = unsafe {
            ReadFile(
                h,
                buf.as_mut_ptr(),
                buf.len() as u32,
                &raw mut n,
                ptr::null_mut(),
            )
        };
        (ok != 0).then(|| {
            buf.truncate(n as usize);
            buf
        })
    }

    pub(crate) fn main() {
        let s =
            Scenario::parse(&std::fs::read_to_string(scenario::SCENARIO_FILE).unwrap_or_default());
        record(&format!("cmdline {}", command_line()));
        record(&format!(
            "cwd {}",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ));
        record(&format!("stdin {}", stdin_text()));
        record(&format!("priority 0x{:x}", priority_class()));
        record(&format!("stdout {}", stdout_kind()));
        if s.foreign_handle != 0 {
            let valid = handle_is_valid(s.foreign_handle as usize as HANDLE);
            record(&format!(
                "foreign_handle {}",
                if valid { "valid" } else { "invalid" }
            ));
        }
        let args: Vec<String> = std::env::args().collect();
        let handle = args
            .iter()
            .position(|a| a == "--msg-channel")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok());
        let Some(handle) = handle else {
            record("no --msg-channel");
            std::process::exit(90);
        };
        let h = handle as HANDLE;
        let codec = Codec::new(Arch::NATIVE, s.revision);
        if s.send_messages {
            for step in scenario::messages(s.revision) {
                if !s.sends(&step.name) {
                    continue;
                }
                if !write(h, &step.bytes) {
                    record(&format!("write failed {}", step.name));
                    break;
                }
                let Some(reply) = read(h) else {
                    record(&format!("no ack {}", step.name));
                    break;
                };
                let line = match codec.decode_ack(&reply) {
                    Ok(ack) => scenario::ack_line(
                        &step.name,
                        ack.message_id,
                        ack.error_number,
                        ack.message_id == step.ack_id,
                    ),
                    Err(_) => format!("bad ack {} {} bytes", step.name, reply.len()),
                };
                record(&line);
            }
        }
        if s.oversize {
            let mut big = vec![0u8; codec.max_request_size() + 1];
            big[0] = 1;
            record("oversize sent");
            if write(h, &big) {
                match read(h) {
                    Some(r) => record(&format!("oversize ack {} bytes", r.len())),
                    None => record("oversize no ack"),
                }
            }
        }
        let deadline = Instant::now() + Duration::from_millis(s.linger_ms);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        record("exit");
        std::process::exit(s.exit_code as i32);
    }
}
