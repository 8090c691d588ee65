//! The package under a real systemd (issue 13): a Debian 12 and a Debian 13 guest booted with
//! systemd-nspawn, the package installed with apt, an unprivileged user's tunnel to a real
//! openvpn server, DNS through the real systemd-resolved, and the service's life under
//! systemd (socket activation, readiness, stop, crash, the instance template, the journal,
//! the sandbox).
//!
//! Built only with the `systemd-guests` feature and run by the `systemd` stage of
//! `scripts/test-all.sh`, which builds the guests' root filesystems and the package first.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::guest::{suites, Guest};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::service::wait_timeout;

const ROOT: &str =
    "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)";

/// The test user inside a guest.
const USER: &str = "ovsuser";

/// A user, a config and a way to connect in a guest.
struct Lab {
    guest: Guest,
    uid: u32,
}

/// `iservice connect --json` running as the user.
struct Connection {
    child: Child,
    out: PathBuf,
}

impl Lab {
    fn new(suite: &str, pushes: &Pushes) -> Self {
        let guest = Guest::boot(suite, pushes);
        guest.must(&format!("useradd --create-home {USER}"));
        let uid: u32 = guest
            .must(&format!("id -u {USER}"))
            .trim()
            .parse()
            .expect("uid");
        // Where the user's openvpn logs (as the user, outside any sandbox of ours).
        guest.must("mkdir -p -m 1777 /var/log/ovse2e");
        let lab = Self { guest, uid };
        lab.config("vpn.conf", "");
        lab
    }

    /// Writes `/etc/openvpn/client/<name>` for the lab's server, its key owned by the user.
    fn config(&self, name: &str, extra: &str) {
        let dir = self.guest.path("/etc/openvpn/client");
        openvpnserv_e2e::openvpn::client_config(
            &dir,
            name,
            &self.guest.server,
            self.uid,
            std::path::Path::new(&format!("/var/log/ovse2e/{name}.log")),
            extra,
        );
        // The config names its key and certificate as the guest sees them.
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).expect("config");
        let prefix = self.guest.path("");
        std::fs::write(&path, text.replace(&prefix.display().to_string(), "")).expect("config");
    }

    fn client_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.guest.path(&format!("/var/log/ovse2e/{name}.log")))
            .unwrap_or_default()
    }

    /// `iservice connect /etc/openvpn/client/<name> --json [extra]` as the user.
    fn connect(&self, name: &str, extra: &[&str]) -> Connection {
        let out = self
            .guest
            .dir
            .join(&format!("iservice-{name}-{}.json", now_ms()));
        let file = std::fs::File::create(&out).expect("output file");
        let mut cmd = self.guest.command("setpriv");
        cmd.args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            "--",
            "iservice",
            "connect",
            &format!("/etc/openvpn/client/{name}"),
            "--json",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file);
        Connection {
            child: cmd.spawn().expect("iservice"),
            out,
        }
    }

    /// Connects and waits for the CONNECTED state.
    fn connected(&self, name: &str, extra: &[&str]) -> Connection {
        let c = self.connect(name, extra);
        let up = eventually(Duration::from_secs(40), || {
            c.text().contains("\"CONNECTED\"")
        });
        assert!(
            up,
            "{}: the tunnel did not come up.\niservice:\n{}\nclient log:\n{}\nservice journal:\n{}\nsession units:\n{}",
            self.guest.suite,
            c.text(),
            self.client_log(name),
            self.guest.service_log("openvpnserv*"),
            self.guest.sh("journalctl --no-pager -u 'openvpnserv*session*'").text
        );
        c
    }

    /// The session's tun (the service names them `ovs…`).
    fn tun(&self) -> Option<String> {
        let links = self.guest.sh("ip -o link show").text;
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .find(|n| n.starts_with("ovs"))
    }

    /// Waits until no tun, no leak-block table and no session unit is left.
    fn assert_all_undone(&self) {
        let clean = eventually(Duration::from_secs(30), || {
            self.tun().is_none()
                && !self
                    .guest
                    .sh("nft list tables")
                    .text
                    .contains("openvpnserv")
                && self
                    .guest
                    .sh("systemctl list-units --all --no-legend 'openvpnserv*session*'")
                    .text
                    .trim()
                    .is_empty()
        });
        assert!(
            clean,
            "{}: something is left: tun {:?}\nnft: {}\nunits: {}\njournal:\n{}",
            self.guest.suite,
            self.tun(),
            self.guest.sh("nft list tables").text,
            self.guest
                .sh("systemctl list-units --all --no-legend 'openvpnserv*'")
                .text,
            self.guest.service_log("openvpnserv*")
        );
        let dns = self.guest.sh("resolvectl dns").text;
        assert!(
            !dns.contains("10.8.0.53"),
            "{}: the VPN's DNS server is still set:\n{dns}",
            self.guest.suite
        );
    }
}

impl Connection {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// iservice itself: nsenter forks it into the guest's pid namespace, so it is the
    /// child of the process we started (and signals to nsenter do not reach it).
    fn iservice_pid(&self) -> Option<i32> {
        let me = self.child.id();
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.iservice_pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// Ctrl-C to iservice and wait for it to end.
    fn disconnect(mut self) -> String {
        self.signal(nix::sys::signal::Signal::SIGINT);
        if wait_timeout(&mut self.child, Duration::from_secs(40)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("iservice did not end after Ctrl-C:\n{}", self.text());
        }
        self.text()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The server pushing `--dns` with a routing domain (split DNS) and a search domain.
fn split_dns() -> Pushes {
    Pushes {
        dns_option: true,
        ..Pushes::default()
    }
}

/// Whether the guest's openvpn is 2.7 (Debian 13 with trixie-backports).
fn openvpn_27(g: &Guest) -> bool {
    g.sh("openvpn --version").text.starts_with("OpenVPN 2.7")
}

/// `resolvectl <what> <tun>`.
fn resolvectl(lab: &Lab, what: &str, tun: &str) -> String {
    lab.guest.sh(&format!("resolvectl {what} {tun}")).text
}

/// The journal of a clean session: the text names the session and the user, info is
/// priority 6, the fields are there for queries, nothing at warning or above.
fn assert_journal(lab: &Lab) {
    let g = &lab.guest;
    let suite = g.suite.as_str();
    // The journal: the text names the session and the user, info is priority 6, the
    // fields are there for queries.
    let entries = lab.guest.journal_json("-u openvpnserv.service");
    let started = entries
        .iter()
        .find(|e| {
            e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains("openvpn started"))
        })
        .unwrap_or_else(|| {
            panic!(
                "{suite}: no 'openvpn started' line:\n{}",
                g.service_log("openvpnserv")
            )
        });
    let text = started["MESSAGE"].as_str().unwrap_or_default();
    assert!(
        text.contains("session ") && text.contains(USER),
        "{suite}: {text}"
    );
    assert_eq!(
        started["PRIORITY"].as_str(),
        Some("6"),
        "{suite}: {started}"
    );
    assert_eq!(
        started["SESSION_USER"].as_str(),
        Some(USER),
        "{suite}: {started}"
    );
    assert!(
        started["SESSION_ID"].as_str().is_some(),
        "{suite}: {started}"
    );
    assert!(
        started["OPENVPN_PID"].as_str().is_some(),
        "{suite}: {started}"
    );
    for e in &entries {
        if e["SYSLOG_IDENTIFIER"].as_str() == Some("openvpnserv") {
            let p: u8 = e["PRIORITY"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            assert!(
                p == 3 || p == 4 || p == 6 || p == 7,
                "{suite}: priority {p}: {e}"
            );
            assert!(
                p > 4,
                "{suite}: a warning or error in a clean session: {}",
                e["MESSAGE"]
            );
        }
    }
}

/// What installing the package did: group, socket enabled and listening, service not
/// started (socket activation); and the hardened host every test here runs on.
fn assert_package(g: &Guest) {
    let suite = g.suite.as_str();
    // The package: group, socket enabled and listening, service not started (socket
    // activation), documentation installed where the units point.
    g.must("getent group openvpn-admin");
    assert_eq!(
        g.sh("systemctl is-enabled openvpnserv.socket").text.trim(),
        "enabled"
    );
    assert_eq!(
        g.sh("systemctl is-active openvpnserv.socket").text.trim(),
        "active"
    );
    assert_eq!(
        g.sh("systemctl is-active openvpnserv.service").text.trim(),
        "inactive"
    );
    g.must("test -S /run/openvpn/service");
    // The hardened host every test here runs on: /dev/net/tun closed to users, /run nodev.
    assert_eq!(g.must("stat -c %a /dev/net/tun").trim(), "600", "{suite}");
    assert!(
        g.must("findmnt -no OPTIONS /run").contains("nodev"),
        "{suite}"
    );
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn package_installs_enables_the_socket_and_a_user_gets_a_tunnel_with_split_dns_in_resolved() {
    let _ = ROOT;
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &split_dns());
        let g = &lab.guest;
        assert_package(g);
        let c = lab.connected("vpn.conf", &[]);
        // Socket activation started it; Type=notify readiness: active only once ready.
        let show = g.must(
            "systemctl show openvpnserv.service -p Type -p ActiveState -p SubState -p NRestarts",
        );
        assert!(
            show.contains("Type=notify") && show.contains("ActiveState=active"),
            "{suite}: {show}"
        );
        let tun = lab.tun().expect("a tun");
        // The user's traffic goes through the tunnel.
        let ping = g.sh("ping -c1 -W5 10.9.0.1");
        assert!(ping.ok, "{suite}: ping through the tunnel: {}", ping.text);
        assert_eq!(
            g.must("ip route get 10.9.0.1")
                .split_whitespace()
                .skip_while(|w| *w != "dev")
                .nth(1),
            Some(tun.as_str())
        );
        // DNS on the tun link in the real systemd-resolved: both servers, the routing domain
        // (~lab.example), the search domain; split tunnel: not the default route. (openvpn
        // 2.7 gives --dns only to its --dns-updown command, which is the service's hook.)
        let split = true;
        let check_dns = |when: &str| {
            let dns = resolvectl(&lab, "dns", &tun);
            assert!(
                dns.contains("10.8.0.53") && dns.contains("fd00:8::53"),
                "{suite} {when}: {dns}"
            );
            let domains = resolvectl(&lab, "domain", &tun);
            assert!(
                domains.contains("corp.example"),
                "{suite} {when}: {domains}"
            );
            assert_eq!(
                domains.contains("~lab.example"),
                split,
                "{suite} {when}: {domains}"
            );
            let route = resolvectl(&lab, "default-route", &tun);
            let want = if split { "no" } else { "yes" };
            assert!(route.contains(want), "{suite} {when}: {route}");
        };
        check_dns("while connected");
        // resolved restarted under a live session keeps the link's settings.
        g.must("systemctl restart systemd-resolved");
        assert!(eventually(Duration::from_secs(10), || g
            .sh("resolvectl status")
            .ok));
        check_dns("after systemd-resolved restarted");
        // openvpn runs in a unit of its own, as the user.
        let units = g.must("systemctl list-units --no-legend 'openvpnserv*session*'");
        let unit = units
            .split_whitespace()
            .next()
            .expect("a session unit")
            .to_owned();
        let show = g.must(&format!("systemctl show {unit} -p User -p MainPID"));
        assert!(
            show.contains(&format!("User={}", lab.uid)),
            "{suite}: {show}"
        );
        let pid: u32 = show
            .lines()
            .find_map(|l| l.strip_prefix("MainPID="))
            .and_then(|p| p.trim().parse().ok())
            .expect("MainPID");
        assert!(
            g.must(&format!("cat /proc/{pid}/comm")).contains("openvpn"),
            "{suite}"
        );

        let out = c.disconnect();
        assert!(
            out.contains("\"outcome\":\"disconnected\""),
            "{suite}: iservice did not end as disconnected:\n{}",
            out.lines().rev().take(8).collect::<Vec<_>>().join("\n")
        );
        lab.assert_all_undone();

        assert_journal(&lab);
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn full_tunnel_takes_the_dns_default_route_and_blocks_dns_elsewhere() {
    for suite in suites() {
        let suite = suite.as_str();
        let pushes = Pushes {
            def1: true,
            ..Pushes::default()
        };
        let lab = Lab::new(suite, &pushes);
        let g = &lab.guest;
        let c = lab.connected("vpn.conf", &[]);
        let tun = lab.tun().expect("a tun");
        let route = resolvectl(&lab, "default-route", &tun);
        assert!(route.contains("yes"), "{suite}: {route}");
        let dns = resolvectl(&lab, "dns", &tun);
        assert!(dns.contains("10.8.0.53"), "{suite}: {dns}");
        // The leak block: a table of the session's that drops DNS not going into the tunnel.
        let tables = g.must("nft list tables");
        let table = tables
            .lines()
            .find(|l| l.contains("openvpnserv"))
            .unwrap_or_else(|| panic!("{suite}: no leak-block table: {tables}"));
        let name = table.split_whitespace().last().unwrap_or_default();
        let family = table.split_whitespace().nth(1).unwrap_or_default();
        let rules = g.must(&format!("nft list table {family} {name}"));
        assert!(
            rules.contains("dport 53") && rules.contains(&tun),
            "{suite}: {rules}"
        );
        c.disconnect();
        lab.assert_all_undone();
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn hardened_host_sessions_open_their_tun_with_dev_net_tun_0600_and_run_nodev() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &Pushes::default());
        let g = &lab.guest;
        assert_eq!(g.must("stat -c %a /dev/net/tun").trim(), "600");
        assert!(g.must("findmnt -no OPTIONS /run").contains("nodev"));
        let c = lab.connected("vpn.conf", &[]);
        assert!(
            !lab.client_log("vpn.conf").contains("Cannot open TUN/TAP"),
            "{suite}"
        );
        // The private node is on /dev, where device nodes can be opened, owned by the user.
        let node = g.must("ls /dev/openvpn/");
        let node = node.split_whitespace().next().expect("a node");
        let owner = g.must(&format!("stat -c '%u %a %t:%T' /dev/openvpn/{node}"));
        assert_eq!(owner.trim(), format!("{} 600 a:c8", lab.uid), "{suite}");
        c.disconnect();
        lab.assert_all_undone();
        assert!(
            !g.sh("test -e /dev/openvpn").ok,
            "{suite}: /dev/openvpn is left"
        );
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn stopping_the_service_lets_openvpn_run_its_down_sequence_then_undoes_everything() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &split_dns());
        let g = &lab.guest;
        // The config's own down script, run as the user after the service's hook.
        std::fs::write(
            g.path("/etc/openvpn/client/down.sh"),
            "#!/bin/sh\necho \"down $1\" > /var/log/ovse2e/down-ran\n",
        )
        .expect("down script");
        g.must("chmod 755 /etc/openvpn/client/down.sh");
        lab.config("down.conf", "down /etc/openvpn/client/down.sh\n");
        let c = lab.connected("down.conf", &[]);
        let started = Instant::now();
        let stop = g.sh("systemctl stop openvpnserv.service");
        let took = started.elapsed();
        assert!(stop.ok, "{suite}: {}", stop.text);
        assert!(
            took < Duration::from_secs(30),
            "{suite}: stop took {took:?}"
        );
        let log = lab.client_log("down.conf");
        assert!(
            g.sh("test -f /var/log/ovse2e/down-ran").ok,
            "{suite}: the config's down script did not run (stop took {took:?}).\nclient log:\n{log}\njournal:\n{}",
            g.service_log("openvpnserv*")
        );
        assert!(!log.contains("SIGKILL"), "{suite}: {log}");
        let journal = g.service_log("openvpnserv.service");
        assert!(
            !journal.contains("killing it"),
            "{suite}: openvpn was killed:\n{}",
            g.sh("journalctl --no-pager -o short-precise | tail -n 60")
                .text
        );
        lab.assert_all_undone();
        drop(c);
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn boot_order_after_the_bus_and_the_dns_backend_found_when_the_bus_comes_later() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &split_dns());
        let g = &lab.guest;
        let after = g.must("systemctl show openvpnserv.service -p After");
        assert!(
            after.contains("dbus.service") && after.contains("systemd-resolved.service"),
            "{suite}: {after}"
        );
        // The bus is not there yet when the service starts.
        g.must("systemctl stop systemd-resolved.service dbus.socket dbus.service");
        g.must("systemctl start openvpnserv.service");
        g.must("systemctl start dbus.socket dbus.service systemd-resolved.service");
        let c = lab.connected("vpn.conf", &[]);
        let tun = lab.tun().expect("a tun");
        // The session's undo journal names the backend its DNS went to.
        let journal = g.sh("cat /run/openvpn/*").text;
        assert!(
            journal.contains("\"backend\":\"resolved\""),
            "{suite}: the session's DNS did not go to systemd-resolved:\n{journal}\n{}",
            g.service_log("openvpnserv")
        );
        // Only systemd-resolved's own API sets a routing domain (resolvconf, or resolv.conf,
        // cannot).
        let domains = resolvectl(&lab, "domain", &tun);
        assert!(domains.contains("~lab.example"), "{suite}: {domains}");
        c.disconnect();
        lab.assert_all_undone();
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn resolvconf_backend_removes_the_record_on_disconnect_without_errors() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &Pushes::default());
        let g = &lab.guest;
        std::fs::write(
            g.path("/etc/openvpn/iservice.toml"),
            "dns_backend = \"resolvconf\"\n",
        )
        .expect("settings");
        let c = lab.connected("vpn.conf", &[]);
        let tun = lab.tun().expect("a tun");
        let dns = resolvectl(&lab, "dns", &tun);
        assert!(dns.contains("10.8.0.53"), "{suite}: {dns}");
        c.disconnect();
        lab.assert_all_undone();
        let journal = g.service_log("openvpnserv.service");
        assert!(
            !journal.contains("resolvconf") || !journal.contains("failed"),
            "{suite}:\n{journal}"
        );
        let warnings: Vec<serde_json::Value> = g
            .journal_json("-u openvpnserv.service -p warning")
            .into_iter()
            .filter(|e| e["SYSLOG_IDENTIFIER"].as_str() == Some("openvpnserv"))
            .collect();
        assert!(warnings.is_empty(), "{suite}: warnings: {warnings:#?}");
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn sandbox_rates_at_most_4_and_the_documentation_is_installed() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &Pushes::default());
        let g = &lab.guest;
        for unit in ["openvpnserv.service", "openvpnserv@x.service"] {
            let out = g
                .sh(&format!("systemd-analyze security --no-pager {unit}"))
                .text;
            let score: f64 = out
                .lines()
                .find_map(|l| l.split("exposure level for ").nth(1))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{suite}: no score in:\n{out}"));
            eprintln!("{suite}: {unit}: systemd-analyze security {score}");
            assert!(score <= 4.0, "{suite}: {unit} rates {score}:\n{out}");
            let docs = g.must(&format!("systemctl show {unit} -p Documentation --value"));
            assert!(
                !docs.trim().is_empty(),
                "{suite}: {unit} names no documentation"
            );
            for d in docs.split_whitespace() {
                let path = d
                    .strip_prefix("file://")
                    .unwrap_or_else(|| panic!("{suite}: {d}"));
                assert!(
                    g.sh(&format!("test -s {path}")).ok,
                    "{suite}: {unit}: {path} is not installed"
                );
            }
        }
        // The sandboxed service still serves a session (the other tests use it throughout).
        let c = lab.connected("vpn.conf", &[]);
        c.disconnect();
        lab.assert_all_undone();
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn kill_9_with_live_sessions_systemd_restarts_it_and_the_replay_undoes_them() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(
            suite,
            &Pushes {
                def1: true,
                ..Pushes::default()
            },
        );
        let g = &lab.guest;
        let c = lab.connected("vpn.conf", &[]);
        assert!(lab.tun().is_some());
        let old: u32 = g
            .must("systemctl show -p MainPID --value openvpnserv.service")
            .trim()
            .parse()
            .expect("pid");
        g.must(&format!("kill -9 {old}"));
        let restarted = eventually(Duration::from_secs(30), || {
            let show = g
                .sh("systemctl show -p MainPID -p ActiveState openvpnserv.service")
                .text;
            show.contains("ActiveState=active")
                && !show.contains(&format!("MainPID={old}"))
                && !show.contains("MainPID=0")
        });
        assert!(
            restarted,
            "{suite}: systemd did not restart the service:\n{}",
            g.service_log("openvpnserv")
        );
        lab.assert_all_undone();
        let journal = g.service_log("openvpnserv.service");
        assert!(
            journal.contains("left behind"),
            "{suite}: no replay in the journal:\n{journal}"
        );
        drop(c);
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn the_instance_template_serves_its_own_socket_and_settings() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &Pushes::default());
        let g = &lab.guest;
        g.must("systemctl start openvpnserv@work.socket");
        g.must("test -S /run/openvpnwork/service");
        let c = lab.connected("vpn.conf", &["-instance", "interactive", "work"]);
        let units = g.must("systemctl list-units --no-legend 'openvpnservwork-session-*'");
        assert!(
            !units.trim().is_empty(),
            "{suite}: no session unit of instance work"
        );
        assert_eq!(
            g.sh("systemctl is-active openvpnserv@work.service")
                .text
                .trim(),
            "active"
        );
        assert_eq!(
            g.sh("systemctl is-active openvpnserv.service").text.trim(),
            "inactive"
        );
        c.disconnect();
        lab.assert_all_undone();
    }
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn openvpn_27_routing_domains_reach_resolved() {
    let mut saw_2_7 = false;
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &split_dns());
        saw_2_7 |= openvpn_27(&lab.guest);
        let c = lab.connected("vpn.conf", &[]);
        let tun = lab.tun().expect("a tun");
        let domains = resolvectl(&lab, "domain", &tun);
        assert!(domains.contains("~lab.example"), "{suite}: {domains}");
        c.disconnect();
        lab.assert_all_undone();
    }
    assert!(
        saw_2_7,
        "no guest ran openvpn 2.7 (Debian 13 with trixie-backports)"
    );
}

/// `iservice <args>` in the guest as `user`, stdin closed.
fn iservice_as(g: &Guest, user: &str, args: &str) -> openvpnserv_e2e::guest::Ran {
    g.sh(&format!(
        "setpriv --reuid={user} --regid={user} --init-groups -- iservice {args} </dev/null"
    ))
}

#[test]
#[ignore = "needs root, systemd-nspawn and the guests (the systemd stage of scripts/test-all.sh)"]
fn iservice_start_list_log_and_stop_through_the_control_socket_of_the_packaged_service() {
    for suite in suites() {
        let suite = suite.as_str();
        let lab = Lab::new(suite, &Pushes::default());
        let g = &lab.guest;
        // A config without a `log` line: openvpn's output then goes to the session unit's
        // stdout and stderr, which the service takes (StandardOutputFileDescriptor).
        lab.config("bg.conf", "");
        let path = g.path("/etc/openvpn/client/bg.conf");
        let text = std::fs::read_to_string(&path).expect("config");
        let text: Vec<&str> = text.lines().filter(|l| !l.starts_with("log ")).collect();
        let text = text.join("\n") + "\n";
        std::fs::write(&path, text).expect("config");
        g.must("useradd --create-home ovsother");

        let start = iservice_as(
            g,
            USER,
            "start /etc/openvpn/client/bg.conf --json --non-interactive",
        );
        assert!(
            start.ok && start.text.contains("\"CONNECTED\""),
            "{suite}: iservice start:\n{}\nservice journal:\n{}",
            start.text,
            g.service_log("openvpnserv*")
        );
        // The command has ended; the connection goes on in its unit.
        let tun = lab.tun().expect("a tun after start returned");
        let list = iservice_as(g, USER, "list --json");
        assert!(
            list.ok
                && list.text.contains("\"name\":\"bg\"")
                && list.text.contains("\"state\":\"connected\"")
                && list.text.contains(&format!("\"tun\":\"{tun}\"")),
            "{suite}: iservice list:\n{}",
            list.text
        );
        let log = iservice_as(g, USER, "log bg");
        assert!(
            log.ok && log.text.contains("Initialization Sequence Completed"),
            "{suite}: openvpn's own output reaches `iservice log` under systemd:\n{}",
            log.text
        );
        // Another user sees nothing of it and cannot stop it.
        let other = iservice_as(g, "ovsother", "list --json");
        assert!(
            other.ok && !other.text.contains("\"name\":\"bg\""),
            "{suite}: another user's list:\n{}",
            other.text
        );
        let stop = iservice_as(g, "ovsother", "stop bg");
        assert!(
            !stop.ok && lab.tun().is_some(),
            "{suite}: another user's stop:\n{}",
            stop.text
        );
        let stop = iservice_as(g, USER, "stop bg");
        assert!(stop.ok, "{suite}: iservice stop:\n{}", stop.text);
        lab.assert_all_undone();
    }
}
