//! What the command asks about its connection besides openvpn itself: the name the service
//! gave it (`iservice start` prints it) and, when openvpn failed, the last lines openvpn
//! wrote, so that openvpn's own reason reaches the user. On Linux both come from the
//! service's control socket ([`crate::control`]); on Windows from the log file the client
//! gave openvpn. Tests use fakes.

use std::future::Future;
use std::pin::Pin;

/// How many of openvpn's last lines a failure shows.
pub const LOG_TAIL_LINES: u32 = 10;

/// A boxed future, so that the trait can be used as `dyn`.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Option<T>> + Send + 'a>>;

/// Where the command learns about its connection.
pub trait Registry: Send + Sync + std::fmt::Debug {
    /// The connection's name, found by openvpn's process id; `None` when it cannot be had.
    fn name_of(&self, pid: u32) -> Lookup<'_, String>;
    /// The last `lines` lines openvpn wrote (oldest first), once openvpn has exited or after
    /// a short wait; `None` when they cannot be had.
    fn log_tail(&self, pid: u32, lines: u32) -> Lookup<'_, Vec<String>>;
}

/// The exit message with openvpn's last lines appended, one per line, indented.
pub fn with_log_tail(message: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return message.to_owned();
    }
    let mut out = format!("{message}\nopenvpn's last lines:");
    for line in lines {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_log_tail;

    #[test]
    fn the_tail_follows_the_message_one_indented_line_each() {
        let lines = vec![
            "Options error: Unrecognized option or missing or extra parameter(s) in vpn.conf:12: bogus (2.6.14)".to_owned(),
            "Use --help for more information.".to_owned(),
        ];
        assert_eq!(
            with_log_tail("openvpn exited with error code 1", &lines),
            "openvpn exited with error code 1\nopenvpn's last lines:\n  Options error: Unrecognized option or missing or extra parameter(s) in vpn.conf:12: bogus (2.6.14)\n  Use --help for more information."
        );
        assert_eq!(with_log_tail("m", &[]), "m");
    }
}
