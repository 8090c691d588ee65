//! DNS backends (design §4): systemd-resolved over D-Bus, `resolvconf`, or `resolv.conf`
//! itself. With `dns_backend = "auto"` the choice ([`detect`]) is made at start and made
//! again for each session's DNS while it is not systemd-resolved: at boot the service may
//! start before the system bus (it once settled on resolvconf for good that way). How to
//! take a session's settings back is written in its journal ([`DnsUndo`]), so each session
//! is undone by its own backend, and a later run can undo them whatever it detects itself.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{helper, resolv_conf};
use openvpnserv_core::linux::dns::{self, Backend, DnsState, Dnssec, Found};
use openvpnserv_core::linux::journal::DnsUndo;
use openvpnserv_core::linux::policy::Tun;
use openvpnserv_settings::DnsBackend;

const RESOLVE1: &str = "org.freedesktop.resolve1";

/// Where the DNS backends act.
#[derive(Debug)]
pub(crate) struct DnsConfig {
    /// The backend chosen last.
    pub(crate) backend: std::sync::Mutex<Backend>,
    /// Whether to look again ([`DnsConfig::choose`]): `dns_backend = "auto"` on the real
    /// system.
    pub(crate) redetect: bool,
    /// The file the direct backend rewrites.
    pub(crate) resolv_conf: PathBuf,
    /// Where the direct backend keeps its backups.
    pub(crate) run_dir: PathBuf,
}

/// How long one D-Bus call may take: a bus or a systemd-resolved that does not answer must
/// not hold a session (or the service's start) for ever.
const BUS_TIMEOUT: Duration = Duration::from_secs(5);

fn bus_error(e: &zbus::Error) -> io::Error {
    io::Error::other(format!("systemd-resolved over D-Bus: {e}"))
}

/// One D-Bus call, bounded by [`BUS_TIMEOUT`]. A failure other than the peer's own error
/// reply forgets the shared connection ([`system_bus`]), so that the next call makes a new one
/// (the bus may have restarted).
async fn bus<T>(
    what: &str,
    call: impl std::future::Future<Output = zbus::Result<T>>,
) -> io::Result<T> {
    let result = tokio::time::timeout(BUS_TIMEOUT, call).await;
    if !matches!(result, Ok(Ok(_) | Err(zbus::Error::MethodError(..)))) {
        forget_system_bus();
    }
    result
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} over D-Bus did not answer within {BUS_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| bus_error(&e))
}

/// The service's one connection to the system bus, made on first use. Connecting (socket,
/// authentication, Hello) cost several milliseconds per DNS request when each request made
/// its own, on the path of every connection.
static SYSTEM_BUS: std::sync::Mutex<Option<zbus::Connection>> = std::sync::Mutex::new(None);

fn forget_system_bus() {
    SYSTEM_BUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
}

async fn system_bus() -> io::Result<zbus::Connection> {
    let cached = SYSTEM_BUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(conn) = cached {
        return Ok(conn);
    }
    let conn = bus("connecting to the system bus", zbus::Connection::system()).await?;
    *SYSTEM_BUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn.clone());
    Ok(conn)
}

async fn resolved_present() -> bool {
    let Ok(conn) = system_bus().await else {
        return false;
    };
    let Ok(dbus) = bus("the bus", zbus::fdo::DBusProxy::new(&conn)).await else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(RESOLVE1) else {
        return false;
    };
    bus("NameHasOwner", async {
        Ok(dbus.name_has_owner(name).await?)
    })
    .await
    .unwrap_or(false)
}

/// A proxy for systemd-resolved's manager (and the connection it lives on).
async fn resolve1() -> io::Result<(
    zbus::Connection,
    zbus_systemd::resolve1::ManagerProxy<'static>,
)> {
    let conn = system_bus().await?;
    let m = bus(
        "systemd-resolved",
        zbus_systemd::resolve1::ManagerProxy::new(&conn),
    )
    .await?;
    Ok((conn, m))
}

/// The `resolvconf` program on `PATH` (or in the sbin directories), if any.
pub(crate) fn resolvconf_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("resolvconf"))
        .find(|p| p.is_file())
}

/// Chooses the backend: the configured one, or the first available (design §4).
pub(crate) async fn detect(setting: DnsBackend) -> Backend {
    let configured = match setting {
        DnsBackend::Auto => None,
        DnsBackend::Resolved => Some(Backend::Resolved),
        DnsBackend::Resolvconf => Some(Backend::Resolvconf),
        DnsBackend::Direct => Some(Backend::Direct),
        DnsBackend::None => Some(Backend::None),
    };
    let found = if configured.is_some() {
        Found::default()
    } else {
        Found {
            resolved: resolved_present().await,
            resolvconf: resolvconf_program().is_some(),
        }
    };
    dns::choose(configured, found)
}

impl DnsConfig {
    /// The backend chosen last.
    pub(crate) fn current(&self) -> Backend {
        *self
            .backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The backend for a session's DNS: systemd-resolved once found stays; anything else is
    /// asked again, so that a bus (and resolved) that came up after the service is used.
    pub(crate) async fn choose(&self) -> Backend {
        let now = self.current();
        if !self.redetect || now == Backend::Resolved {
            return now;
        }
        let found = detect(DnsBackend::Auto).await;
        if found != now {
            tracing::info!(
                "DNS backend is now {found:?} (was {now:?}): it appeared after the service started"
            );
            *self
                .backend
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = found;
        }
        found
    }

    /// How `backend`'s settings on `tun` for session `id` are taken back.
    pub(crate) fn undo_for(&self, backend: Backend, tun: &Tun, id: u64) -> Option<DnsUndo> {
        match backend {
            Backend::Resolved => Some(DnsUndo::Resolved {
                ifindex: tun.ifindex,
            }),
            Backend::Resolvconf => Some(DnsUndo::Resolvconf {
                name: tun.name.clone(),
            }),
            Backend::Direct => Some(DnsUndo::Direct {
                path: self.resolv_conf.display().to_string(),
                backup: self
                    .run_dir
                    .join(format!("resolv.conf.{id}"))
                    .display()
                    .to_string(),
            }),
            Backend::None => None,
        }
    }
}

/// Applies a session's whole DNS state.
pub(crate) async fn apply(undo: &DnsUndo, tun: &Tun, state: &DnsState) -> io::Result<()> {
    match undo {
        DnsUndo::Resolved { ifindex } => {
            let (_conn, m) = resolve1().await?;
            let link = *ifindex as i32;
            let servers = state
                .servers()
                .map(|a| match a {
                    IpAddr::V4(v4) => (i32::from(nix::libc::AF_INET as u16), v4.octets().to_vec()),
                    IpAddr::V6(v6) => (nix::libc::AF_INET6, v6.octets().to_vec()),
                })
                .collect();
            if state.ports.is_empty() {
                bus("SetLinkDNS", m.set_link_dns(link, servers)).await?;
            } else {
                let with_ports = servers
                    .into_iter()
                    .zip(state.servers())
                    .map(|((family, bytes), a)| (family, bytes, state.port(*a), String::new()))
                    .collect();
                bus("SetLinkDNSEx", m.set_link_dns_ex(link, with_ports)).await?;
            }
            bus(
                "SetLinkDomains",
                m.set_link_domains(link, state.resolved_domains()),
            )
            .await?;
            bus(
                "SetLinkDefaultRoute",
                m.set_link_default_route(link, state.default_route()),
            )
            .await?;
            let dnssec = match state.dnssec {
                Dnssec::Unset => None,
                Dnssec::No => Some("no"),
                Dnssec::Yes => Some("yes"),
                Dnssec::Optional => Some("allow-downgrade"),
            };
            if let Some(mode) = dnssec {
                bus("SetLinkDNSSEC", m.set_link_dnssec(link, mode.to_owned())).await?;
            }
            if state.tls {
                bus(
                    "SetLinkDNSOverTLS",
                    m.set_link_dns_over_tls(link, "yes".to_owned()),
                )
                .await?;
            }
            Ok(())
        }
        DnsUndo::Resolvconf { name } => {
            // No server left (openvpn removes its DNS settings one kind at a time on
            // disconnect): a record without servers is no record, and `resolvconf -a`
            // refuses it (systemd's resolvconf: "No DNS servers specified"). Remove it.
            if state.servers().next().is_none() {
                return resolvconf(&["-d", name], None).await;
            }
            let text = state.resolv_conf(&format!("openvpnserv: {}", tun.name));
            resolvconf(&["-a", name], Some(&text)).await
        }
        DnsUndo::Direct { path, backup } => {
            let text = state.resolv_conf(&format!(
                "written by openvpnserv for {}; restored when it disconnects",
                tun.name
            ));
            let (path, backup) = (PathBuf::from(path), PathBuf::from(backup));
            files(move || resolv_conf::apply(&path, &backup, &text)).await
        }
    }
}

/// Takes a session's DNS settings back. Tolerates settings that are already gone.
pub(crate) async fn revert(undo: &DnsUndo) -> io::Result<()> {
    match undo {
        DnsUndo::Resolved { ifindex } => {
            let (_conn, m) = resolve1().await?;
            let reverted = tokio::time::timeout(BUS_TIMEOUT, m.revert_link(*ifindex as i32))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("RevertLink over D-Bus did not answer within {BUS_TIMEOUT:?}"),
                    )
                })?;
            match reverted {
                Ok(()) => Ok(()),
                // The link is gone already (its tun was deleted): nothing to revert.
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str().ends_with("NoSuchLink") =>
                {
                    Ok(())
                }
                Err(e) => {
                    forget_system_bus();
                    Err(bus_error(&e))
                }
            }
        }
        DnsUndo::Resolvconf { name } => resolvconf(&["-d", name], None).await,
        DnsUndo::Direct { path, backup } => {
            let (path, backup) = (PathBuf::from(path), PathBuf::from(backup));
            files(move || resolv_conf::revert(&path, &backup)).await
        }
    }
}

/// How long the direct backend's file operations may take.
const FILES_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the direct backend's file operations off the event loop, bounded in time (a slow or
/// hung disk under `/etc` must not stall the service's other sessions).
async fn files(job: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    match tokio::time::timeout(FILES_TIMEOUT, tokio::task::spawn_blocking(job)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(io::Error::other(format!(
            "the resolv.conf update failed: {e}"
        ))),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the resolv.conf update did not finish within {FILES_TIMEOUT:?}"),
        )),
    }
}

async fn resolvconf(args: &[&str], input: Option<&str>) -> io::Result<()> {
    let program = resolvconf_program().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "resolvconf is not installed; set dns_backend to another backend",
        )
    })?;
    helper::run(&program, args, input).await.map(drop)
}
