//! The service in-process with a recording network layer, test registry instances, and
//! per-test working directories. Every guard cleans up on drop, also when a test fails.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use openvpnserv::windows::server::{Context, MembershipSource, NetFactory, Server};
use openvpnserv::windows::sys::kernel::Event;
use openvpnserv::windows::sys::registry::Key;
use openvpnserv::windows::sys::Win32Error;
use openvpnserv_core::windows::fake::RecordingNet;
use openvpnserv_proto::channel::Arch;
use openvpnserv_settings::registry::{self, RegValue};
use openvpnserv_settings::{Instance, Settings};

/// Hands every session a clone of one recording fake.
#[derive(Clone, Default)]
pub struct FakeFactory(pub RecordingNet);

impl NetFactory for FakeFactory {
    type Net = RecordingNet;
    fn make(&self) -> RecordingNet {
        self.0.clone()
    }
}

/// A path of this (Linux) machine as Wine sees it: `/x/y` → `Z:\x\y`.
pub fn wine_path(path: &str) -> String {
    if path.starts_with('/') {
        format!("Z:{}", path.replace('/', "\\"))
    } else {
        path.to_owned()
    }
}

/// A fresh directory that is both the config directory and openvpn's working directory;
/// removed on drop.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `%TEMP%\openvpnserv-tests\<name>` anew.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join("openvpnserv-tests").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory as text.
    pub fn text(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// `<dir>\`, the `config_dir` setting.
    pub fn config_dir(&self) -> String {
        format!("{}\\", self.text())
    }

    /// Writes a file in the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).expect("write a test file");
    }

    /// Reads a file of the directory, if it exists.
    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(name)).ok()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings as the registry rules make them from `values` (the install directory is `""`;
/// a later value of the same name wins).
pub fn settings(instance: &Instance, values: &[(&str, &str)]) -> Settings {
    registry::read(instance, |name| {
        values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map_or(RegValue::Missing, |(_, v)| RegValue::Sz((*v).to_owned()))
    })
    .expect("valid test settings")
}

/// The usual values: install dir `C:\OpenVPN`, `exe` (a test's
/// `env!("CARGO_BIN_EXE_fake-openvpn-win")`) as openvpn, configs under `work`.
pub fn values(work: &WorkDir, exe: &str) -> Vec<(&'static str, String)> {
    vec![
        ("", r"C:\OpenVPN".to_owned()),
        ("exe_path", wine_path(exe)),
        ("config_dir", work.config_dir()),
    ]
}

/// Sends the service's `tracing` events to the test's output (captured, and shown when a
/// test fails), where its event log lines used to be echoed. `RUST_LOG` sets the level
/// (default `info`); only the first call in a process takes effect.
pub fn log_to_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// The service running in this process; stopped (and every session ended) on drop.
pub struct InProcess {
    stop: Event,
    thread: Option<JoinHandle<Result<(), Win32Error>>>,
    /// The pipe's path.
    pub pipe_path: String,
}

impl InProcess {
    /// Binds the pipe of `instance` and serves it on a thread, with the recording fake as
    /// the network layer. The channel numbering comes from `settings` (`msg_protocol`).
    pub fn start(
        instance: &Instance,
        settings: Settings,
        membership: MembershipSource,
        net: RecordingNet,
    ) -> Self {
        Self::start_with(instance, settings, membership, FakeFactory(net))
    }

    /// Like [`InProcess::start`] with another network layer (the real one, for the requests
    /// Wine can or cannot serve).
    pub fn start_with<F: NetFactory>(
        instance: &Instance,
        settings: Settings,
        membership: MembershipSource,
        net: F,
    ) -> Self {
        let ctx = Context::new(instance.clone(), settings, Arch::NATIVE, membership, net)
            .expect("service context");
        let server = Server::bind(ctx).expect("bind the service pipe");
        Self::serve(instance, server)
    }

    /// Serves an already bound server.
    pub fn serve<F: NetFactory>(instance: &Instance, server: Server<F>) -> Self {
        log_to_test_output();
        let stop = Event::new().expect("event");
        let stop2 = stop.try_clone().expect("event");
        let thread = std::thread::spawn(move || server.run(&stop2));
        Self {
            stop,
            thread: Some(thread),
            pipe_path: instance.pipe_path(),
        }
    }

    /// Stops the service and waits for it; its result.
    pub fn stop(mut self) -> Result<(), Win32Error> {
        self.stop.set();
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("service thread"))
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A key under `HKLM` with `REG_SZ` test values; deleted (with everything below it) on drop.
#[derive(Debug)]
pub struct RegistryKey {
    key: String,
}

impl RegistryKey {
    /// Writes the key (`""` = the default value).
    pub fn new(key: &str, values: &[(&str, String)]) -> Self {
        let k = Key::create(key).unwrap_or_else(|e| panic!("create HKLM\\{key}: {e}"));
        for (name, value) in values {
            k.set_sz(name, value)
                .unwrap_or_else(|e| panic!("set {name}: {e}"));
        }
        Self {
            key: key.to_owned(),
        }
    }

    /// Whether the key still exists.
    pub fn exists(&self) -> bool {
        exists(&self.key)
    }
}

/// Whether `HKLM\<key>` exists.
pub fn exists(key: &str) -> bool {
    Key::exists(key)
}

impl Drop for RegistryKey {
    fn drop(&mut self) {
        let _ = Key::delete_tree(&self.key);
    }
}

/// `HKLM\SOFTWARE\OpenVPN<id>` with test values; deleted on drop.
pub fn registry_instance(instance: &Instance, values: &[(&str, String)]) -> RegistryKey {
    RegistryKey::new(&instance.registry_key(), values)
}

/// Copies `src` to `dst` and gives the copy a version resource saying `major.minor` (what
/// `msg_protocol = auto` reads), so a test can pose as openvpn.exe 2.6 or 2.7.
pub fn stamp_version(src: &Path, dst: &Path, major: u16, minor: u16) {
    use windows_sys::Win32::System::LibraryLoader::{
        BeginUpdateResourceW, EndUpdateResourceW, UpdateResourceW,
    };
    std::fs::copy(src, dst).expect("copy the executable");
    let name: Vec<u16> = dst
        .as_os_str()
        .to_string_lossy()
        .encode_utf16()
        .chain([0])
        .collect();
    let data = version_resource(major, minor);
    // SAFETY: NUL-terminated path; the update handle is used only below and ended once.
    unsafe {
        let h = BeginUpdateResourceW(name.as_ptr(), 0);
        assert!(!h.is_null(), "BeginUpdateResourceW {}", dst.display());
        // RT_VERSION (16), resource id 1, language en-US; `data` outlives the call.
        let ok = UpdateResourceW(
            h,
            16 as windows_sys::core::PCWSTR,
            1 as windows_sys::core::PCWSTR,
            0x0409,
            data.as_ptr().cast(),
            data.len() as u32,
        );
        assert!(ok != 0, "UpdateResourceW");
        assert!(EndUpdateResourceW(h, 0) != 0, "EndUpdateResourceW");
    }
}

/// A `VS_VERSIONINFO` with only its fixed part: file and product version `major.minor.0.0`.
fn version_resource(major: u16, minor: u16) -> Vec<u8> {
    let key: Vec<u8> = "VS_VERSION_INFO\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let ms = (u32::from(major) << 16) | u32::from(minor);
    let fixed: [u32; 13] = [
        0xFEEF_04BD, // signature
        0x0001_0000, // structure version
        ms,
        0,
        ms,
        0,
        0x3F,        // flags mask
        0,           // flags
        0x0004_0004, // VOS_NT_WINDOWS32
        1,           // VFT_APP
        0,
        0,
        0,
    ];
    let mut out = Vec::new();
    out.extend_from_slice(&0u16.to_le_bytes()); // wLength, set below
    out.extend_from_slice(&52u16.to_le_bytes()); // wValueLength
    out.extend_from_slice(&0u16.to_le_bytes()); // wType: binary
    out.extend_from_slice(&key);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    for v in fixed {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let len = out.len() as u16;
    out[..2].copy_from_slice(&len.to_le_bytes());
    out
}

/// Settings as the registry rules make them from [`values`]: install dir `C:\OpenVPN`, `exe`
/// as openvpn, configs under `work`.
pub fn test_settings(instance: &Instance, work: &WorkDir, exe: &str) -> Settings {
    let values = values(work, exe);
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings(instance, &pairs)
}

/// What the service logged in this process, kept by [`capture_logs`].
#[derive(Clone, Default)]
pub struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogSink {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Makes this process's `tracing` events (at `filter`, e.g. `debug`) go to a sink the test
/// reads. A global subscriber, set once per process (the first filter wins): with a scoped
/// one, events first seen by another test's thread would stay disabled.
pub fn capture_logs(filter: &str) -> &'static LogSink {
    static SINK: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let sink = LogSink::default();
        let writer = sink.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        sink
    })
}
