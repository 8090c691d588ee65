//! The `iservice` command line. It lives in the library so that the shell completions and
//! the man page are generated from the same definitions (`iservice completions SHELL`,
//! `iservice man`). Usage, exit codes and JSON: docs/ISERVICE.md.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Start openvpn through the interactive service, and manage its connections.
#[derive(Debug, Parser)]
#[command(
    name = "iservice",
    version,
    about = "Start openvpn through the OpenVPN interactive service, and manage its connections",
    long_about = None
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Start openvpn with CONFIG and follow the connection until it ends (Ctrl-C
    /// disconnects).
    Connect(ConnectArgs),
    /// Start openvpn with CONFIG, wait until it is connected, and leave it running in the
    /// background (`iservice stop NAME` disconnects it).
    Start(ConnectArgs),
    /// List your connections (all of them for administrators).
    List(ListArgs),
    /// Show one connection.
    Status(NameArgs),
    /// Disconnect a connection, or all of yours with --all.
    Stop(StopArgs),
    /// Disconnect one of your connections and start it again with the same config.
    Restart(RestartArgs),
    /// Show the output of a connection's openvpn.
    Log(LogArgs),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    #[command(hide = true)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(hide = true)]
    Man,
}

/// Options every command shares: which service instance.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
    /// Use the service instance NAME (upstream form: `-instance interactive NAME`).
    #[arg(long, num_args = 2, value_names = ["interactive", "NAME"])]
    pub instance: Option<Vec<String>>,

    /// Linux: use this control socket instead of the instance's (for tests and debugging).
    #[arg(long, value_name = "PATH", hide = true)]
    pub control_socket: Option<PathBuf>,
}

/// `connect`, `start`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The openvpn config file (ordinary users: inside the service's config directory).
    pub config: PathBuf,

    /// How to start it.
    #[command(flatten)]
    pub start: StartArgs,
}

/// The options of a start: `connect`, `start`, `restart`.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Which instance.
    #[command(flatten)]
    pub instance: InstanceArgs,

    /// Write one JSON object per event on stdout instead of the live display.
    #[arg(long)]
    pub json: bool,

    /// Answer openvpn's user name/password request from FILE (user name on line 1,
    /// password on line 2) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// Never ask on the terminal (credentials come from --auth-file only).
    #[arg(long)]
    pub non_interactive: bool,

    /// Seconds to wait for the service's reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub timeout: u64,

    /// Show openvpn's whole log and protocol details.
    #[arg(short, long)]
    pub verbose: bool,

    /// Linux: connect to this socket instead of the instance's (for tests and debugging).
    #[arg(long, value_name = "PATH", hide = true)]
    pub socket: Option<PathBuf>,
}

/// `list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Which instance.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Write one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct NameArgs {
    /// The connection's name (see `iservice list`).
    pub name: String,
    /// Which instance.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Write one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `stop`.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// The connection's name (see `iservice list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every connection you may stop (yours; all for administrators).
    #[arg(long)]
    pub all: bool,
    /// Which instance.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Write one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for openvpn to exit (0: do not wait).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub wait: u64,
}

/// `restart`.
#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    /// The connection's name (see `iservice list`).
    pub name: String,
    /// How to start it again.
    #[command(flatten)]
    pub start: StartArgs,
}

/// `log`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// The connection's name (see `iservice list`).
    pub name: String,
    /// Keep showing new lines until openvpn exits (or Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,
    /// Show only the last N lines (then follow, with --follow).
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<u32>,
    /// Which instance.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Write one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `completions`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Rewrites upstream's single-dash `-instance` to `--instance`.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            if arg
                .to_str()
                .is_some_and(|a| a.eq_ignore_ascii_case("-instance"))
            {
                OsString::from("--instance")
            } else {
                arg
            }
        })
        .collect()
}

/// The command definitions, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
