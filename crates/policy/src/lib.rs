//! What a caller may ask the service to start (spec §3), as pure decisions.
//!
//! * [`split`]: the two Windows command-line parsers.
//! * [`options`]: the whitelist and its rules, and the exact refusal texts.
//! * [`path`]: where a config file may live ([`path::windows`], and `path::linux` on Unix).
//! * [`authz`]: who may bypass all of that.
//!
//! The decision of spec §3.1: options are validated first; only if that fails is the caller's
//! authorization consulted; if both fail the first validation failure is reported.
#![forbid(unsafe_code)]

pub mod authz;
pub mod options;
pub mod path;
pub mod split;

pub use authz::{authorize, AuthSettings, Authorization, Caller, Membership};
pub use options::{ConfigPathCheck, Refusal};

/// Why a request was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    /// The options passed every rule.
    Validated,
    /// The options did not, but the caller is authorized (the refusal it overrode is kept
    /// for the log).
    Authorized(Authorization, Refusal),
}

/// The outcome for the Linux service: openvpn's argv (without argv\[0\]) or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start openvpn with these arguments.
    Allowed {
        /// The arguments: validated options with canonical config paths, or, for an
        /// authorized caller whose options did not validate, the options as split.
        argv: Vec<String>,
        /// Why.
        allowance: Allowance,
    },
    /// Refuse with this reason (the first failure).
    Refused(Refusal),
}

/// The decision of the Linux service.
pub fn decide_linux(
    options: &str,
    dir: &str,
    checker: &impl ConfigPathCheck,
    caller: &Caller,
    membership: &impl Membership,
    settings: &AuthSettings,
) -> Decision {
    match options::validate_linux(options, dir, checker) {
        Ok(argv) => Decision::Allowed {
            argv,
            allowance: Allowance::Validated,
        },
        Err(refusal) => match authorize(caller, membership, settings) {
            Some(auth) => Decision::Allowed {
                argv: split::command_line_to_argv(options),
                allowance: Allowance::Authorized(auth, refusal),
            },
            None => Decision::Refused(refusal),
        },
    }
}

/// The decision of the Windows service, which passes the options on verbatim.
pub fn decide_windows(
    options: &str,
    dir: &str,
    checker: &impl ConfigPathCheck,
    caller: &Caller,
    membership: &impl Membership,
    settings: &AuthSettings,
) -> Result<Allowance, Refusal> {
    match options::validate_windows(options, dir, checker) {
        Ok(()) => Ok(Allowance::Validated),
        Err(refusal) => authorize(caller, membership, settings)
            .map(|auth| Allowance::Authorized(auth, refusal.clone()))
            .ok_or(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use path::windows::WindowsConfigCheck;

    struct Groups(&'static [&'static str]);
    impl Membership for Groups {
        fn is_member(&self, group: &str) -> bool {
            self.0.contains(&group)
        }
    }

    fn settings() -> AuthSettings {
        AuthSettings {
            admin_groups: vec!["Administrators".into(), "OpenVPN Administrators".into()],
            service_user: "OpenVPNService".into(),
            service_domain: "NT SERVICE".into(),
        }
    }

    fn user() -> Caller {
        Caller {
            user: "u".into(),
            domain: "PC".into(),
            superuser: false,
        }
    }

    fn check() -> WindowsConfigCheck {
        WindowsConfigCheck {
            config_dir: r"C:\Program Files\OpenVPN\config\".into(),
        }
    }

    const DIR: &str = r"C:\Program Files\OpenVPN\config";

    /// The security-history policy cases of spec §9, for a user outside every group and for
    /// an administrator.
    #[test]
    fn security_history_cases() {
        let refused: &[(&str, &str)] = &[
            ("--config stdin", DIR),                            // stdin as config
            ("--config a.ovpn --setenv opt plugin x.dll", DIR), // CVE-2026-63649
            ("--config a.ovpn", r"C:\Program Files\OpenVPN\config-evil"), // sibling prefix
            (r"--config ..\evil.ovpn", DIR),                    // ..
            ("--config a.ovpn --plugin x.dll", DIR),            // CVE-2024-27903
            (r"--config C:\Users\u\evil.ovpn", DIR),            // absolute outside
        ];
        for (options, dir) in refused {
            assert!(
                decide_windows(options, dir, &check(), &user(), &Groups(&[]), &settings()).is_err(),
                "{options}"
            );
            assert!(matches!(
                decide_windows(
                    options,
                    dir,
                    &check(),
                    &user(),
                    &Groups(&["OpenVPN Administrators"]),
                    &settings()
                ),
                Ok(Allowance::Authorized(Authorization::Group(_), _))
            ));
        }
        let allowed: &[(&str, &str)] = &[
            (r"--config A.OVPN", r"c:\PROGRAM FILES\openvpn\Config"), // mixed case
            (
                r#"--config "..\..\Program Files\OpenVPN\config\a.ovpn""#,
                r"C:\Users\u",
            ),
        ];
        for (options, dir) in allowed {
            assert_eq!(
                decide_windows(options, dir, &check(), &user(), &Groups(&[]), &settings()),
                Ok(Allowance::Validated),
                "{options}"
            );
        }
    }

    #[test]
    fn setenv_opt_reports_setenv() {
        assert_eq!(
            decide_windows(
                "--setenv opt plugin x.dll",
                DIR,
                &check(),
                &user(),
                &Groups(&[]),
                &settings()
            ),
            Err(Refusal::Option {
                token: "--setenv".into()
            })
        );
    }

    #[test]
    fn authorized_linux_caller_gets_options_verbatim() {
        let root = Caller {
            user: "root".into(),
            domain: String::new(),
            superuser: true,
        };
        let d = decide_linux(
            "--config /tmp/x.ovpn --verb 4",
            "/",
            &check(),
            &root,
            &Groups(&[]),
            &settings(),
        );
        assert_eq!(
            d,
            Decision::Allowed {
                argv: vec![
                    "--config".into(),
                    "/tmp/x.ovpn".into(),
                    "--verb".into(),
                    "4".into()
                ],
                allowance: Allowance::Authorized(
                    Authorization::Superuser,
                    Refusal::ConfigLocation {
                        path: "/tmp/x.ovpn".into(),
                        dir: "/".into()
                    }
                ),
            }
        );
    }
}
