//! Network namespaces and veth links for tests, and snapshots of a namespace's network state.
//!
//! A [`Topology`] is two namespaces joined by a veth pair: the VPN server's (`10.200.0.1/24`,
//! `fd00:200::1/64`) and the client's (`10.200.0.2/24`, `fd00:200::2/64`), where the service
//! and the user's openvpn run. Deleting a namespace deletes every link, address, route and
//! nftables table in it, so the guard leaves nothing behind even when a test fails.

use std::fmt::Write as _;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs a command, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    check(program, args, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(program: &str, args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "{program} {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (under `/run/netns`).
    pub name: String,
}

impl Netns {
    /// Creates a namespace with loopback up.
    pub fn create(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ovse2e-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `program args...` inside the namespace and returns its stdout (panics on failure).
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        check(program, args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`Netns::exec`] but returns whether it succeeded, and its output.
    pub fn try_exec(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = self.command(program).args(args).output().expect("run");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The transmitted-packets counter of a link.
    pub fn tx_packets(&self, dev: &str) -> u64 {
        let text = self.exec(
            "cat",
            &[&format!("/sys/class/net/{dev}/statistics/tx_packets")],
        );
        text.trim().parse().unwrap_or(0)
    }

    /// The output device of `ip route get <dst>`, if any.
    pub fn route_dev(&self, dst: &str) -> Option<String> {
        let v6 = dst.contains(':');
        let mut args = vec!["-n", self.name.as_str()];
        if v6 {
            args.push("-6");
        }
        args.extend(["route", "get", dst]);
        let out = Command::new("ip").args(&args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "dev" {
                return words.next().map(str::to_owned);
            }
        }
        None
    }

    /// Links, addresses, routes of every table, and the nftables ruleset: what a session must
    /// leave as it found it.
    pub fn snapshot(&self) -> String {
        let mut s = String::new();
        for args in [
            &["-d", "link", "show"][..],
            &["addr", "show"],
            &["-4", "route", "show", "table", "all"],
            &["-6", "route", "show", "table", "all"],
            &["-4", "rule", "show"],
            &["-6", "rule", "show"],
        ] {
            let _ = write!(s, "## ip {}\n{}", args.join(" "), self.ip(args));
        }
        let _ = write!(
            s,
            "## nft list ruleset\n{}",
            self.exec("nft", &["list", "ruleset"])
        );
        s
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside (by pid), then delete the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The server and client namespaces, joined by a veth pair.
#[derive(Debug)]
pub struct Topology {
    /// The VPN server's namespace.
    pub server: Netns,
    /// The client's namespace (service, user, openvpn client).
    pub client: Netns,
}

/// The server's underlay address.
pub const SERVER_IP: &str = "10.200.0.1";
/// The client's underlay link.
pub const CLIENT_DEV: &str = "veth-c";

impl Topology {
    /// Creates both namespaces and the link. With `default_route`, the client's default route
    /// goes via the server (so that `redirect-gateway` has something to override); without it
    /// only the underlay subnet is reachable, so a ping elsewhere can only take the tunnel.
    pub fn new(default_route: bool) -> Self {
        let server = Netns::create("srv");
        let client = Netns::create("cli");
        run(
            "ip",
            &[
                "link",
                "add",
                "veth-s",
                "netns",
                &server.name,
                "type",
                "veth",
                "peer",
                "name",
                CLIENT_DEV,
                "netns",
                &client.name,
            ],
        );
        server.ip(&["addr", "add", "10.200.0.1/24", "dev", "veth-s"]);
        server.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:200::1/64",
            "dev",
            "veth-s",
            "nodad",
        ]);
        server.ip(&["link", "set", "veth-s", "up"]);
        client.ip(&["addr", "add", "10.200.0.2/24", "dev", CLIENT_DEV]);
        client.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:200::2/64",
            "dev",
            CLIENT_DEV,
            "nodad",
        ]);
        client.ip(&["link", "set", CLIENT_DEV, "up"]);
        if default_route {
            client.ip(&["route", "add", "default", "via", SERVER_IP]);
        }
        // Targets behind the VPN server: the pushed networks and a stand-in for "the
        // internet" (documentation prefixes), all on the server's loopback.
        for a in ["10.9.0.1/32", "198.51.100.7/32"] {
            server.ip(&["addr", "add", a, "dev", "lo"]);
        }
        for a in ["fd00:9::1/128", "2001:db8:77::1/128"] {
            server.ip(&["-6", "addr", "add", a, "dev", "lo"]);
        }
        // Snapshots must not catch the link still coming up: wait for carrier and for the
        // link-local address to finish duplicate detection on both sides.
        for (ns, dev) in [(&server, "veth-s"), (&client, CLIENT_DEV)] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let a = ns.ip(&["addr", "show", "dev", dev]);
                if a.contains("fe80:") && !a.contains("tentative") && !a.contains("NO-CARRIER") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{dev} did not come up: {a}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Self { server, client }
    }
}
