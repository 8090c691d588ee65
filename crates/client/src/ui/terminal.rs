//! The live terminal display: a spinner line with the current state and the elapsed time,
//! and one printed line per milestone (state transitions, addresses, errors).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::connect::Event;
use crate::mgmt::StateName;

/// Shows events on stderr.
pub struct TerminalSink {
    spinner: Option<ProgressBar>,
    live: bool,
    verbose: bool,
    status: String,
    elapsed: Duration,
    started: Instant,
}

impl TerminalSink {
    /// A display on stderr; the spinner only when stderr is a terminal. `verbose` shows
    /// openvpn's whole log instead of its warnings and errors.
    pub fn new(verbose: bool) -> Self {
        let mut sink = Self {
            spinner: None,
            live: std::io::stderr().is_terminal(),
            verbose,
            status: "contacting the service".to_owned(),
            elapsed: Duration::ZERO,
            started: Instant::now(),
        };
        sink.show_spinner();
        sink
    }

    fn show_spinner(&mut self) {
        if !self.live || self.spinner.is_some() {
            return;
        }
        // After a prompt the spinner is made anew; it keeps counting from the start.
        let bar = ProgressBar::new_spinner().with_elapsed(self.started.elapsed());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(self.status.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.spinner = Some(bar);
    }

    fn line(&self, text: &str) {
        match &self.spinner {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn set_status(&mut self, status: String) {
        if let Some(bar) = &self.spinner {
            bar.set_message(status.clone());
        }
        self.status = status;
    }

    fn stamp(&self, text: &str) {
        self.line(&format!("[{:>6.1}s] {text}", self.elapsed.as_secs_f64()));
    }
}

/// On Linux the service applies routes for openvpn (through its hook); openvpn, running as
/// the user, still tries to add them itself, fails with EPERM by design (that attempt is what
/// tells the hook about `redirect-gateway`), and so reports `CONNECTED` with `ROUTE_ERROR`.
const ROUTES_APPLIED_BY_SERVICE: bool = cfg!(target_os = "linux");

/// openvpn's messages about those expected failures, and its standard note on
/// `--script-security` (the service runs its hook as a script): shown only with `-v`. A real
/// refusal by the service still shows, as the hook's failure ("Failed running command").
fn expected_noise(message: &str) -> bool {
    ROUTES_APPLIED_BY_SERVICE
        && (message.starts_with("sitnl_send: rtnl: generic error")
            || message.starts_with("ERROR: Linux route add command failed")
            || message.starts_with("ERROR: Linux route delete command failed")
            || message.starts_with("NOTE: the current --script-security setting may allow"))
}

impl crate::connect::Sink for TerminalSink {
    #[allow(clippy::too_many_lines)] // one arm per event kind
    fn event(&mut self, elapsed: Duration, event: &Event) {
        self.elapsed = elapsed;
        match event {
            Event::ServiceConnected { endpoint } => {
                if self.verbose {
                    self.stamp(&format!("connected to the service at {endpoint}"));
                }
            }
            Event::Started { pid, management } => {
                self.stamp(&format!("openvpn started by the service (process {pid})"));
                if self.verbose {
                    self.stamp(&format!("management interface: {management}"));
                }
                self.set_status("starting openvpn".to_owned());
            }
            // The prompt shows these itself.
            Event::Refused { .. } | Event::PasswordRequest { .. } | Event::Question { .. } => {}
            Event::ManagementConnected
            | Event::Hold { .. }
            | Event::Info { .. }
            | Event::Notification { .. } => {
                if self.verbose {
                    self.stamp(&format!("{event:?}"));
                }
            }
            Event::State {
                state,
                description,
                local_ipv4,
                local_ipv6,
                remote_address,
                remote_port,
                ..
            } => {
                let name = StateName::parse(state);
                let mut text = format!("{state:<12} {}", name.describe());
                if !description.is_empty()
                    && description != "SUCCESS"
                    && !(description == "ROUTE_ERROR" && ROUTES_APPLIED_BY_SERVICE && !self.verbose)
                {
                    let _ = write!(text, " ({description})");
                }
                let addresses: Vec<&str> = [local_ipv4, local_ipv6]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if !addresses.is_empty() {
                    let _ = write!(text, ": {}", addresses.join(", "));
                }
                if let (StateName::Connected, Some(remote)) = (&name, remote_address) {
                    let port = remote_port.map_or_else(String::new, |p| format!(":{p}"));
                    let _ = write!(text, " via {remote}{port}");
                }
                self.stamp(&text);
                let status = if name == StateName::Connected {
                    format!("connected {}", addresses.join(" "))
                } else {
                    format!("{state} {}", name.describe())
                };
                self.set_status(status);
            }
            Event::Log { level, message } => {
                let shown = self.verbose && *level != "debug"
                    || matches!(*level, "fatal" | "error" | "warning") && !expected_noise(message);
                if shown {
                    self.stamp(&format!("openvpn {level}: {message}"));
                }
            }
            Event::AuthFailed { kind, retry } => {
                let next = if *retry { "; try again" } else { "" };
                self.stamp(&format!("authentication failed ({kind}){next}"));
            }
            Event::Bytecount {
                bytes_in,
                bytes_out,
            } => {
                if self.status.starts_with("connected") {
                    let base = self
                        .status
                        .split(" · ")
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    self.set_status(format!(
                        "{base} · in {} · out {}",
                        super::bytes(*bytes_in),
                        super::bytes(*bytes_out)
                    ));
                }
            }
            Event::Fatal { message } => self.stamp(&format!("openvpn fatal error: {message}")),
            Event::ServiceError {
                code,
                function,
                text,
                ..
            } => self.stamp(&format!(
                "service: {}",
                crate::service::describe(*code, function, text)
            )),
            Event::Stopping { reason } => {
                self.stamp(&format!("disconnecting ({reason})"));
                self.set_status("disconnecting".to_owned());
            }
            Event::Warning { message } => self.stamp(&format!("warning: {message}")),
            Event::Connection { name, pid } => {
                self.stamp(&format!("connection {name} (openvpn process {pid})"));
            }
            Event::Restarting { name, config } => self.stamp(&format!(
                "{name}: the previous openvpn has exited; starting {config} again"
            )),
            Event::Exit { code, message, .. } => {
                if let Some(bar) = self.spinner.take() {
                    bar.finish_and_clear();
                }
                let prefix = if *code == 0 { "" } else { "error: " };
                eprintln!("iservice: {prefix}{message}");
            }
        }
    }

    fn prompting(&mut self, active: bool) {
        if active {
            if let Some(bar) = self.spinner.take() {
                bar.finish_and_clear();
            }
        } else {
            self.show_spinner();
        }
    }
}

#[cfg(test)]
mod noise_tests {
    use super::expected_noise;

    #[test]
    fn only_openvpns_own_route_attempts_are_quiet() {
        let quiet = [
            "sitnl_send: rtnl: generic error (-1): Operation not permitted",
            "ERROR: Linux route add command failed",
            "NOTE: the current --script-security setting may allow this configuration to call user-defined scripts",
        ];
        let loud = [
            "WARNING: Failed running command (--route-up): external program exited with error status: 1",
            "Options error: --dev is missing",
            "ERROR: Cannot open TUN/TAP dev /dev/net/tun: Permission denied",
        ];
        for m in quiet {
            assert_eq!(expected_noise(m), cfg!(target_os = "linux"), "{m}");
        }
        for m in loud {
            assert!(!expected_noise(m), "{m}");
        }
    }
}
