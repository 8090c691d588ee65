//! What every test of the real network layer sets up: a server and a client namespace, a real
//! openvpn server, the service (with its real network layer) in the client namespace, an
//! unprivileged user, a way to connect and disconnect, and snapshots of everything a session
//! may change.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fixture::{alive, eventually};
use crate::netns::Topology;
use crate::openvpn::{client_config, Pushes, Server};
use crate::resolved::MockBus;
use crate::service::{
    binary, probe_command, try_probe, unique_instance, Send, Service, TestDir, Transcript,
};
use crate::users::TestUser;

/// How the service applies DNS in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dns {
    /// `dns_backend = "direct"`, the service in a mount namespace where `/etc/resolv.conf` is a
    /// bind mount of a test file.
    Direct,
    /// `dns_backend = "auto"` with a fake `resolvconf` first on `PATH` and no system bus.
    FakeResolvconf,
    /// `dns_backend = "auto"` with a mock `org.freedesktop.resolve1` on a private bus.
    MockResolved,
}

/// Which openvpn the service starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Openvpn {
    /// Stock openvpn 2.6 (`/usr/sbin/openvpn`).
    Real,
    /// The fake openvpn (`fake-openvpn`), driven by the directives in its config file.
    Fake,
    /// The fake openvpn saying its build takes `--iproute` (as a build with
    /// `--enable-iproute2` does), so the service runs it in that mode.
    FakeIproute,
}

/// What a test's world is made of.
#[derive(Debug, Clone)]
pub struct Setup {
    /// What the openvpn server pushes.
    pub pushes: Pushes,
    /// Whether the client namespace has a default route (via the server).
    pub default_route: bool,
    /// The DNS backend.
    pub dns: Dns,
    /// The openvpn the service starts.
    pub openvpn: Openvpn,
    /// More lines for the service's settings file.
    pub extra_settings: String,
    /// The service's `RUST_LOG` (tests: `debug`; benchmarks: `info`, as in production).
    pub log_level: &'static str,
}

impl Setup {
    /// Stock openvpn, no extra settings.
    pub fn new(pushes: &Pushes, default_route: bool, dns: Dns) -> Self {
        Self {
            pushes: pushes.clone(),
            default_route,
            dns,
            openvpn: Openvpn::Real,
            extra_settings: String::new(),
            log_level: "debug",
        }
    }
}

/// A test's whole world. Fields drop in order: the service first, the namespaces last.
pub struct Vpn {
    /// The service, running in the client namespace.
    pub service: Service,
    /// Its instance id.
    pub instance: String,
    /// The mock systemd-resolved, for [`Dns::MockResolved`].
    pub bus: Option<MockBus>,
    /// The openvpn server, in the server namespace.
    pub server: Server,
    /// The unprivileged user who starts sessions.
    pub user: TestUser,
    /// The two namespaces.
    pub topo: Topology,
    /// The DNS backend.
    pub dns: Dns,
    /// The service's `config_dir`.
    pub config_dir: PathBuf,
    /// Where openvpn logs (writable by the user).
    pub logs: PathBuf,
    /// The file standing in for `/etc/resolv.conf` (direct backend).
    pub resolv_conf: PathBuf,
    /// Where the fake resolvconf records its calls.
    pub resolvconf_log: PathBuf,
    launcher: Launcher,
    /// The test directory (removed last).
    pub dir: TestDir,
}

/// `/etc/resolv.conf` as the machine has it before any session.
pub const ORIGINAL_RESOLV_CONF: &str = "# the machine's own\nnameserver 192.0.2.53\n";

impl Vpn {
    /// A world with stock openvpn.
    pub fn new(pushes: &Pushes, default_route: bool, dns: Dns) -> Self {
        Self::with(&Setup::new(pushes, default_route, dns))
    }

    /// A world as `setup` says.
    pub fn with(setup: &Setup) -> Self {
        crate::users::remove_leftovers();
        let dir = TestDir::new("net");
        let topo = Topology::new(setup.default_route);
        let server = Server::start(&topo.server, &dir, &setup.pushes);
        let user = TestUser::create(&[]);
        let config_dir = dir.mkdir("config", 0o755);
        let logs = dir.mkdir("logs", 0o777);
        let hook = dir.join("openvpnserv-hook");
        std::fs::copy(binary("openvpnserv-hook"), &hook).expect("copy the hook");
        let exe = match setup.openvpn {
            Openvpn::Real => crate::openvpn::client_binary(),
            Openvpn::Fake | Openvpn::FakeIproute => {
                let name = if setup.openvpn == Openvpn::Fake {
                    "fake-openvpn"
                } else {
                    "fake-openvpn-iproute"
                };
                let fake = dir.join(name);
                std::fs::copy(binary("fake-openvpn"), &fake).expect("copy the fake openvpn");
                fake
            }
        };
        let resolv_conf = dir.write("resolv.conf", ORIGINAL_RESOLV_CONF, 0o644);
        let fake_bin = dir.mkdir("bin", 0o755);
        let resolvconf_log = dir.write("resolvconf.log", "", 0o644);
        dir.write(
            "bin/resolvconf",
            &format!(
                "#!/bin/sh\n{{ echo \"resolvconf $*\"; [ \"$1\" = -a ] && cat; echo \"--\"; }} >> {}\n",
                resolvconf_log.display()
            ),
            0o755,
        );
        let bus = (setup.dns == Dns::MockResolved).then(|| MockBus::start(&dir));
        let backend = if setup.dns == Dns::Direct {
            "direct"
        } else {
            "auto"
        };
        let launcher = Launcher {
            settings: format!(
                "exe_path = \"{}\"\nconfig_dir = \"{}\"\nhook_path = \"{}\"\ndns_backend = \"{backend}\"\n{}\n",
                exe.display(),
                config_dir.display(),
                hook.display(),
                setup.extra_settings
            ),
            instance: unique_instance(),
            ns: topo.client.name.clone(),
            dns: setup.dns,
            resolv_conf: resolv_conf.clone(),
            fake_bin,
            bus_address: bus.as_ref().map(|b| b.address.clone()),
            log_level: setup.log_level,
        };
        let service = launcher.start(&dir);
        Self {
            service,
            instance: launcher.instance.clone(),
            bus,
            server,
            user,
            topo,
            dns: setup.dns,
            config_dir,
            logs,
            resolv_conf,
            resolvconf_log,
            launcher,
            dir,
        }
    }

    /// Restarts the service after a crash (same instance, same settings) and waits until it
    /// is ready, which is after it replayed the journals the crash left.
    pub fn restart_service(&mut self) {
        let new = self.launcher.start(&self.dir);
        self.replace_service(new);
    }

    /// Starts the service again after a crash without waiting for it (so that a test can
    /// kill it while it still replays journals).
    pub fn spawn_service(&mut self) {
        let new = self.launcher.spawn(&self.dir);
        self.replace_service(new);
    }

    fn replace_service(&mut self, new: Service) {
        // The crashed service's guard would remove the run directory, journals and all:
        // that is the new service's now.
        std::mem::forget(std::mem::replace(&mut self.service, new));
    }

    /// The service's run directory (`/run/openvpn<id>`).
    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/openvpn{}", self.instance))
    }

    /// Writes a config for the fake openvpn: `directives`, one a line.
    pub fn fake_config(&self, name: &str, directives: &str) -> PathBuf {
        let path = self.config_dir.join(name);
        std::fs::write(&path, directives).expect("write a fake openvpn config");
        path
    }

    /// Asks the service, as the user, to start a session for config `name`; returns what
    /// the service answered (`None` when the service could not be reached).
    pub fn start(&self, name: &str) -> Option<Transcript> {
        try_probe(
            probe_command(&self.user),
            &self.service.socket,
            &Send::Startup {
                dir: self.config_dir.display().to_string(),
                options: format!("--config {name}"),
                stdin: String::new(),
            },
            Duration::from_secs(10),
            true,
        )
        .ok()
    }

    /// Writes a client config `name` with `extra` lines.
    pub fn config(&self, name: &str, extra: &str) -> PathBuf {
        client_config(
            &self.config_dir,
            name,
            &self.server,
            self.user.uid,
            &self.logs.join(format!("{name}.log")),
            extra,
        )
    }

    /// Writes a client config `name` with `extra` lines whose openvpn writes to stdout (no
    /// `log` file): through the service, its output is then the connection's log.
    pub fn config_to_stdout(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.config(name, extra);
        let text = std::fs::read_to_string(&path).expect("read the config");
        let mut kept = String::with_capacity(text.len());
        for line in text.lines().filter(|l| !l.starts_with("log ")) {
            kept.push_str(line);
            kept.push('\n');
        }
        let text = kept;
        std::fs::write(&path, text).expect("write the config");
        path
    }

    /// A private (0700) directory owned by the user, for `XDG_RUNTIME_DIR` (where
    /// `iservice` puts the management password file).
    pub fn runtime_dir(&self) -> PathBuf {
        let runtime = self.dir.mkdir("runtime", 0o700);
        nix::unistd::chown(
            &runtime,
            Some(nix::unistd::Uid::from_raw(self.user.uid)),
            None,
        )
        .expect("chown the runtime directory");
        runtime
    }

    /// The client log of config `name`.
    pub fn client_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Starts a session for config `name` as the user and waits until openvpn reports the
    /// tunnel up; returns openvpn's pid.
    pub fn connect(&self, name: &str) -> u32 {
        let t = self
            .start(name)
            .unwrap_or_else(|| panic!("the service is unreachable:\n{}", self.service.log()));
        let pid = t.pid();
        let up = eventually(Duration::from_secs(20), || {
            self.client_log(name)
                .contains("Initialization Sequence Completed")
        });
        assert!(
            up,
            "openvpn did not come up.\nclient log:\n{}\nservice log:\n{}\nserver log:\n{}",
            self.client_log(name),
            self.service.log(),
            self.server.log()
        );
        pid
    }

    /// The session's tun (the only link besides lo and the veth), if any.
    pub fn tun(&self) -> Option<String> {
        let links = self.topo.client.ip(&["-o", "link", "show"]);
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .find(|n| n.starts_with("ovs"))
    }

    /// Waits for the service to have undone the session (its log says so).
    pub fn wait_undone(&self, count: usize) {
        let done = eventually(Duration::from_secs(20), || {
            self.service.log().matches("network changes undone").count() >= count
        });
        assert!(
            done,
            "the session was not cleaned up:\n{}",
            self.service.log()
        );
    }

    /// Everything that must come back as it was: the client namespace's network, DNS in
    /// every backend, the service's run directory (device nodes, journals).
    pub fn snapshot(&self) -> String {
        let mut s = self.topo.client.snapshot();
        let _ = write!(
            s,
            "## resolv.conf\n{}",
            std::fs::read_to_string(&self.resolv_conf).unwrap_or_default()
        );
        let _ = write!(s, "## resolvconf records\n{}", self.resolvconf_state());
        if let Some(bus) = &self.bus {
            let _ = write!(s, "## resolved links\n{:?}\n", bus.links());
        }
        let mut run: Vec<String> = std::fs::read_dir(format!("/run/openvpn{}", self.instance))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    // The service's own sockets, not a session's.
                    .filter(|n| n != "service" && n != "control")
                    .collect()
            })
            .unwrap_or_default();
        run.sort();
        let _ = write!(s, "## run dir\n{run:?}\n");
        s
    }

    /// Interfaces the fake resolvconf holds a record for (added and not deleted).
    pub fn resolvconf_state(&self) -> String {
        let log = std::fs::read_to_string(&self.resolvconf_log).unwrap_or_default();
        let mut live = std::collections::BTreeSet::new();
        for line in log.lines() {
            if let Some(name) = line.strip_prefix("resolvconf -a ") {
                live.insert(name.to_owned());
            } else if let Some(name) = line.strip_prefix("resolvconf -d ") {
                live.remove(name);
            }
        }
        format!("{live:?}\n")
    }
}

/// Asserts that two snapshots are equal, showing only the lines that differ.
pub fn assert_same(before: &str, after: &str, vpn: &Vpn) {
    if before == after {
        return;
    }
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    panic!(
        "the snapshot changed.\nonly before: {gone:#?}\nonly after: {new:#?}\nserver namespace now:\n{}\nservice log:\n{}",
        vpn.topo.server.ip(&["link", "show"]),
        vpn.service.log()
    );
}

/// Kills a process by pid with `signal` and waits for it to go.
pub fn kill_and_wait(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    assert!(
        eventually(Duration::from_secs(20), || !alive(pid)),
        "process {pid} did not end"
    );
}

/// How the service is started in the client namespace (kept for restarts).
#[derive(Debug, Clone)]
struct Launcher {
    settings: String,
    instance: String,
    ns: String,
    dns: Dns,
    resolv_conf: PathBuf,
    fake_bin: PathBuf,
    bus_address: Option<String>,
    log_level: &'static str,
}

impl Launcher {
    /// Starts the service and waits until it is ready.
    fn start(&self, dir: &TestDir) -> Service {
        let log = dir.join(&format!("service-{}.log", self.instance));
        Service::start_with(dir, &self.settings, &self.instance, |svc| {
            self.wrap(&svc, &log)
        })
    }

    /// Starts the service without waiting.
    fn spawn(&self, dir: &TestDir) -> Service {
        let log = dir.join(&format!("service-{}.log", self.instance));
        Service::spawn_with(dir, &self.settings, &self.instance, |svc| {
            self.wrap(&svc, &log)
        })
    }

    /// The same command as `svc`, run inside the client namespace (and, for the direct
    /// backend, a mount namespace where /etc/resolv.conf is the test's file).
    fn wrap(&self, svc: &Command, log: &Path) -> Command {
        let program = svc.get_program().to_owned();
        let args: Vec<_> = svc.get_args().map(ToOwned::to_owned).collect();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "sh", "-c"]);
        let script = if self.dns == Dns::Direct {
            format!(
                "mount --bind {} /etc/resolv.conf && exec \"$@\"",
                self.resolv_conf.display()
            )
        } else {
            "exec \"$@\"".to_owned()
        };
        cmd.arg(script).arg("sh").arg(program).args(args);
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.fake_bin.display());
        cmd.env("RUST_LOG", self.log_level).env(
            "PATH",
            if self.dns == Dns::FakeResolvconf {
                path
            } else {
                "/usr/sbin:/usr/bin:/sbin:/bin".to_owned()
            },
        );
        cmd.env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            self.bus_address
                .clone()
                .unwrap_or_else(|| "unix:path=/nonexistent/bus".to_owned()),
        );
        let out = OpenOptions::new()
            .append(true)
            .open(log)
            .expect("service log");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out);
        cmd
    }
}
