//! The management port's owner on Windows (run under Wine here).
#![cfg(windows)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use iservice::connect::owner::{management_owner, windows::find, Owner};

#[test]
#[ignore = "Wine 8 reports owning PID 0 for every TCP listener, so the owner is unknown there"]
fn own_listener_is_ours_and_nobody_elses() {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let std::net::SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
        panic!()
    };
    assert_eq!(management_owner(std::process::id(), addr), Owner::Verified);
    assert_eq!(management_owner(std::process::id() + 1, addr), Owner::Other);
    drop(listener);
    assert_eq!(management_owner(std::process::id(), addr), Owner::Other);
}

#[test]
fn rows_are_read_in_network_byte_order() {
    let addr = u32::from_ne_bytes([127, 0, 0, 1]);
    let port = |p: u16| u32::from(p.to_be());
    let table = [
        2,
        2,
        addr,
        port(40000),
        0,
        0,
        111,
        2,
        addr,
        port(40001),
        0,
        0,
        222,
        9,
        9,
        9,
    ];
    let at = |p| SocketAddrV4::new(Ipv4Addr::LOCALHOST, p);
    assert_eq!(find(&table, at(40000)), Some(111));
    assert_eq!(find(&table, at(40001)), Some(222));
    assert_eq!(find(&table, at(40002)), None);
    assert_eq!(find(&[], at(1)), None);
    assert_eq!(
        find(&[5, 1, 2], at(1)),
        None,
        "a short table is not read past its end"
    );
}

/// PID 0 (what Wine reports for every listener) names no process: the owner is unknown,
/// which the client reports as a warning instead of refusing openvpn.
#[test]
fn pid_zero_is_unknown() {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let std::net::SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
        panic!()
    };
    match management_owner(std::process::id(), addr) {
        // Real Windows.
        Owner::Verified => {}
        // Wine.
        Owner::Unknown(why) => assert!(why.contains("did not name"), "{why}"),
        Owner::Other => panic!("our own listener is not someone else's"),
    }
}
