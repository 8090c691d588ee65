//! The Windows service.

pub mod registry;

use std::process::ExitCode;

use crate::cli::Cli;

/// Entry point of the Windows executable.
pub fn main(cli: &Cli) -> ExitCode {
    let instance = match cli.instance() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("openvpnserv: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        return match registry::load(&instance) {
            Ok(settings) => {
                println!(
                    "# effective settings of instance {:?}, read from HKLM\\{}",
                    instance.id(),
                    instance.registry_key()
                );
                print!("{}", openvpnserv_settings::registry::render(&settings));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("openvpnserv: {e}");
                ExitCode::FAILURE
            }
        };
    }
    eprintln!("openvpnserv: the Windows service is not built yet");
    ExitCode::FAILURE
}
