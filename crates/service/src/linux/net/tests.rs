//! The network layer over a recording fake of the OS: what it does, in which order, what it
//! writes down first, and what it undoes.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use openvpnserv_core::linux::dns::{Backend, DnsState};
use openvpnserv_core::linux::hook::{translate, Env, Options, Phase};
use openvpnserv_core::linux::journal::{AddressSpec, DnsUndo, RouteSpec};
use openvpnserv_core::linux::policy::{Path as RoutePath, Tun};
use openvpnserv_proto::codes::{ERROR_INVALID_DATA, ERROR_OBJECT_ALREADY_EXISTS};
use openvpnserv_settings::DnsBackend;

use super::*;
use crate::linux::net::{NetworkSession, SessionUser};

/// Records every call; fails those whose transcript line contains a configured text.
#[derive(Debug, Default)]
struct Fake {
    run_dir: PathBuf,
    transcript: Mutex<Vec<String>>,
    fail: Mutex<Vec<(String, i32)>>,
    links: Mutex<HashMap<String, u32>>,
}

impl Fake {
    fn new(run_dir: &Path) -> Self {
        Self {
            run_dir: run_dir.to_owned(),
            ..Self::default()
        }
    }

    fn fail_on(&self, text: &str, errno: i32) {
        self.fail.lock().unwrap().push((text.to_owned(), errno));
    }

    /// Whether any journal in the run directory mentions `what` (the intent was written).
    fn journalled(&self, what: &str) -> bool {
        std::fs::read_dir(&self.run_dir).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(what)))
        })
    }

    fn op(&self, line: String) -> io::Result<()> {
        let failing = self
            .fail
            .lock()
            .unwrap()
            .iter()
            .find(|(t, _)| line.contains(t.as_str()))
            .map(|(_, e)| *e);
        self.transcript.lock().unwrap().push(match failing {
            Some(e) => format!("{line} -> errno {e}"),
            None => line,
        });
        failing.map_or(Ok(()), |e| Err(io::Error::from_raw_os_error(e)))
    }

    /// `op` for a change that must already be in the journal.
    fn change(&self, line: &str, key: &str) -> io::Result<()> {
        let mark = if self.journalled(key) {
            ""
        } else {
            " NOT JOURNALLED"
        };
        self.op(format!("{line}{mark}"))
    }

    fn transcript(&self) -> Vec<String> {
        std::mem::take(&mut *self.transcript.lock().unwrap())
    }
}

fn route_text(r: &RouteSpec) -> String {
    let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    format!("route {}/{}{via} dev {}", r.dst, r.prefix_len, r.dev)
}

impl NetOs for Fake {
    fn create_tun(&self, name: &str, uid: u32, gid: u32) -> io::Result<()> {
        self.change(&format!("create tun {name} owner {uid}:{gid}"), name)?;
        self.links.lock().unwrap().insert(name.to_owned(), 7);
        Ok(())
    }

    fn clone_device_open_to_users(&self) -> bool {
        false
    }

    fn create_node(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.change(&format!("create node {name} owner {uid}:{gid}"), &name)
    }

    fn remove_node(&self, path: &Path) -> io::Result<()> {
        self.op(format!(
            "remove node {}",
            path.file_name().unwrap().to_string_lossy()
        ))
    }

    async fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.links.lock().unwrap().get(name).copied())
    }

    async fn delete_link(&self, index: u32) -> io::Result<()> {
        self.op(format!("delete link #{index}"))?;
        self.links.lock().unwrap().retain(|_, i| *i != index);
        Ok(())
    }

    async fn set_link(&self, index: u32, mtu: u32) -> io::Result<()> {
        self.op(format!("link #{index} up mtu {mtu}"))
    }

    async fn add_address(&self, a: &AddressSpec) -> io::Result<()> {
        let addr = a.addr.to_string();
        self.change(
            &format!("add address {addr}/{} dev {}", a.prefix_len, a.dev),
            &addr,
        )
    }

    async fn del_address(&self, a: &AddressSpec) -> io::Result<()> {
        self.op(format!(
            "delete address {}/{} dev {}",
            a.addr, a.prefix_len, a.dev
        ))
    }

    async fn add_route(&self, r: &RouteSpec) -> io::Result<()> {
        self.change(&format!("add {}", route_text(r)), &r.dst.to_string())
    }

    async fn del_route(&self, r: &RouteSpec) -> io::Result<()> {
        self.op(format!("delete {}", route_text(r)))
    }

    async fn route_to(&self, dst: IpAddr) -> io::Result<Option<RoutePath>> {
        // The server is on the underlay link; everything else via the underlay gateway.
        let on_link = dst.to_string() == "10.200.0.1";
        Ok(Some(RoutePath {
            gateway: (!on_link).then(|| "10.200.0.1".parse().unwrap()),
            oif: 2,
            dev: "veth-c".into(),
        }))
    }

    async fn dns_apply(&self, undo: &DnsUndo, tun: &Tun, state: &DnsState) -> io::Result<()> {
        let servers: Vec<String> = state.servers().map(ToString::to_string).collect();
        self.change(
            &format!(
                "dns {} {} servers {servers:?} search {:?}",
                tun.name,
                kind(undo),
                state.search
            ),
            "resolved",
        )
    }

    async fn dns_revert(&self, undo: &DnsUndo) -> io::Result<()> {
        self.op(format!("dns revert {}", kind(undo)))
    }

    async fn firewall_add(
        &self,
        table: &str,
        tun: &str,
        dns_only: bool,
        server: Option<IpAddr>,
    ) -> io::Result<()> {
        self.change(
            &format!("nft add {table} allow {tun} dns_only={dns_only} server={server:?}"),
            table,
        )
    }

    async fn firewall_delete(&self, table: &str) -> io::Result<()> {
        self.op(format!("nft delete {table}"))
    }
}

fn kind(undo: &DnsUndo) -> &'static str {
    match undo {
        DnsUndo::Resolved { .. } => "resolved",
        DnsUndo::Resolvconf { .. } => "resolvconf",
        DnsUndo::Direct { .. } => "direct",
    }
}

struct Setup {
    net: LinuxNetwork<Fake>,
    run_dir: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Self {
        let run_dir = std::env::temp_dir().join(format!("ovs-net-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run_dir);
        Self::over(run_dir)
    }

    /// A new service run over the same run directory, on a system where `links` exist.
    fn next_run(&self) -> Self {
        let next = Self::over(self.run_dir.clone());
        next.os()
            .links
            .lock()
            .unwrap()
            .clone_from(&self.os().links.lock().unwrap());
        next
    }

    /// A network layer (a new service run) over the same run directory.
    fn over(run_dir: PathBuf) -> Self {
        let config = NetConfig {
            instance: "t".into(),
            run_dir: run_dir.clone(),
            device_dir: run_dir.join("dev"),
            hook_path: "/usr/sbin/openvpnserv-hook".into(),
            openvpn: "/usr/sbin/openvpn".into(),
            dns_backend: DnsBackend::Auto,
            resolv_conf: run_dir.join("resolv.conf"),
        };
        let net = LinuxNetwork::with_os(
            Fake::new(&run_dir),
            config,
            Backend::Resolved,
            Some(Build::default()),
        );
        Self { net, run_dir }
    }

    fn os(&self) -> &Fake {
        &self.net.shared.os
    }

    fn journals(&self) -> usize {
        journal_file::leftovers(&self.run_dir).unwrap().len()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        id: 1,
        user: SessionUser {
            uid: 1000,
            gid: 1000,
            name: "alice".into(),
        },
        user_args: vec!["--config".into(), "a.conf".into()],
    }
}

/// The full-tunnel environment of the captures (scenario B), on the tun `dev`.
fn env(dev: &str) -> Env {
    [
        ("dev", dev),
        ("tun_mtu", "1500"),
        ("ifconfig_local", "10.8.0.2"),
        ("ifconfig_netmask", "255.255.255.0"),
        ("route_vpn_gateway", "10.8.0.1"),
        ("route_net_gateway", "10.200.0.1"),
        ("trusted_ip", "10.200.0.1"),
        ("redirect_gateway", "1"),
        ("route_network_1", "10.9.0.0"),
        ("route_netmask_1", "255.255.255.0"),
        ("route_gateway_1", "10.8.0.1"),
        ("foreign_option_1", "dhcp-option DNS 10.8.0.53"),
        ("foreign_option_2", "dhcp-option DOMAIN corp.example"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn run_hooks(session: &mut LinuxSession<Fake>, phases: &[Phase]) -> Vec<u32> {
    let e = env(&session.tun.name);
    let mut codes = Vec::new();
    for &p in phases {
        for r in translate(p, &e, Options::default()).unwrap() {
            codes.push(session.handle(r).await);
        }
    }
    codes
}

#[test]
fn names_fit_and_differ_per_instance() {
    assert_ne!(instance_tag(""), instance_tag("2"));
    let longest = tun_name(&format!("ovs{}", instance_tag("x")), u64::MAX);
    assert_eq!(longest.len(), 15, "{longest}");
}

#[tokio::test(flavor = "current_thread")]
async fn connect_then_openvpn_killed_transcript() {
    let s = Setup::new("transcript");
    let (mut session, args) = s.net.prepare(&info()).await.unwrap();
    let tun = session.tun.name.clone();
    let node = s.run_dir.join("dev/tun-1").display().to_string();
    let hook = "/usr/sbin/openvpnserv-hook";
    let want_args: Vec<String> = [
        "--dev",
        &tun,
        "--dev-type",
        "tun",
        "--dev-node",
        &node,
        "--disable-dco",
        "--script-security",
        "2",
        "--ifconfig-noexec",
        "--up",
        &format!("{hook} up"),
        "--route-up",
        &format!("{hook} route-up"),
        "--route-pre-down",
        &format!("{hook} route-pre-down"),
        "--down",
        &format!("{hook} down"),
        "--setenv",
        "OPENVPNSERV_OPENVPN",
        "2.6",
        "--setenv",
        "OPENVPNSERV_CHANNEL_FD",
        "3",
        "--setenv",
        "OPENVPNSERV_MODE",
        "env",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(args, want_args);

    let codes = run_hooks(&mut session, &[Phase::Up, Phase::RouteUp]).await;
    assert!(codes.iter().all(|&c| c == 0), "{codes:?}");
    // openvpn is killed: no down hooks; the session's clean-up undoes everything.
    session.cleanup().await;
    let table = "openvpnserv_".to_owned() + &instance_tag("t") + "_1";
    assert_eq!(
        s.os().transcript(),
        [
            format!("create tun {tun} owner 1000:1000"),
            "create node tun-1 owner 1000:1000".into(),
            "link #7 up mtu 1500".into(),
            format!("add address 10.8.0.2/24 dev {tun}"),
            format!("dns {tun} resolved servers [\"10.8.0.53\"] search []"),
            format!("dns {tun} resolved servers [\"10.8.0.53\"] search [\"corp.example\"]"),
            // Pinned along its current path (on link), before the tunnel takes the rest.
            "add route 10.200.0.1/32 dev veth-c".into(),
            format!("add route 0.0.0.0/1 via 10.8.0.1 dev {tun}"),
            format!("add route 128.0.0.0/1 via 10.8.0.1 dev {tun}"),
            format!("add route 10.9.0.0/24 via 10.8.0.1 dev {tun}"),
            format!("nft add {table} allow {tun} dns_only=true server=Some(10.200.0.1)"),
            // Undo, newest first; routes and addresses on the tun go with it.
            format!("nft delete {table}"),
            "delete route 10.200.0.1/32 dev veth-c".into(),
            "dns revert resolved".into(),
            "remove node tun-1".into(),
            "delete link #7".into(),
        ]
    );
    assert_eq!(s.journals(), 0, "a fully undone session leaves no journal");
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_change_is_acked_with_its_error_and_not_undone_later() {
    let s = Setup::new("fail");
    s.os().fail_on("add route 10.9.0.0/24", nix::libc::EEXIST);
    let (mut session, _) = s.net.prepare(&info()).await.unwrap();
    let codes = run_hooks(&mut session, &[Phase::Up, Phase::RouteUp]).await;
    assert!(codes.contains(&ERROR_OBJECT_ALREADY_EXISTS), "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c != 0).count(), 1, "{codes:?}");
    let live: Vec<String> = session
        .journal
        .live()
        .map(|(_, e)| format!("{:?}", e.change))
        .collect();
    assert!(!live.iter().any(|c| c.contains("10.9.0.0")), "{live:?}");
    session.cleanup().await;
}

#[tokio::test(flavor = "current_thread")]
async fn what_cleanup_cannot_undo_is_replayed_at_the_next_start() {
    let s = Setup::new("replay");
    s.os().fail_on("delete route 10.200.0.1/32", nix::libc::EIO);
    let (mut session, _) = s.net.prepare(&info()).await.unwrap();
    run_hooks(&mut session, &[Phase::Up, Phase::RouteUp]).await;
    session.cleanup().await;
    assert_eq!(
        s.journals(),
        1,
        "the journal stays for what could not be undone"
    );

    // The next service run replays it: only the failed change is left.
    let next = Setup::over(s.run_dir.clone());
    next.net.recover().await;
    assert_eq!(
        next.os().transcript(),
        ["delete route 10.200.0.1/32 dev veth-c"]
    );
    assert_eq!(next.journals(), 0);
    std::mem::forget(next); // `s` removes the directory
}

#[tokio::test(flavor = "current_thread")]
async fn a_crash_at_any_point_is_undone_from_the_journal() {
    // Stop the session after each number of requests, as a killed service would, and
    // replay: every change made so far is undone, and nothing else.
    for stop_after in 0..=10 {
        let s = Setup::new(&format!("crash{stop_after}"));
        let (mut session, _) = s.net.prepare(&info()).await.unwrap();
        let e = env(&session.tun.name);
        let requests: Vec<_> = [Phase::Up, Phase::RouteUp]
            .iter()
            .flat_map(|&p| translate(p, &e, Options::default()).unwrap())
            .take(stop_after)
            .collect();
        for r in requests {
            session.handle(r).await;
        }
        let made: Vec<String> = s.os().transcript();
        assert!(
            !made.iter().any(|l| l.contains("NOT JOURNALLED")),
            "every change is written down before it is made: {made:?}"
        );
        drop(session); // the service dies: no clean-up
        let next = s.next_run();
        next.net.recover().await;
        let undone = next.os().transcript();
        assert!(
            undone.last().is_some_and(|l| l.starts_with("delete link")),
            "{stop_after}: {undone:?}"
        );
        assert!(
            undone.contains(&"remove node tun-1".to_owned()),
            "{undone:?}"
        );
        for outside in ["10.200.0.1/32", "nft add", "dns "] {
            let was_made = made.iter().any(|l| l.contains(outside));
            let undo = match outside {
                "nft add" => "nft delete",
                "dns " => "dns revert",
                o => o,
            };
            assert_eq!(
                undone.iter().any(|l| l.contains(undo)),
                was_made,
                "{stop_after}: {outside}: made {made:?}, undone {undone:?}"
            );
        }
        assert_eq!(next.journals(), 0);
        std::mem::forget(next);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn dns_that_fails_halfway_is_taken_back() {
    let s = Setup::new("dns");
    s.os().fail_on("resolved servers", nix::libc::EIO);
    let (mut session, _) = s.net.prepare(&info()).await.unwrap();
    let codes = run_hooks(&mut session, &[Phase::Up]).await;
    assert!(codes.contains(&ERROR_INVALID_DATA), "{codes:?}");
    let t = s.os().transcript();
    assert!(t.iter().any(|l| l == "dns revert resolved"), "{t:?}");
    session.cleanup().await;
}

#[tokio::test(flavor = "current_thread")]
async fn iproute_builds_get_iproute_and_keep_openvpns_own_ifconfig() {
    let dir = std::env::temp_dir().join(format!("ovs-net-iproute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Detection reads the build's compile-time defines from `--version`.
    let fake = dir.join("openvpn");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'OpenVPN 2.6.14'\necho 'Compile time defines: enable_dco=yes enable_iproute2=yes enable_lz4=yes'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(detect_openvpn(&fake).await.unwrap().iproute);
    assert!(detect_openvpn(Path::new("/bin/true")).await.is_none());

    let s = Setup::new("iproute-args");
    let config = s.net.shared.config.clone();
    let iproute = Build {
        iproute: true,
        ..Build::default()
    };
    let net = LinuxNetwork::with_os(
        Fake::new(&s.run_dir),
        config,
        Backend::Resolved,
        Some(iproute),
    );
    let (session, args) = net.prepare(&info()).await.unwrap();
    let hook = "/usr/sbin/openvpnserv-hook".to_owned();
    let at = args
        .iter()
        .position(|a| a == "--iproute")
        .expect("--iproute");
    assert_eq!(args[at + 1], hook);
    assert!(!args.contains(&"--ifconfig-noexec".to_owned()), "{args:?}");
    assert!(
        args.ends_with(&["OPENVPNSERV_MODE".into(), "iproute".into()]),
        "{args:?}"
    );
    session.cleanup().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Recovery used to give up on every journal when one could not be read, and to delete a
/// journal it read nothing from: the evidence of what the session changed was gone.
#[tokio::test(flavor = "current_thread")]
async fn an_unreadable_journal_is_set_aside_while_the_others_are_replayed() {
    let s = Setup::new("unreadable");
    let (mut session, _) = s.net.prepare(&info()).await.unwrap();
    run_hooks(&mut session, &[Phase::Up, Phase::RouteUp]).await;
    drop(session); // the service dies
    std::fs::write(
        s.run_dir.join("net-7.journal"),
        b"\x00\x9f garbage, not a journal\n",
    )
    .unwrap();

    let next = s.next_run();
    let first = next.net.recover().await;
    let undone = next.os().transcript();
    assert!(
        undone.iter().any(|l| l.contains("10.200.0.1/32"))
            && undone.last().is_some_and(|l| l.starts_with("delete link")),
        "the readable journal is replayed: {undone:?}"
    );
    assert!(!s.run_dir.join("net-7.journal").exists());
    assert_eq!(
        std::fs::read(s.run_dir.join("net-7.journal.unreadable")).unwrap(),
        b"\x00\x9f garbage, not a journal\n",
        "the unreadable journal is kept, under a name that says so"
    );
    assert!(
        first > 7,
        "sessions are numbered above every journal left: {first}"
    );
    // And it stays set aside at the next start too, without being replayed or renamed.
    let third = next.next_run();
    assert!(third.net.recover().await > 7);
    assert!(third.os().transcript().is_empty());
    assert!(s.run_dir.join("net-7.journal.unreadable").exists());
    std::mem::forget(third);
    std::mem::forget(next);
}

/// Session numbers restarted at 1 on every run, so a new session's journal was renamed over
/// `net-1.journal` that an earlier run could not finish undoing: its record was lost.
#[tokio::test(flavor = "current_thread")]
async fn journals_of_an_earlier_run_are_never_overwritten() {
    let s = Setup::new("overwrite");
    let (mut session, _) = s.net.prepare(&info()).await.unwrap();
    run_hooks(&mut session, &[Phase::Up, Phase::RouteUp]).await;
    drop(session); // the service dies with session 1 live

    // The next run cannot undo one change: that journal must stay until it is undone.
    let next = s.next_run();
    next.os()
        .fail_on("delete route 10.200.0.1/32", nix::libc::EIO);
    let first = next.net.recover().await;
    let journal = s.run_dir.join("net-1.journal");
    let kept = std::fs::read(&journal).expect("a journal that could not be replayed stays");
    assert!(first >= 2, "this run numbers its sessions above 1: {first}");

    // Even a session given number 1 again does not touch it.
    let refused = next.net.prepare(&info()).await;
    assert!(refused.is_err(), "a journal of that name exists");
    assert_eq!(std::fs::read(&journal).unwrap(), kept);
    let mut second = info();
    second.id = first;
    let (fresh, _) = next.net.prepare(&second).await.unwrap();
    fresh.cleanup().await;
    assert_eq!(std::fs::read(&journal).unwrap(), kept);

    // The run after that can undo it, and then the journal goes.
    let third = next.next_run();
    third.net.recover().await;
    assert!(third
        .os()
        .transcript()
        .iter()
        .any(|l| l.contains("10.200.0.1/32")));
    assert!(!journal.exists());
    std::mem::forget(third);
    std::mem::forget(next);
}

/// openvpn 2.7: the hook is also its `--dns-updown` command, openvpn is kept from trying
/// routes it cannot add, and the hook knows the version; a DCO build is told why DCO is off;
/// the user's own route-noexec reaches the hook.
#[tokio::test(flavor = "current_thread")]
async fn openvpn_2_7_gets_the_hook_as_dns_updown_and_route_noexec() {
    let s = Setup::new("args-2-7");
    let config = s.net.shared.config.clone();
    let b27 = Build {
        version: (2, 7, 8),
        iproute: false,
        dco: true,
    };
    let net = LinuxNetwork::with_os(Fake::new(&s.run_dir), config, Backend::Resolved, Some(b27));
    let mut i = info();
    i.user_args.push("--route-noexec".into());
    let (session, args) = net.prepare(&i).await.unwrap();
    let after = |opt: &str| {
        args.iter()
            .position(|a| a == opt)
            .map(|p| args[p + 1].clone())
    };
    assert_eq!(
        after("--dns-updown").as_deref(),
        Some("/usr/sbin/openvpnserv-hook")
    );
    assert!(args.contains(&"--route-noexec".to_owned()), "{args:?}");
    let setenv: Vec<(String, String)> = args
        .windows(3)
        .filter(|w| w[0] == "--setenv")
        .map(|w| (w[1].clone(), w[2].clone()))
        .collect();
    for want in [
        ("OPENVPNSERV_OPENVPN", "2.7"),
        ("OPENVPNSERV_ROUTE_NOEXEC", "1"),
        ("OPENVPNSERV_DCO_OFF", "1"),
        ("OPENVPNSERV_MODE", "env"),
    ] {
        assert!(
            setenv.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {setenv:?}"
        );
    }
    session.cleanup().await;
}
