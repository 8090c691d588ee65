//! How `iservice connect` ends, as a documented exit code (docs/ISERVICE.md).

/// The distinct endings and their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: connected, then disconnected (by Ctrl-C or by openvpn ending cleanly).
    Disconnected,
    /// 1: a local problem (bad arguments, files, terminal).
    LocalError,
    /// 3: the service is not running, busy, or did not answer in time.
    ServiceUnavailable,
    /// 4: the service refused to start openvpn (policy or launch error).
    Refused,
    /// 5: the server (or a key) refused the credentials.
    AuthFailed,
    /// 6: openvpn failed: it exited with an error or before connecting.
    OpenvpnFailed,
    /// 7: interrupted (Ctrl-C) before the connection was up.
    Interrupted,
    /// 0 (`iservice start`): connected, and openvpn goes on without the command.
    Connected,
    /// 8 (`restart`, `status`, `stop`, `log`): no connection by that name among the
    /// caller's.
    NotFound,
    /// 9 (`restart`, `status`, `stop`, `log`): the connection belongs to another user.
    Forbidden,
}

impl Outcome {
    /// Every outcome of `iservice connect`, in exit-code order (`iservice start` ends with
    /// [`Outcome::Connected`] instead of [`Outcome::Disconnected`]).
    pub const ALL: [Outcome; 7] = [
        Self::Disconnected,
        Self::LocalError,
        Self::ServiceUnavailable,
        Self::Refused,
        Self::AuthFailed,
        Self::OpenvpnFailed,
        Self::Interrupted,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Disconnected | Self::Connected => 0,
            Self::LocalError => 1,
            Self::ServiceUnavailable => 3,
            Self::Refused => 4,
            Self::AuthFailed => 5,
            Self::OpenvpnFailed => 6,
            Self::Interrupted => 7,
            Self::NotFound => 8,
            Self::Forbidden => 9,
        }
    }

    /// The name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::LocalError => "local_error",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Refused => "refused",
            Self::AuthFailed => "auth_failed",
            Self::OpenvpnFailed => "openvpn_failed",
            Self::Interrupted => "interrupted",
            Self::Connected => "connected",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
        }
    }
}

/// What the session learned, from which the outcome follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The state CONNECTED was reached at least once.
    pub connected: bool,
    /// The user asked to stop.
    pub interrupted: bool,
    /// Credentials were refused and the client gave up.
    pub auth_failed: bool,
    /// openvpn's exit code, when the service reported a non-zero one.
    pub exit_code: Option<u32>,
    /// Another late error from the service.
    pub service_error: Option<String>,
    /// openvpn's `>FATAL:` text.
    pub fatal: Option<String>,
    /// A management-interface failure (wrong password, impostor, protocol, or a question
    /// of openvpn's that could not be answered).
    pub management_error: Option<String>,
    /// `iservice start` left openvpn running once it was connected.
    pub detached: bool,
}

impl Facts {
    /// The outcome and a sentence for people. Authentication failure wins over the exit code
    /// it causes; an exit error wins over "connected". Ctrl-C before the connection was up
    /// wins over the exit error it causes (openvpn stopped while it waits for a password
    /// exits with code 1).
    pub fn outcome(&self) -> (Outcome, String) {
        if self.auth_failed {
            return (
                Outcome::AuthFailed,
                "authentication failed: the server refused the user name or password".into(),
            );
        }
        if let Some(error) = &self.management_error {
            return (Outcome::OpenvpnFailed, error.clone());
        }
        if self.interrupted && !self.connected {
            return (
                Outcome::Interrupted,
                "interrupted before the connection was up".into(),
            );
        }
        if let Some(code) = self.exit_code {
            let why = self
                .fatal
                .as_deref()
                .map_or_else(String::new, |f| format!(": {f}"));
            return (
                Outcome::OpenvpnFailed,
                format!("openvpn exited with error code {code}{why}"),
            );
        }
        if let Some(error) = &self.service_error {
            return (Outcome::OpenvpnFailed, error.clone());
        }
        if self.detached && self.connected {
            return (
                Outcome::Connected,
                "connected; openvpn goes on without iservice".into(),
            );
        }
        if self.connected {
            let how = if self.interrupted {
                "disconnected on request"
            } else {
                "disconnected: openvpn ended the connection"
            };
            return (Outcome::Disconnected, how.into());
        }
        let why = self
            .fatal
            .as_deref()
            .map_or_else(String::new, |f| format!(": {f}"));
        (
            Outcome::OpenvpnFailed,
            format!("openvpn exited before connecting{why}"),
        )
    }
}
