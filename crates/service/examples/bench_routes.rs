//! Route throughput, side by side in one run (issue 4's benchmark; `scripts/bench-routes.sh`
//! runs it as root in a fresh network namespace):
//!
//! 1. over the channel: a client thread sends openvpn-msg `add_route` requests (as openvpn's
//!    hook does, with the hook's own sender: via the VPN gateway, no interface, a window of
//!    requests ahead of the acks) on a seqpacket socket; the real session (policy, journal,
//!    rtnetlink) serves them in a loop like the service's; then the deletes;
//! 2. the same session's clean-up with N live routes (undo, as at disconnect);
//! 3. `ip route add`/`del`, one process per route;
//! 4. `ip -batch -`, one process for all adds and one for all deletes.
//!
//! `bench_routes [N]` (default 10000). Prints a Markdown table.

#[cfg(target_os = "linux")]
mod bench {
    use std::fmt::Write as _;
    use std::io::Write;
    use std::net::{IpAddr, Ipv4Addr};
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use openvpnserv::linux::net::hook::Channel;
    use openvpnserv::linux::net::{LinuxNetwork, NetConfig};
    use openvpnserv::linux::net::{Network, NetworkSession, SessionInfo, SessionUser};
    use openvpnserv_core::linux::iproute::{address, iface, mtu, route};
    use openvpnserv_proto::channel::{Codec, Request};
    use openvpnserv_settings::DnsBackend;
    use tokio_seqpacket::UnixSeqpacket;

    static REFUSALS_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);

    fn prefix(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (i << 8))
    }

    fn requests(n: u32, add: bool) -> Vec<Request> {
        let none = iface("").expect("empty name");
        (0..n)
            .map(|i| {
                route(
                    add,
                    IpAddr::V4(prefix(i)),
                    24,
                    add.then_some(GATEWAY.into()),
                    &none,
                    None,
                )
            })
            .collect()
    }

    /// Sends the requests as the hook does (its own code, a window of requests ahead of the
    /// acks); returns the time taken.
    fn client(fd: &OwnedFd, requests: &[Request]) -> Duration {
        let channel = Channel::new(fd.as_fd());
        let start = Instant::now();
        let refused = channel.send_all(requests).expect("channel");
        let t = start.elapsed();
        assert!(
            refused.is_empty() || REFUSALS_OK.load(std::sync::atomic::Ordering::Relaxed),
            "{} requests refused",
            refused.len()
        );
        t
    }

    /// Serves the channel until the client closes it.
    async fn serve<S: NetworkSession>(channel: &UnixSeqpacket, session: &mut S) {
        let codec = Codec::NATIVE;
        let mut buf = vec![0u8; codec.max_request_size() + 1];
        loop {
            let n = match channel.recv(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let env = codec.decode_request(&buf[..n]).expect("decode");
            let code = session.handle(env.request).await;
            let ack = openvpnserv_proto::channel::Ack {
                message_id: env.message_id,
                error_number: code,
            };
            if channel.send(&codec.encode_ack(ack)).await.is_err() {
                return;
            }
        }
    }

    /// Runs `messages` through the session over a fresh channel; returns the client's time.
    async fn over_channel<S: NetworkSession>(session: &mut S, messages: Vec<Request>) -> Duration {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        nix::fcntl::fcntl(
            &ours,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("nonblocking");
        let channel = UnixSeqpacket::try_from(ours).expect("channel");
        let client = std::thread::spawn(move || {
            let t = client(&theirs, &messages);
            drop(theirs);
            t
        });
        serve(&channel, session).await;
        client.join().expect("client thread")
    }

    /// Like [`over_channel`] but tolerates refusals (for the no-op breakdown).
    async fn over_channel_any<S: NetworkSession>(
        session: &mut S,
        messages: Vec<Request>,
    ) -> Duration {
        REFUSALS_OK.store(true, std::sync::atomic::Ordering::Relaxed);
        let t = over_channel(session, messages).await;
        REFUSALS_OK.store(false, std::sync::atomic::Ordering::Relaxed);
        t
    }

    /// N route adds and deletes straight through rtnetlink on a tun made with ip(8).
    async fn raw_rtnetlink(n: u32) -> Duration {
        ip(&["tuntap", "add", "dev", "bench1", "mode", "tun"]);
        ip(&["link", "set", "bench1", "up"]);
        ip(&["addr", "add", "10.8.0.2/16", "dev", "bench1"]);
        let rtnl = openvpnserv::linux::net::Rtnl::connect().expect("netlink");
        let oif = rtnl
            .link_index("bench1")
            .await
            .expect("index")
            .expect("bench1");
        let specs: Vec<_> = (0..n)
            .map(|i| openvpnserv_core::linux::journal::RouteSpec {
                dst: IpAddr::V4(prefix(i)),
                prefix_len: 24,
                gateway: Some(GATEWAY.into()),
                oif,
                dev: "bench1".into(),
                metric: None,
            })
            .collect();
        let start = Instant::now();
        for r in &specs {
            rtnl.add_route(r).await.expect("add");
        }
        for r in &specs {
            rtnl.del_route(r).await.expect("del");
        }
        let t = start.elapsed();
        ip(&["link", "del", "bench1"]);
        t
    }

    fn ip(args: &[&str]) {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {} failed", args.join(" "));
    }

    fn ip_per_route(n: u32, verb: &str) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            let dst = format!("{}/24", prefix(i));
            if verb == "add" {
                ip(&["route", "add", &dst, "via", "10.8.0.1"]);
            } else {
                ip(&["route", "del", &dst]);
            }
        }
        start.elapsed()
    }

    fn ip_batch(n: u32, verb: &str) -> Duration {
        let mut text = String::new();
        for i in 0..n {
            let via = if verb == "add" { " via 10.8.0.1" } else { "" };
            let _ = writeln!(text, "route {verb} {}/24{via}", prefix(i));
        }
        let start = Instant::now();
        let mut child = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("ip -batch");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success(), "ip -batch failed");
        start.elapsed()
    }

    fn rate(ops: u32, d: Duration) -> f64 {
        f64::from(ops) / d.as_secs_f64()
    }

    pub(crate) fn main() {
        let n: u32 = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(10_000);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let run_dir = PathBuf::from(format!("/tmp/ovs-bench-{}", std::process::id()));
        let (add, del, refill, cleanup, noop, raw) = rt.block_on(async {
            let net = LinuxNetwork::new(NetConfig {
                instance: "bench".into(),
                run_dir: run_dir.clone(),
                device_dir: run_dir.join("dev"),
                hook_path: "/nonexistent/openvpnserv-hook".into(),
                openvpn: "/usr/sbin/openvpn".into(),
                dns_backend: DnsBackend::None,
                resolv_conf: "/etc/resolv.conf".into(),
            })
            .await
            .expect("network layer");
            let info = SessionInfo {
                id: 1,
                user: SessionUser {
                    uid: 65534,
                    gid: 65534,
                    name: "nobody".into(),
                },
                user_args: Vec::new(),
            };
            let (mut session, args) = net.prepare(&info).await.expect("prepare");
            let tun = args[1].clone();
            let dev = iface(&tun).expect("tun name");
            for r in [
                mtu(&dev, false, 1500),
                address(true, IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2)), 16, &dev),
            ] {
                assert_eq!(session.handle(r).await, 0, "setting up the tun");
            }
            let add = over_channel(&mut session, requests(n, true)).await;
            let del = over_channel(&mut session, requests(n, false)).await;
            let refill = over_channel(&mut session, requests(n, true)).await;
            let start = Instant::now();
            session.cleanup().await;
            let cleanup = start.elapsed();
            // Breakdown: the channel alone (every request refused at once, no OS call) and
            // rtnetlink alone (no channel, no policy, no journal).
            let mut nothing = openvpnserv::linux::net::NoNetwork;
            let noop = over_channel_any(&mut nothing, requests(n, true)).await;
            let raw = raw_rtnetlink(n).await;
            (add, del, refill, cleanup, noop, raw)
        });
        let _ = std::fs::remove_dir_all(&run_dir);

        // The same routes with ip(8), on a tun of the same shape.
        ip(&["tuntap", "add", "dev", "bench0", "mode", "tun"]);
        ip(&["link", "set", "bench0", "up"]);
        ip(&["addr", "add", "10.8.0.2/16", "dev", "bench0"]);
        let exec_add = ip_per_route(n, "add");
        let exec_del = ip_per_route(n, "del");
        let batch_add = ip_batch(n, "add");
        let batch_del = ip_batch(n, "del");
        ip(&["link", "del", "bench0"]);

        let channel_rate = rate(2 * n, add + del);
        let exec_rate = rate(2 * n, exec_add + exec_del);
        let batch_rate = rate(2 * n, batch_add + batch_del);
        println!(
            "| method ({n} routes) | add | delete | add+delete ops/s | vs one exec per route |"
        );
        println!("|---|---|---|---|---|");
        for (name, a, d, r) in [
            (
                "over the channel (policy + journal + rtnetlink)",
                add,
                del,
                channel_rate,
            ),
            (
                "`ip route add/del`, one exec per route",
                exec_add,
                exec_del,
                exec_rate,
            ),
            ("`ip -batch -`", batch_add, batch_del, batch_rate),
        ] {
            println!(
                "| {name} | {:.3} s | {:.3} s | {r:.0} | {:.1}× |",
                a.as_secs_f64(),
                d.as_secs_f64(),
                r / exec_rate
            );
        }
        println!();
        println!(
            "Over the channel: {n} routes applied in {:.3} s; a session with {n} routes cleaned up in {:.3} s.",
            refill.as_secs_f64(),
            cleanup.as_secs_f64()
        );
        println!(
            "Breakdown: the channel alone (no-op handler) {:.1} µs per request; rtnetlink alone {:.1} µs per route operation.",
            noop.as_secs_f64() * 1e6 / f64::from(n),
            raw.as_secs_f64() * 1e6 / f64::from(2 * n)
        );
    }
}

#[cfg(target_os = "linux")]
fn main() {
    bench::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("bench_routes measures the Linux service");
}
