//! `iservice`: start openvpn through the `OpenVPN` interactive service, follow the
//! connection, and manage the connections. Usage, exit codes and the `--json` schemas:
//! docs/ISERVICE.md.

use std::process::ExitCode;

use clap::Parser;
use iservice::cli::{normalize, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize(std::env::args_os()));
    ExitCode::from(iservice::commands::main(cli))
}
