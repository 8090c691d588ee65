//! The real network layer's registry side and helper runner under Wine (whose registry and
//! `CreateProcess` work; its IP Helper "2" functions and WFP do not, see spec §12).
#![cfg(windows)]

use std::time::Duration;

use openvpnserv::windows::net::RealNet;
use openvpnserv_core::windows::net::{Registry, WinNet};
use openvpnserv_core::windows::session::startup_cleanup;
use openvpnserv_testkit_win::harness::{exists, RegistryKey};

const BASE: &str = r"SOFTWARE\openvpnserv-tests\realnet";

#[test]
fn registry_values_keys_and_trees() {
    let _cleanup = RegistryKey::new(BASE, &[]);
    let mut net = RealNet;
    let key = format!(r"{BASE}\a\b");
    assert!(!net.key_exists(&key));
    assert_eq!(net.set_sz(&key, "SearchList", "x.example,y.example"), 0);
    assert!(net.key_exists(&key));
    assert_eq!(
        net.get_sz(&key, "SearchList").as_deref(),
        Some("x.example,y.example")
    );
    assert_eq!(
        net.set_multi_sz(&key, "Name", &[".a".into(), ".b".into()]),
        0
    );
    assert_eq!(net.get_sz(&key, "Name"), None, "REG_SZ only");
    assert_eq!(net.set_dword(&key, "Version", 2), 0);
    assert_eq!(net.delete_value(&key, "SearchList"), 0);
    assert_eq!(net.get_sz(&key, "SearchList"), None);
    assert_eq!(net.create_key(&format!(r"{BASE}\a\c")), 0);
    let mut subs = net.subkeys(&format!(r"{BASE}\a"));
    subs.sort();
    assert_eq!(subs, ["b", "c"]);
    assert_eq!(net.delete_tree(&format!(r"{BASE}\a")), 0);
    assert!(!exists(&format!(r"{BASE}\a")));
}

#[test]
fn startup_cleanup_removes_every_nrpt_rule_of_ours() {
    let base = r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
    let ours = RegistryKey::new(
        &format!(r"{base}\OpenVPNDNSRouting-4242"),
        &[("GenericDNSServers", "10.0.0.1".into())],
    );
    let exclude = RegistryKey::new(
        &format!(r"{base}\OpenVPNDNSRoutingX-00-4242"),
        &[("GenericDNSServers", "10.0.0.1".into())],
    );
    let other = RegistryKey::new(
        &format!(r"{base}\SomeoneElsesRule"),
        &[("GenericDNSServers", "10.0.0.1".into())],
    );
    assert!(startup_cleanup(&mut RealNet));
    assert!(!ours.exists() && !exclude.exists());
    assert!(other.exists());
}

#[test]
fn helpers_run_without_inheritance_and_report_exit_codes() {
    let mut net = RealNet;
    let cmd = format!(r"{}\cmd.exe", net.system_dir());
    assert_eq!(
        net.run_helper(&cmd, "cmd /c exit 7", Duration::from_secs(30)),
        7
    );
    assert_eq!(
        net.run_helper(r"C:\nowhere\netsh.exe", "netsh", Duration::from_secs(1)),
        3,
        "ERROR_PATH_NOT_FOUND"
    );
}

/// What the service logged in this test process, after `f` ran.
fn logged(f: impl FnOnce()) -> String {
    let sink = openvpnserv_testkit_win::harness::capture_logs("info");
    f();
    sink.text()
}

/// Every external command's line is logged with its outcome (upstream logs each one).
#[test]
fn helpers_log_each_command_line() {
    let mut net = RealNet;
    let cmd = format!(r"{}\cmd.exe", net.system_dir());
    let log = logged(|| {
        net.run_helper(&cmd, "cmd /c exit 0", Duration::from_secs(30));
        net.run_helper(&cmd, "cmd /c exit 7", Duration::from_secs(30));
        net.run_helper(
            r"C:\nowhere\netsh.exe",
            "netsh interface ip delete wins -1  all",
            Duration::from_secs(1),
        );
    });
    assert!(
        log.contains(&format!("\"{cmd} cmd /c exit 0\": completed")),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"{cmd} cmd /c exit 7\": exit status 7")),
        "{log}"
    );
    assert!(
        log.contains(
            r#"could not run "C:\nowhere\netsh.exe netsh interface ip delete wins -1  all""#
        ),
        "{log}"
    );
}

#[test]
fn unknown_alias_is_an_error_not_a_crash() {
    let mut net = RealNet;
    assert!(net.alias_to_luid("no such adapter").is_err());
    assert!(net.interface_guid("no such adapter").is_err());
}
