//! Which channel numbering to speak (spec §5.3): the `msg_protocol` setting, or with `auto`
//! the openvpn executable's version resource (2.7 and later use the 2.7 numbering).

use openvpnserv_proto::channel::Revision;
use openvpnserv_settings::MsgProtocol;

use super::sys::kernel::file_version;

/// The numbering for `setting`; with `auto`, from the version of `exe_path` (2.7 when it has
/// none). Returns the choice and how it was made, for the log.
pub fn revision(setting: MsgProtocol, exe_path: &str) -> (Revision, String) {
    match setting {
        MsgProtocol::V26 => (Revision::V26, "msg_protocol = 2.6".into()),
        MsgProtocol::V27 => (Revision::V27, "msg_protocol = 2.7".into()),
        MsgProtocol::Auto => match file_version(exe_path) {
            Some((major, minor)) if (major, minor) < (2, 7) => (
                Revision::V26,
                format!("{exe_path} is version {major}.{minor}"),
            ),
            Some((major, minor)) => (
                Revision::V27,
                format!("{exe_path} is version {major}.{minor}"),
            ),
            None => (
                Revision::V27,
                format!("{exe_path} has no version resource; assuming 2.7"),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_setting_wins() {
        assert_eq!(revision(MsgProtocol::V26, "x").0, Revision::V26);
        assert_eq!(revision(MsgProtocol::V27, "x").0, Revision::V27);
    }

    #[test]
    fn auto_reads_the_version_resource() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_string_lossy();
        // Our test binaries carry no version resource: 2.7 is assumed.
        assert_eq!(file_version(&exe), None);
        assert_eq!(revision(MsgProtocol::Auto, &exe).0, Revision::V27);
        // A system DLL has one (Windows and Wine alike); its major version is >= 5.
        let system = format!(r"{}\kernel32.dll", super::super::sys::kernel::system_dir());
        let (major, _) = file_version(&system).expect("kernel32.dll has a version");
        assert!(major >= 5, "{major}");
        assert_eq!(revision(MsgProtocol::Auto, &system).0, Revision::V27);
        assert_eq!(
            revision(MsgProtocol::Auto, r"C:\nowhere\openvpn.exe").0,
            Revision::V27
        );
    }
}
