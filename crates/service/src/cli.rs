//! The service's command line (spec §1.1).
//!
//! Upstream's switches are single-dash (or slash, on Windows) words compared
//! case-insensitively: `-install`, `-remove`, `-start`, `-instance interactive <id>`. They are
//! rewritten to clap's long form first, so one parser serves them and our own options.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use openvpnserv_settings::{Instance, InstanceError};

/// Upstream's switch words, plus our `check-config`, which is given in the same style.
const UPSTREAM_SWITCHES: &[&str] = &["install", "remove", "start", "instance", "check-config"];

/// Rewrites upstream-style switches (`-Install`, `/instance`, …) to `--install`, `--instance`.
/// Slash switches are recognised on Windows only, where no path starts with `/`.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            if i == 0 {
                return arg;
            }
            let Some(text) = arg.to_str() else { return arg };
            let word = text
                .strip_prefix('-')
                .filter(|w| !w.starts_with('-'))
                .or_else(|| text.strip_prefix('/').filter(|_| cfg!(windows)));
            match word {
                Some(w) if UPSTREAM_SWITCHES.iter().any(|s| s.eq_ignore_ascii_case(w)) => {
                    OsString::from(format!("--{}", w.to_ascii_lowercase()))
                }
                _ => arg,
            }
        })
        .collect()
}

/// The `OpenVPN` interactive service.
#[derive(Debug, Parser)]
#[command(name = "openvpnserv", version, about, long_about = None)]
pub struct Cli {
    /// Run the instance <ID> (upstream form: `-instance interactive <ID>`).
    #[arg(long, num_args = 2, value_names = ["interactive", "ID"])]
    pub instance: Option<Vec<String>>,

    /// Print the effective settings, or the error, and exit (non-zero on error).
    #[arg(long)]
    pub check_config: bool,

    /// Linux: read settings from FILE instead of /etc/openvpn/iservice<instance>.toml.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,

    /// Linux: run in the foreground, logging to stderr (the default when not started by
    /// systemd).
    #[arg(long)]
    pub foreground: bool,

    /// Linux, for tests only: run without the network layer. No tun is made and every
    /// channel request is refused; the log says so at start. Never use it in production.
    #[arg(long, hide_short_help = true)]
    pub no_network: bool,

    /// Windows: install the service.
    #[arg(long)]
    pub install: bool,

    /// Windows: stop and remove the service.
    #[arg(long)]
    pub remove: bool,

    /// Windows: start the service.
    #[arg(long)]
    pub start: bool,
}

/// A command-line error that upstream reports in its own words.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `-instance` with something other than `interactive`.
    #[error("Invalid argument to -instance {0}. Service not started.")]
    InstanceKind(String),
    /// An unusable instance id.
    #[error(transparent)]
    InstanceId(#[from] InstanceError),
}

impl Cli {
    /// Parses the process's arguments, accepting upstream's switch forms.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Self, clap::Error> {
        Self::try_parse_from(normalize(args))
    }

    /// The selected instance.
    pub fn instance(&self) -> Result<Instance, CliError> {
        match self.instance.as_deref() {
            Some([kind, id]) if kind.eq_ignore_ascii_case("interactive") => Ok(Instance::new(id)?),
            Some([kind, ..]) => Err(CliError::InstanceKind(kind.clone())),
            // clap guarantees two values when the switch is present.
            None | Some([]) => Ok(Instance::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["openvpnserv"];
        all.extend_from_slice(args);
        Cli::parse_args(all.into_iter().map(OsString::from)).unwrap()
    }

    #[test]
    fn upstream_switches_any_case() {
        let cli = parse(&["-INSTANCE", "Interactive", "$test", "--check-config"]);
        assert_eq!(cli.instance().unwrap().id(), "$test");
        assert!(parse(&["-Install"]).install);
        assert!(parse(&["-remove"]).remove);
        assert!(parse(&["-start"]).start);
    }

    #[test]
    fn our_options() {
        let cli = parse(&["--check-config", "--settings", "/x.toml", "--foreground"]);
        assert!(cli.check_config && cli.foreground);
        assert_eq!(
            cli.settings.as_deref(),
            Some(std::path::Path::new("/x.toml"))
        );
        assert_eq!(cli.instance().unwrap(), Instance::default());
    }

    #[test]
    fn wrong_instance_kind() {
        let cli = parse(&["-instance", "automatic", "x"]);
        assert_eq!(
            cli.instance().unwrap_err().to_string(),
            "Invalid argument to -instance automatic. Service not started."
        );
    }

    #[test]
    fn paths_are_not_switches() {
        let n = normalize(["x", "/start", "-s"].map(OsString::from));
        assert_eq!(
            n[1],
            OsString::from(if cfg!(windows) { "--start" } else { "/start" })
        );
        assert_eq!(n[2], OsString::from("-s"));
    }

    #[test]
    fn instance_needs_two_values() {
        let args = ["openvpnserv", "-instance", "interactive"].map(OsString::from);
        assert!(Cli::parse_args(args).is_err());
    }
}
