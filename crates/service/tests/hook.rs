//! The `openvpnserv-hook` binary against a test harness standing in for the service: a
//! seqpacket socketpair whose other end the hook gets as its channel fd, served by a thread
//! that records each request and answers it. No root needed.
#![cfg(target_os = "linux")]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::JoinHandle;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use openvpnserv_core::linux::iproute::describe;
use openvpnserv_proto::channel::{Ack, Codec};
use openvpnserv_proto::codes::ERROR_ACCESS_DENIED;

const HOOK: &str = env!("CARGO_BIN_EXE_openvpnserv-hook");

/// What the harness saw: each request (as `ip` words), and whether `marker` existed then.
type Seen = Vec<(String, bool)>;

/// Serves the channel: acks every request with 0, except those whose description contains
/// `refuse`; stops at end of file.
fn serve(ours: OwnedFd, refuse: &'static str, marker: PathBuf) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let codec = Codec::NATIVE;
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let n = recv(ours.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
            if n == 0 {
                return seen;
            }
            let env = codec.decode_request(&buf[..n]).expect("a valid request");
            let what = describe(&env.request);
            let code = if !refuse.is_empty() && what.contains(refuse) {
                ERROR_ACCESS_DENIED
            } else {
                0
            };
            seen.push((what, marker.exists()));
            let ack = codec.encode_ack(Ack {
                message_id: env.message_id,
                error_number: code,
            });
            send(ours.as_raw_fd(), &ack, MsgFlags::empty()).expect("send ack");
        }
    })
}

struct Run {
    output: Output,
    seen: Seen,
}

/// Runs the hook with `args` and exactly `env` (openvpn gives scripts no PATH).
fn run_hook(args: &[&str], env: &[(&str, &str)], refuse: &'static str, marker: PathBuf) -> Run {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    // The hook's end must survive exec, like openvpn's fd 3.
    fcntl(&theirs, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear CLOEXEC");
    let server = serve(ours, refuse, marker);
    let fd = theirs.as_raw_fd().to_string();
    let output = Command::new(HOOK)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env("OPENVPNSERV_CHANNEL_FD", &fd)
        .output()
        .expect("run the hook");
    drop(theirs);
    let seen = server.join().expect("server thread");
    Run { output, seen }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ovs-hook-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn requests(seen: &Seen) -> Vec<&str> {
    seen.iter().map(|(r, _)| r.as_str()).collect()
}

#[test]
fn up_hook_sends_the_environment_then_runs_the_configs_own_up_script() {
    let dir = temp_dir("up");
    let out = dir.join("user-up.out");
    let config = dir.join("client.conf");
    std::fs::write(
        &config,
        format!(
            "client\nup \"/bin/sh -c 'echo $script_type $dev $0 $1 > {}'\"\n",
            out.display()
        ),
    )
    .unwrap();
    let env = [
        ("script_type", "up"),
        ("dev", "tun7"),
        ("tun_mtu", "1400"),
        ("ifconfig_local", "10.8.0.2"),
        ("ifconfig_netmask", "255.255.255.0"),
        ("foreign_option_1", "dhcp-option DNS 10.8.0.53"),
        ("config", config.to_str().unwrap()),
    ];
    let run = run_hook(
        &[
            "up",
            "tun7",
            "1400",
            "0",
            "10.8.0.2",
            "255.255.255.0",
            "init",
        ],
        &env,
        "",
        dir.join("none"),
    );
    assert!(run.output.status.success(), "{:?}", run.output);
    assert_eq!(
        requests(&run.seen),
        [
            "link set dev tun7 up mtu 1400",
            "addr add dev tun7 10.8.0.2/24",
            "dns add dev tun7 family 4 servers [10.8.0.53] domains []",
        ]
    );
    // The user's script got the same environment and openvpn's arguments.
    let text = std::fs::read_to_string(&out).expect("the config's up script ran");
    assert_eq!(text.trim(), "up tun7 tun7 1400");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_address_in_up_fails_the_hook() {
    let env = [
        ("dev", "tun7"),
        ("ifconfig_local", "10.8.0.2"),
        ("ifconfig_netmask", "255.255.255.0"),
    ];
    let dir = temp_dir("refused");
    let run = run_hook(&["up"], &env, "addr add", dir.join("none"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!run.output.status.success());
    let err = String::from_utf8_lossy(&run.output.stderr);
    assert!(
        err.contains("addr add dev tun7 10.8.0.2/24: refused with 5"),
        "{err}"
    );
}

#[test]
fn route_pre_down_runs_the_configs_script_before_the_deletes() {
    let dir = temp_dir("predown");
    let marker = dir.join("marker");
    let config = dir.join("client.conf");
    std::fs::write(
        &config,
        format!("route-pre-down \"/bin/touch {}\"\n", marker.display()),
    )
    .unwrap();
    let env = [
        ("dev", "tun7"),
        ("route_vpn_gateway", "10.8.0.1"),
        ("route_network_1", "10.9.0.0"),
        ("route_netmask_1", "255.255.255.0"),
        ("route_gateway_1", "10.8.0.1"),
        ("config", config.to_str().unwrap()),
    ];
    let run = run_hook(&["route-pre-down"], &env, "", marker.clone());
    assert!(run.output.status.success(), "{:?}", run.output);
    assert_eq!(run.seen, [("route del 10.9.0.0/24".to_owned(), true)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn iproute_mode_turns_ip_commands_into_requests() {
    let dir = temp_dir("iproute");
    let marker = dir.join("none");
    let run = run_hook(
        &[
            "addr",
            "add",
            "dev",
            "tun7",
            "local",
            "10.10.0.6",
            "peer",
            "10.10.0.5",
        ],
        &[],
        "",
        marker.clone(),
    );
    assert!(run.output.status.success(), "{:?}", run.output);
    assert_eq!(
        requests(&run.seen),
        [
            "addr add dev tun7 10.10.0.6/32",
            "route add 10.10.0.5/32 dev tun7"
        ]
    );
    // A refused route makes the "ip" command fail, as a failed ip(8) would.
    let run = run_hook(
        &["route", "add", "10.77.0.0/16", "via", "10.200.0.1"],
        &[],
        "route add",
        marker,
    );
    assert!(!run.output.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_channel_the_hook_says_what_is_wrong() {
    let out = Command::new(HOOK)
        .args(["up"])
        .env_clear()
        .env("dev", "tun7")
        .env("OPENVPNSERV_CHANNEL_FD", "987")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fd 987") && err.contains("openvpnserv"),
        "{err}"
    );
}
