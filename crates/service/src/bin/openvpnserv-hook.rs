//! `openvpnserv-hook`: the helper openvpn runs from its script hooks (and as `--iproute`)
//! under the Linux service; see `openvpnserv::linux::net::hook`. Under systemd it is also
//! the program of each session's unit (`--launch-openvpn`, `openvpnserv::linux::systemd`).

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    use openvpnserv::linux::systemd::{launcher_main, LAUNCH_ARG};
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Run by systemd as a session unit's program: become the session's openvpn.
    if args.first().map(String::as_str) == Some(LAUNCH_ARG) {
        return launcher_main(&args[1..]);
    }
    openvpnserv::linux::net::hook::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("openvpnserv-hook is part of the Linux service");
    std::process::ExitCode::from(2)
}
