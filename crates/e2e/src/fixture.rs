//! A ready-made setup for service tests: a config directory, a fake openvpn, an admin group,
//! and a running service configured for them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::service::{binary, Service, TestDir};
use crate::users::TestGroup;

/// Everything a service test needs.
#[derive(Debug)]
pub struct Fixture {
    /// The running service (dropped first).
    pub service: Service,
    /// The administrators' group of this service.
    pub admin: TestGroup,
    /// `config_dir`.
    pub config_dir: PathBuf,
    /// Where the fake openvpn writes its records (world-writable).
    pub records: PathBuf,
    /// The test directory (removed last).
    pub dir: TestDir,
}

impl Fixture {
    /// Starts a service whose `exe_path` is the fake openvpn, with `extra` settings lines.
    pub fn new(extra: &str) -> Self {
        Self::with_command(extra, |cmd| cmd)
    }

    /// Like [`Fixture::new`], with the service's command changed by `wrap` first.
    pub fn with_command(extra: &str, wrap: impl FnOnce(Command) -> Command) -> Self {
        crate::users::remove_leftovers();
        let dir = TestDir::new("svc");
        let config_dir = dir.mkdir("config", 0o755);
        let records = dir.mkdir("records", 0o777);
        let fake = dir.join("fake-openvpn");
        std::fs::copy(binary("fake-openvpn"), &fake).expect("copy fake openvpn");
        let admin = TestGroup::create();
        let settings = format!(
            "exe_path = \"{}\"\nconfig_dir = \"{}\"\novpn_admin_group = \"{}\"\n{extra}\n",
            fake.display(),
            config_dir.display(),
            admin.name
        );
        // The fake openvpn needs no tun and sends its own channel messages: run the service
        // without its network layer (the net_* tests use the real one).
        let service =
            Service::start_with(&dir, &settings, &crate::service::unique_instance(), |cmd| {
                let mut cmd = wrap(cmd);
                cmd.arg("--no-network");
                cmd
            });
        Self {
            service,
            admin,
            config_dir,
            records,
            dir,
        }
    }

    /// Writes a config (fake-openvpn directives) into `config_dir`, recording to
    /// `records/<name>.json`; returns the record path.
    pub fn config(&self, name: &str, directives: &str) -> PathBuf {
        let record = self.records.join(format!("{name}.json"));
        let text = format!("record {}\n{directives}\n", record.display());
        self.dir.write(&format!("config/{name}"), &text, 0o644);
        record
    }

    /// `config_dir` as a string.
    pub fn config_dir(&self) -> String {
        self.config_dir.display().to_string()
    }
}

/// Waits up to 10 s for a JSON record written by the fake openvpn.
pub fn read_record(path: &std::path::Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).expect("record is JSON");
        }
        assert!(Instant::now() < deadline, "no record at {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for `cond`.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    // Zombies count as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// A startup message.
pub fn start(dir: &str, options: &str, stdin: &str) -> crate::service::Send {
    crate::service::Send::Startup {
        dir: dir.into(),
        options: options.into(),
        stdin: stdin.into(),
    }
}

/// Sends `what` as `user` and collects the replies (lingering up to 5 s).
pub fn as_user(
    fx: &Fixture,
    user: &crate::users::TestUser,
    what: &crate::service::Send,
) -> crate::service::Transcript {
    crate::service::probe(
        crate::service::probe_command(user),
        &fx.service.socket,
        what,
        Duration::from_secs(5),
        false,
    )
}

/// The text of a policy refusal (`ERROR_STARTUP_DATA`); panics on anything else.
pub fn refusal_text(t: &crate::service::Transcript) -> String {
    use openvpnserv_proto::Reply;
    match t.first() {
        Reply::Error { code, function, .. } => {
            assert_eq!(*code, openvpnserv_proto::codes::ERROR_STARTUP_DATA, "{t:?}");
            function.clone()
        }
        other @ Reply::Pid(_) => panic!("expected a refusal, got {other:?}"),
    }
}

/// An x86-64 channel message of `len` bytes with this type, size field and id, in hex for
/// the fake openvpn's `send-hex`.
pub fn hex_message(msg_type: u32, len: usize, id: i32) -> String {
    let mut b = vec![0u8; len.max(24)];
    b[0..4].copy_from_slice(&msg_type.to_le_bytes());
    b[8..16].copy_from_slice(&(len as u64).to_le_bytes());
    b[16..20].copy_from_slice(&id.to_le_bytes());
    b.truncate(len);
    crate::service::to_hex(&b)
}
