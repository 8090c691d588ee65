//! What `iservice connect` asks the service to run, checked with the service's own option
//! splitter and policy (the same code the Linux service uses).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use iservice::connect::options::{
    build_options, free_loopback_port, generate_password, quote_arg, GUI_VERSION,
};
use iservice::connect::{LaunchPlan, PasswordSource};
use openvpnserv_policy::split::{command_line_to_argv, crt_args};
use zeroize::Zeroizing;

/// A config-path rule that accepts every path: only the options are under test here.
struct Inside;

impl openvpnserv_policy::options::ConfigPathCheck for Inside {
    fn check(&self, _dir: &str, path: &str) -> Option<String> {
        Some(path.to_owned())
    }
}

fn split_later(arg: &str) -> Vec<String> {
    // As a non-first token: the first token follows argv[0] rules.
    let mut argv = command_line_to_argv(&format!("--x {}", quote_arg(arg)));
    argv.remove(0);
    argv
}

#[test]
fn quoting_round_trips_through_both_windows_splitters() {
    for arg in [
        "plain",
        "with space",
        "",
        r"C:\Program Files\OpenVPN\config\",
        r#"quote"inside"#,
        r"ends with backslash\",
        r#"back\\slashes\" and "quotes""#,
        "tab\there",
        "ünïcödé ✓",
        r"\\server\share",
    ] {
        assert_eq!(split_later(arg), [arg.to_owned()], "{arg:?}");
        let (crt, open) = crt_args(&format!("--x {}", quote_arg(arg)));
        assert!(!open, "{arg:?}");
        assert_eq!(crt[1..], [arg.to_owned()], "{arg:?}");
    }
}

#[test]
fn options_are_what_the_gui_passes_and_pass_the_policy() {
    let mgmt = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40123);
    let file = PathBuf::from("/run/user/1000/iservice-x/management password");
    let options = build_options("my vpn.conf", &PasswordSource::File(file.clone()), mgmt);
    let argv = command_line_to_argv(&options);
    let mut want: Vec<String> = [
        "--config",
        "my vpn.conf",
        "--setenv",
        "IV_GUI_VER",
        GUI_VERSION,
        "--auth-retry",
        "interact",
        "--management",
        "127.0.0.1",
        "40123",
        file.to_str().unwrap(),
        "--management-query-passwords",
        "--management-hold",
    ]
    .map(String::from)
    .to_vec();
    if cfg!(windows) {
        want.extend(["--pull-filter", "ignore", "route-method"].map(String::from));
    }
    assert_eq!(argv, want);
    // Every option is on the service's whitelist for ordinary users.
    openvpnserv_policy::options::validate_linux(&options, "/etc/openvpn/client", &Inside)
        .expect("whitelisted");
    let stdin = build_options("a.ovpn", &PasswordSource::Stdin, mgmt);
    assert!(
        stdin.contains("--management 127.0.0.1 40123 stdin "),
        "{stdin}"
    );
}

#[test]
fn plan_uses_the_config_directory_and_the_bare_name() {
    let mgmt = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
    let password = Zeroizing::new("pw".to_owned());
    let (dir, config) = if cfg!(windows) {
        (
            r"C:\Program Files\OpenVPN\config",
            r"C:\Program Files\OpenVPN\config\work.conf",
        )
    } else {
        ("/etc/openvpn/client", "/etc/openvpn/client/work.conf")
    };
    let plan = LaunchPlan::new(
        Path::new(config),
        password.clone(),
        PasswordSource::Stdin,
        mgmt,
    )
    .unwrap();
    assert_eq!(plan.working_dir, dir);
    assert!(plan.options.starts_with("--config work.conf "));
    let message = plan.startup_message();
    assert_eq!(message.stdin, "pw\n");
    // Debug output never shows the password.
    assert!(!format!("{plan:?} {message:?}").contains("pw\\n"));
    let file = PasswordSource::File("/tmp/x/p".into());
    let plan = LaunchPlan::new(Path::new("relative.conf"), password, file, mgmt).unwrap();
    assert_eq!(plan.startup_message().stdin, "");
    assert_eq!(
        Path::new(&plan.working_dir),
        std::env::current_dir().unwrap()
    );
}

#[test]
fn passwords_are_random_alphanumeric() {
    let a = generate_password().unwrap();
    let b = generate_password().unwrap();
    assert_eq!(a.len(), 24);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(*a, *b);
}

#[test]
fn free_port_is_loopback_and_bindable() {
    let addr = free_loopback_port().unwrap();
    assert_eq!(*addr.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0);
    std::net::TcpListener::bind(addr).expect("released, so bindable again");
}
