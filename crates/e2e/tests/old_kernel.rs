//! Kernels older than the development machines' (issue: reliability of the Linux service).
//! `close_range(CLOSE_RANGE_CLOEXEC)` needs Linux 5.11; on older kernels the service must
//! still start openvpn with only fds 0–3. A seccomp filter makes `close_range` fail as an
//! old kernel does. Run as root: `cargo test -p openvpnserv-e2e --test old_kernel -- --ignored`.

use std::os::unix::process::CommandExt;

use openvpnserv_e2e::fixture::{as_user, read_record, start, Fixture};
use openvpnserv_e2e::users::TestUser;

/// A seccomp filter that answers `close_range` with `errno` (as a kernel without it, or
/// without the flag, does) and allows everything else.
fn deny_close_range(errno: u16) -> std::io::Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ret = |v: u32| libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: v,
    };
    let load = |offset: u32| libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset,
    };
    let jeq = |v: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k: v,
    };
    let filter = [
        load(4), // seccomp_data.arch
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        ret(libc::SECCOMP_RET_ALLOW),
        load(0), // seccomp_data.nr
        jeq(libc::SYS_close_range as u32, 0, 1),
        ret(libc::SECCOMP_RET_ERRNO | u32::from(errno)),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl and seccomp with a valid, live filter program; runs in the child
    // between fork and exec and only makes system calls.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(
                libc::SYS_seccomp,
                1, /* SET_MODE_FILTER */
                0,
                &raw const prog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn openvpn_gets_only_its_four_fds(errno: u16) {
    let fx = Fixture::with_command("", |mut cmd| {
        // SAFETY: the closure runs in the child before exec and only makes system calls.
        unsafe {
            cmd.pre_exec(move || deny_close_range(errno));
        }
        cmd
    });
    let user = TestUser::create(&[]);
    let record = fx.config("a.ovpn", "exit 0");
    let t = as_user(&fx, &user, &start(&fx.config_dir(), "--config a.ovpn", ""));
    t.pid();
    let r = read_record(&record);
    let fds = r["fds"].as_object().unwrap();
    // 0–2, the channel (3), and the fake's own /proc listing (4).
    assert_eq!(fds.len(), 5, "only fds 0–3 reach openvpn: {fds:?}");
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn without_close_range_openvpn_still_starts_with_only_its_fds() {
    openvpn_gets_only_its_four_fds(libc::ENOSYS as u16);
}

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn without_close_range_cloexec_openvpn_still_starts_with_only_its_fds() {
    openvpn_gets_only_its_four_fds(libc::EINVAL as u16);
}
