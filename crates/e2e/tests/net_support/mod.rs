//! What every `net_*` test sets up: a server and a client namespace, a real openvpn server,
//! the service (with its real network layer) in the client namespace, an unprivileged user,
//! and a way to connect and disconnect.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openvpnserv_e2e::fixture::{alive, eventually};
use openvpnserv_e2e::netns::Topology;
use openvpnserv_e2e::openvpn::{client_config, Pushes, Server};
use openvpnserv_e2e::service::{
    binary, probe, probe_command, unique_instance, Send, Service, TestDir,
};
use openvpnserv_e2e::users::TestUser;

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

/// A test's whole world. Fields drop in order: the service first, the namespaces last.
pub struct Vpn {
    pub service: Service,
    pub instance: String,
    pub settings: String,
    pub bus: Option<MockBus>,
    pub server: Server,
    pub user: TestUser,
    pub topo: Topology,
    pub dns: Dns,
    pub config_dir: PathBuf,
    pub logs: PathBuf,
    /// The file standing in for `/etc/resolv.conf` (direct backend).
    pub resolv_conf: PathBuf,
    /// Where the fake resolvconf records its calls.
    pub resolvconf_log: PathBuf,
    pub dir: TestDir,
}

pub const ORIGINAL_RESOLV_CONF: &str = "# the machine's own\nnameserver 192.0.2.53\n";

impl Vpn {
    pub fn new(pushes: &Pushes, default_route: bool, dns: Dns) -> Self {
        openvpnserv_e2e::users::remove_leftovers();
        let dir = TestDir::new("net");
        let topo = Topology::new(default_route);
        let server = Server::start(&topo.server, &dir, pushes);
        let user = TestUser::create(&[]);
        let config_dir = dir.mkdir("config", 0o755);
        let logs = dir.mkdir("logs", 0o777);
        let hook = dir.join("openvpnserv-hook");
        std::fs::copy(binary("openvpnserv-hook"), &hook).expect("copy the hook");
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
        let bus = (dns == Dns::MockResolved).then(|| MockBus::start(&dir));
        let backend = if dns == Dns::Direct { "direct" } else { "auto" };
        let settings = format!(
            "exe_path = \"/usr/sbin/openvpn\"\nconfig_dir = \"{}\"\nhook_path = \"{}\"\ndns_backend = \"{backend}\"\n",
            config_dir.display(),
            hook.display()
        );
        let instance = unique_instance();
        let service = start_service(
            &dir,
            &settings,
            &instance,
            &topo,
            dns,
            &resolv_conf,
            &fake_bin,
            bus.as_ref(),
        );
        Self {
            service,
            instance,
            settings,
            bus,
            server,
            user,
            topo,
            dns,
            config_dir,
            logs,
            resolv_conf,
            resolvconf_log,
            dir,
        }
    }

    /// Restarts the service after a crash (same instance, same settings).
    pub fn restart_service(&mut self) {
        let fake_bin = self.dir.join("bin");
        let new = start_service(
            &self.dir,
            &self.settings,
            &self.instance,
            &self.topo,
            self.dns,
            &self.resolv_conf,
            &fake_bin,
            self.bus.as_ref(),
        );
        // The crashed service's guard would remove the run directory, journals and all:
        // that is the new service's now.
        std::mem::forget(std::mem::replace(&mut self.service, new));
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

    /// The client log of config `name`.
    pub fn client_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Starts a session for config `name` as the user and waits until openvpn reports the
    /// tunnel up; returns openvpn's pid.
    pub fn connect(&self, name: &str) -> u32 {
        let t = probe(
            probe_command(&self.user),
            &self.service.socket,
            &Send::Startup {
                dir: self.config_dir.display().to_string(),
                options: format!("--config {name}"),
                stdin: String::new(),
            },
            Duration::from_secs(10),
            true,
        );
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
                    .filter(|n| n != "service")
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

#[allow(clippy::too_many_arguments)]
fn start_service(
    dir: &TestDir,
    settings: &str,
    instance: &str,
    topo: &Topology,
    dns: Dns,
    resolv_conf: &Path,
    fake_bin: &Path,
    bus: Option<&MockBus>,
) -> Service {
    let log = dir.join(&format!("service-{instance}.log"));
    let ns = topo.client.name.clone();
    let resolv_conf = resolv_conf.to_owned();
    let fake_bin = fake_bin.to_owned();
    let bus_address = bus.map(|b| b.address.clone());
    Service::start_with(dir, settings, instance, move |svc| {
        // Run the same command inside the client namespace (and, for the direct backend, a
        // mount namespace where /etc/resolv.conf is the test's file).
        let program = svc.get_program().to_owned();
        let args: Vec<_> = svc.get_args().map(ToOwned::to_owned).collect();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "sh", "-c"]);
        let script = if dns == Dns::Direct {
            format!(
                "mount --bind {} /etc/resolv.conf && exec \"$@\"",
                resolv_conf.display()
            )
        } else {
            "exec \"$@\"".to_owned()
        };
        cmd.arg(script).arg("sh").arg(program).args(args);
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", fake_bin.display());
        cmd.env("RUST_LOG", "debug").env(
            "PATH",
            if dns == Dns::FakeResolvconf {
                path
            } else {
                "/usr/sbin:/usr/bin:/sbin:/bin".to_owned()
            },
        );
        cmd.env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            bus_address.unwrap_or_else(|| "unix:path=/nonexistent/bus".to_owned()),
        );
        let out = OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("service log");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out);
        cmd
    })
}

/// A private D-Bus daemon with a mock `org.freedesktop.resolve1.Manager` on it.
pub struct MockBus {
    daemon: Child,
    pub address: String,
    links: Arc<Mutex<std::collections::BTreeMap<i32, String>>>,
    calls: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Resolve1 {
    links: Arc<Mutex<std::collections::BTreeMap<i32, String>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Resolve1 {
    fn record(&self, ifindex: i32, what: &str) {
        self.calls.lock().unwrap().push(format!("{ifindex} {what}"));
        let mut links = self.links.lock().unwrap();
        let entry = links.entry(ifindex).or_default();
        entry.push_str(what);
        entry.push(';');
    }
}

// D-Bus hands the arguments over by value.
#[allow(clippy::needless_pass_by_value)]
#[zbus::interface(name = "org.freedesktop.resolve1.Manager")]
impl Resolve1 {
    #[zbus(name = "SetLinkDNS")]
    fn set_link_dns(&self, ifindex: i32, addresses: Vec<(i32, Vec<u8>)>) {
        let text: Vec<String> = addresses
            .iter()
            .map(|(family, bytes)| match bytes.len() {
                4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
                16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes.as_slice()).unwrap())
                    .to_string(),
                _ => format!("family {family}: {bytes:?}"),
            })
            .collect();
        self.record(ifindex, &format!("dns={}", text.join(",")));
    }

    fn set_link_domains(&self, ifindex: i32, domains: Vec<(String, bool)>) {
        let text: Vec<String> = domains
            .iter()
            .map(|(d, routing)| if *routing { format!("~{d}") } else { d.clone() })
            .collect();
        self.record(ifindex, &format!("domains={}", text.join(",")));
    }

    fn set_link_default_route(&self, ifindex: i32, enable: bool) {
        self.record(ifindex, &format!("default-route={enable}"));
    }

    fn revert_link(&self, ifindex: i32) {
        self.calls.lock().unwrap().push(format!("{ifindex} revert"));
        self.links.lock().unwrap().remove(&ifindex);
    }
}

impl MockBus {
    pub fn start(dir: &TestDir) -> Self {
        let socket = dir.join("system_bus_socket");
        let config = dir.write(
            "bus.conf",
            &format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
                 <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n",
                socket.display()
            ),
            0o644,
        );
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        assert!(
            eventually(Duration::from_secs(10), || socket.exists()),
            "the private bus did not start"
        );
        let address = format!("unix:path={}", socket.display());
        let links = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mock = Resolve1 {
            links: Arc::clone(&links),
            calls: Arc::clone(&calls),
        };
        let addr = address.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let conn = zbus::connection::Builder::address(addr.as_str())
                    .expect("bus address")
                    .name("org.freedesktop.resolve1")
                    .expect("name")
                    .serve_at("/org/freedesktop/resolve1", mock)
                    .expect("serve")
                    .build()
                    .await
                    .expect("connect the mock to the private bus");
                ready_tx.send(()).expect("ready");
                let _ = stop_rx.await;
                drop(conn);
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the mock resolved did not start");
        Self {
            daemon,
            address,
            links,
            calls,
            _thread: thread,
            stop: Some(stop_tx),
        }
    }

    /// Per link index, what was set and not reverted.
    pub fn links(&self) -> std::collections::BTreeMap<i32, String> {
        self.links.lock().unwrap().clone()
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for MockBus {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
