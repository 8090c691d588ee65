//! The real network layer of the Linux service (design §2–§5): [`LinuxNetwork`] implements
//! [`Network`] with a per-session tun, rtnetlink, D-Bus/resolvconf/resolv.conf DNS, nftables,
//! and a crash-safe undo journal under the instance's run directory.
//!
//! How openvpn is made to work unprivileged (the appended options, [`LinuxNetwork::prepare`]):
//! `--dev <our tun> --dev-type tun [--dev-node <private node>] --disable-dco` (DCO needs
//! `CAP_NET_ADMIN`, which openvpn running as the user lacks), and either
//! * environment mode (stock builds): `--ifconfig-noexec`, our hook as `--up`, `--route-up`,
//!   `--route-pre-down` and `--down` with `--script-security 2`; the hook turns the script
//!   environment into channel requests ([`openvpnserv_core::linux::hook`]). With openvpn
//!   2.7 the hook is also its `--dns-updown` command (2.7 shows DNS to no other script), and
//!   `--route-noexec` keeps openvpn from trying routes it cannot add: the full tunnel shows in
//!   `route_redirect_gateway_*` before `--up`. Or
//! * `--iproute` mode (builds with `enable_iproute2=yes`, detected from `openvpn --version`):
//!   `--iproute <hook>` as well, so openvpn's exact `ip` commands arrive as requests
//!   ([`openvpnserv_core::linux::iproute`]) and the script hooks only do DNS.
//!
//! The hook learns the channel fd from `OPENVPNSERV_CHANNEL_FD`, the mode from
//! `OPENVPNSERV_MODE` and openvpn's version from `OPENVPNSERV_OPENVPN` (all `--setenv`; 2.7's
//! `--dns-updown` gets none of them and uses fd 3), and runs the config's own scripts after.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openvpnserv_core::linux::dns::{Backend, DnsState};
use openvpnserv_core::linux::journal::{Change, Journal, Record};
use openvpnserv_core::linux::openvpn::Build;
use openvpnserv_core::linux::policy::Tun;
use openvpnserv_settings::{DnsBackend, Instance, Settings};
use tracing::{info, warn};

mod build;
mod dns;
mod firewall;
mod helper;
pub mod hook;
mod journal_file;
mod network;
mod os;
mod resolv_conf;
mod rtnl;
mod session;
mod sys;
mod tun;

pub use network::{
    NetView, Network, NetworkError, NetworkSession, NoNetwork, SessionInfo, SessionUser,
    CHANNEL_FD, CHANNEL_FD_ENV,
};
pub use os::{NetOs, System};
pub use rtnl::Rtnl;
pub use session::{code_of, LinuxSession};
pub use sys::inherited_fd;

/// Environment variable (set with `--setenv`) telling the hook which mode openvpn runs in.
pub const MODE_ENV: &str = "OPENVPNSERV_MODE";
/// Environment variable (set with `--setenv`) telling the hook openvpn's version line
/// (`2.6` or `2.7`).
pub const OPENVPN_ENV: &str = "OPENVPNSERV_OPENVPN";
/// Environment variable (set with `--setenv` to `1`) telling the hook that the user's own
/// options say `route-noexec`.
pub const ROUTE_NOEXEC_ENV: &str = "OPENVPNSERV_ROUTE_NOEXEC";
/// Environment variable (set with `--setenv` to `1`) telling the hook to say, in openvpn's
/// log, that DCO is off for this session.
pub const DCO_OFF_ENV: &str = "OPENVPNSERV_DCO_OFF";
/// File name of the hook next to the service executable.
pub const HOOK_NAME: &str = "openvpnserv-hook";

/// What the network layer needs to know.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Instance id (part of every name we create).
    pub instance: String,
    /// Where journals and backups live: `/run/openvpn<id>/`.
    pub run_dir: PathBuf,
    /// Where the sessions' private tun device nodes live: `/dev/openvpn<id>/`. Not under
    /// the run directory: systemd mounts `/run` with `nodev`, where no device node can be
    /// opened (every session then failed with "Cannot open TUN/TAP dev … Permission
    /// denied"); `/dev` is the one file system made to hold device nodes.
    pub device_dir: PathBuf,
    /// The hook openvpn runs.
    pub hook_path: PathBuf,
    /// The openvpn executable (to detect `--iproute` support).
    pub openvpn: PathBuf,
    /// DNS backend setting.
    pub dns_backend: DnsBackend,
    /// The file the direct DNS backend manages.
    pub resolv_conf: PathBuf,
}

impl NetConfig {
    /// The configuration for an instance with these settings. The hook is `hook_path`, or
    /// `openvpnserv-hook` next to the running service executable.
    pub fn new(settings: &Settings, instance: &Instance) -> Self {
        let hook_path = if settings.hook_path.is_empty() {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join(HOOK_NAME)))
                .unwrap_or_else(|| PathBuf::from("/usr/sbin").join(HOOK_NAME))
        } else {
            PathBuf::from(&settings.hook_path)
        };
        Self {
            instance: instance.id().to_owned(),
            run_dir: PathBuf::from(instance.run_dir()),
            device_dir: PathBuf::from(format!("/dev/openvpn{}", instance.id())),
            hook_path,
            openvpn: PathBuf::from(&settings.exe_path),
            dns_backend: settings.dns_backend,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// State shared by the network layer and its sessions.
#[derive(Debug)]
pub(crate) struct Shared<O: NetOs = System> {
    os: O,
    dns: dns::DnsConfig,
    /// nftables table names: this plus the session number.
    table_prefix: String,
    /// Tun names: this plus the session number.
    tun_prefix: String,
    config: NetConfig,
    builds: build::Builds,
}

/// The network layer (over the real [`System`] unless a test gives it another [`NetOs`]).
#[derive(Debug)]
pub struct LinuxNetwork<O: NetOs = System> {
    shared: Arc<Shared<O>>,
}

/// A short, stable tag for an instance id, so that two instances never pick the same names.
fn instance_tag(id: &str) -> String {
    // FNV-1a, 16 bits are plenty to tell a handful of instances apart in a name.
    let h = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{:04x}", (h ^ (h >> 16)) & 0xffff)
}

/// A session's tun name: the instance's prefix and the session number in hex (at most 15
/// bytes, the kernel's limit).
fn tun_name(prefix: &str, id: u64) -> String {
    format!("{prefix}{:x}", id & 0xffff_ffff)
}

pub use build::detect as detect_openvpn;

impl LinuxNetwork {
    /// Opens the netlink connection (on the current tokio runtime, in the caller's network
    /// namespace), chooses the DNS backend and detects the openvpn build.
    pub async fn new(config: NetConfig) -> io::Result<Self> {
        let backend = dns::detect(config.dns_backend).await;
        info!(
            dns = ?backend,
            hook = %config.hook_path.display(),
            "network layer started"
        );
        let redetect = config.dns_backend == DnsBackend::Auto;
        let mut net = LinuxNetwork::with_os(System::connect()?, config, backend, None);
        if let Some(shared) = Arc::get_mut(&mut net.shared) {
            shared.dns.redetect = redetect;
        }
        // Early, so that the log says which openvpn it is before the first session.
        net.shared.builds.get(&net.shared.config.openvpn).await;
        Ok(net)
    }
}

impl<O: NetOs> LinuxNetwork<O> {
    /// A network layer over `os`, with the DNS backend decided, and the openvpn build given
    /// (or, with `None`, detected from `config.openvpn` and followed as the file changes).
    pub fn with_os(os: O, config: NetConfig, backend: Backend, build: Option<Build>) -> Self {
        let tag = instance_tag(&config.instance);
        Self {
            shared: Arc::new(Shared {
                os,
                dns: dns::DnsConfig {
                    backend: std::sync::Mutex::new(backend),
                    redetect: false,
                    resolv_conf: config.resolv_conf.clone(),
                    run_dir: config.run_dir.clone(),
                },
                table_prefix: format!("openvpnserv_{tag}_"),
                tun_prefix: format!("ovs{tag}"),
                builds: build::Builds::new(build),
                config,
            }),
        }
    }

    /// The DNS backend chosen last.
    pub fn dns_backend(&self) -> Backend {
        self.shared.dns.current()
    }

    fn ensure_run_dir(&self) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.shared.config.run_dir)
    }

    /// The arguments appended to openvpn's, for `build`, after the user's `user_args`.
    fn openvpn_args(
        &self,
        tun: &str,
        node: Option<&Path>,
        build: &Build,
        user_args: &[String],
    ) -> Vec<String> {
        let hook = self.shared.config.hook_path.display().to_string();
        let mut a: Vec<String> = vec![
            "--dev".into(),
            tun.into(),
            "--dev-type".into(),
            "tun".into(),
        ];
        if let Some(n) = node {
            a.extend(["--dev-node".into(), n.display().to_string()]);
        }
        a.extend([
            "--disable-dco".into(),
            "--script-security".into(),
            "2".into(),
        ]);
        if build.iproute {
            a.extend(["--iproute".into(), hook.clone()]);
        } else {
            a.push("--ifconfig-noexec".into());
            if build.is_2_7() {
                // The service owns routing: openvpn would only fail to add routes (EPERM)
                // and report ROUTE_ERROR.
                a.push("--route-noexec".into());
            }
        }
        if build.is_2_7() {
            a.extend(["--dns-updown".into(), hook.clone()]);
        }
        for phase in ["up", "route-up", "route-pre-down", "down"] {
            a.extend([format!("--{phase}"), format!("{hook} {phase}")]);
        }
        if user_args.iter().any(|w| w == "--route-noexec") {
            a.extend(["--setenv".into(), ROUTE_NOEXEC_ENV.into(), "1".into()]);
        }
        if build.dco {
            a.extend(["--setenv".into(), DCO_OFF_ENV.into(), "1".into()]);
        }
        let line = if build.is_2_7() { "2.7" } else { "2.6" };
        let mode = if build.iproute { "iproute" } else { "env" };
        a.extend([
            "--setenv".into(),
            OPENVPN_ENV.into(),
            line.into(),
            "--setenv".into(),
            CHANNEL_FD_ENV.into(),
            CHANNEL_FD.to_string(),
            "--setenv".into(),
            MODE_ENV.into(),
            mode.into(),
        ]);
        a
    }

    async fn prepare_session(
        &self,
        s: &mut LinuxSession<O>,
        user_args: &[String],
    ) -> io::Result<Vec<String>> {
        let name = s.tun.name.clone();
        let seq = s.begin(Change::Tun { name: name.clone() }).await?;
        let made = self.shared.os.create_tun(&name, s.user.uid, s.user.gid);
        s.end(seq, made.is_ok()).await?;
        made?;
        s.tun.ifindex = self
            .shared
            .os
            .link_index(&name)
            .await?
            .ok_or_else(|| io::Error::other(format!("tun {name} vanished after creation")))?;
        let node = if self.shared.os.clone_device_open_to_users() {
            None
        } else {
            let path = self.shared.config.device_dir.join(format!("tun-{}", s.id));
            let seq = s
                .begin(Change::DeviceNode {
                    path: path.display().to_string(),
                })
                .await?;
            let made = self.shared.os.create_node(&path, s.user.uid, s.user.gid);
            s.end(seq, made.is_ok()).await?;
            made?;
            Some(path)
        };
        let build = self.shared.builds.get(&self.shared.config.openvpn).await;
        Ok(self.openvpn_args(&name, node.as_deref(), &build, user_args))
    }
}

impl<O: NetOs> Network for LinuxNetwork<O> {
    type Session = LinuxSession<O>;

    async fn recover(&self) -> u64 {
        let dir = &self.shared.config.run_dir;
        match journal_file::remove_unfinished(dir) {
            Ok(0) => {}
            Ok(n) => info!("removed {n} journal file(s) whose writing a crash cut short"),
            Err(e) => warn!(
                "cannot clear unfinished journal files in {}: {e}",
                dir.display()
            ),
        }
        let scan = match journal_file::scan(dir) {
            Ok(s) => s,
            Err(e) => {
                // Sessions are numbered far above anything a journal there could name, so
                // that none of them is ever overwritten.
                warn!(
                    "cannot read the run directory {}: {e}; the journals there (if any) are left for the next start",
                    dir.display()
                );
                return 1 << 32;
            }
        };
        for (path, why) in &scan.unreadable {
            match journal_file::set_aside(path) {
                Ok(new) => warn!(
                    "{}: {why}; the journal is set aside as {} for an administrator, and whatever it named stays as it is",
                    path.display(),
                    new.display()
                ),
                Err(e) => warn!(
                    "{}: {why}, and it cannot be set aside ({e}); it stays",
                    path.display()
                ),
            }
        }
        for l in scan.journals {
            let who = l.records.iter().find_map(|r| match r {
                Record::Session { id, uid, user } => {
                    Some(format!("session {id} of {user} (uid {uid})"))
                }
                _ => None,
            });
            let who = who.unwrap_or_else(|| "an unknown session".into());
            let journal = Journal::from_records(&l.records);
            info!(
                journal = %l.path.display(),
                changes = journal.len(),
                unreadable = l.unreadable,
                "undoing what {who} left behind"
            );
            if l.unreadable > 0 {
                warn!(
                    "{}: {} line(s) could not be read (the journal is damaged or was cut short); undoing the {} change(s) it still names; whatever the unreadable lines named, if anything, stays as it is",
                    l.path.display(),
                    l.unreadable,
                    journal.len()
                );
            }
            let mut failed = 0;
            for (_, change) in journal.undo_plan() {
                if let Err(e) = session::undo(&self.shared, &change).await {
                    failed += 1;
                    warn!("{who}: could not undo {change:?}: {e}");
                }
            }
            if failed > 0 {
                warn!(
                    "{}: {failed} change(s) could not be undone; the journal stays for the next start",
                    l.path.display()
                );
            } else if let Err(e) = std::fs::remove_file(&l.path) {
                warn!("removing {}: {e}", l.path.display());
            }
        }
        // No session lives yet: DNS settings of the direct backend still kept were left by
        // sessions whose journal is gone or unreadable. (Run-directory bookkeeping, like the
        // journals, so not behind NetOs; a no-op where the direct backend was never used.)
        let resolv_conf = &self.shared.dns.resolv_conf;
        match resolv_conf::recover(resolv_conf, dir) {
            Ok(true) => info!(
                "{} is back as it was before the sessions of a previous run",
                resolv_conf.display()
            ),
            Ok(false) => {}
            Err(e) => warn!(
                "could not restore {} as it was before the sessions of a previous run: {e}",
                resolv_conf.display()
            ),
        }
        scan.highest_id + 1
    }

    async fn prepare(
        &self,
        info: &SessionInfo,
    ) -> Result<(LinuxSession<O>, Vec<String>), NetworkError> {
        let fail = |function: &str, e: &io::Error| NetworkError {
            code: code_of(e),
            function: function.to_owned(),
            message: format!(
                "{e}. The service could not set up the VPN network for this session; see its log."
            ),
        };
        self.ensure_run_dir()
            .map_err(|e| fail("create run directory", &e))?;
        let record = Record::Session {
            id: info.id,
            uid: info.user.uid,
            user: info.user.name.clone(),
        };
        let run_dir = self.shared.config.run_dir.clone();
        let id = info.id;
        let file = session::offloaded("creating the undo journal", move || {
            journal_file::JournalFile::create(&run_dir, id, record)
        })
        .await
        .and_then(|created| created)
        .map_err(|e| fail("create undo journal", &e))?;
        let mut s = LinuxSession {
            id: info.id,
            user: info.user.clone(),
            tun: Tun {
                name: tun_name(&self.shared.tun_prefix, info.id),
                ifindex: 0,
            },
            journal: Journal::new(),
            file: Some(file),
            journal_lost: false,
            dns: DnsState::default(),
            shared: Arc::clone(&self.shared),
            openvpn_pid: None,
        };
        match self.prepare_session(&mut s, &info.user_args).await {
            Ok(args) => {
                info!(session = info.id, user = %info.user.name, tun = %s.tun.name, "network prepared");
                Ok((s, args))
            }
            Err(e) => {
                warn!(session = info.id, user = %info.user.name, "preparing the network: {e}");
                s.undo_all().await;
                Err(fail("create tun device", &e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
