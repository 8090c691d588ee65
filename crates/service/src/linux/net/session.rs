//! One session's network state: each channel request checked by the policy, performed, and
//! written in the journal; everything undone at the end.

use std::cell::Cell;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use openvpnserv_core::linux::dns::DnsState;
use openvpnserv_core::linux::iproute::describe;
use openvpnserv_core::linux::journal::{Change, Journal, Record};
use openvpnserv_core::linux::policy::{decide, Action, Facts, Path, Refusal, Tun};
use openvpnserv_proto::channel::Request;
use openvpnserv_proto::codes;
use tracing::{info, warn};

use super::journal_file::JournalFile;
use super::os::{NetOs, System};
use super::Shared;
use crate::linux::net::{NetView, NetworkSession, SessionUser};

/// A session of the network layer.
#[derive(Debug)]
pub struct LinuxSession<O: NetOs = System> {
    pub(super) id: u64,
    pub(super) user: SessionUser,
    pub(super) tun: Tun,
    pub(super) journal: Journal,
    pub(super) file: Option<JournalFile>,
    /// The journal file was lost to a write that never finished: no further change may be
    /// made (it could not be undone after a crash).
    pub(super) journal_lost: bool,
    pub(super) dns: DnsState,
    pub(super) shared: Arc<Shared<O>>,
    pub(super) openvpn_pid: Option<u32>,
}

/// Whether an error means "it is not there": fine for an undo.
fn already_gone(e: &io::Error) -> bool {
    use nix::libc::{EADDRNOTAVAIL, ENODEV, ENOENT, ESRCH};
    matches!(
        e.raw_os_error(),
        Some(ENOENT | ESRCH | ENODEV | EADDRNOTAVAIL)
    ) || e.kind() == io::ErrorKind::NotFound
}

/// The ack code for an OS error.
pub fn code_of(e: &io::Error) -> u32 {
    codes::errno::ack_code(e.raw_os_error())
}

/// Undoes one journalled change; "already gone" counts as done.
pub(super) async fn undo<O: NetOs>(shared: &Shared<O>, change: &Change) -> io::Result<()> {
    let os = &shared.os;
    let r = match change {
        Change::Tun { name } => match os.link_index(name).await? {
            Some(i) => os.delete_link(i).await,
            None => Ok(()),
        },
        Change::DeviceNode { path } => os.remove_node(std::path::Path::new(path)),
        Change::Address(a) => os.del_address(a).await,
        Change::Route(r) => os.del_route(r).await,
        Change::Dns(u) => os.dns_revert(u).await,
        Change::Firewall { table } => os.firewall_delete(table).await,
    };
    match r {
        Err(e) if already_gone(&e) => Ok(()),
        other => other,
    }
}

/// How long one journal write may take before the session stops trusting its journal.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs file work on a blocking thread, bounded by [`JOURNAL_TIMEOUT`].
pub(super) async fn offloaded<T: Send + 'static>(
    what: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    match tokio::time::timeout(JOURNAL_TIMEOUT, tokio::task::spawn_blocking(job)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(io::Error::other(format!("{what} failed: {e}"))),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} did not finish within {JOURNAL_TIMEOUT:?}"),
        )),
    }
}

impl<O: NetOs> LinuxSession<O> {
    /// Writes a record. Marks are gathered in memory; what needs the file (an intent, a full
    /// batch, a compaction) is written off the event loop.
    async fn write(&mut self, record: Record) -> io::Result<()> {
        if self.journal_lost {
            return Err(io::Error::other(
                "an earlier write of the undo journal never finished",
            ));
        }
        let live = self.journal.len();
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if file.buffers(&record, live) {
            return file.write(&record);
        }
        let mut file = self.file.take().expect("checked above");
        let snapshot = file
            .compaction_due(live)
            .then(|| self.journal.snapshot(file.session()));
        let job = move || {
            let written = file.write(&record).and_then(|()| match &snapshot {
                Some(s) => file.compact(s),
                None => Ok(()),
            });
            (file, written)
        };
        match offloaded("writing the undo journal", job).await {
            Ok((file, written)) => {
                self.file = Some(file);
                written
            }
            Err(e) => {
                self.journal_lost = true;
                Err(e)
            }
        }
    }

    /// Writes the intent for `change`; nothing may be changed if this fails.
    pub(super) async fn begin(&mut self, change: Change) -> io::Result<u64> {
        let (seq, record) = self.journal.intend(change);
        if let Err(e) = self.write(record).await {
            self.journal.forget(seq);
            // A change the journal does not hold could not be undone after a crash.
            warn!(
                session = self.id,
                user = %self.user.name,
                "cannot write the undo journal {}: {e}; the change is refused and nothing was changed (is the file system of {} full?)",
                self.file.as_ref().map(|f| f.path().display().to_string()).unwrap_or_default(),
                self.shared.config.run_dir.display()
            );
            return Err(e);
        }
        Ok(seq)
    }

    /// Records the outcome of `seq`: confirmed, or gone if it failed.
    pub(super) async fn end(&mut self, seq: u64, done: bool) -> io::Result<()> {
        let record = if done {
            self.journal.confirm(seq)
        } else {
            self.journal.forget(seq)
        };
        self.write(record).await
    }

    /// Undoes the journal's change `seq` and forgets it.
    async fn unmake(&mut self, seq: u64) -> io::Result<()> {
        let Some(entry) = self.journal.get(seq) else {
            return Ok(());
        };
        let change = entry.change.clone();
        undo(&self.shared, &change).await?;
        self.end(seq, false).await
    }

    /// The host route outside the tunnel, if the session has one (the VPN server).
    fn server(&self) -> Option<IpAddr> {
        self.journal.live().find_map(|(_, e)| match &e.change {
            Change::Route(r) if r.oif != self.tun.ifindex => Some(r.dst),
            _ => None,
        })
    }

    async fn decide(&self, request: &Request) -> Result<Action, Refusal> {
        let facts = Facts {
            tun: &self.tun,
            journal: &self.journal,
            dns: &self.dns,
            caps: self.shared.dns.current().caps(),
        };
        // Most requests never need the kernel's path to a host; look it up only when the
        // policy asked for it.
        let asked = Cell::new(None);
        let first = decide(facts, request, &|dst| {
            asked.set(Some(dst));
            None
        });
        let Some(dst) = asked.get() else {
            return first;
        };
        let path: Option<Path> = match self.shared.os.route_to(dst).await {
            Ok(p) => p,
            Err(e) => {
                return Err(Refusal {
                    code: code_of(&e),
                    reason: format!("looking up the route to {dst}: {e}"),
                })
            }
        };
        decide(facts, request, &|_| path.clone())
    }

    async fn execute(&mut self, action: Action) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let os = &shared.os;
        match action {
            Action::SetLink { mtu } => os.set_link(self.tun.ifindex, mtu).await,
            Action::AddAddress(a) => {
                let seq = self.begin(Change::Address(a.clone())).await?;
                let r = os.add_address(&a).await;
                self.end(seq, r.is_ok()).await?;
                r
            }
            Action::AddRoute(rt) => {
                let seq = self.begin(Change::Route(rt.clone())).await?;
                let r = os.add_route(&rt).await;
                self.end(seq, r.is_ok()).await?;
                r
            }
            Action::DelAddress(seq) | Action::DelRoute(seq) => self.unmake(seq).await,
            Action::Dns(state) => self.set_dns(state).await,
            Action::KeepDns(state) => {
                self.dns = state;
                Ok(())
            }
            Action::Block { dns_only } => {
                if self
                    .journal
                    .find(|c| matches!(c, Change::Firewall { .. }))
                    .is_some()
                {
                    return Ok(());
                }
                let table = format!("{}{}", self.shared.table_prefix, self.id);
                let seq = self
                    .begin(Change::Firewall {
                        table: table.clone(),
                    })
                    .await?;
                let r = os
                    .firewall_add(&table, &self.tun.name, dns_only, self.server())
                    .await;
                self.end(seq, r.is_ok()).await?;
                r
            }
            Action::Unblock => match self.journal.find(|c| matches!(c, Change::Firewall { .. })) {
                Some(seq) => self.unmake(seq).await,
                None => Ok(()),
            },
            Action::Nothing => Ok(()),
        }
    }

    async fn set_dns(&mut self, state: DnsState) -> io::Result<()> {
        for why in &state.skipped {
            info!(session = self.id, user = %self.user.name, "{why}");
        }
        let live = self.journal.find(|c| matches!(c, Change::Dns(_)));
        if state.is_empty() {
            if let Some(seq) = live {
                self.unmake(seq).await?;
            }
            self.dns = state;
            return Ok(());
        }
        let new = live.is_none();
        let seq = if let Some(seq) = live {
            seq
        } else {
            let backend = self.shared.dns.choose().await;
            let Some(u) = self.shared.dns.undo_for(backend, &self.tun, self.id) else {
                info!(
                    session = self.id,
                    "DNS settings ignored: dns_backend is none"
                );
                self.dns = state;
                return Ok(());
            };
            self.begin(Change::Dns(u)).await?
        };
        let Some(Change::Dns(u)) = self.journal.get(seq).map(|e| e.change.clone()) else {
            return Ok(());
        };
        let os = &self.shared.os;
        match os.dns_apply(&u, &self.tun, &state).await {
            Ok(()) => {
                if new {
                    self.end(seq, true).await?;
                }
                self.dns = state;
                Ok(())
            }
            Err(e) => {
                if new {
                    // Take back whatever part was applied before the failure.
                    if let Err(r) = self.shared.os.dns_revert(&u).await {
                        warn!(session = self.id, "reverting partial DNS settings: {r}");
                    }
                    self.end(seq, false).await?;
                }
                Err(e)
            }
        }
    }

    /// Undoes everything, newest first; keeps the journal file if something could not be
    /// undone, so the next start tries again.
    pub(super) async fn undo_all(&mut self) {
        let mut failed = 0;
        let mut deleted_links = Vec::new();
        for (seq, change) in self.journal.undo_plan() {
            match undo(&self.shared, &change).await {
                Ok(()) => {
                    if let Change::Tun { name } = &change {
                        deleted_links.push(name.clone());
                    }
                    if let Err(e) = self.end(seq, false).await {
                        warn!(session = self.id, "journal: {e}");
                    }
                }
                Err(e) => {
                    failed += 1;
                    warn!(session = self.id, user = %self.user.name, "could not undo {change:?}: {e}");
                }
            }
        }
        // What lived on a deleted tun went with it: write it off too, so that a journal kept
        // for a failed undo holds only what is really left.
        let died: Vec<u64> = self
            .journal
            .live()
            .filter(|(_, e)| {
                e.change
                    .on_link()
                    .is_some_and(|l| deleted_links.iter().any(|d| d == l))
            })
            .map(|(seq, _)| seq)
            .collect();
        for seq in died {
            if let Err(e) = self.end(seq, false).await {
                warn!(session = self.id, "journal: {e}");
            }
        }
        if let Some(f) = self.file.take() {
            // Removed when all is undone; otherwise kept (with its last marks, written when
            // it is dropped) for the next start to try again.
            let job = move || {
                if failed == 0 {
                    f.remove()
                } else {
                    drop(f);
                    Ok(())
                }
            };
            match offloaded("closing the undo journal", job).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) | Err(e) => warn!(session = self.id, "closing the journal: {e}"),
            }
        }
    }
}

impl<O: NetOs> NetworkSession for LinuxSession<O> {
    fn started(&mut self, pid: u32) {
        self.openvpn_pid = Some(pid);
    }

    fn view(&self) -> NetView {
        let addresses = self
            .journal
            .live()
            .filter_map(|(_, e)| match &e.change {
                Change::Address(a) if e.done && a.dev == self.tun.name => {
                    Some(format!("{}/{}", a.addr, a.prefix_len))
                }
                _ => None,
            })
            .collect();
        NetView {
            tun: Some(self.tun.name.clone()),
            addresses,
        }
    }

    async fn handle(&mut self, request: Request) -> u32 {
        // Described only for a log line: this runs for every route of a session.
        let what = || describe(&request);
        match self.decide(&request).await {
            Err(refusal) => {
                warn!(
                    session = self.id,
                    user = %self.user.name,
                    uid = self.user.uid,
                    request = %what(),
                    code = refusal.code,
                    "refused: {}",
                    refusal.reason
                );
                refusal.code
            }
            Ok(action) => match self.execute(action).await {
                Ok(()) => codes::NO_ERROR,
                Err(e) => {
                    let code = code_of(&e);
                    warn!(session = self.id, user = %self.user.name, request = %what(), code, "failed: {e}");
                    code
                }
            },
        }
    }

    async fn cleanup(mut self) {
        self.undo_all().await;
        info!(
            session = self.id,
            user = %self.user.name,
            openvpn_pid = self.openvpn_pid.unwrap_or(0),
            "network changes undone"
        );
    }
}
