//! The client's group membership (spec §3.6), from its token's groups and the local groups'
//! direct members, and the local name of the Administrators group.

use openvpnserv_policy::Membership;

use super::sys::security::{
    account_of, administrators_sid, local_group_members, sid_of_name, Token, User,
};
use super::sys::Win32Error;

/// The local name of BUILTIN\Administrators (S-1-5-32-544), or `Administrators`.
pub fn administrators_group_name() -> String {
    administrators_sid()
        .and_then(|sid| account_of(&sid).ok())
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "Administrators".to_owned())
}

/// Group membership from a token's groups, then from the local group's direct members.
pub struct TokenMembership {
    user: Vec<u8>,
    groups: Vec<Vec<u8>>,
}

impl TokenMembership {
    /// Membership of `user`, the user of the impersonation `token`.
    pub fn new(user: &User, token: &Token) -> Result<Self, Win32Error> {
        Ok(Self {
            user: user.sid_bytes.clone(),
            groups: token.group_sids()?,
        })
    }
}

impl Membership for TokenMembership {
    fn is_member(&self, group: &str) -> bool {
        if let Some(sid) = sid_of_name(group) {
            if self.groups.contains(&sid) {
                return true;
            }
        }
        local_group_members(group).contains(&self.user)
    }
}
