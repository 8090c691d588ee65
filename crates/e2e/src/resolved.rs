//! A mock `org.freedesktop.resolve1.Manager` on a private `dbus-daemon` (design §4: nothing
//! of systemd-resolved runs here), recording what each link was given.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fixture::eventually;
use crate::service::TestDir;

/// A private D-Bus daemon with a mock `org.freedesktop.resolve1.Manager` on it.
pub struct MockBus {
    daemon: Child,
    /// The bus address (for `DBUS_SYSTEM_BUS_ADDRESS`).
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

    #[zbus(name = "SetLinkDNSEx")]
    fn set_link_dns_ex(&self, ifindex: i32, addresses: Vec<(i32, Vec<u8>, u16, String)>) {
        let text: Vec<String> = addresses
            .iter()
            .map(|(family, bytes, port, name)| {
                let a = match bytes.len() {
                    4 => {
                        std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
                    }
                    16 => format!(
                        "[{}]",
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes.as_slice()).unwrap())
                    ),
                    _ => format!("family {family}: {bytes:?}"),
                };
                let name = if name.is_empty() {
                    String::new()
                } else {
                    format!("#{name}")
                };
                format!("{a}:{port}{name}")
            })
            .collect();
        self.record(ifindex, &format!("dns={}", text.join(",")));
    }

    #[zbus(name = "SetLinkDNSSEC")]
    fn set_link_dnssec(&self, ifindex: i32, mode: String) {
        self.record(ifindex, &format!("dnssec={mode}"));
    }

    #[zbus(name = "SetLinkDNSOverTLS")]
    fn set_link_dns_over_tls(&self, ifindex: i32, mode: String) {
        self.record(ifindex, &format!("dnsovertls={mode}"));
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
    /// Starts the bus (its socket in `dir`) and the mock on it.
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
