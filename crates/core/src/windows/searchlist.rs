//! The DNS `SearchList` edits of spec §5.6.6a as pure functions over the comma list.
//!
//! Sessions append their domains to a shared, comma-separated list and later remove exactly
//! what they added. Removal works on whole tokens with multiset semantics: for each token to
//! remove, the *last* token that is exactly equal (case-sensitive) goes. Upstream before 2.7.5
//! removed substrings and compared prefixes, which corrupted the list when one domain was a
//! suffix of another or two sessions pushed the same domain (CVE-2026-13379).

/// Splits a comma list into its tokens; an empty list has none.
fn tokens(list: &str) -> Vec<&str> {
    if list.is_empty() {
        Vec::new()
    } else {
        list.split(',').collect()
    }
}

/// Appends `domains` to `list` (no de-duplication, as upstream: a second session pushing the
/// same domain adds a second token, which its own removal takes away again).
pub fn append(list: &str, domains: &str) -> String {
    match (list.is_empty(), domains.is_empty()) {
        (_, true) => list.to_owned(),
        (true, false) => domains.to_owned(),
        (false, false) => format!("{list},{domains}"),
    }
}

/// Removes the tokens of `domains` from `list`, each the last exactly-equal token. `None` when
/// no token was found (the list is then left as it is).
pub fn remove(list: &str, domains: &str) -> Option<String> {
    let mut kept = tokens(list);
    let mut removed = false;
    for token in tokens(domains) {
        if let Some(at) = kept.iter().rposition(|t| *t == token) {
            kept.remove(at);
            removed = true;
        }
    }
    removed.then(|| kept.join(","))
}

/// Whether a `SearchList` value counts as set (spec §5.6.6a): its first 63 bytes of ANSI text
/// contain a letter, digit, `-` or `.`.
pub fn is_set(list: &str) -> bool {
    list.bytes()
        .take(63)
        .any(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream regression case: a domain that is a suffix of another must not be cut out
    /// of it.
    #[test]
    fn cve_2026_13379_suffix_domain_is_not_cut_from_another() {
        assert_eq!(
            remove(
                "test.vpn.corp.local,vpn.corp.local,other.com",
                "vpn.corp.local"
            )
            .as_deref(),
            Some("test.vpn.corp.local,other.com")
        );
        assert_eq!(
            remove("test.vpn.corp.local,other.com", "vpn.corp.local"),
            None
        );
    }

    /// Two sessions push the same domain; each removal takes one token, the last one.
    #[test]
    fn cve_2026_13379_duplicate_domains_across_two_sessions() {
        let base = "corp.example";
        let one = append(base, "vpn.example,a.example");
        let two = append(&one, "vpn.example");
        assert_eq!(two, "corp.example,vpn.example,a.example,vpn.example");
        let after_two = remove(&two, "vpn.example").unwrap();
        assert_eq!(after_two, "corp.example,vpn.example,a.example");
        let after_one = remove(&after_two, "vpn.example,a.example").unwrap();
        assert_eq!(after_one, base);
    }

    #[test]
    fn cve_2026_13379_removal_is_case_sensitive_and_whole_token() {
        assert_eq!(
            remove("A.example,a.example", "a.example").as_deref(),
            Some("A.example")
        );
        assert_eq!(remove("xa.example", "a.example"), None);
        assert_eq!(remove("a.example.x", "a.example"), None);
    }

    #[test]
    fn append_to_empty_and_nothing() {
        assert_eq!(append("", "a,b"), "a,b");
        assert_eq!(append("x", ""), "x");
        assert_eq!(remove("a", "a").as_deref(), Some(""));
        assert_eq!(remove("", "a"), None);
    }

    #[test]
    fn set_means_a_name_character_in_the_first_63_bytes() {
        assert!(is_set("corp.example"));
        assert!(!is_set(""));
        assert!(!is_set(" , "));
        assert!(!is_set(&format!("{}a", " ".repeat(63))));
        assert!(is_set(&format!("{}a", " ".repeat(62))));
    }
}
