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
    /// `route-noexec` was given.
    pub route_noexec: bool,
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

/// Each option line of a config, numbered from 1, as words; inline blocks (`<key>` to
/// `</key>`), blank and comment lines are passed over.
fn option_lines(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    let mut inline_end: Option<String> = None;
    text.lines().enumerate().filter_map(move |(n, line)| {
        let trimmed = line.trim();
        if let Some(end) = &inline_end {
            if trimmed == end {
                inline_end = None;
            }
            return None;
        }
        if let Some(tag) = trimmed.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            if !tag.starts_with('/') {
                inline_end = Some(format!("</{tag}>"));
                return None;
            }
        }
        let w = words(line);
        (!w.is_empty()).then_some((n + 1, w))
    })
}

/// Reads a config's text.
pub fn scan(text: &str) -> UserConfig {
    let mut cfg = UserConfig::default();
    for (_, w) in option_lines(text) {
        let Some(first) = w.first() else { continue };
        let option = first.trim_start_matches("--");
        let value = w.get(1).cloned();
        match option {
            "up" => cfg.up = value,
            "route-up" => cfg.route_up = value,
            "route-pre-down" => cfg.route_pre_down = value,
            "down" => cfg.down = value,
            "block-outside-dns" => cfg.block_outside_dns = true,
            "route-noexec" => cfg.route_noexec = true,
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

/// An openvpn option the Linux service cannot honour: refused before openvpn starts, with a
/// message that names it, rather than a session that connects and silently lacks it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the option {option:?} ({place}) cannot be used through openvpnserv: {why}")]
pub struct Unsupported {
    /// The option as written (`dev tap0`, `dns-updown force`, ...).
    pub option: String,
    /// Where: `the command line`, or `line N of PATH`.
    pub place: String,
    /// Why, and what to do.
    pub why: &'static str,
}

/// Why an option (its words, the name first) cannot be honoured, if it cannot.
fn refusal(words: &[String]) -> Option<&'static str> {
    let name = words.first()?.trim_start_matches("--");
    let value = words.get(1).map(String::as_str);
    Some(match (name, value) {
        ("dev", Some(v)) if v.starts_with("tap") => {
            "the service makes a tun device for each session; tap (layer 2) is not supported, so use a tun server"
        }
        ("dev-type", Some("tap")) => {
            "the service makes a tun device for each session; tap (layer 2) is not supported, so use a tun server"
        }
        ("route-table", _) => {
            "the service adds routes to the main table only; remove route-table"
        }
        ("dns-updown", _) => {
            "the service applies the VPN's DNS itself (systemd-resolved, resolvconf or resolv.conf) and runs openvpn's dns-updown step; remove the dns-updown line"
        }
        ("user" | "group", _) => {
            "openvpn already runs as you, started by the service, and cannot change its user or group; remove the user and group lines"
        }
        ("chroot", _) => "openvpn runs as you and cannot chroot; remove the chroot line",
        ("daemon", _) => {
            "the service keeps track of openvpn, which must not leave it for the background; remove the daemon line (iservice start runs a connection in the background)"
        }
        _ => return None,
    })
}

/// The first option of `args` (openvpn's options, `--name value ...`) or of the config text
/// (from `path`) that the service cannot honour.
pub fn unsupported(args: &[String], config: Option<(&str, &str)>) -> Option<Unsupported> {
    let mut i = 0;
    while i < args.len() {
        if args[i].starts_with("--") {
            let end = args[i + 1..]
                .iter()
                .position(|a| a.starts_with("--"))
                .map_or(args.len(), |p| i + 1 + p);
            let words = &args[i..end];
            if let Some(why) = refusal(words) {
                return Some(Unsupported {
                    option: words.join(" ").trim_start_matches("--").to_owned(),
                    place: "the command line".into(),
                    why,
                });
            }
            i = end;
        } else {
            i += 1;
        }
    }
    let (path, text) = config?;
    option_lines(text).find_map(|(n, words)| {
        refusal(&words).map(|why| Unsupported {
            option: words.join(" ").trim_start_matches("--").to_owned(),
            place: format!("line {n} of {path}"),
            why,
        })
    })
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

    #[test]
    fn options_the_service_cannot_honour_are_named_with_their_place() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let none = unsupported(
            &args(&["--config", "a.conf", "--verb", "3"]),
            Some(("a.conf", "client\ndev tun\n")),
        );
        assert_eq!(none, None);
        let cli = unsupported(&args(&["--config", "a.conf", "--dev-type", "tap"]), None).unwrap();
        assert_eq!(cli.option, "dev-type tap");
        assert_eq!(cli.place, "the command line");
        for (line, option) in [
            ("dev tap0", "dev tap0"),
            ("route-table 100", "route-table 100"),
            (
                "dns-updown /usr/local/bin/mine",
                "dns-updown /usr/local/bin/mine",
            ),
            ("dns-updown force", "dns-updown force"),
            ("dns-updown disable", "dns-updown disable"),
            ("user nobody", "user nobody"),
            ("group nogroup", "group nogroup"),
            ("daemon", "daemon"),
        ] {
            let text = format!("client\n<ca>\ndev tap9\n</ca>\nremote x\n{line}\n");
            let u = unsupported(&[], Some(("/etc/openvpn/client/x.conf", &text))).unwrap();
            assert_eq!(u.option, option);
            assert_eq!(
                u.place, "line 6 of /etc/openvpn/client/x.conf",
                "the inline block is skipped"
            );
            assert!(u.to_string().contains(&format!("{option:?}")), "{u}");
        }
        assert_eq!(
            unsupported(&[], Some(("x", "# dev tap\n;user nobody\n"))),
            None
        );
    }
}
