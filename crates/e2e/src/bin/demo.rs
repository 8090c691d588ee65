//! The main job, shown: an unprivileged user gets a real VPN tunnel through the service.
//!
//! Two network namespaces joined by a veth pair: a real openvpn 2.6 server in one; the service
//! (with its real network layer) and an ordinary user in the other. The user runs
//! `iservice connect`; the service starts stock openvpn as that user, creates the user's tun
//! and applies the addresses and routes openvpn asks for. The demo pings through the tunnel,
//! disconnects with Ctrl-C, and checks that the namespace's network is exactly as before.
//! Run as root (`scripts/demo.sh`); everything it creates is removed at the end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openvpnserv_e2e::netns::Topology;
use openvpnserv_e2e::openvpn::{client_config, Pushes, Server};
use openvpnserv_e2e::service::{binary, in_namespace, Service, TestDir};
use openvpnserv_e2e::users::TestUser;

fn say(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

fn show(label: &str, text: &str) {
    println!("   \x1b[2m$ {label}\x1b[0m");
    for line in text.lines() {
        println!("     {line}");
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "demo: run as root (it creates network namespaces, a test user and a tun device)"
        );
        std::process::exit(2);
    }
    openvpnserv_e2e::users::remove_leftovers();
    let dir = TestDir::new("demo");

    say("Two network namespaces joined by a veth pair; a real openvpn server in one");
    let topo = Topology::new(false);
    let server = Server::start(&topo.server, &dir, &Pushes::default());
    server.wait_for("Initialization Sequence Completed", Duration::from_secs(20));
    println!(
        "   server {} at 10.200.0.1, pushing 10.9.0.0/24 and fd00:9::/64",
        topo.server.name
    );

    say("An ordinary user, and a config the administrator put in config_dir");
    let user = TestUser::create(&[]);
    let config_dir = dir.mkdir("config", 0o755);
    let logs = dir.mkdir("logs", 0o777);
    let hook = dir.join("openvpnserv-hook");
    std::fs::copy(binary("openvpnserv-hook"), &hook).expect("copy the hook");
    let config = client_config(
        &config_dir,
        "demo.ovpn",
        &server,
        user.uid,
        &logs.join("demo.log"),
        "",
    );
    println!(
        "   user {} (uid {}), no special groups; config {}",
        user.name,
        user.uid,
        config.display()
    );

    say("The service, running as root in the client namespace");
    let instance = format!("demo{}", std::process::id());
    // $OPENVPN chooses another openvpn (scripts/openvpn27.sh gives Debian 13's 2.7).
    let settings = format!(
        "exe_path = \"{}\"\nconfig_dir = \"{}\"\nhook_path = \"{}\"\ndns_backend = \"none\"\n",
        openvpnserv_e2e::openvpn::client_binary().display(),
        config_dir.display(),
        hook.display()
    );
    let log = dir.join(&format!("service-{instance}.log"));
    let service = Service::start_with(&dir, &settings, &instance, |cmd| {
        in_namespace(&topo.client, &cmd, &log, "info")
    });
    println!("   listening on {}", service.socket.display());
    let before = topo.client.snapshot();

    let client = connect(&topo, &user, &dir, &config, &instance);
    let tun = wait_for_tunnel(&topo, &service);
    show_tunnel(&topo, &tun, &user);
    disconnect(client);
    check_nothing_left(&topo, &service, &before);
    println!("\nDone; removing the namespaces, the user and the files.");
}

/// A running `iservice` and the threads echoing its output.
struct Client {
    child: std::process::Child,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Runs `iservice connect` as `user` inside the client namespace.
fn connect(
    topo: &Topology,
    user: &TestUser,
    dir: &TestDir,
    config: &std::path::Path,
    instance: &str,
) -> Client {
    say(&format!("As {}: iservice connect demo.ovpn", user.name));
    let iservice = dir.join("iservice");
    std::fs::copy(binary("iservice"), &iservice).expect("copy iservice");
    let mut cmd = topo.client.command("setpriv");
    cmd.args([
        "--reuid",
        &user.uid.to_string(),
        "--regid",
        &user.gid.to_string(),
        "--init-groups",
    ])
    .arg(&iservice)
    .args(["connect"])
    .arg(config)
    .args(["-instance", "interactive", instance])
    .env("HOME", &dir.path)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run iservice");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let echo = |stream: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("   \x1b[36miservice |\x1b[0m {line}");
            }
        })
    };
    Client {
        child,
        readers: vec![echo(Box::new(stdout)), echo(Box::new(stderr))],
    }
}

/// Waits until the session's tun has its address and the pushed route.
fn wait_for_tunnel(topo: &Topology, service: &Service) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let tun = loop {
        let links = topo.client.ip(&["-o", "link", "show"]);
        let tun = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .find(|n| n.starts_with("ovs"));
        if let Some(tun) = tun {
            if topo
                .client
                .ip(&["addr", "show", "dev", &tun])
                .contains("10.8.0.")
                && topo.client.ip(&["route"]).contains("10.9.0.0/24")
            {
                break tun;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel did not come up; service log:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(500));
    tun
}

/// Shows the tun, the routes, pings through the tunnel and the openvpn processes.
fn show_tunnel(topo: &Topology, tun: &str, user: &TestUser) {
    say(&format!(
        "The tunnel: {tun}, owned by {}, configured by the service",
        user.name
    ));
    show(
        &format!("ip addr show dev {tun}"),
        &topo.client.ip(&["addr", "show", "dev", tun]),
    );
    show(
        "ip route; ip -6 route",
        &(topo.client.ip(&["route"]) + &topo.client.ip(&["-6", "route"])),
    );
    show(
        "ip route get 10.9.0.1",
        &topo.client.ip(&["route", "get", "10.9.0.1"]),
    );
    let before_tx = topo.client.tx_packets(tun);
    let ping = topo
        .client
        .exec("ping", &["-n", "-c", "3", "-i", "0.2", "10.9.0.1"]);
    show("ping -c 3 10.9.0.1   (a host behind the VPN server)", &ping);
    println!(
        "     packets sent through {tun}: {}",
        topo.client.tx_packets(tun) - before_tx
    );
    let ping6 = topo
        .client
        .exec("ping", &["-n", "-c", "2", "-i", "0.2", "fd00:9::1"]);
    show("ping -c 2 fd00:9::1", &ping6);
    let ps = Command::new("ps")
        .args(["-o", "user,pid,args", "-C", "openvpn"])
        .output()
        .expect("ps");
    show(
        "ps -C openvpn   (stock openvpn, running as the user)",
        &String::from_utf8_lossy(&ps.stdout),
    );
}

/// Ctrl-C (SIGINT) to `iservice`, as a user at the terminal would.
fn disconnect(mut client: Client) {
    say("Ctrl-C in iservice: a clean disconnect");
    let _ = kill(Pid::from_raw(client.child.id() as i32), Signal::SIGINT);
    let status = client.child.wait().expect("iservice exits");
    for r in client.readers {
        let _ = r.join();
    }
    println!("   iservice exited with {status} (0 = connected, then disconnected)");
}

/// The service undid the session and the namespace's network is as it was.
fn check_nothing_left(topo: &Topology, service: &Service, before: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !service.log().contains("network changes undone") {
        assert!(
            Instant::now() < deadline,
            "the session was not undone:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = topo.client.snapshot();
    show(
        "ip link; ip route   (after)",
        &(topo.client.ip(&["-o", "link", "show"]) + &topo.client.ip(&["route"])),
    );
    if before == after.as_str() {
        say("The client namespace's network is exactly as it was before: nothing left behind");
    } else {
        say("Something was left behind:");
        println!("before:\n{before}\nafter:\n{after}");
        std::process::exit(1);
    }
    let log = service.log();
    let decisions: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("allowed")
                || l.contains("openvpn started")
                || l.contains("undone")
                || l.contains("session ended")
        })
        .collect();
    show("the service's log of the session", &decisions.join("\n"));
}
