//! The Linux service.

use std::path::Path;
use std::process::ExitCode;

use openvpnserv_settings::{linux as settings_file, Instance, Settings};

use crate::cli::Cli;

pub mod net;
pub mod network;

/// Loads the settings of `instance`: `--settings FILE` if given, else the instance's default
/// file if it exists, else the built-in defaults.
pub fn load_settings(cli: &Cli, instance: &Instance) -> Result<(Settings, Option<String>), String> {
    settings_file::load(
        cli.settings.as_deref(),
        Path::new(&instance.settings_path()),
    )
    .map_err(|e| e.to_string())
}

/// Entry point of the Linux executable.
pub fn main(cli: &Cli) -> ExitCode {
    if cli.install || cli.remove || cli.start {
        eprintln!("openvpnserv: -install, -remove and -start are Windows service commands; on Linux use the systemd units in dist/systemd/");
        return ExitCode::from(2);
    }
    let instance = match cli.instance() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("openvpnserv: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (settings, source) = match load_settings(cli, &instance) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("openvpnserv: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        match &source {
            Some(path) => println!(
                "# effective settings of instance {:?}, read from {path}",
                instance.id()
            ),
            None => println!(
                "# effective settings of instance {:?}: built-in defaults ({} does not exist)",
                instance.id(),
                instance.settings_path()
            ),
        }
        print!("{}", settings_file::render(&settings));
        return ExitCode::SUCCESS;
    }
    eprintln!("openvpnserv: the Linux service loop is not built yet");
    ExitCode::FAILURE
}
