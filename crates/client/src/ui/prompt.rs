//! Asking for credentials on the terminal, secrets without echo.

use std::io::{self, BufRead, Write};

use zeroize::Zeroizing;

use crate::connect::{Answer, NeedAnswer, PromptError, PromptRequest, Prompter};
use crate::mgmt::NeedRequest;

/// Prompts on the controlling terminal.
#[derive(Debug, Default)]
pub struct TerminalPrompter;

/// The terminal's settings when the command started, put back when it ends. A password
/// prompt still waiting when the command ends (openvpn ended while the user typed) has turned
/// echo off and is never finished, so without this the shell would be left without echo.
#[derive(Debug)]
pub struct TerminalRestore {
    #[cfg(unix)]
    saved: Option<(std::fs::File, rustix::termios::Termios)>,
}

impl TerminalRestore {
    /// Saves the settings of the controlling terminal, if there is one.
    pub fn save() -> Self {
        #[cfg(unix)]
        {
            let saved = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/tty")
                .ok()
                .and_then(|tty| {
                    let termios = rustix::termios::tcgetattr(&tty).ok()?;
                    Some((tty, termios))
                });
            Self { saved }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }
}

impl Drop for TerminalRestore {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some((tty, termios)) = &self.saved {
            let _ = rustix::termios::tcsetattr(tty, rustix::termios::OptionalActions::Now, termios);
        }
    }
}

/// Whether there is a terminal to ask on.
pub fn can_prompt() -> bool {
    #[cfg(unix)]
    {
        std::fs::File::open("/dev/tty").is_ok()
    }
    #[cfg(not(unix))]
    {
        use std::io::IsTerminal;
        io::stdin().is_terminal()
    }
}

/// Reads a line with echo (user names, echoed challenge answers).
fn read_line(label: &str) -> io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    #[cfg(unix)]
    {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")?;
        (&tty).write_all(label.as_bytes())?;
        (&tty).flush()?;
        io::BufReader::new(&tty).read_line(&mut line)?;
    }
    #[cfg(not(unix))]
    {
        let mut err = io::stderr();
        err.write_all(label.as_bytes())?;
        err.flush()?;
        io::stdin().lock().read_line(&mut line)?;
    }
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "end of input"));
    }
    let trimmed = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// Reads a confirmation: Enter, `ok`, `y` or `yes` confirm; `cancel`, `n` or `no` refuse;
/// anything else is `None` (ask again).
pub fn parse_confirmation(line: &str) -> Option<bool> {
    match line.trim().to_ascii_lowercase().as_str() {
        "" | "ok" | "y" | "yes" => Some(true),
        "cancel" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn read_secret(label: &str) -> io::Result<Zeroizing<String>> {
    match rpassword::prompt_password(label) {
        // Ctrl-C while typing: the terminal is back as it was and SIGINT was raised, which
        // reaches the command as an interrupt and ends the session (exit code 7). Returning
        // an error here would race with it and be reported as a failed authentication, so
        // the prompt stays open, like the line prompts, until the command ends.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => loop {
            std::thread::park();
        },
        other => other.map(Zeroizing::new),
    }
}

impl Prompter for TerminalPrompter {
    fn ask(&self, request: &PromptRequest) -> Result<Answer, PromptError> {
        let mut answer = Answer::default();
        if request.username {
            answer.username = Some(read_line("Username: ")?);
        }
        if request.secret {
            answer.secret = read_secret(&format!("{}: ", request.secret_label()))?;
        }
        if let Some(challenge) = &request.challenge {
            let label = format!("{}: ", challenge.text);
            let response = if challenge.echo {
                read_line(&label)
            } else {
                read_secret(&label)
            };
            answer.response = Some(response?);
        }
        Ok(answer)
    }

    fn need(&self, request: &NeedRequest) -> Result<NeedAnswer, PromptError> {
        let text = if request.message.is_empty() {
            format!("openvpn asks for '{}'", request.name)
        } else {
            request.message.clone()
        };
        if request.input {
            return read_line(&format!("{text}: "))
                .map(NeedAnswer::Text)
                .map_err(PromptError::from);
        }
        for _ in 0..3 {
            let line = read_line(&format!("{text} [Enter to confirm, or type cancel]: "))?;
            match parse_confirmation(&line) {
                Some(true) => return Ok(NeedAnswer::Ok),
                Some(false) => return Ok(NeedAnswer::Cancel),
                None => {}
            }
        }
        Err(PromptError::Unrecognised)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_confirmation;

    #[test]
    fn confirmations() {
        for yes in ["", "ok", "OK", " y ", "yes", "Yes\r"] {
            assert_eq!(parse_confirmation(yes), Some(true), "{yes:?}");
        }
        for no in ["cancel", "CANCEL", "n", "no"] {
            assert_eq!(parse_confirmation(no), Some(false), "{no:?}");
        }
        for unclear in ["okay", "nope", "y es", "1"] {
            assert_eq!(parse_confirmation(unclear), None, "{unclear:?}");
        }
    }
}
