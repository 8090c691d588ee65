//! `openvpnserv`: the interactive service executable.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match openvpnserv::cli::Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    #[cfg(target_os = "linux")]
    return openvpnserv::linux::main(&cli);
    #[cfg(windows)]
    return openvpnserv::windows::main(&cli);
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = cli;
        eprintln!("openvpnserv: this platform is not supported (Linux and Windows are)");
        ExitCode::FAILURE
    }
}
