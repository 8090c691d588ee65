//! What the fault suites share (issue 7, "Faults"): sessions of the fake openvpn that ask for
//! what a real session asks for, random moments from a seed that is printed (so a failure
//! can be replayed with `FAULT_SEED`), and what the service's log says about the sessions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openvpnserv_core::linux::hook::{self, Env, Options, Phase};

use crate::service::Service;
use crate::vpn::{assert_same, Vpn};

/// The seed of a fault run: `FAULT_SEED` if set, else the clock. Printed, so that a failed
/// run can be repeated with the same random moments (as far as the scheduler allows).
pub fn seed(suite: &str) -> u64 {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{suite}: seed {seed} (repeat with FAULT_SEED={seed})");
    seed
}

/// One session of the fake openvpn: the script environment openvpn would export for it, and
/// the hooks it runs, so that it asks the service for exactly what `openvpnserv-hook` would
/// (link and MTU, addresses on its own tun, routes via its VPN gateway, DNS, the DNS-leak
/// block, for a full tunnel the host route to the server and the two halves of the default).
#[derive(Debug, Clone)]
pub struct FakeSession {
    /// The script environment (without `dev`, which is the tun the service appends).
    pub env: Env,
    /// Hook options (the config's `block-outside-dns`).
    pub options: Options,
    /// The hooks, in order.
    pub phases: Vec<Phase>,
    /// A random time before the first hook (openvpn connecting): from, to (ms).
    pub connect_ms: (u64, u64),
    /// A random pause before each request: from, to (ms).
    pub pause_ms: (u64, u64),
    /// A file the fake creates once every hook is through.
    pub done_file: Option<PathBuf>,
}

impl FakeSession {
    /// Session number `k` (below 4096): its own subnets, so that sessions alive at the same
    /// time never ask for the same route. Every fifth is a full tunnel (`redirect-gateway`,
    /// hence a host route to a server address outside the tunnel and the leak block), every
    /// third asks for `block-outside-dns`, and every fourth goes down and up again (as on
    /// SIGUSR1), so that deletes are interrupted too.
    pub fn numbered(k: u32) -> Self {
        let (hi, lo) = (k >> 8, k & 0xff);
        let net = format!("10.{}.{lo}", 64 + hi);
        let gw = format!("{net}.1");
        let mut env = Env::new();
        let mut set = |key: &str, value: String| {
            env.insert(key.to_owned(), value);
        };
        set("tun_mtu", "1500".into());
        set("ifconfig_local", format!("{net}.2"));
        set("ifconfig_netmask", "255.255.255.0".into());
        set("ifconfig_ipv6_local", format!("fd64:{k:x}::2"));
        set("ifconfig_ipv6_netbits", "64".into());
        set("route_vpn_gateway", gw.clone());
        set("route_network_1", format!("172.{}.{lo}.0", 16 + hi));
        set("route_netmask_1", "255.255.255.0".into());
        set("route_gateway_1", gw.clone());
        set("route_network_2", format!("100.{}.{lo}.0", 64 + hi));
        set("route_netmask_2", "255.255.255.0".into());
        set("route_gateway_2", gw);
        set("route_metric_2", "50".into());
        set("route_ipv6_network_1", format!("fd65:{k:x}::/64"));
        set("foreign_option_1", format!("dhcp-option DNS {net}.53"));
        set(
            "foreign_option_2",
            format!("dhcp-option DNS6 fd64:{k:x}::53"),
        );
        set(
            "foreign_option_3",
            format!("dhcp-option DOMAIN s{k}.corp.example"),
        );
        if k % 5 == 0 {
            set("redirect_gateway", "1".into());
            // On the client's link: the host route pins the path the kernel already uses.
            set("trusted_ip", format!("10.200.0.{}", 10 + k % 200));
        }
        let mut phases = vec![Phase::Up, Phase::RouteUp];
        if k % 4 == 1 {
            phases.extend([Phase::RoutePreDown, Phase::Down, Phase::Up, Phase::RouteUp]);
        }
        Self {
            env,
            options: Options {
                block_outside_dns: k % 3 == 0,
                ..Options::default()
            },
            phases,
            connect_ms: (10, 60),
            pause_ms: (0, 8),
            done_file: None,
        }
    }

    /// The fake openvpn's config: the environment, the hooks, then wait for the end.
    pub fn directives(&self) -> String {
        let mut d = format!("pause-ms {} {}\n", self.pause_ms.0, self.pause_ms.1);
        for (k, v) in &self.env {
            let _ = writeln!(d, "env {k} {v}");
        }
        if self.options.block_outside_dns {
            d += "block-outside-dns\n";
        }
        let _ = writeln!(d, "delay-ms {} {}", self.connect_ms.0, self.connect_ms.1);
        for p in &self.phases {
            let _ = writeln!(d, "hook {}", p.name());
        }
        if let Some(f) = &self.done_file {
            let _ = writeln!(d, "touch {}", f.display());
        }
        d += "wait\n";
        d
    }

    /// How many requests the hooks send in all.
    pub fn request_count(&self) -> usize {
        let mut env = self.env.clone();
        env.insert("dev".into(), "tun0".into());
        self.phases
            .iter()
            .map(|p| hook::translate(*p, &env, self.options).map_or(0, |r| r.len()))
            .sum()
    }
}

/// Per session number, how many channel requests the service handled (from its debug log).
pub fn requests_per_session(log: &str) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("channel request")) {
        if let Some(id) = session_id(line) {
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// The session number in a log line of a session (`session{id=12 ...}`).
pub fn session_id(line: &str) -> Option<u64> {
    let rest = &line[line.find("session{id=")? + "session{id=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Waits until the service's log holds `needle` at least `count` times; polls gently (the
/// log of a thousand sessions is megabytes). Returns whether it did within `timeout`.
pub fn wait_for_log(service: &Service, needle: &str, count: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if service.log().matches(needle).count() >= count {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How far killed sessions had got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Killed before any request.
    pub none: usize,
    /// Killed in the middle of their requests.
    pub partial: usize,
    /// Killed after the last request.
    pub all: usize,
}

impl Progress {
    /// Adds one session that had `handled` requests handled, and `finished` its steps.
    pub fn add(&mut self, handled: usize, finished: bool) {
        if finished {
            self.all += 1;
        } else if handled == 0 {
            self.none += 1;
        } else {
            self.partial += 1;
        }
    }

    /// Adds another run's.
    pub fn merge(&mut self, other: Progress) {
        self.none += other.none;
        self.partial += other.partial;
        self.all += other.all;
    }
}

/// Per session number, the config it was started with (from the service's log).
pub fn configs_per_session(log: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(" allowed: ")) {
        let Some(id) = session_id(line) else { continue };
        let Some(at) = line.find("--config ") else {
            continue;
        };
        let name = line[at + "--config ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default();
        out.insert(id, name.to_owned());
    }
    out
}

/// Kills `pid` with SIGKILL and waits (up to 10 s) until it is gone.
pub fn kill_9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(
        crate::fixture::eventually(Duration::from_secs(10), || !crate::fixture::alive(pid)),
        "process {pid} outlived SIGKILL"
    );
}

/// The span from which random kill moments are drawn. It adapts as a run goes, so that about
/// a quarter of the kills fall after the victim got through everything and the rest spread
/// over its life, however loaded the machine is (a session takes three times as long while
/// others are being cleaned up as it does alone).
#[derive(Debug)]
pub struct Window {
    ms: Mutex<f64>,
}

impl Window {
    /// A window of `start` to begin with.
    pub fn new(start: Duration) -> Self {
        Self {
            ms: Mutex::new(start.as_secs_f64() * 1000.0),
        }
    }

    /// A random moment within the window.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        Duration::from_secs_f64(rng.f64() * self.get().as_secs_f64())
    }

    /// Learns whether a victim had finished when it was killed: shrinks the window a little
    /// if so, grows it a little more rarely (3 : 1 keeps a quarter finished).
    pub fn learn(&self, finished: bool) {
        let mut ms = self
            .ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ms = (*ms * if finished { 0.97 } else { 1.01 }).clamp(20.0, 30_000.0);
    }

    /// The window now.
    pub fn get(&self) -> Duration {
        Duration::from_secs_f64(
            *self
                .ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                / 1000.0,
        )
    }
}

/// The message of a caught panic.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until the service has undone `sessions` sessions, then asserts that the world is as
/// `before` said and that the log reports no failed undo, panic or error. Returns the log.
pub fn assert_undone(vpn: &Vpn, before: &str, sessions: usize) -> String {
    let undone = wait_for_log(
        &vpn.service,
        "network changes undone",
        sessions,
        Duration::from_secs(120),
    );
    let log = vpn.service.log();
    assert!(
        undone,
        "only {} of {sessions} sessions were undone:\n{}",
        log.matches("network changes undone").count(),
        tail(&log, 80)
    );
    assert_same(before, &vpn.snapshot(), vpn);
    assert_clean_log(&log);
    log
}

/// Asserts that a service log reports no failed undo, panic or error.
pub fn assert_clean_log(log: &str) {
    for bad in ["could not undo", "panicked", " ERROR "] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(bad)).take(20).collect();
        assert!(
            lines.is_empty(),
            "the log says {bad:?}:\n{}",
            lines.join("\n")
        );
    }
}

/// A tmpfs of `size` (e.g. `64k`) mounted on a directory; lazily unmounted on drop (a
/// service may still have files open in it).
#[derive(Debug)]
pub struct Tmpfs {
    /// Where it is mounted.
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts it on `path`, which must exist.
    pub fn mount(path: &std::path::Path, size: &str) -> Self {
        crate::netns::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
                &path.display().to_string(),
            ],
        );
        Self {
            path: path.to_owned(),
        }
    }

    /// Fills it with a file `name` until nothing more fits; returns the file.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path.join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = [0u8; 512];
        while f.write_all(&chunk).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .output();
    }
}
