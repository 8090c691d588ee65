//! A control-socket client for the end-to-end tests, run as a test user:
//! `control-probe SOCKET REQUEST_JSON...` sends each request on one connection and prints
//! each response as `RESPONSE <json>` (or `CLOSED` when the service closed the connection,
//! `TIMEOUT` when it did not answer within 10 s).
//!
//! `control-probe SOCKET --hold N MS [REQUEST_JSON]` opens `N` connections, sends the
//! request on each (if given), keeps them for `MS` milliseconds, and prints `HELD <count>`,
//! each first answer (`RESPONSE`, or `CLOSED` when the service closed without one), and
//! `CLOSED_AFTER <count>`: how many the service had closed by then.

use std::os::fd::AsRawFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};
use openvpnserv_proto::control::MAX_RESPONSE;

/// What one wait for a response gave.
enum Got {
    Response(String),
    Closed,
    Timeout,
}

fn read_one(fd: &std::os::fd::OwnedFd, timeout_ms: u16) -> Got {
    let mut pfd = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
    if poll(&mut pfd, PollTimeout::from(timeout_ms)).unwrap_or(0) == 0 {
        return Got::Timeout;
    }
    let mut buf = vec![0u8; MAX_RESPONSE + 1];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap_or_default();
    if n == 0 {
        return Got::Closed;
    }
    Got::Response(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    if args.get(2).map(String::as_str) == Some("--hold") {
        let n: usize = args[3].parse().unwrap_or(1);
        let ms: u16 = args[4].parse().unwrap_or(1000);
        let held: Vec<_> = (0..n)
            .filter_map(|_| openvpnserv_e2e::service::connect_seqpacket(path).ok())
            .collect();
        if let Some(request) = args.get(5) {
            for fd in &held {
                let _ = send(fd.as_raw_fd(), request.as_bytes(), MsgFlags::MSG_NOSIGNAL);
            }
        }
        println!("HELD {}", held.len());
        for fd in &held {
            match read_one(fd, 1000) {
                Got::Response(text) => println!("RESPONSE {text}"),
                Got::Closed => println!("CLOSED"),
                Got::Timeout => {}
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(ms.into()));
        let closed = held
            .iter()
            .filter(|fd| matches!(read_one(fd, 0), Got::Closed))
            .count();
        println!("CLOSED_AFTER {closed}");
        return;
    }
    let fd = match openvpnserv_e2e::service::connect_seqpacket(path) {
        Ok(fd) => fd,
        Err(e) => {
            println!("CONNECTFAIL {e}");
            return;
        }
    };
    for request in &args[2..] {
        if let Err(e) = send(fd.as_raw_fd(), request.as_bytes(), MsgFlags::MSG_NOSIGNAL) {
            println!("SENDFAIL {e}");
            return;
        }
        match read_one(&fd, 10_000) {
            Got::Timeout => {
                println!("TIMEOUT");
                return;
            }
            Got::Closed => {
                println!("CLOSED");
                return;
            }
            Got::Response(text) => println!("RESPONSE {text}"),
        }
    }
}
