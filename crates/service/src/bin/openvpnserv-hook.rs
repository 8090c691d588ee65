//! `openvpnserv-hook`: the helper openvpn runs from its script hooks (and as `--iproute`)
//! under the Linux service; see `openvpnserv::linux::net::hook`.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    openvpnserv::linux::net::hook::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("openvpnserv-hook is part of the Linux service");
    std::process::ExitCode::from(2)
}
