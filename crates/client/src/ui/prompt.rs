//! Asking for credentials on the terminal, secrets without echo.

use std::io::{self, BufRead, Write};

use zeroize::Zeroizing;

use crate::connect::{Answer, PromptRequest, Prompter};

/// Prompts on the controlling terminal.
#[derive(Debug, Default)]
pub struct TerminalPrompter;

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

fn read_secret(label: &str) -> io::Result<Zeroizing<String>> {
    rpassword::prompt_password(label).map(Zeroizing::new)
}

impl Prompter for TerminalPrompter {
    fn ask(&self, request: &PromptRequest) -> Result<Answer, String> {
        let fail = |e: io::Error| format!("reading from the terminal failed: {e}");
        let mut answer = Answer::default();
        if request.username {
            answer.username = Some(read_line("Username: ").map_err(fail)?);
        }
        if request.secret {
            answer.secret = read_secret(&format!("{}: ", request.secret_label())).map_err(fail)?;
        }
        if let Some(challenge) = &request.challenge {
            let label = format!("{}: ", challenge.text);
            let response = if challenge.echo {
                read_line(&label)
            } else {
                read_secret(&label)
            };
            answer.response = Some(response.map_err(fail)?);
        }
        Ok(answer)
    }
}
