//! What the hook needs from the user's openvpn config: its own scripts and whether it asks
//! for `block-outside-dns`.
//!
//! The service appends `--up`, `--route-up`, `--route-pre-down` and `--down` pointing to our
//! hook, which take the place of the config's own (openvpn keeps the last occurrence). The
//! hook then runs the config's scripts itself, as the user, with the same environment
//! (design §2). It learns them by reading the config file openvpn names in `$config`: the hook
//! runs as the user, so it reads nothing the user could not, and a config it cannot read only
//! means no user scripts. Options given on the command line, and files pulled in with a nested
//! `config`, are not looked at.
//!
//! openvpn on Linux refuses `block-outside-dns` (a Windows option) unless the config wraps it
//! as `setenv opt block-outside-dns`; both spellings count here.

use crate::linux::hook::Phase;

/// The config's own script commands and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserConfig {
    /// `up` command.
    pub up: Option<String>,
    /// `route-up` command.
    pub route_up: Option<String>,
    /// `route-pre-down` command.
    pub route_pre_down: Option<String>,
    /// `down` command.
    pub down: Option<String>,
    /// `block-outside-dns` was given.
    pub block_outside_dns: bool,
}

impl UserConfig {
    /// The user's command for a phase.
    pub fn script(&self, phase: Phase) -> Option<&str> {
        match phase {
            Phase::Up => self.up.as_deref(),
            Phase::RouteUp => self.route_up.as_deref(),
            Phase::RoutePreDown => self.route_pre_down.as_deref(),
            Phase::Down => self.down.as_deref(),
        }
    }
}

/// Splits one config line into words the way openvpn does: blanks separate, `"..."` groups
/// (with `\` escaping inside), `'...'` groups literally, `\` escapes outside quotes, and `#`
/// or `;` at the start of a word begins a comment.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' | ';' if !in_word => break,
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        q => cur.push(q),
                    }
                }
            }
            '\'' => {
                in_word = true;
                cur.extend(chars.by_ref().take_while(|&q| q != '\''));
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Reads a config's text.
pub fn scan(text: &str) -> UserConfig {
    let mut cfg = UserConfig::default();
    let mut inline_end: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(end) = &inline_end {
            if trimmed == end {
                inline_end = None;
            }
            continue;
        }
        if let Some(tag) = trimmed.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            if !tag.starts_with('/') {
                inline_end = Some(format!("</{tag}>"));
                continue;
            }
        }
        let w = words(line);
        let Some(first) = w.first() else { continue };
        let option = first.trim_start_matches("--");
        let value = w.get(1).cloned();
        match option {
            "up" => cfg.up = value,
            "route-up" => cfg.route_up = value,
            "route-pre-down" => cfg.route_pre_down = value,
            "down" => cfg.down = value,
            "block-outside-dns" => cfg.block_outside_dns = true,
            "setenv"
                if w.get(1).map(String::as_str) == Some("opt")
                    && w.get(2).map(String::as_str) == Some("block-outside-dns") =>
            {
                cfg.block_outside_dns = true;
            }
            _ => {}
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_like_openvpn() {
        assert_eq!(
            words(r#"up "/x/my script.sh" arg"#),
            ["up", "/x/my script.sh", "arg"]
        );
        assert_eq!(words(r"up '/a b\c'"), ["up", r"/a b\c"]);
        assert_eq!(words(r"up /a\ b # comment"), ["up", "/a b"]);
        assert_eq!(words("  ; all comment"), Vec::<String>::new());
        assert_eq!(words(r#"x "a\"b""#), ["x", "a\"b"]);
    }

    #[test]
    fn finds_scripts_last_wins_and_skips_inline_blocks() {
        let cfg = scan(
            "client\nup /bin/first\n<key>\nup /in/a/key/block\n</key>\n--up \"/bin/second --x\"\n\
             down /bin/d\nroute-pre-down /bin/p\nsetenv opt block-outside-dns\n# route-up /no\n",
        );
        assert_eq!(cfg.up.as_deref(), Some("/bin/second --x"));
        assert_eq!(cfg.script(Phase::Down), Some("/bin/d"));
        assert_eq!(cfg.script(Phase::RoutePreDown), Some("/bin/p"));
        assert_eq!(cfg.script(Phase::RouteUp), None);
        assert!(cfg.block_outside_dns);
        assert!(!scan("setenv opt verb 3\n").block_outside_dns);
    }
}
