//! Per-instance naming (spec §1.2): the instance suffix is appended with no separator.

/// A service instance: `-instance interactive <id>`; the default instance has an empty id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Instance {
    id: String,
}

/// An instance id that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid instance name {0:?}: use at most 64 letters, digits or the characters '_', '-', '.', '$', not starting with '.'"
)]
pub struct InstanceError(pub String);

impl Instance {
    /// The longest instance id accepted.
    pub const MAX_LEN: usize = 64;

    /// An instance. Upstream accepts any text; because the id becomes part of file and pipe
    /// names, we accept only `[A-Za-z0-9_.$-]`, at most 64 characters, not starting with `.`.
    pub fn new(id: &str) -> Result<Self, InstanceError> {
        let ok = id.len() <= Self::MAX_LEN
            && !id.starts_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
        if ok {
            Ok(Self { id: id.to_owned() })
        } else {
            Err(InstanceError(id.to_owned()))
        }
    }

    /// The id (empty for the default instance).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `SOFTWARE\OpenVPN<id>` under `HKEY_LOCAL_MACHINE`.
    pub fn registry_key(&self) -> String {
        format!("SOFTWARE\\OpenVPN{}", self.id)
    }

    /// `\\.\pipe\openvpn<id>\service`.
    pub fn pipe_path(&self) -> String {
        format!("\\\\.\\pipe\\openvpn{}\\service", self.id)
    }

    /// `\\.\pipe\openvpn<id>\service_<thread id>_<uuid>`.
    pub fn session_pipe_path(&self, thread_id: u32, uuid: &str) -> String {
        format!(
            "\\\\.\\pipe\\openvpn{}\\service_{thread_id}_{uuid}",
            self.id
        )
    }

    /// SCM service name: `OpenVPNServiceInteractive`, with the id appended for other
    /// instances (upstream leaves their names to the administrator; we pick this one).
    pub fn service_name(&self) -> String {
        format!("OpenVPNServiceInteractive{}", self.id)
    }

    /// SCM display name.
    pub fn display_name(&self) -> String {
        if self.id.is_empty() {
            "OpenVPN Interactive Service".to_owned()
        } else {
            format!("OpenVPN Interactive Service ({})", self.id)
        }
    }

    /// Event-log source and log prefix: `openvpnserv<id>`.
    pub fn event_source(&self) -> String {
        format!("openvpnserv{}", self.id)
    }

    /// Linux runtime directory: `/run/openvpn<id>`.
    pub fn run_dir(&self) -> String {
        format!("/run/openvpn{}", self.id)
    }

    /// Linux client socket: `/run/openvpn<id>/service`.
    pub fn socket_path(&self) -> String {
        format!("{}/service", self.run_dir())
    }

    /// Linux default settings file: `/etc/openvpn/iservice<id>.toml`.
    pub fn settings_path(&self) -> String {
        format!("/etc/openvpn/iservice{}.toml", self.id)
    }

    /// systemd unit name of this instance.
    pub fn systemd_unit(&self) -> String {
        if self.id.is_empty() {
            "openvpnserv.service".to_owned()
        } else {
            format!("openvpnserv@{}.service", self.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        let i = Instance::default();
        assert_eq!(i.registry_key(), r"SOFTWARE\OpenVPN");
        assert_eq!(i.pipe_path(), r"\\.\pipe\openvpn\service");
        assert_eq!(i.service_name(), "OpenVPNServiceInteractive");
        assert_eq!(i.event_source(), "openvpnserv");
        assert_eq!(i.socket_path(), "/run/openvpn/service");
        assert_eq!(i.settings_path(), "/etc/openvpn/iservice.toml");
        assert_eq!(
            i.session_pipe_path(1234, "0f1e2d3c-0000-4000-8000-000000000001"),
            r"\\.\pipe\openvpn\service_1234_0f1e2d3c-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn test_instance_names() {
        let i = Instance::new("$test").unwrap();
        assert_eq!(i.registry_key(), r"SOFTWARE\OpenVPN$test");
        assert_eq!(i.pipe_path(), r"\\.\pipe\openvpn$test\service");
        assert_eq!(i.socket_path(), "/run/openvpn$test/service");
        assert_eq!(i.settings_path(), "/etc/openvpn/iservice$test.toml");
        assert_eq!(i.event_source(), "openvpnserv$test");
    }

    #[test]
    fn hostile_ids_are_refused() {
        for id in [
            "../x",
            "a/b",
            "a\\b",
            ".",
            "..",
            ".hidden",
            "a b",
            "x\0",
            &"a".repeat(65),
        ] {
            assert!(Instance::new(id).is_err(), "{id:?}");
        }
    }
}
