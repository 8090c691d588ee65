//! The Windows config-path rule (spec §3.4), as a pure function of strings.
//!
//! Upstream combines a relative path with the working directory (`PathCchCombine`) or
//! canonicalizes an absolute one (`PathCchCanonicalize`), then accepts it iff it starts with
//! `config_dir` (which ends in `\`), compared case-insensitively. The check is lexical.
//!
//! We keep that rule and close the gaps spec §11 lists, refusing rather than guessing whenever
//! the Win32 file APIs could read the text differently from the lexical check:
//! * `/` counts as a separator, as it does when Windows opens a file;
//! * device and verbatim paths (`\\?\`, `\\.\`), UNC paths and root-relative paths are refused;
//! * a `:` anywhere but after a drive letter (alternate data streams, devices) is refused;
//! * a component ending in `.` or space (other than `.`/`..`) is refused, because Windows
//!   strips those when it opens the file;
//! * wildcards, the characters Windows forbids in names and DOS device names are refused;
//! * results of `MAX_PATH` (260) characters or more are refused, as upstream does.
//!
//! The options are passed to openvpn.exe verbatim, and openvpn.exe starts in the same working
//! directory, so it resolves the same text the same way. `config_dir` is writable only by
//! administrators (installer ACLs), so no user can plant a junction inside it.

/// `MAX_PATH`.
pub const MAX_PATH: usize = 260;

fn is_sep(c: char) -> bool {
    c == '\\' || c == '/'
}

fn has_drive(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Whether a component names a DOS device (`CON`, `NUL`, `COM1`, … also with an extension),
/// which Windows opens as the device in any directory.
fn is_device_name(part: &str) -> bool {
    let stem = part
        .split('.')
        .next()
        .unwrap_or(part)
        .trim_end()
        .to_ascii_uppercase();
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit())
}

/// Combines `path` with `dir` when it is relative and canonicalizes the result like Windows
/// would open it. `None` if the text is one of the refused forms.
pub fn canonicalize(dir: &str, path: &str) -> Option<String> {
    let relative = !(path.starts_with(is_sep) || has_drive(path));
    let full = if relative {
        format!("{dir}\\{path}")
    } else {
        path.to_owned()
    };
    if !has_drive(&full) {
        // Root-relative (`\x`), UNC (`\\server`), device and verbatim paths, or a relative
        // working directory.
        return None;
    }
    let (drive, rest) = full.split_at(2);
    if !rest.starts_with(is_sep) {
        // `C:x` is relative to the drive's current directory.
        return None;
    }
    if rest
        .chars()
        .any(|c| matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') || c < ' ')
    {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split(is_sep) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ if part.ends_with('.') || part.ends_with(' ') || is_device_name(part) => return None,
            _ => parts.push(part),
        }
    }
    let mut out = drive.to_ascii_uppercase();
    out.push('\\');
    out.push_str(&parts.join("\\"));
    // A trailing separator of the input names the directory itself; keep it so that
    // `config_dir` with its trailing `\` compares as upstream does.
    if rest.len() > 1 && rest.ends_with(is_sep) && !parts.is_empty() {
        out.push('\\');
    }
    (out.chars().count() < MAX_PATH).then_some(out)
}

/// Whether `canonical` lies under `config_dir` (which ends in `\`): an ASCII case-insensitive
/// prefix test, like upstream's `wcsnicmp`.
pub fn is_under(canonical: &str, config_dir: &str) -> bool {
    let (c, d) = (canonical.as_bytes(), config_dir.as_bytes());
    c.len() >= d.len() && c[..d.len()].eq_ignore_ascii_case(d)
}

/// The full Windows rule: `stdin` is refused; otherwise canonicalize and test the prefix.
/// Returns the canonical path.
pub fn check(config_dir: &str, dir: &str, path: &str) -> Option<String> {
    if path == "stdin" {
        return None;
    }
    let canonical = canonicalize(dir, path)?;
    is_under(&canonical, config_dir).then_some(canonical)
}

/// A [`crate::ConfigPathCheck`] for Windows. It approves the path but the service passes the
/// options on verbatim (byte-identical, spec §10), which is safe because openvpn.exe
/// resolves the same text against the same working directory.
#[derive(Debug, Clone)]
pub struct WindowsConfigCheck {
    /// `config_dir` from the registry, ending in `\`.
    pub config_dir: String,
}

impl crate::ConfigPathCheck for WindowsConfigCheck {
    fn check(&self, dir: &str, path: &str) -> Option<String> {
        check(&self.config_dir, dir, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r"C:\Program Files\OpenVPN\config\";

    fn ok(dir: &str, path: &str) -> bool {
        check(CFG, dir, path).is_some()
    }

    #[test]
    fn relative_inside() {
        assert!(ok(r"C:\Program Files\OpenVPN\config", "a.ovpn"));
        assert!(ok(r"C:\Program Files\OpenVPN\config\sub", r"..\a.ovpn"));
        assert!(ok(r"C:\Program Files\OpenVPN\config\", r".\a.ovpn"));
        assert_eq!(
            check(CFG, r"C:\Program Files\OpenVPN\config", r"sub\.\x.ovpn").unwrap(),
            r"C:\Program Files\OpenVPN\config\sub\x.ovpn"
        );
    }

    #[test]
    fn relative_with_outside_dir_resolving_inside() {
        assert!(ok(
            r"C:\Users\u",
            r"..\..\Program Files\OpenVPN\config\a.ovpn"
        ));
    }

    #[test]
    fn dotdot_escapes() {
        assert!(!ok(r"C:\Program Files\OpenVPN\config", r"..\evil.ovpn"));
        assert!(!ok(
            r"C:\Program Files\OpenVPN\config",
            r"sub\..\..\evil.ovpn"
        ));
        assert!(!ok(
            r"C:\Program Files\OpenVPN\config",
            "sub/../../evil.ovpn"
        ));
        assert!(!ok(
            r"C:\x",
            r"C:\Program Files\OpenVPN\config\..\evil.ovpn"
        ));
        assert!(ok(r"C:\x", r"C:\..\..\Program Files\OpenVPN\config\a.ovpn"));
    }

    #[test]
    fn mixed_case_is_accepted() {
        assert!(ok(r"c:\program files\openvpn\CONFIG", "a.ovpn"));
        assert!(ok(r"C:\x", r"c:\PROGRAM FILES\openvpn\config\a.ovpn"));
    }

    #[test]
    fn sibling_prefix_is_refused() {
        assert!(!ok(r"C:\Program Files\OpenVPN\config-evil", "a.ovpn"));
        assert!(!ok(r"C:\x", r"C:\Program Files\OpenVPN\config-evil\a.ovpn"));
        assert!(!ok(r"C:\Program Files\OpenVPN", "config-evil\\a.ovpn"));
    }

    #[test]
    fn absolute_outside() {
        assert!(!ok(
            r"C:\Program Files\OpenVPN\config",
            r"C:\Users\u\evil.ovpn"
        ));
        assert!(!ok(
            r"C:\Program Files\OpenVPN\config",
            r"D:\Program Files\OpenVPN\config\a.ovpn"
        ));
    }

    #[test]
    fn stdin_is_refused() {
        assert!(!ok(r"C:\Program Files\OpenVPN\config", "stdin"));
        // Only the exact word: a file named STDIN inside config_dir is a file.
        assert!(ok(r"C:\Program Files\OpenVPN\config", "STDIN"));
    }

    #[test]
    fn win32_normalization_forms_are_refused() {
        let dir = r"C:\Program Files\OpenVPN\config";
        for path in [
            r"\\?\C:\Program Files\OpenVPN\config\a.ovpn",
            r"\\.\C:\Program Files\OpenVPN\config\a.ovpn",
            r"\\127.0.0.1\c$\Program Files\OpenVPN\config\a.ovpn",
            r"\Program Files\OpenVPN\config\a.ovpn",
            r"C:Program Files\OpenVPN\config\a.ovpn",
            "a.ovpn:stream",
            "a.ovpn.",
            "a.ovpn ",
            r"sub.\a.ovpn",
            "a*.ovpn",
            "a\u{1}.ovpn",
            "CON:",
            "NUL",
            r"sub\con.ovpn",
            "COM1.txt",
        ] {
            assert!(!ok(dir, path), "{path}");
        }
        // A relative working directory cannot anchor anything.
        assert!(!ok("config", "a.ovpn"));
    }

    #[test]
    fn max_path() {
        let long = "a".repeat(MAX_PATH - CFG.len());
        assert!(!ok(r"C:\Program Files\OpenVPN\config", &long));
        let fits = "a".repeat(MAX_PATH - CFG.len() - 1);
        assert!(ok(r"C:\Program Files\OpenVPN\config", &fits));
    }

    #[test]
    fn config_dir_itself_is_under() {
        assert!(is_under(CFG, CFG));
        assert!(!is_under(r"C:\Program Files\OpenVPN\config", CFG));
    }
}
