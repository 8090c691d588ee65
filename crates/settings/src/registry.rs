//! The Windows registry model (spec §7) as a pure function over a value lookup.
//!
//! Values are read once at start, `REG_SZ` only. A missing value takes its default; a value of
//! another type, or one too long for upstream's buffer, is a fatal start error. We differ from
//! upstream in two places (spec §7 QUIRKs): when there is no room to append the trailing `\`
//! we fail with a clear error instead of silently leaving the remaining settings empty, and
//! defaults are built by plain concatenation, never used as format strings.

use crate::{
    with_trailing, DnsBackend, Instance, MsgProtocol, Priority, Settings, DEFAULT_MAX_SESSIONS,
    DEFAULT_MAX_SESSIONS_PER_USER_WINDOWS,
};

/// A registry value as the lookup found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// Not present.
    Missing,
    /// A `REG_SZ` (or `REG_EXPAND_SZ` read without expansion is *not* this) string.
    Sz(String),
    /// Present with another type.
    OtherType,
}

/// A fatal settings error (the service does not start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The key, or its required default value, is missing.
    #[error("Could not open Registry key HKLM\\{key} not found")]
    KeyMissing {
        /// `SOFTWARE\OpenVPN<id>`.
        key: String,
    },
    /// A value is unusable.
    #[error("Error querying registry value: HKLM\\{key}\\{name}: {reason}")]
    Value {
        /// `SOFTWARE\OpenVPN<id>`.
        key: String,
        /// Value name (`(Default)` for the unnamed value).
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Upstream buffer sizes in UTF-16 units, including the terminating NUL.
pub const BUFFERS: &[(&str, usize)] = &[
    ("", 260),
    ("exe_path", 260),
    ("config_dir", 260),
    ("bin_dir", 260),
    ("config_ext", 16),
    ("log_dir", 260),
    ("priority", 64),
    ("log_append", 2),
    ("ovpn_admin_group", 256),
    ("ovpn_service_user", 256),
    ("max_sessions", 16),
    ("max_sessions_per_user", 16),
    ("msg_protocol", 16),
];

fn buffer(name: &str) -> usize {
    BUFFERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(260, |(_, b)| *b)
}

/// Reads the settings of `instance` through `get` (value name → value; `""` is the unnamed
/// default value holding the install directory).
pub fn read(
    instance: &Instance,
    get: impl Fn(&str) -> RegValue,
) -> Result<Settings, RegistryError> {
    let key = instance.registry_key();
    let err = |name: &str, reason: String| RegistryError::Value {
        key: key.clone(),
        name: if name.is_empty() {
            "(Default)".into()
        } else {
            name.into()
        },
        reason,
    };
    let value = |name: &str, default: &str| -> Result<String, RegistryError> {
        match get(name) {
            RegValue::Missing => Ok(default.to_owned()),
            RegValue::OtherType => Err(err(name, "the value must be of type REG_SZ".into())),
            RegValue::Sz(s) => {
                let units = s.encode_utf16().count();
                if units + 1 > buffer(name) {
                    Err(err(
                        name,
                        format!(
                            "the value is {units} characters long; at most {} fit",
                            buffer(name) - 1
                        ),
                    ))
                } else {
                    Ok(s)
                }
            }
        }
    };
    let dir_value = |name: &str, default: &str| -> Result<String, RegistryError> {
        let v = value(name, default)?;
        let v = with_trailing(&v, '\\');
        if v.encode_utf16().count() + 1 > buffer(name) {
            return Err(err(
                name,
                "no room to append the trailing backslash; shorten the path".into(),
            ));
        }
        Ok(v)
    };
    let install = match get("") {
        RegValue::Missing => return Err(RegistryError::KeyMissing { key }),
        _ => value("", "")?,
    };
    let base = install.trim_end_matches('\\');
    let exe_path = value("exe_path", &format!("{base}\\bin\\openvpn.exe"))?;
    let config_dir = dir_value("config_dir", &format!("{base}\\config\\"))?;
    let bin_dir = dir_value("bin_dir", &format!("{base}\\bin\\"))?;
    let config_ext = value("config_ext", ".ovpn")?;
    let log_dir = dir_value("log_dir", &format!("{base}\\log\\"))?;
    let priority = Priority::parse(&value("priority", "NORMAL_PRIORITY_CLASS")?)
        .map_err(|e| err("priority", e.to_string()))?;
    let log_append = match value("log_append", "0")?.as_str() {
        "0" => false,
        "1" => true,
        other => {
            return Err(err(
                "log_append",
                format!("{other:?} is neither \"0\" nor \"1\""),
            ))
        }
    };
    let ovpn_admin_group = value("ovpn_admin_group", "OpenVPN Administrators")?;
    let ovpn_service_user = value("ovpn_service_user", "OpenVPNService")?;
    let count = |name: &str, default: u32| -> Result<u32, RegistryError> {
        let v = value(name, &default.to_string())?;
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| err(name, format!("{v:?} is not a positive whole number")))
    };
    let max_sessions = count("max_sessions", DEFAULT_MAX_SESSIONS)?;
    let max_sessions_per_user = count(
        "max_sessions_per_user",
        DEFAULT_MAX_SESSIONS_PER_USER_WINDOWS,
    )?;
    let msg_protocol = {
        let v = value("msg_protocol", "auto")?;
        MsgProtocol::parse(&v)
            .ok_or_else(|| err("msg_protocol", format!("{v:?} is not auto, 2.6 or 2.7")))?
    };
    Ok(Settings {
        exe_path,
        config_dir,
        bin_dir,
        config_ext,
        log_dir,
        priority,
        log_append,
        ovpn_admin_group,
        ovpn_service_user,
        max_sessions,
        max_sessions_per_user,
        msg_protocol,
        dns_backend: DnsBackend::None,
        hook_path: String::new(),
    })
}

/// The values as `name = value` lines, for `--check-config` on Windows.
pub fn render(settings: &Settings) -> String {
    let rows = [
        ("exe_path", settings.exe_path.clone()),
        ("config_dir", settings.config_dir.clone()),
        ("bin_dir", settings.bin_dir.clone()),
        ("config_ext", settings.config_ext.clone()),
        ("log_dir", settings.log_dir.clone()),
        ("priority", settings.priority.name().to_owned()),
        ("log_append", u8::from(settings.log_append).to_string()),
        ("ovpn_admin_group", settings.ovpn_admin_group.clone()),
        ("ovpn_service_user", settings.ovpn_service_user.clone()),
        ("max_sessions", settings.max_sessions.to_string()),
        (
            "max_sessions_per_user",
            settings.max_sessions_per_user.to_string(),
        ),
        ("msg_protocol", settings.msg_protocol.name().to_owned()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(k);
        out.push_str(" = ");
        out.push_str(&v);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read_with(values: &[(&str, RegValue)]) -> Result<Settings, RegistryError> {
        let map: HashMap<String, RegValue> = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        read(&Instance::default(), |name| {
            map.get(name).cloned().unwrap_or(RegValue::Missing)
        })
    }

    fn sz(s: &str) -> RegValue {
        RegValue::Sz(s.into())
    }

    #[test]
    fn defaults_from_install_dir() {
        for install in [r"C:\Program Files\OpenVPN", r"C:\Program Files\OpenVPN\"] {
            let s = read_with(&[("", sz(install))]).unwrap();
            assert_eq!(s.exe_path, r"C:\Program Files\OpenVPN\bin\openvpn.exe");
            assert_eq!(s.config_dir, r"C:\Program Files\OpenVPN\config\");
            assert_eq!(s.bin_dir, r"C:\Program Files\OpenVPN\bin\");
            assert_eq!(s.log_dir, r"C:\Program Files\OpenVPN\log\");
            assert_eq!(s.config_ext, ".ovpn");
            assert_eq!(s.priority, Priority::Normal);
            assert!(!s.log_append);
            assert_eq!(s.ovpn_admin_group, "OpenVPN Administrators");
            assert_eq!(s.ovpn_service_user, "OpenVPNService");
            assert_eq!(s.msg_protocol, MsgProtocol::Auto);
            // Upstream lets one account hold all 63 of its sessions.
            assert_eq!(s.max_sessions_per_user, 63);
            assert!(s.max_sessions >= 63);
        }
    }

    #[test]
    fn percent_in_install_path_is_not_a_format() {
        let s = read_with(&[("", sz(r"C:\100%s\OpenVPN"))]).unwrap();
        assert_eq!(s.config_dir, r"C:\100%s\OpenVPN\config\");
    }

    #[test]
    fn missing_key() {
        assert_eq!(
            read_with(&[]),
            Err(RegistryError::KeyMissing {
                key: r"SOFTWARE\OpenVPN".into()
            })
        );
        assert_eq!(
            read_with(&[]).unwrap_err().to_string(),
            r"Could not open Registry key HKLM\SOFTWARE\OpenVPN not found"
        );
    }

    #[test]
    fn trailing_backslash_is_appended() {
        let s = read_with(&[("", sz(r"C:\O")), ("config_dir", sz(r"D:\cfg"))]).unwrap();
        assert_eq!(s.config_dir, r"D:\cfg\");
    }

    #[test]
    fn no_room_for_backslash_is_fatal() {
        let long = format!(r"C:\{}", "a".repeat(256));
        assert_eq!(long.len(), 259);
        let e = read_with(&[("", sz(r"C:\O")), ("config_dir", sz(&long))]).unwrap_err();
        assert!(
            e.to_string()
                .contains(r"HKLM\SOFTWARE\OpenVPN\config_dir: no room"),
            "{e}"
        );
    }

    #[test]
    fn too_long_and_wrong_type_are_fatal() {
        let e = read_with(&[("", sz(r"C:\O")), ("config_ext", sz(&"x".repeat(16)))]).unwrap_err();
        assert!(e.to_string().contains("config_ext"), "{e}");
        let e = read_with(&[("", sz(r"C:\O")), ("exe_path", RegValue::OtherType)]).unwrap_err();
        assert!(e.to_string().contains("REG_SZ"), "{e}");
        let e = read_with(&[("", sz(r"C:\O")), ("log_append", sz("2"))]).unwrap_err();
        assert!(e.to_string().contains("log_append"), "{e}");
        let e = read_with(&[("", sz(r"C:\O")), ("priority", sz("FAST"))]).unwrap_err();
        assert!(e.to_string().contains("Unknown priority name"), "{e}");
    }

    #[test]
    fn instance_key_in_errors() {
        let i = Instance::new("$test").unwrap();
        let e = read(&i, |_| RegValue::Missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            r"Could not open Registry key HKLM\SOFTWARE\OpenVPN$test not found"
        );
    }

    #[test]
    fn render_lists_every_value() {
        let s = read_with(&[("", sz(r"C:\O"))]).unwrap();
        let text = render(&s);
        for (name, _) in BUFFERS.iter().skip(1) {
            assert!(text.contains(&format!("{name} = ")), "{name}");
        }
    }
}
