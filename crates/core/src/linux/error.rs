//! Why openvpn's environment or `ip` command could not be turned into channel requests.
//!
//! These reach the hook's log line (and so openvpn's log), never the network: a request that
//! cannot be built is not sent.

/// A hook environment or `ip` command line that does not translate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// A variable the hook needs is not set.
    #[error("{0} is missing from the environment")]
    Missing(String),
    /// A variable (or an `ip` word) has a value that is not what it must be.
    #[error("{key}={value:?} is not {expected}")]
    Invalid {
        /// The variable or word.
        key: String,
        /// Its value.
        value: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// A value does not fit the channel message's fixed-size field.
    #[error("{value:?} does not fit the channel message: {why}")]
    TooLong {
        /// The value.
        value: String,
        /// The field's complaint.
        why: String,
    },
    /// An `ip` command line this service does not perform.
    #[error("ip {command}: {why}")]
    Command {
        /// The command line, without the program name.
        command: String,
        /// What is wrong with it.
        why: String,
    },
}

impl TranslateError {
    /// A variable or word with a bad value.
    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl Into<String>,
        expected: &'static str,
    ) -> Self {
        Self::Invalid {
            key: key.into(),
            value: value.into(),
            expected,
        }
    }
}
