//! Splitting an options string into tokens (spec §3.2).
//!
//! Two parsers matter on Windows. The service validates with `CommandLineToArgvW`, which
//! parses the first token by the program-name rule, while openvpn.exe's C runtime sees the same
//! text after its own argv\[0\] and parses every token by the normal rule. [`command_line_to_argv`]
//! reproduces the former and [`crt_args`] the latter, so the service can check both splits
//! and refuse text on which they could disagree (spec §11).

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits `line` with the semantics of Windows `CommandLineToArgvW`.
///
/// * The first token follows the program-name rule: if it starts with `"`, it runs to the next
///   `"` (backslashes are literal); otherwise it runs to the next space or tab.
/// * Later tokens: spaces and tabs separate tokens outside quotes; `2n` backslashes before a
///   `"` become `n` backslashes and the quote toggles quoting; `2n+1` backslashes before a `"`
///   become `n` backslashes and a literal `"`; other backslashes are literal; inside quotes a
///   run of consecutive quotes yields one literal `"` for every third and closes the quoted
///   part when the count that includes the opening quote leaves a remainder.
///
/// **Decision on the empty-string quirk**: Windows returns one token, the path of the
/// calling program, for `""`. Upstream then checks that path as a config file, so empty
/// options are refused for ordinary users because of where openvpnserv.exe is installed. We
/// return no tokens instead: empty options carry no option to check, openvpn starts with
/// only what the service appends, and it reports its own usage error (exit code → the
/// `0x20000000` reply).
pub fn command_line_to_argv(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut args = Vec::new();
    if chars.is_empty() {
        return args;
    }
    let mut i = 0;
    let mut first = String::new();
    if chars[0] == '"' {
        i = 1;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if c == '"' {
                break;
            }
            first.push(c);
        }
    } else {
        while i < chars.len() && !is_blank(chars[i]) {
            first.push(chars[i]);
            i += 1;
        }
    }
    args.push(first);
    while i < chars.len() && is_blank(chars[i]) {
        i += 1;
    }
    if i == chars.len() {
        return args;
    }

    let mut current = String::new();
    // 0: outside quotes, 1: inside; 2 and 3 occur only while counting a run of quotes.
    let mut quotes = 0u32;
    let mut backslashes = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if is_blank(c) && quotes == 0 {
            args.push(std::mem::take(&mut current));
            backslashes = 0;
            while i < chars.len() && is_blank(chars[i]) {
                i += 1;
            }
            if i == chars.len() {
                return args;
            }
            continue;
        }
        match c {
            '\\' => {
                current.push('\\');
                backslashes += 1;
            }
            '"' => {
                if backslashes % 2 == 0 {
                    // Half the backslashes stay; the quote toggles quoting.
                    drop_tail(&mut current, backslashes / 2);
                    quotes += 1;
                } else {
                    // Half the backslashes stay, the last one turns into a literal quote.
                    drop_tail(&mut current, backslashes / 2 + 1);
                    current.push('"');
                }
                backslashes = 0;
                while i + 1 < chars.len() && chars[i + 1] == '"' {
                    i += 1;
                    quotes += 1;
                    if quotes == 3 {
                        current.push('"');
                        quotes = 0;
                    }
                }
                if quotes == 2 {
                    quotes = 0;
                }
            }
            _ => {
                current.push(c);
                backslashes = 0;
            }
        }
        i += 1;
    }
    args.push(current);
    args
}

fn drop_tail(s: &mut String, n: usize) {
    for _ in 0..n {
        s.pop();
    }
}

/// The tokens openvpn.exe's C runtime makes of `options` when they follow its argv\[0\]
/// (the modern Microsoft C runtime rules, which openvpn's MSVC builds use), and whether the
/// text ended inside quotes. Text ending inside quotes would swallow whatever the service
/// appends, so callers refuse it.
pub fn crt_args(options: &str) -> (Vec<String>, bool) {
    let chars: Vec<char> = options.chars().collect();
    let mut args = Vec::new();
    let mut current = String::new();
    let mut started = false;
    let mut in_quotes = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' if !in_quotes => {
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            '\\' => {
                let mut run = 1;
                while i + run < chars.len() && chars[i + run] == '\\' {
                    run += 1;
                }
                started = true;
                if i + run < chars.len() && chars[i + run] == '"' {
                    current.extend(std::iter::repeat_n('\\', run / 2));
                    if run % 2 == 1 {
                        current.push('"');
                        i += run + 1;
                    } else {
                        // The quote is handled as a quote on the next pass.
                        i += run;
                    }
                    continue;
                }
                current.extend(std::iter::repeat_n('\\', run));
                i += run;
                continue;
            }
            '"' if in_quotes => {
                if i + 1 < chars.len() && chars[i + 1] == '"' {
                    current.push('"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
            '"' => {
                in_quotes = true;
                started = true;
            }
            _ => {
                current.push(c);
                started = true;
            }
        }
        i += 1;
    }
    if started {
        args.push(current);
    }
    (args, in_quotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        command_line_to_argv(s)
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn empty_is_no_tokens() {
        assert!(argv("").is_empty());
    }

    /// A table of tricky cases for `CommandLineToArgvW`.
    #[test]
    fn command_line_to_argv_table() {
        let cases: &[(&str, &[&str])] = &[
            ("--config a.ovpn", &["--config", "a.ovpn"]),
            ("a.ovpn", &["a.ovpn"]),
            ("  ", &[""]),
            (" a", &["", "a"]),
            ("a  \t b", &["a", "b"]),
            ("a b ", &["a", "b"]),
            // First token: program-name rule, backslashes literal, quote runs to next quote.
            (r#""C:\dir\" x"#, &[r"C:\dir\", "x"]),
            (r#""a b"c d"#, &["a b", "c", "d"]),
            (r#""x --plugin y"#, &["x --plugin y"]),
            (r#"a\"b c"#, &[r#"a\"b"#, "c"]),
            (r#"a"b c" d"#, &[r#"a"b"#, "c d"]),
            // Later tokens: backslash rules.
            (r"x a\\b", &["x", r"a\\b"]),
            (r#"x a\"b"#, &["x", r#"a"b"#]),
            (r#"x a\\\"b"#, &["x", r#"a\"b"#]),
            (r#"x a\\"b c""#, &["x", r"a\b c"]),
            (r#"x "a b" c"#, &["x", "a b", "c"]),
            (r#"x "" y"#, &["x", "", "y"]),
            (r#"x """#, &["x", ""]),
            ("x\t\"a\tb\"", &["x", "a\tb"]),
            // Runs of quotes inside quotes (pre-2008 C runtime rule).
            (r#"x "a""b c""#, &["x", r#"a"b"#, "c"]),
            (r#"x """a""""#, &["x", r#""a""#]),
            (r#"x a""""b"#, &["x", r#"a"b"#]),
            (r#"x "a\"" b"#, &["x", r#"a""#, "b"]),
            // Unterminated quote swallows the rest.
            (r#"x "a --plugin y"#, &["x", "a --plugin y"]),
            (r#"a\" --plugin y ""#, &[r#"a\""#, "--plugin", "y", ""]),
        ];
        for (input, expected) in cases {
            assert_eq!(argv(input), v(expected), "input: {input}");
        }
    }

    /// A table of tricky cases for the C runtime.
    #[test]
    fn crt_table() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("--config a.ovpn", &["--config", "a.ovpn"], false),
            ("", &[], false),
            ("  a  ", &["a"], false),
            (r#""C:\dir\" x"#, &[r#"C:\dir" x"#], true),
            (r#""x --plugin y"#, &["x --plugin y"], true),
            (r#"a\" --plugin y ""#, &[r#"a""#, "--plugin", "y", ""], true),
            (r#""a b"c d"#, &["a bc", "d"], false),
            (r#"a\\"b c""#, &[r"a\b c"], false),
            (r#""a""b c""#, &[r#"a"b c"#], false),
            (r#""" x"#, &["", "x"], false),
            (r"a\\b", &[r"a\\b"], false),
            (r#"a\\\"b"#, &[r#"a\"b"#], false),
        ];
        for (input, expected, open) in cases {
            assert_eq!(crt_args(input), (v(expected), *open), "input: {input}");
        }
    }

    #[test]
    fn parsers_agree_on_gui_options() {
        let gui = r#"--log "C:\Users\u\OpenVPN\log\x.log" --config "x.ovpn" --setenv IV_GUI_VER "OpenVPN GUI 11" --setenv IV_SSO openurl,webauth,crtext --service 12ab0000001f 0 --auth-retry interact --management 127.0.0.1 25340 stdin --management-query-passwords --management-hold --pull-filter ignore route-method"#;
        let (crt, open) = crt_args(gui);
        assert!(!open);
        assert_eq!(argv(gui), crt);
        assert_eq!(crt[1], r"C:\Users\u\OpenVPN\log\x.log");
    }
}
