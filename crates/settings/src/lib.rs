//! Settings of the interactive service (spec §7), one model for both platforms.
//!
//! * Windows reads `HKLM\SOFTWARE\OpenVPN<instance>` ([`registry`]: the value names, buffer
//!   sizes, defaults and trailing-separator rule, as a pure function over a value lookup).
//! * Linux reads a TOML file with the same keys ([`linux`]), `/etc/openvpn/iservice<instance>.toml`
//!   by default; without a file, built-in defaults that work.
//!
//! Keys we add to upstream's (the same on both platforms): `max_sessions`,
//! `max_sessions_per_user`, `msg_protocol`, and on Linux `dns_backend` and `hook_path`.
#![forbid(unsafe_code)]

mod instance;
pub mod linux;
mod priority;
pub mod registry;

pub use instance::{Instance, InstanceError};
pub use priority::{Priority, UnknownPriority};

/// Which openvpn-msg numbering the service speaks on the channel (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MsgProtocol {
    /// Decide from the openvpn executable's version (Windows), else 2.7.
    #[default]
    Auto,
    /// openvpn 2.5/2.6 numbering.
    V26,
    /// openvpn 2.7+ numbering.
    V27,
}

impl MsgProtocol {
    /// Parses `auto`, `2.6` or `2.7`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            s if s.eq_ignore_ascii_case("auto") => Some(Self::Auto),
            "2.6" | "2.5" => Some(Self::V26),
            "2.7" => Some(Self::V27),
            _ => None,
        }
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::V26 => "2.6",
            Self::V27 => "2.7",
        }
    }
}

/// How the Linux service applies DNS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DnsBackend {
    /// systemd-resolved if it answers on D-Bus, else resolvconf if installed, else direct.
    #[default]
    Auto,
    /// systemd-resolved over D-Bus.
    Resolved,
    /// `resolvconf -a/-d`.
    Resolvconf,
    /// Rewrite `/etc/resolv.conf`, restoring it afterwards.
    Direct,
    /// Leave DNS alone (requests are acknowledged and logged).
    None,
}

impl DnsBackend {
    /// Parses a backend name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "resolved" => Self::Resolved,
            "resolvconf" => Self::Resolvconf,
            "direct" => Self::Direct,
            "none" => Self::None,
            _ => return None,
        })
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Resolved => "resolved",
            Self::Resolvconf => "resolvconf",
            Self::Direct => "direct",
            Self::None => "none",
        }
    }
}

/// Effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The openvpn executable the service starts (and, on Windows, the WFP permit app-id).
    pub exe_path: String,
    /// Where config files of ordinary users must live; ends with the platform separator.
    pub config_dir: String,
    /// Where `tapctl.exe` lives (Windows); ends with the separator.
    pub bin_dir: String,
    /// Legacy; read and shown, not used.
    pub config_ext: String,
    /// Legacy; read and shown, not used. Ends with the separator.
    pub log_dir: String,
    /// openvpn's priority.
    pub priority: Priority,
    /// Legacy; read and shown, not used.
    pub log_append: bool,
    /// Members of this group may use any option and config.
    pub ovpn_admin_group: String,
    /// The openvpnserv2 account name (`NT SERVICE\<name>` on Windows); empty disables it.
    pub ovpn_service_user: String,
    /// Sessions at once, all users together.
    pub max_sessions: u32,
    /// Sessions at once per user.
    pub max_sessions_per_user: u32,
    /// Channel numbering.
    pub msg_protocol: MsgProtocol,
    /// Linux DNS backend.
    pub dns_backend: DnsBackend,
    /// Linux: the helper openvpn runs from its script hooks; empty = `openvpnserv-hook` next
    /// to the service executable.
    pub hook_path: String,
}

/// Default total session limit (upstream's fixed cap is 63).
pub const DEFAULT_MAX_SESSIONS: u32 = 2048;
/// Default per-user session limit (Linux).
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 32;
/// Default per-user session limit on Windows: upstream lets one account hold all 63 of its
/// sessions (an autostart service runs every config under one account), so at defaults we
/// must not refuse what upstream accepts.
pub const DEFAULT_MAX_SESSIONS_PER_USER_WINDOWS: u32 = 63;

/// Appends `sep` unless `s` already ends with it.
pub(crate) fn with_trailing(s: &str, sep: char) -> String {
    if s.ends_with(sep) {
        s.to_owned()
    } else {
        format!("{s}{sep}")
    }
}
