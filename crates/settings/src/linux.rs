//! The Linux settings file: TOML with the registry's value names.
//!
//! ```toml
//! exe_path = "/usr/sbin/openvpn"
//! config_dir = "/etc/openvpn/client/"
//! ovpn_admin_group = "openvpn-admin"
//! priority = "NORMAL_PRIORITY_CLASS"
//! max_sessions = 2048
//! max_sessions_per_user = 32
//! dns_backend = "auto"
//! hook_path = "/usr/sbin/openvpnserv-hook"   # default: next to the service executable
//! ```
//!
//! Every key is optional; unknown keys are an error that names the line and column. Without
//! a file the built-in defaults below apply.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    with_trailing, DnsBackend, MsgProtocol, Priority, Settings, DEFAULT_MAX_SESSIONS,
    DEFAULT_MAX_SESSIONS_PER_USER,
};

/// Built-in default of `exe_path`.
pub const DEFAULT_EXE_PATH: &str = "/usr/sbin/openvpn";
/// Built-in default of `config_dir`.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/openvpn/client/";
/// Built-in default of `ovpn_admin_group`.
pub const DEFAULT_ADMIN_GROUP: &str = "openvpn-admin";

/// The file as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    exe_path: Option<String>,
    config_dir: Option<String>,
    bin_dir: Option<String>,
    config_ext: Option<String>,
    log_dir: Option<String>,
    priority: Option<String>,
    log_append: Option<String>,
    ovpn_admin_group: Option<String>,
    ovpn_service_user: Option<String>,
    max_sessions: Option<u32>,
    max_sessions_per_user: Option<u32>,
    msg_protocol: Option<String>,
    dns_backend: Option<String>,
    hook_path: Option<String>,
}

/// Why the settings file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LinuxSettingsError {
    /// Unreadable.
    #[error("cannot read settings file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, a wrong type, or an unknown key (the message has line and column).
    #[error("invalid settings file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that is not allowed.
    #[error("invalid settings file {path}: {key}: {reason}")]
    Value {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The built-in defaults (no file).
pub fn defaults() -> Settings {
    Settings {
        exe_path: DEFAULT_EXE_PATH.into(),
        config_dir: DEFAULT_CONFIG_DIR.into(),
        bin_dir: "/usr/sbin/".into(),
        config_ext: ".conf".into(),
        log_dir: "/var/log/openvpn/".into(),
        priority: Priority::Normal,
        log_append: false,
        ovpn_admin_group: DEFAULT_ADMIN_GROUP.into(),
        ovpn_service_user: String::new(),
        max_sessions: DEFAULT_MAX_SESSIONS,
        max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
        msg_protocol: MsgProtocol::V27,
        dns_backend: DnsBackend::Auto,
        hook_path: String::new(),
    }
}

/// Parses settings text; `path` names the file in errors.
pub fn parse(text: &str, path: &str) -> Result<Settings, LinuxSettingsError> {
    let file: File = toml::from_str(text).map_err(|e| LinuxSettingsError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let bad = |key: &'static str, reason: String| LinuxSettingsError::Value {
        path: path.to_owned(),
        key,
        reason,
    };
    let mut s = defaults();
    let absolute = |key: &'static str, v: String| -> Result<String, LinuxSettingsError> {
        // A Linux path, whatever platform parses the file.
        if v.starts_with('/') {
            Ok(v)
        } else {
            Err(bad(key, format!("{v:?} must be an absolute path")))
        }
    };
    if let Some(v) = file.exe_path {
        s.exe_path = absolute("exe_path", v)?;
    }
    if let Some(v) = file.config_dir {
        s.config_dir = with_trailing(&absolute("config_dir", v)?, '/');
    }
    if let Some(v) = file.bin_dir {
        s.bin_dir = with_trailing(&absolute("bin_dir", v)?, '/');
    }
    if let Some(v) = file.log_dir {
        s.log_dir = with_trailing(&absolute("log_dir", v)?, '/');
    }
    if let Some(v) = file.config_ext {
        s.config_ext = v;
    }
    if let Some(v) = file.priority {
        s.priority = Priority::parse(&v).map_err(|e| bad("priority", e.to_string()))?;
    }
    if let Some(v) = file.log_append {
        s.log_append = match v.as_str() {
            "0" => false,
            "1" => true,
            _ => {
                return Err(bad(
                    "log_append",
                    format!("{v:?} is neither \"0\" nor \"1\""),
                ))
            }
        };
    }
    if let Some(v) = file.ovpn_admin_group {
        s.ovpn_admin_group = v;
    }
    if let Some(v) = file.ovpn_service_user {
        s.ovpn_service_user = v;
    }
    if let Some(v) = file.max_sessions {
        s.max_sessions = v;
    }
    if let Some(v) = file.max_sessions_per_user {
        s.max_sessions_per_user = v;
    }
    if s.max_sessions == 0 || s.max_sessions_per_user == 0 {
        return Err(bad(
            "max_sessions",
            "session limits must be at least 1".into(),
        ));
    }
    if let Some(v) = file.msg_protocol {
        s.msg_protocol = match MsgProtocol::parse(&v) {
            Some(MsgProtocol::V27 | MsgProtocol::Auto) => MsgProtocol::V27,
            _ => {
                return Err(bad(
                    "msg_protocol",
                    format!("{v:?}: the Linux service speaks 2.7 only"),
                ))
            }
        };
    }
    if let Some(v) = file.dns_backend {
        s.dns_backend = DnsBackend::parse(&v).ok_or_else(|| {
            bad(
                "dns_backend",
                format!("{v:?} is not auto, resolved, resolvconf, direct or none"),
            )
        })?;
    }
    if let Some(v) = file.hook_path.filter(|v| !v.is_empty()) {
        s.hook_path = absolute("hook_path", v)?;
    }
    Ok(s)
}

/// Loads settings: an explicit file must exist; the default file may be absent, in which case
/// the built-in defaults apply. Returns the settings and the file they came from, if any.
pub fn load(
    explicit: Option<&Path>,
    default: &Path,
) -> Result<(Settings, Option<String>), LinuxSettingsError> {
    let path = explicit.unwrap_or(default);
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((parse(&text, &shown)?, Some(shown))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            Ok((defaults(), None))
        }
        Err(source) => Err(LinuxSettingsError::Io {
            path: shown,
            source,
        }),
    }
}

/// The effective settings as a complete settings file.
pub fn render(s: &Settings) -> String {
    let file = File {
        exe_path: Some(s.exe_path.clone()),
        config_dir: Some(s.config_dir.clone()),
        bin_dir: Some(s.bin_dir.clone()),
        config_ext: Some(s.config_ext.clone()),
        log_dir: Some(s.log_dir.clone()),
        priority: Some(s.priority.name().into()),
        log_append: Some(if s.log_append { "1" } else { "0" }.into()),
        ovpn_admin_group: Some(s.ovpn_admin_group.clone()),
        ovpn_service_user: Some(s.ovpn_service_user.clone()),
        max_sessions: Some(s.max_sessions),
        max_sessions_per_user: Some(s.max_sessions_per_user),
        msg_protocol: Some(s.msg_protocol.name().into()),
        dns_backend: Some(s.dns_backend.name().into()),
        hook_path: Some(s.hook_path.clone()),
    };
    toml::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(parse("", "x").unwrap(), defaults());
    }

    #[test]
    fn values_and_trailing_slash() {
        let s = parse(
            "exe_path = \"/opt/ovpn/openvpn\"\nconfig_dir = \"/srv/cfg\"\npriority = \"idle_priority_class\"\nmax_sessions = 5\nmax_sessions_per_user = 2\ndns_backend = \"direct\"\novpn_admin_group = \"netadm\"\nhook_path = \"/opt/ovs/hook\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(s.exe_path, "/opt/ovpn/openvpn");
        assert_eq!(s.config_dir, "/srv/cfg/");
        assert_eq!(s.priority, Priority::Idle);
        assert_eq!(s.max_sessions, 5);
        assert_eq!(s.max_sessions_per_user, 2);
        assert_eq!(s.dns_backend, DnsBackend::Direct);
        assert_eq!(s.ovpn_admin_group, "netadm");
        assert_eq!(s.hook_path, "/opt/ovs/hook");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = parse(
            "exe_path = \"/x\"\n\nconfg_dir = \"/y\"\n",
            "/etc/openvpn/iservice.toml",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("line 3, column 1"), "{text}");
        assert!(text.contains("confg_dir"), "{text}");
        assert!(text.contains("/etc/openvpn/iservice.toml"), "{text}");
    }

    #[test]
    fn bad_values() {
        for (text, key) in [
            ("exe_path = \"openvpn\"", "exe_path"),
            ("priority = \"FAST\"", "priority"),
            ("log_append = \"yes\"", "log_append"),
            ("max_sessions = 0", "max_sessions"),
            ("dns_backend = \"nscd\"", "dns_backend"),
            ("hook_path = \"hook\"", "hook_path"),
            ("msg_protocol = \"2.6\"", "msg_protocol"),
        ] {
            let e = parse(text, "x").unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = parse("max_sessions = \"many\"", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn render_parses_back() {
        let s = parse("config_dir = \"/srv/cfg\"\nmax_sessions = 9", "x").unwrap();
        assert_eq!(parse(&render(&s), "x").unwrap(), s);
    }

    #[test]
    fn load_missing_default_is_builtin_but_missing_explicit_is_error() {
        let missing = Path::new("/nonexistent/iservice.toml");
        assert_eq!(load(None, missing).unwrap(), (defaults(), None));
        assert!(matches!(
            load(Some(missing), missing),
            Err(LinuxSettingsError::Io { .. })
        ));
    }
}
