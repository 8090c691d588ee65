//! A Debian guest with a real systemd (PID 1), journald, D-Bus and systemd-resolved, booted
//! with `systemd-nspawn` for the `systemd` test stage, with the package installed as an
//! administrator installs it (`apt-get install ./openvpnserv_*.deb`).
//!
//! The guest's root filesystem is built once per machine by `scripts/guest-rootfs.sh` and
//! booted with `--volatile=overlay`, so nothing a test does reaches it. Its network is the
//! client namespace of a [`Topology`]: a real openvpn server runs (on this machine's openvpn)
//! in the server namespace, reached over the veth pair. Commands run inside the guest through
//! `nsenter` into the namespaces of its PID 1. On drop the guest is powered off (SIGTERM to
//! nspawn, SIGKILL after 20 s) and the namespaces are deleted.
//!
//! The stage passes `OVS_GUEST_ROOTFS_<SUITE>` (the trees) and `OVS_DEB` (the package).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::fixture::eventually;
use crate::netns::Topology;
use crate::openvpn::{Pushes, Server};
use crate::service::{wait_timeout, TestDir};

/// The Debian suites the stage boots: Debian 12 and 13, or those named in
/// `OVS_GUEST_SUITES` (space-separated, to run one while working on a test).
pub fn suites() -> Vec<String> {
    match std::env::var("OVS_GUEST_SUITES") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(str::to_owned).collect(),
        _ => vec!["bookworm".to_owned(), "trixie".to_owned()],
    }
}

/// `PATH` inside the guest.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A booted guest with the package installed.
pub struct Guest {
    /// Debian suite.
    pub suite: String,
    nspawn: Child,
    /// The guest's PID 1, as this machine sees it.
    pub leader: u32,
    /// The openvpn server, in the server namespace.
    pub server: Server,
    /// Server and client namespaces; the guest lives in the client one.
    pub topo: Topology,
    /// Where the boot log goes (and other files of the test).
    pub dir: TestDir,
}

/// The output of a command in the guest.
#[derive(Debug)]
pub struct Ran {
    /// Whether it exited 0.
    pub ok: bool,
    /// stdout and stderr.
    pub text: String,
}

fn rootfs(suite: &str) -> PathBuf {
    let var = format!("OVS_GUEST_ROOTFS_{}", suite.to_uppercase());
    let path = std::env::var_os(&var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run these tests through `STAGES=systemd scripts/test-all.sh`, \
             which builds the guests with scripts/guest-rootfs.sh"
        )
    });
    PathBuf::from(path)
}

/// The package under test.
pub fn deb() -> PathBuf {
    let path = std::env::var_os("OVS_DEB").unwrap_or_else(|| {
        panic!("OVS_DEB is not set: run through `STAGES=systemd scripts/test-all.sh` (scripts/package.sh builds it)")
    });
    PathBuf::from(path)
}

impl Guest {
    /// Boots `suite` with the server pushing `pushes`, waits until systemd is up, and installs
    /// the package.
    pub fn boot(suite: &str, pushes: &Pushes) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = rootfs(suite);
        let deb = deb();
        let dir = TestDir::new("guest");
        let topo = Topology::new(false);
        let server = Server::start(&topo.server, &dir, pushes);
        let log = std::fs::File::create(dir.join("boot.log")).expect("boot log");
        let name = format!(
            "ovse2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let debs = deb.parent().expect("package directory");
        let nspawn = Command::new("systemd-nspawn")
            .args(["--boot", "--register=no", "--keep-unit", "--quiet"])
            .arg("--directory")
            .arg(&root)
            .args(["--volatile=overlay", "--console=read-only"])
            // A network of its own, as a machine has: nspawn grants CAP_NET_ADMIN only with
            // a network it made itself, not with --network-namespace-path.
            .arg("--capability=CAP_NET_ADMIN")
            .arg(format!("--machine={name}"))
            .arg(format!(
                "--network-namespace-path=/run/netns/{}",
                topo.client.name
            ))
            .arg(format!("--bind-ro={}:/mnt/debs", debs.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start systemd-nspawn (apt-get install systemd-container)");
        let mut guest = Self {
            suite: suite.to_owned(),
            leader: 0,
            nspawn,
            server,
            topo,
            dir,
        };
        guest.wait_booted();
        let file = deb
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let install = guest.sh(&format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /mnt/debs/{file}"
        ));
        assert!(
            install.ok,
            "{suite}: installing the package failed:\n{}",
            install.text
        );
        guest
    }

    fn wait_booted(&mut self) {
        let started = Instant::now();
        let pid = self.nspawn.id();
        let found = eventually(Duration::from_secs(20), || {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            if let Some(first) = children.split_whitespace().next() {
                self.leader = first.parse().unwrap_or(0);
            }
            self.leader != 0
                && Path::new(&format!("/proc/{}/root/run/systemd/private", self.leader)).exists()
        });
        assert!(
            found,
            "{}: the guest did not boot:\n{}",
            self.suite,
            self.boot_log()
        );
        let running = self.sh("systemctl is-system-running --wait");
        assert!(
            running.text.contains("running") || running.text.contains("degraded"),
            "{}: systemd did not finish booting: {}\n{}",
            self.suite,
            running.text,
            self.sh("systemctl --failed --no-pager").text
        );
        eprintln!(
            "{}: booted in {:.1} s ({})",
            self.suite,
            started.elapsed().as_secs_f64(),
            running.text.trim()
        );
    }

    /// The console output so far.
    pub fn boot_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("boot.log")).unwrap_or_default()
    }

    /// A command that runs `program` inside the guest as root (a clean environment).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.leader.to_string())
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
            ])
            .args(["env", "-i", &format!("PATH={PATH}"), "LANG=C.UTF-8"])
            .arg(program);
        c
    }

    /// Runs a shell script inside the guest as root.
    pub fn sh(&self, script: &str) -> Ran {
        let out = self
            .command("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter");
        ran(&out)
    }

    /// Like [`Guest::sh`], panicking with the output when it fails.
    pub fn must(&self, script: &str) -> String {
        let r = self.sh(script);
        assert!(r.ok, "{}: `{script}` failed:\n{}", self.suite, r.text);
        r.text
    }

    /// A path of the guest's file system, as this machine reaches it.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.leader))
    }

    /// The journal of `unit` since the guest booted, one JSON object per line.
    pub fn journal_json(&self, args: &str) -> Vec<serde_json::Value> {
        self.must(&format!("journalctl --no-pager -o json {args}"))
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The service's log as text (`journalctl -u openvpnserv`).
    pub fn service_log(&self, unit: &str) -> String {
        self.sh(&format!("journalctl --no-pager -o short-precise -u {unit}"))
            .text
    }
}

fn ran(out: &Output) -> Ran {
    Ran {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // SIGTERM makes nspawn power the guest off cleanly.
        let pid = nix::unistd::Pid::from_raw(self.nspawn.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait_timeout(&mut self.nspawn, Duration::from_secs(20)).is_none() {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
    }
}
