//! A minimal client for the end-to-end tests, run as a test user.
//!
//! `probe SOCKET LINGER_MS leave|stay startup DIR OPTIONS STDIN`
//! `probe SOCKET LINGER_MS leave|stay raw HEX`
//! `probe SOCKET LINGER_MS leave|stay nothing`
//! `probe SOCKET DURATION_MS - flood SILENT THREADS`: hold `SILENT` silent connections and
//! connect-and-close from `THREADS` threads for `DURATION_MS`; prints `FLOODED <count>`
//!
//! Prints each reply as `REPLY [ms, "text"]`, then `CLOSED` when the service closed the
//! connection or `QUIET` when `LINGER_MS` passed without anything. With `leave` it
//! disconnects right after the first reply.

use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};
use openvpnserv_proto::StartupMessage;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, linger, leave, mode) = (
        &args[1],
        args[2].parse::<u16>().unwrap_or(3000),
        args[3] == "leave",
        &args[4],
    );
    if mode == "flood" {
        flood(
            path,
            linger,
            args[5].parse().unwrap_or(0),
            args[6].parse().unwrap_or(1),
        );
        return;
    }
    let fd = connect_to(path).expect("connect");
    let payload = match mode.as_str() {
        "startup" => {
            Some(StartupMessage::new(args[5].clone(), args[6].clone(), args[7].clone()).encode())
        }
        "raw" => Some(
            (0..args[5].len() / 2)
                .map(|i| u8::from_str_radix(&args[5][2 * i..2 * i + 2], 16).expect("hex"))
                .collect(),
        ),
        _ => None,
    };
    let started = Instant::now();
    if let Some(bytes) = payload {
        // The service may have answered and closed already (a session limit); read anyway.
        if let Err(e) = send(fd.as_raw_fd(), &bytes, MsgFlags::empty()) {
            println!("SENDFAIL {e}");
        }
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let mut pfd = [PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            PollFlags::POLLIN,
        )];
        if poll(&mut pfd, PollTimeout::from(linger)).expect("poll") == 0 {
            println!("QUIET");
            return;
        }
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap_or_default();
        if n == 0 {
            println!("CLOSED");
            return;
        }
        let units: Vec<u16> = buf[..n]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        let text = String::from_utf16_lossy(&units);
        let ms = started.elapsed().as_millis() as u64;
        println!(
            "REPLY {}",
            serde_json::to_string(&(ms, text)).expect("json")
        );
        if leave {
            return;
        }
    }
}

fn connect_to(path: &str) -> Option<std::os::fd::OwnedFd> {
    openvpnserv_e2e::service::connect_seqpacket(path).ok()
}

/// Silent connections plus a connect-and-close flood, as an attacker would.
fn flood(path: &str, duration_ms: u16, silent: usize, threads: usize) {
    let held: Vec<_> = (0..silent).filter_map(|_| connect_to(path)).collect();
    println!("SILENT {}", held.len());
    let deadline = Instant::now() + std::time::Duration::from_millis(duration_ms.into());
    let count: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        drop(connect_to(path));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    println!("FLOODED {count}");
    drop(held);
}
