//! What `iservice connect` asks the service to run: the working directory, the options
//! string, the stdin text, and where the management interface will listen.
//!
//! The service splits the options with Windows `CommandLineToArgvW` rules on both platforms
//! (spec §3.2), so every argument is quoted for those rules by [`quote_arg`].

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};

use openvpnserv_proto::StartupMessage;
use zeroize::Zeroizing;

/// How openvpn gets the management password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The keyword `stdin`: the password is the stdin line (what the GUI does on Windows).
    Stdin,
    /// A file holding the password. openvpn 2.6 on Linux asks for a `stdin` password on a
    /// terminal only and exits when stdin is a pipe (seen here), so on Linux the password
    /// goes in a private file that openvpn, running as the same user, reads.
    File(PathBuf),
}

/// Everything needed to start openvpn through the service.
pub struct LaunchPlan {
    /// openvpn's working directory: the config file's directory.
    pub working_dir: String,
    /// The options string.
    pub options: String,
    /// The management password (also in `stdin` or in the password file).
    pub password: Zeroizing<String>,
    /// How the password reaches openvpn.
    pub source: PasswordSource,
    /// Where openvpn's management interface will listen.
    pub management: SocketAddrV4,
}

impl std::fmt::Debug for LaunchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchPlan")
            .field("working_dir", &self.working_dir)
            .field("options", &self.options)
            .field("source", &self.source)
            .field("management", &self.management)
            .finish_non_exhaustive()
    }
}

/// Why a config cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The path has no file name (e.g. it ends in `..`).
    #[error("{} is not a config file name", .0.display())]
    NotAFileName(PathBuf),
    /// The config's directory cannot be made absolute.
    #[error("cannot resolve {}: {source}", dir.display())]
    Resolve {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The service's protocol carries text; this path is not.
    #[error("{} is not valid Unicode", .0.display())]
    NotUnicode(PathBuf),
}

/// The client's name and version, sent to the server as `IV_GUI_VER` like the GUI does.
pub const GUI_VERSION: &str = concat!("iservice ", env!("CARGO_PKG_VERSION"));

impl LaunchPlan {
    /// Plans the start of `config` (a path to an openvpn config file).
    pub fn new(
        config: &Path,
        password: Zeroizing<String>,
        source: PasswordSource,
        management: SocketAddrV4,
    ) -> Result<Self, PlanError> {
        let name = config
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| PlanError::NotAFileName(config.to_path_buf()))?;
        let dir = match config.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).map_err(|source| PlanError::Resolve {
            dir: dir.clone(),
            source,
        })?;
        let working_dir = dir
            .to_str()
            .ok_or_else(|| PlanError::NotUnicode(dir.clone()))?
            .to_owned();
        let options = build_options(name, &source, management);
        Ok(Self {
            working_dir,
            options,
            password,
            source,
            management,
        })
    }

    /// The startup message; its stdin holds the password line when the password goes by
    /// stdin. The caller zeroizes the message's stdin once it is sent.
    pub fn startup_message(&self) -> StartupMessage {
        let stdin = match self.source {
            PasswordSource::Stdin => format!("{}\n", &*self.password),
            PasswordSource::File(_) => String::new(),
        };
        StartupMessage::new(self.working_dir.clone(), self.options.clone(), stdin)
    }
}

/// The options the GUI passes that make sense for a command-line client: the config by
/// bare name (relative to the working directory), the client's version, interactive
/// auth retries, a password-protected management interface on loopback that holds openvpn
/// until we are connected and asks us for passwords. The Windows-only `route-method`
/// filter is kept on Windows as the GUI has it.
pub fn build_options(
    config_name: &str,
    source: &PasswordSource,
    management: SocketAddrV4,
) -> String {
    let password = match source {
        PasswordSource::Stdin => "stdin".to_owned(),
        PasswordSource::File(path) => quote_arg(&path.to_string_lossy()),
    };
    let mut options = format!(
        "--config {} --setenv IV_GUI_VER {} --auth-retry interact --management {} {} {} --management-query-passwords --management-hold",
        quote_arg(config_name),
        quote_arg(GUI_VERSION),
        management.ip(),
        management.port(),
        password,
    );
    if cfg!(windows) {
        options.push_str(" --pull-filter ignore route-method");
    }
    options
}

/// Quotes one argument so that `CommandLineToArgvW` (as a non-first argument) and the C
/// runtime give it back unchanged: plain text stays as is; otherwise it is put in double
/// quotes, with backslashes doubled where they precede a quote.
pub fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"', '\n', '\x0b']) {
        return arg.to_owned();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

/// Finds a free loopback port by binding port 0 and releasing it. Another program could
/// take the port before openvpn binds it; then openvpn fails to start (a late error) or
/// the impostor cannot answer the password prompt the way openvpn does, and the session
/// refuses it (see [`super::Session`]).
pub fn free_loopback_port() -> std::io::Result<SocketAddrV4> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    match listener.local_addr()? {
        std::net::SocketAddr::V4(addr) => Ok(addr),
        std::net::SocketAddr::V6(_) => Err(std::io::Error::other("bound an IPv6 address")),
    }
}

/// A management password: 24 characters from `[A-Za-z0-9]`, from the OS's random source.
pub fn generate_password() -> Result<Zeroizing<String>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = Zeroizing::new(String::with_capacity(24));
    let mut raw = Zeroizing::new([0u8; 64]);
    while password.len() < 24 {
        getrandom::fill(&mut *raw).map_err(|e| format!("no random numbers: {e}"))?;
        // 248 = 4 * 62: rejecting above it keeps every character equally likely.
        for &b in raw.iter().filter(|&&b| b < 248) {
            if password.len() == 24 {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    Ok(password)
}
