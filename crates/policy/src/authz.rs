//! Authorization as a pure decision (spec §3.1, §3.6).
//!
//! The platform supplies who the caller is ([`Caller`]) and answers group-membership
//! questions ([`Membership`]) from the caller's token (Windows) or credentials (Linux); this
//! module decides. Identity is always taken from the OS at connect time, never from a message.

/// The caller, as the platform identified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Account name (Windows: from `LookupAccountSidW`; Linux: the passwd name of the uid).
    pub user: String,
    /// Account domain (Windows); empty on Linux.
    pub domain: String,
    /// Linux uid 0. Always false on Windows, where administrators are found by group.
    pub superuser: bool,
}

/// Answers "is the caller a member of this group?".
pub trait Membership {
    /// Membership of the group named `group` (resolved by name, as upstream does).
    fn is_member(&self, group: &str) -> bool;
}

/// Why a caller may bypass the option and config-path rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Linux root.
    Superuser,
    /// The openvpnserv2 virtual account `NT SERVICE\<ovpn_service_user>` (or, on Linux, the
    /// configured service user).
    ServiceAccount(String),
    /// Member of an administrators group.
    Group(String),
}

impl std::fmt::Display for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Superuser => write!(f, "superuser"),
            Authorization::ServiceAccount(user) => write!(f, "service account '{user}'"),
            Authorization::Group(group) => write!(f, "membership in group '{group}'"),
        }
    }
}

/// What the decision needs from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Groups whose members are administrators, in the order they are tried. Windows: the
    /// local name of Administrators (S-1-5-32-544), then `ovpn_admin_group`. Linux:
    /// `ovpn_admin_group`.
    pub admin_groups: Vec<String>,
    /// `ovpn_service_user`; empty disables the rule.
    pub service_user: String,
    /// The domain the service account must be in: `NT SERVICE` on Windows; empty on Linux.
    pub service_domain: String,
}

/// Decides whether the caller is authorized (spec §3.6). Comparisons of the service account
/// are case-sensitive, as upstream's.
pub fn authorize(
    caller: &Caller,
    membership: &impl Membership,
    settings: &AuthSettings,
) -> Option<Authorization> {
    if caller.superuser {
        return Some(Authorization::Superuser);
    }
    if !settings.service_user.is_empty()
        && caller.user == settings.service_user
        && caller.domain == settings.service_domain
    {
        return Some(Authorization::ServiceAccount(format!(
            "{}\\{}",
            caller.domain, caller.user
        )));
    }
    settings
        .admin_groups
        .iter()
        .filter(|g| !g.is_empty())
        .find(|g| membership.is_member(g))
        .map(|g| Authorization::Group(g.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Groups(&'static [&'static str]);
    impl Membership for Groups {
        fn is_member(&self, group: &str) -> bool {
            self.0.contains(&group)
        }
    }

    fn windows() -> AuthSettings {
        AuthSettings {
            admin_groups: vec!["Administrators".into(), "OpenVPN Administrators".into()],
            service_user: "OpenVPNService".into(),
            service_domain: "NT SERVICE".into(),
        }
    }

    fn caller(user: &str, domain: &str) -> Caller {
        Caller {
            user: user.into(),
            domain: domain.into(),
            superuser: false,
        }
    }

    #[test]
    fn plain_user_is_not_authorized() {
        assert_eq!(
            authorize(&caller("u", "PC"), &Groups(&["Users"]), &windows()),
            None
        );
    }

    #[test]
    fn groups_in_order() {
        assert_eq!(
            authorize(
                &caller("u", "PC"),
                &Groups(&["OpenVPN Administrators", "Administrators"]),
                &windows()
            ),
            Some(Authorization::Group("Administrators".into()))
        );
        assert_eq!(
            authorize(
                &caller("u", "PC"),
                &Groups(&["OpenVPN Administrators"]),
                &windows()
            ),
            Some(Authorization::Group("OpenVPN Administrators".into()))
        );
    }

    #[test]
    fn service_account_rule_is_exact() {
        assert_eq!(
            authorize(
                &caller("OpenVPNService", "NT SERVICE"),
                &Groups(&[]),
                &windows()
            ),
            Some(Authorization::ServiceAccount(
                "NT SERVICE\\OpenVPNService".into()
            ))
        );
        assert_eq!(
            authorize(
                &caller("openvpnservice", "NT SERVICE"),
                &Groups(&[]),
                &windows()
            ),
            None
        );
        assert_eq!(
            authorize(&caller("OpenVPNService", "PC"), &Groups(&[]), &windows()),
            None
        );
        let mut off = windows();
        off.service_user.clear();
        assert_eq!(
            authorize(&caller("", "NT SERVICE"), &Groups(&[]), &off),
            None
        );
    }

    #[test]
    fn linux_root_and_group() {
        let linux = AuthSettings {
            admin_groups: vec!["openvpn-admin".into()],
            service_user: String::new(),
            service_domain: String::new(),
        };
        let root = Caller {
            user: "root".into(),
            domain: String::new(),
            superuser: true,
        };
        assert_eq!(
            authorize(&root, &Groups(&[]), &linux),
            Some(Authorization::Superuser)
        );
        assert_eq!(
            authorize(&caller("u", ""), &Groups(&["openvpn-admin"]), &linux),
            Some(Authorization::Group("openvpn-admin".into()))
        );
        assert_eq!(
            authorize(&caller("u", ""), &Groups(&["wheel"]), &linux),
            None
        );
        // An empty service user never matches a user with an empty name.
        assert_eq!(authorize(&caller("", ""), &Groups(&[]), &linux), None);
    }
}
