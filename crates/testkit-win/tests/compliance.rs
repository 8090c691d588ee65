//! The compliance stage (`scripts/compliance.sh`, stage `compliance` of
//! `scripts/test-all.sh`): every case of `openvpnserv_testkit_win::compliance::cases`
//! against upstream's `openvpnserv.exe` and against ours, both real SCM services in this Wine
//! prefix, compared byte for byte. A difference must be a row of the table in
//! `docs/WINDOWS.md`; any other fails the test.
//!
//! `OVS_UPSTREAM` names upstream's builds, `version=path;…` (Linux paths, built by the
//! script from Debian's source packages, never committed).
#![cfg(windows)]

use openvpnserv_proto::channel::Revision;
use openvpnserv_testkit_win::compliance::{self, cases, diff, documenting, Service};
use openvpnserv_testkit_win::harness::{stamp_version, wine_path, WorkDir};

const OURS: &str = env!("CARGO_BIN_EXE_openvpnserv-nogroups");
const FAKE: &str = env!("CARGO_BIN_EXE_fake-openvpn-win");
const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/WINDOWS.md");

#[test]
#[ignore = "needs upstream's openvpnserv.exe, which scripts/compliance.sh builds (OVS_UPSTREAM)"]
fn upstream_and_ours_answer_every_case_alike() {
    let spec = std::env::var("OVS_UPSTREAM").expect("OVS_UPSTREAM=version=path;…");
    let table = std::fs::read_to_string(wine_path(TABLE)).expect("read docs/WINDOWS.md");
    let rows = compliance::documented(&table);
    assert!(
        !rows.is_empty(),
        "no table of differences in docs/WINDOWS.md"
    );
    let bin = WorkDir::new("compliance-bin");
    let (mut compared, mut documented, mut failures) = (0, 0, Vec::new());
    let mut used = Vec::new();
    for entry in spec.split(';').filter(|e| !e.is_empty()) {
        let (version, exe) = entry.split_once('=').expect("version=path");
        assert!(compliance::exists(exe), "{exe} is missing");
        let minor: u16 = version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap();
        // Both services start the same openvpn.exe, which says it is this version, so ours
        // (msg_protocol = auto) speaks the numbering upstream's version speaks.
        let openvpn = bin.path().join(format!("openvpn-{version}.exe"));
        stamp_version(std::path::Path::new(FAKE), &openvpn, 2, minor);
        let openvpn = openvpn.to_string_lossy().into_owned();
        let revision = if minor < 7 {
            Revision::V26
        } else {
            Revision::V27
        };
        let theirs = Service::start(&format!("upstream {version}"), "$cmpup", exe, &openvpn);
        let ours = Service::start("ours", "$cmpours", OURS, &openvpn);
        for case in cases(revision) {
            let a = theirs.observe(&case);
            let b = ours.observe(&case);
            compared += 1;
            if a == b {
                continue;
            }
            if let Some(row) = documenting(&rows, version, &case.name, &a, &b) {
                documented += 1;
                used.push(row.clone());
                println!(
                    "documented difference {version} {} (row {} {}):\n{}",
                    case.name,
                    row.version,
                    row.case,
                    diff(&a, &b)
                );
            } else {
                failures.push(format!(
                    "{version} {}: not in the table of docs/WINDOWS.md\n{}upstream saw:\n{a}ours saw:\n{b}",
                    case.name,
                    diff(&a, &b)
                ));
            }
        }
    }
    let stale: Vec<String> = rows
        .iter()
        .filter(|r| !used.contains(r))
        .map(|r| format!("{} {}", r.version, r.case))
        .collect();
    println!(
        "compliance: {compared} cases compared, {documented} documented differences, {} undocumented",
        failures.len()
    );
    if !stale.is_empty() {
        println!(
            "rows of the table no case needed (this run): {}",
            stale.join(", ")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
