//! The option whitelist and its rules (spec §3.2, §3.3, §3.5).

use crate::split::{command_line_to_argv, crt_args};

/// Options an ordinary user may pass (spec §3.3). Exact, case-sensitive names.
pub const WHITELIST: &[&str] = &[
    "auth-retry",
    "config",
    "log",
    "log-append",
    "management",
    "management-forget-disconnect",
    "management-hold",
    "management-query-passwords",
    "management-query-proxy",
    "management-signal",
    "management-up-down",
    "mute",
    "setenv",
    "service",
    "verb",
    "pull-filter",
    "script-security",
];

/// Checks a `--config` argument and says which file openvpn must be given.
pub trait ConfigPathCheck {
    /// `Some(path to hand openvpn)` if `path`, relative to `dir`, is an allowed config file;
    /// `None` otherwise. Implementations log their reason.
    fn check(&self, dir: &str, path: &str) -> Option<String>;
}

/// Why options were refused. Its `Display` is the exact upstream text minus the group
/// sentence; use [`Refusal::message`] for the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A config file outside the config directory (or `stdin`).
    #[error("config file location {path} relative to {dir} is not allowed")]
    ConfigLocation {
        /// The path as given.
        path: String,
        /// The working directory it is relative to.
        dir: String,
    },
    /// An option outside the whitelist, `--setenv opt`, or text the two Windows parsers read
    /// differently.
    #[error("option {token} is not allowed")]
    Option {
        /// The offending token.
        token: String,
    },
}

impl Refusal {
    /// The exact reply text of spec §3.5.
    pub fn message(&self, admin_group: &str) -> String {
        match self {
            Refusal::ConfigLocation { path, dir } => format!(
                "You have specified a config file location ({path} relative to {dir}) that requires admin approval. This error may be avoided by adding your account to the \"{admin_group}\" group"
            ),
            Refusal::Option { token } => format!(
                "You have specified an option ({token}) that may be used only with admin approval. This error may be avoided by adding your account to the \"{admin_group}\" group"
            ),
        }
    }
}

/// Validates tokens by the rules of spec §3.2/§3.3 and returns the argv to run openvpn with:
/// the same tokens, with every checked config path replaced by what the checker returned,
/// and a lone token turned into `--config <path>`.
pub fn validate_tokens(
    tokens: &[String],
    dir: &str,
    checker: &impl ConfigPathCheck,
) -> Result<Vec<String>, Refusal> {
    let refuse_config = |path: &str| Refusal::ConfigLocation {
        path: path.to_owned(),
        dir: dir.to_owned(),
    };
    if tokens.len() == 1 {
        let lone = &tokens[0];
        let resolved = checker
            .check(dir, lone)
            .ok_or_else(|| refuse_config(lone))?;
        return Ok(vec!["--config".to_owned(), resolved]);
    }
    let mut argv = tokens.to_vec();
    for (i, token) in tokens.iter().enumerate() {
        let Some(name) = token.strip_prefix("--") else {
            continue;
        };
        let next = tokens.get(i + 1);
        if token == "--config" {
            if let Some(path) = next {
                argv[i + 1] = checker
                    .check(dir, path)
                    .ok_or_else(|| refuse_config(path))?;
            }
        }
        if !WHITELIST.contains(&name) {
            return Err(Refusal::Option {
                token: token.clone(),
            });
        }
        if token == "--setenv" && next.is_some_and(|n| n == "opt") {
            return Err(Refusal::Option {
                token: token.clone(),
            });
        }
    }
    Ok(argv)
}

/// Validates an options string as the Linux service runs it: split once with the
/// `CommandLineToArgvW` rules, and the resulting tokens are exactly openvpn's argv.
pub fn validate_linux(
    options: &str,
    dir: &str,
    checker: &impl ConfigPathCheck,
) -> Result<Vec<String>, Refusal> {
    validate_tokens(&command_line_to_argv(options), dir, checker)
}

/// Validates an options string as the Windows service passes it on verbatim: upstream's
/// `CommandLineToArgvW` split must pass, and so must the split openvpn.exe's C runtime makes of
/// the same text, which must not end inside quotes (it would swallow `--msg-channel`).
pub fn validate_windows(
    options: &str,
    dir: &str,
    checker: &impl ConfigPathCheck,
) -> Result<(), Refusal> {
    let upstream = command_line_to_argv(options);
    validate_tokens(&upstream, dir, checker)?;
    let (crt, open_quote) = crt_args(options);
    if crt != upstream {
        validate_tokens(&crt, dir, checker)?;
    }
    if open_quote {
        return Err(Refusal::Option {
            token: crt.last().cloned().unwrap_or_default(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts paths that start with `good/` and returns them prefixed by `/canon/`.
    struct Prefix;
    impl ConfigPathCheck for Prefix {
        fn check(&self, _dir: &str, path: &str) -> Option<String> {
            path.starts_with("good/").then(|| format!("/canon/{path}"))
        }
    }

    fn linux(options: &str) -> Result<Vec<String>, Refusal> {
        validate_linux(options, "/d", &Prefix)
    }

    fn option(token: &str) -> Result<Vec<String>, Refusal> {
        Err(Refusal::Option {
            token: token.into(),
        })
    }

    fn config(path: &str) -> Result<Vec<String>, Refusal> {
        Err(Refusal::ConfigLocation {
            path: path.into(),
            dir: "/d".into(),
        })
    }

    #[test]
    fn whitelisted_options_pass_and_config_is_rewritten() {
        assert_eq!(
            linux("--config good/a.ovpn --verb 3 --log x.log"),
            Ok(vec![
                "--config",
                "/canon/good/a.ovpn",
                "--verb",
                "3",
                "--log",
                "x.log"
            ]
            .into_iter()
            .map(String::from)
            .collect())
        );
        assert_eq!(linux(""), Ok(vec![]));
    }

    #[test]
    fn single_token_means_config() {
        assert_eq!(
            linux("good/a.ovpn"),
            Ok(vec!["--config".into(), "/canon/good/a.ovpn".into()])
        );
        assert_eq!(linux("bad.ovpn"), config("bad.ovpn"));
        // Even a lone option name is a config path.
        assert_eq!(linux("--plugin"), config("--plugin"));
    }

    #[test]
    fn not_whitelisted() {
        assert_eq!(linux("--config good/a --plugin x.so"), option("--plugin"));
        assert_eq!(linux("--config good/a --up /tmp/x"), option("--up"));
        assert_eq!(linux("--config good/a --cd /"), option("--cd"));
        assert_eq!(
            linux("--config good/a --Verb 3"),
            option("--Verb"),
            "case-sensitive"
        );
        assert_eq!(linux("--config good/a --"), option("--"));
    }

    #[test]
    fn first_failure_is_reported() {
        assert_eq!(linux("--plugin a --up b"), option("--plugin"));
        assert_eq!(linux("--config bad --plugin a"), config("bad"));
        assert_eq!(linux("--plugin a --config bad"), option("--plugin"));
    }

    #[test]
    fn config_at_end_is_not_path_checked() {
        assert_eq!(
            linux("--verb 3 --config"),
            Ok(vec!["--verb".into(), "3".into(), "--config".into()])
        );
    }

    #[test]
    fn parameters_are_skipped() {
        // Tokens that do not start with "--" are parameters, even "-x".
        assert_eq!(
            linux("--verb -plugin"),
            Ok(vec!["--verb".into(), "-plugin".into()])
        );
        // A parameter that starts with "--" is checked as an option.
        assert_eq!(linux("--setenv --plugin x"), option("--plugin"));
    }

    #[test]
    fn setenv_opt_cve_2026_63649() {
        assert_eq!(
            linux("--config good/a --setenv opt plugin x.so"),
            option("--setenv")
        );
        assert_eq!(
            linux("--setenv OPT x"),
            Ok(vec!["--setenv".into(), "OPT".into(), "x".into()])
        );
        assert_eq!(
            linux("--setenv FOO opt"),
            Ok(vec!["--setenv".into(), "FOO".into(), "opt".into()])
        );
    }

    #[test]
    fn every_config_occurrence_is_checked() {
        assert_eq!(linux("--config good/a --config bad"), config("bad"));
    }

    #[test]
    fn refusal_texts() {
        let group = "OpenVPN Administrators";
        assert_eq!(
            Refusal::ConfigLocation { path: "x.ovpn".into(), dir: "C:\\d".into() }.message(group),
            "You have specified a config file location (x.ovpn relative to C:\\d) that requires admin approval. This error may be avoided by adding your account to the \"OpenVPN Administrators\" group"
        );
        assert_eq!(
            Refusal::Option { token: "--plugin".into() }.message(group),
            "You have specified an option (--plugin) that may be used only with admin approval. This error may be avoided by adding your account to the \"OpenVPN Administrators\" group"
        );
    }

    #[test]
    fn windows_checks_both_parsers() {
        let ok = |o: &str| validate_windows(o, "/d", &Prefix);
        assert_eq!(ok("--config good/a --verb 3"), Ok(()));
        // CommandLineToArgvW reads one token (a config path that passes); the C runtime reads
        // the same text differently and must pass too.
        assert_eq!(
            ok(r#""good/x --plugin y"#),
            Err(Refusal::Option {
                token: "good/x --plugin y".into()
            })
        );
        // Upstream: `a\"` is a (bad) config-style first token; C runtime: `a"`, --plugin.
        assert!(ok(r#"--verb 3 --config good/a\" --plugin y ""#).is_err());
        // Unbalanced quote at the end.
        assert_eq!(
            ok(r#"--config "good/a"#),
            Err(Refusal::Option {
                token: "good/a".into()
            })
        );
    }
}
