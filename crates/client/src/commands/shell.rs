//! Shell completions and the man page, generated from the command definitions
//! ([`crate::cli`]); the Debian package installs their output (scripts/package.sh).

use std::io::Write;

/// Writes the completion script for `shell`; the exit code.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> u8 {
    let mut command = crate::cli::command();
    clap_complete::generate(shell, &mut command, "iservice", out);
    0
}

/// Writes the man page (roff): the command, then a section per subcommand.
pub fn man(out: &mut dyn Write) -> u8 {
    match render_man(out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("iservice: error: cannot write the man page: {e}");
            1
        }
    }
}

fn render_man(out: &mut dyn Write) -> std::io::Result<()> {
    let command = crate::cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SS \"iservice {name}\"")?;
        let mut usage = sub.clone().bin_name(format!("iservice {name}"));
        writeln!(out, "{}", roff_escape(&usage.render_usage().to_string()))?;
        if let Some(about) = sub.get_about() {
            writeln!(out, ".PP\n{}", roff_escape(&about.to_string()))?;
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(s), Some(l)) => format!("\\-{s}, \\-\\-{l}"),
                (None, Some(l)) => format!("\\-\\-{l}"),
                (Some(s), None) => format!("\\-{s}"),
                (None, None) => arg.get_id().as_str().to_uppercase(),
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            writeln!(out, ".TP\n\\fB{flag}\\fR\n{}", roff_escape(&help))?;
        }
    }
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in [
        (
            "0",
            "success (connect: connected, then disconnected; start: connected and left running)",
        ),
        ("1", "a local problem (files, arguments, terminal)"),
        ("2", "usage error"),
        ("3", "the service is not running, busy, or did not answer"),
        ("4", "the service refused to start openvpn"),
        ("5", "authentication failed"),
        ("6", "openvpn failed (its last lines are shown)"),
        ("7", "interrupted before the connection was up"),
        ("8", "no connection by that name"),
        ("9", "the connection belongs to another user"),
    ] {
        writeln!(out, ".TP\n{code}\n{meaning}")?;
    }
    writeln!(
        out,
        ".SH \"SEE ALSO\"\nopenvpn(8), /usr/share/doc/openvpnserv/ISERVICE.md"
    )?;
    man.render_version_section(out)?;
    Ok(())
}

/// Escapes text for roff: backslashes, and a leading dot or quote.
fn roff_escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBCOMMANDS: [&str; 7] = [
        "connect", "start", "list", "status", "stop", "restart", "log",
    ];

    fn text(f: impl FnOnce(&mut Vec<u8>) -> u8) -> String {
        let mut out = Vec::new();
        assert_eq!(f(&mut out), 0);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_name_every_subcommand_in_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = text(|out| completions(shell, out));
            for sub in SUBCOMMANDS {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn the_man_page_has_a_section_per_subcommand_and_the_exit_codes() {
        let page = text(|out| man(out));
        assert!(page.contains("\n.TH iservice 1 "), "{}", &page[..80]);
        for sub in SUBCOMMANDS {
            assert!(
                page.contains(&format!(".SS \"iservice {sub}\"")),
                "no {sub}"
            );
        }
        assert!(page.contains("\\-\\-follow"));
        assert!(page.contains(".SH \"EXIT STATUS\""));
        assert!(
            !page.contains("completions"),
            "hidden commands are not documented"
        );
    }
}
