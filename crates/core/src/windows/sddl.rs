//! Security descriptors of the Windows service, as SDDL text (spec §1.3, §1.4, §4.1 step 5,
//! §11). The platform converts them with `ConvertStringSecurityDescriptorToSecurityDescriptorW`
//! and tests read them back to compare.

/// The client pipe (since upstream 2.6.11, CVE-2024-4877), ACE order verbatim: allow
/// `LocalSystem` everything; deny Everyone `FILE_CREATE_PIPE_INSTANCE`; allow Authenticated
/// Users read and write; deny Anonymous everything.
pub const CLIENT_PIPE: &str =
    "D:(A;OICI;GA;;;S-1-5-18)(D;OICI;0x4;;;S-1-1-0)(A;OICI;GRGW;;;S-1-5-11)(D;;GA;;;S-1-5-7)";

/// The per-session channel pipe: SYSTEM and OWNER RIGHTS (the impersonated client, who
/// creates it) only.
pub const CHANNEL_PIPE: &str = "D:(A;;GA;;;SY)(A;;GA;;;OW)";

/// Everything on a process or thread object: `SPECIFIC_RIGHTS_ALL | STANDARD_RIGHTS_ALL`.
pub const ALL_RIGHTS: u32 = 0x0000_FFFF | 0x001F_0000;

/// What the user gets on openvpn's process: `READ_CONTROL | PROCESS_VM_READ | SYNCHRONIZE |
/// PROCESS_TERMINATE | PROCESS_QUERY_INFORMATION` — watch and kill, not write its memory,
/// create threads in it or duplicate its handles (it holds the privileged channel).
pub const USER_PROCESS_RIGHTS: u32 = 0x0002_0000 | 0x0010 | 0x0010_0000 | 0x0001 | 0x0400;

/// What the user gets on openvpn's first thread: `READ_CONTROL | SYNCHRONIZE |
/// THREAD_QUERY_LIMITED_INFORMATION`. Upstream leaves the thread with the user's default
/// DACL, which lets the user suspend it or change its context (spec §11).
pub const USER_THREAD_RIGHTS: u32 = 0x0002_0000 | 0x0010_0000 | 0x0800;

/// Owner = the service, DACL with exactly two ACEs: the service everything, the user `user_rights`.
pub fn object_sddl(service_sid: &str, user_sid: &str, user_rights: u32) -> String {
    format!(
        "O:{service_sid}D:(A;;0x{ALL_RIGHTS:x};;;{service_sid})(A;;0x{user_rights:x};;;{user_sid})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_descriptor() {
        assert_eq!(
            object_sddl("S-1-5-18", "S-1-5-21-1-2-3-1001", USER_PROCESS_RIGHTS),
            "O:S-1-5-18D:(A;;0x1fffff;;;S-1-5-18)(A;;0x120411;;;S-1-5-21-1-2-3-1001)"
        );
        assert_eq!(USER_THREAD_RIGHTS, 0x0012_0800);
    }
}
