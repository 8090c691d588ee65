//! Our service as the SCM runs it, but with `MembershipSource::NoGroups`: the compliance
//! stage's counterpart of upstream's build linked with `tools/compliance/nogroups.c`, so
//! both judge every caller as an ordinary user under Wine (where everyone is an
//! administrator). Takes `-instance interactive <id>` like the real service.

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    use openvpnserv::windows::scm;
    use openvpnserv::windows::server::MembershipSource;
    use openvpnserv_settings::Instance;
    let args: Vec<String> = std::env::args().collect();
    let id = args
        .iter()
        .position(|a| a.eq_ignore_ascii_case("-instance"))
        .and_then(|i| args.get(i + 2))
        .map_or("", String::as_str);
    let Ok(instance) = Instance::new(id) else {
        eprintln!("openvpnserv-nogroups: bad instance id {id:?}");
        return std::process::ExitCode::FAILURE;
    };
    if let Err(e) = scm::dispatch_with(instance, MembershipSource::NoGroups) {
        eprintln!("openvpnserv-nogroups: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(not(windows))]
fn main() {
    eprintln!("openvpnserv-nogroups: a Windows test program");
    std::process::exit(2);
}
