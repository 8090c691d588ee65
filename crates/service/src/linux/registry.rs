//! The service's connections as the control socket shows them (`proto::control`): one entry
//! per session with openvpn started, from start to a while after its end.
//!
//! Sessions write here (started, network changed, asked to stop, exited, openvpn's output);
//! the control socket reads. Sans-IO: times are passed in (seconds since the epoch), and the
//! tun's byte counters are asked of the caller. Who may see what is decided here
//! ([`Viewer`]), so that every request kind applies the same rule.
//!
//! Ended sessions stay listed as `exited` for [`KEEP_EXITED`] so that their log can be read,
//! at most [`MAX_EXITED_PER_USER`] per user and [`MAX_EXITED`] in all (oldest go first).

#![forbid(unsafe_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use openvpnserv_proto::control::{connection_name, Connection, ErrorCode, Response, State};
use tokio_util::sync::CancellationToken;

use super::ring::{Lines, LogRing};

/// How long an ended session stays listed, in seconds.
pub const KEEP_EXITED: u64 = 10 * 60;
/// Ended sessions kept per user.
pub const MAX_EXITED_PER_USER: usize = 8;
/// Ended sessions kept in all.
pub const MAX_EXITED: usize = 64;

/// What the network layer has applied for a session (see `NetworkSession::view`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetView {
    /// The session's tun.
    pub tun: Option<String>,
    /// Addresses on it, `address/prefix`.
    pub addresses: Vec<String>,
}

/// A session whose openvpn was just started.
#[derive(Debug, Clone)]
pub struct Started {
    /// The session number.
    pub id: u64,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's login name.
    pub user: String,
    /// The config file as resolved.
    pub config: String,
    /// openvpn's pid.
    pub pid: u32,
    /// Cancelled to stop this session (the same path as a service stop).
    pub stop: CancellationToken,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    conn: Connection,
    log: LogRing,
    /// openvpn's output pipe is closed (or no longer read).
    output_ended: bool,
    stop: CancellationToken,
    /// When it exited (seconds), for [`KEEP_EXITED`].
    ended_at: Option<u64>,
}

/// Who asks, as the kernel and the user database say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// uid.
    pub uid: u32,
    /// Login name.
    pub name: String,
    /// Root or a member of the admin group: sees and stops every connection.
    pub admin: bool,
}

impl Viewer {
    fn may(&self, conn: &Connection) -> bool {
        self.admin || conn.uid == self.uid
    }
}

/// A request refused: the control socket answers it as [`Response::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why, for programs.
    pub code: ErrorCode,
    /// Why, for people.
    pub message: String,
}

impl Refused {
    fn new(code: ErrorCode, message: String) -> Self {
        Self { code, message }
    }
}

impl From<Refused> for Response {
    fn from(r: Refused) -> Self {
        Response::Error {
            code: r.code,
            message: r.message,
        }
    }
}

/// Every connection of the service.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<Vec<Entry>>,
}

/// The byte counters of a tun: `(received, transmitted)`.
pub type Counters<'a> = &'a dyn Fn(&str) -> Option<(u64, u64)>;

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a started session; returns its name (unique among the running ones).
    pub fn register(&self, s: Started, now: u64) -> String {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let name = connection_name(&s.config, |n| {
            entries
                .iter()
                .any(|e| e.conn.state != State::Exited && e.conn.name == n)
        });
        entries.push(Entry {
            id: s.id,
            conn: Connection {
                name: name.clone(),
                user: s.user,
                uid: s.uid,
                config: s.config,
                pid: s.pid,
                state: State::Starting,
                since: now,
                state_since: now,
                tun: None,
                addresses: Vec::new(),
                bytes_in: 0,
                bytes_out: 0,
                exit_code: None,
            },
            log: LogRing::default(),
            output_ended: false,
            stop: s.stop,
            ended_at: None,
        });
        name
    }

    fn with<T>(&self, id: u64, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        self.lock().iter_mut().find(|e| e.id == id).map(f)
    }

    /// The network layer changed something: the tun with addresses means connected; a tun
    /// that lost them while openvpn runs, reconnecting.
    pub fn network(&self, id: u64, view: NetView, now: u64) {
        self.with(id, |e| {
            let c = &mut e.conn;
            let state = match c.state {
                State::Starting | State::Reconnecting if !view.addresses.is_empty() => {
                    State::Connected
                }
                State::Connected if view.addresses.is_empty() => State::Reconnecting,
                other => other,
            };
            set_state(c, state, now);
            c.tun = view.tun;
            c.addresses = view.addresses;
        });
    }

    /// The session is stopping (asked to, or the service stops).
    pub fn exiting(&self, id: u64, now: u64) {
        self.with(id, |e| {
            if e.conn.state != State::Exited {
                set_state(&mut e.conn, State::Exiting, now);
            }
        });
    }

    /// openvpn has exited (`exit_code` as the late reply counts it: 128 + a signal), with the
    /// tun's last byte counters.
    pub fn exited(&self, id: u64, exit_code: Option<i32>, bytes: Option<(u64, u64)>, now: u64) {
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
            set_state(&mut e.conn, State::Exited, now);
            e.conn.exit_code = exit_code;
            e.conn.addresses.clear();
            if let Some((rx, tx)) = bytes {
                e.conn.bytes_in = rx;
                e.conn.bytes_out = tx;
            }
            e.ended_at = Some(now);
        }
        prune(&mut entries, now);
    }

    /// openvpn wrote `data` on stdout or stderr.
    pub fn output(&self, id: u64, data: &[u8]) {
        self.with(id, |e| e.log.push(data));
    }

    /// openvpn's output ended (or is no longer read).
    pub fn output_ended(&self, id: u64) {
        self.with(id, |e| {
            e.log.finish();
            e.output_ended = true;
        });
    }

    /// The newest line of a session's output.
    pub fn last_line(&self, id: u64) -> Option<String> {
        self.with(id, |e| e.log.last().map(str::to_owned)).flatten()
    }

    /// The connections `viewer` may see, ordered by start, with their byte counters now.
    pub fn list(&self, viewer: &Viewer, counters: Counters<'_>, now: u64) -> Vec<Connection> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        entries
            .iter()
            .filter(|e| viewer.may(&e.conn))
            .map(|e| shown(e, counters))
            .collect()
    }

    /// One connection by name, if `viewer` may see it.
    pub fn status(
        &self,
        viewer: &Viewer,
        name: &str,
        counters: Counters<'_>,
        now: u64,
    ) -> Result<Connection, Refused> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let i = find(&entries, viewer, name)?;
        Ok(shown(&entries[i], counters))
    }

    /// Lines of a connection's output, and whether it has ended for good.
    pub fn log(
        &self,
        viewer: &Viewer,
        name: &str,
        from: u64,
        max: usize,
        now: u64,
    ) -> Result<(Lines, bool), Refused> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let e = &entries[find(&entries, viewer, name)?];
        let ended = e.conn.state == State::Exited && e.output_ended;
        Ok((e.log.read(from, max), ended))
    }

    /// Asks one connection to stop; returns its name, or `None` when it had already exited.
    pub fn stop(&self, viewer: &Viewer, name: &str, now: u64) -> Result<Option<String>, Refused> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let i = find(&entries, viewer, name)?;
        Ok(stop_entry(&mut entries[i], now))
    }

    /// Asks every running connection `viewer` may stop to stop; returns their names.
    pub fn stop_all(&self, viewer: &Viewer, now: u64) -> Vec<String> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        entries
            .iter_mut()
            .filter(|e| viewer.may(&e.conn))
            .filter_map(|e| stop_entry(e, now))
            .collect()
    }
}

fn set_state(c: &mut Connection, state: State, now: u64) {
    if c.state != state {
        c.state = state;
        c.state_since = now;
    }
}

fn stop_entry(e: &mut Entry, now: u64) -> Option<String> {
    if e.conn.state == State::Exited {
        return None;
    }
    set_state(&mut e.conn, State::Exiting, now);
    e.stop.cancel();
    Some(e.conn.name.clone())
}

fn shown(e: &Entry, counters: Counters<'_>) -> Connection {
    let mut c = e.conn.clone();
    if c.state != State::Exited {
        if let Some((rx, tx)) = c.tun.as_deref().and_then(counters) {
            c.bytes_in = rx;
            c.bytes_out = tx;
        }
    }
    c
}

/// The entry `name` for `viewer`: a running one before an ended one, the newest first.
/// Another user's connection is [`ErrorCode::Forbidden`] (saying whose it is and who may),
/// none by that name [`ErrorCode::NotFound`].
fn find(entries: &[Entry], viewer: &Viewer, name: &str) -> Result<usize, Refused> {
    let rank = |e: &Entry| (e.conn.state != State::Exited, e.conn.since, e.id);
    let best = |mine: bool| {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.conn.name == name && viewer.may(&e.conn) == mine)
            .max_by_key(|(_, e)| rank(e))
            .map(|(i, _)| i)
    };
    if let Some(i) = best(true) {
        return Ok(i);
    }
    if let Some(i) = best(false) {
        let c = &entries[i].conn;
        return Err(Refused::new(
            ErrorCode::Forbidden,
            format!(
                "connection {name:?} belongs to {} (uid {}), not to you ({}, uid {}); only its owner, root and members of the admin group (ovpn_admin_group) may see, read or stop it",
                c.user, c.uid, viewer.name, viewer.uid
            ),
        ));
    }
    Err(Refused::new(
        ErrorCode::NotFound,
        format!("no connection named {name:?}; `iservice list` shows yours"),
    ))
}

/// Forgets ended sessions past [`KEEP_EXITED`], beyond [`MAX_EXITED_PER_USER`] of a user, or
/// beyond [`MAX_EXITED`] in all, oldest first.
fn prune(entries: &mut Vec<Entry>, now: u64) {
    entries.retain(|e| {
        e.ended_at
            .is_none_or(|t| now.saturating_sub(t) < KEEP_EXITED)
    });
    let mut ended: Vec<(u64, u64, u32)> = entries
        .iter()
        .filter_map(|e| e.ended_at.map(|t| (t, e.id, e.conn.uid)))
        .collect();
    // Newest first: keep the first MAX_EXITED_PER_USER of each user, MAX_EXITED in all.
    ended.sort_unstable_by(|a, b| b.cmp(a));
    let mut per_user = std::collections::HashMap::<u32, usize>::new();
    let mut kept = 0;
    let mut gone = Vec::new();
    for (_, id, uid) in ended {
        let n = per_user.entry(uid).or_insert(0);
        if *n >= MAX_EXITED_PER_USER || kept >= MAX_EXITED {
            gone.push(id);
        } else {
            *n += 1;
            kept += 1;
        }
    }
    if !gone.is_empty() {
        entries.retain(|e| !gone.contains(&e.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: u64, uid: u32, config: &str) -> Started {
        Started {
            id,
            uid,
            user: format!("user{uid}"),
            config: config.into(),
            pid: 100 + id as u32,
            stop: CancellationToken::new(),
        }
    }

    fn viewer(uid: u32, admin: bool) -> Viewer {
        Viewer {
            uid,
            name: format!("user{uid}"),
            admin,
        }
    }

    fn no_counters(_: &str) -> Option<(u64, u64)> {
        None
    }

    fn up(id: u64) -> NetView {
        NetView {
            tun: Some(format!("ovs{id}")),
            addresses: vec!["10.8.0.2/24".into()],
        }
    }

    #[test]
    fn states_follow_the_network_and_the_exit() {
        let r = Registry::default();
        assert_eq!(r.register(started(1, 1000, "/c/work.conf"), 10), "work");
        let me = viewer(1000, false);
        let state = |now| r.status(&me, "work", &no_counters, now).unwrap();
        assert_eq!(state(10).state, State::Starting);
        r.network(
            1,
            NetView {
                tun: Some("ovs1".into()),
                addresses: vec![],
            },
            11,
        );
        assert_eq!(
            state(11).state,
            State::Starting,
            "a tun without addresses is not up"
        );
        r.network(1, up(1), 12);
        let c = state(12);
        assert_eq!(
            (c.state, c.state_since, c.since),
            (State::Connected, 12, 10)
        );
        assert_eq!(c.tun.as_deref(), Some("ovs1"));
        assert_eq!(c.addresses, ["10.8.0.2/24"]);
        r.network(
            1,
            NetView {
                tun: Some("ovs1".into()),
                addresses: vec![],
            },
            13,
        );
        assert_eq!(state(13).state, State::Reconnecting);
        r.network(1, up(1), 14);
        assert_eq!(state(14).state, State::Connected);
        r.exiting(1, 15);
        r.network(1, NetView::default(), 16);
        assert_eq!(
            state(16).state,
            State::Exiting,
            "the down sequence does not make it reconnect"
        );
        r.exited(1, Some(0), Some((5, 6)), 17);
        let c = state(17);
        assert_eq!(
            (c.state, c.exit_code, c.bytes_in, c.bytes_out),
            (State::Exited, Some(0), 5, 6)
        );
        assert!(c.addresses.is_empty());
    }

    #[test]
    fn names_are_unique_among_running_connections_only() {
        let r = Registry::default();
        assert_eq!(r.register(started(1, 1000, "/c/work.conf"), 1), "work");
        assert_eq!(r.register(started(2, 1001, "/c/work.conf"), 1), "work-2");
        r.exited(1, Some(1), None, 2);
        assert_eq!(r.register(started(3, 1000, "/c/work.conf"), 3), "work");
        // The running one is found before the ended one of the same name.
        let c = r
            .status(&viewer(1000, false), "work", &no_counters, 3)
            .unwrap();
        assert_eq!((c.pid, c.state), (103, State::Starting));
    }

    #[test]
    fn users_see_their_own_admins_see_all() {
        let r = Registry::default();
        r.register(started(1, 1000, "/c/a.conf"), 1);
        r.register(started(2, 1001, "/c/b.conf"), 2);
        let names = |v: &Viewer| {
            r.list(v, &no_counters, 3)
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&viewer(1000, false)), ["a"]);
        assert_eq!(names(&viewer(1001, false)), ["b"]);
        assert_eq!(names(&viewer(1002, false)), Vec::<String>::new());
        assert_eq!(names(&viewer(1002, true)), ["a", "b"]);
    }

    /// Another user's connection: refused with whose it is and who may, and nothing
    /// happens to it; an unknown name is not found.
    #[test]
    fn another_users_connection_is_forbidden_for_status_log_and_stop() {
        let r = Registry::default();
        let s = started(1, 1000, "/c/a.conf");
        let token = s.stop.clone();
        r.register(s, 1);
        let other = viewer(1001, false);
        let forbidden = |r: Refused| {
            assert_eq!(r.code, ErrorCode::Forbidden);
            assert!(r.message.contains("user1000 (uid 1000)"), "{}", r.message);
            assert!(r.message.contains("admin group"), "{}", r.message);
        };
        forbidden(r.status(&other, "a", &no_counters, 2).unwrap_err());
        forbidden(r.log(&other, "a", 0, 10, 2).unwrap_err());
        forbidden(r.stop(&other, "a", 2).unwrap_err());
        assert!(r.stop_all(&other, 2).is_empty());
        assert!(!token.is_cancelled(), "a refused stop stops nothing");
        assert_eq!(
            r.status(&other, "nope", &no_counters, 2).unwrap_err().code,
            ErrorCode::NotFound
        );
        // The owner and an admin may.
        assert_eq!(
            r.stop(&viewer(1000, false), "a", 3).unwrap().as_deref(),
            Some("a")
        );
        assert!(token.is_cancelled());
        let c = r.status(&viewer(0, true), "a", &no_counters, 3).unwrap();
        assert_eq!(c.state, State::Exiting);
        r.exited(1, Some(0), None, 4);
        assert_eq!(
            r.stop(&viewer(0, true), "a", 5).unwrap(),
            None,
            "already exited"
        );
    }

    #[test]
    fn stop_all_stops_only_what_the_caller_may() {
        let r = Registry::default();
        let (a, b) = (started(1, 1000, "/c/a.conf"), started(2, 1001, "/c/b.conf"));
        let (ta, tb) = (a.stop.clone(), b.stop.clone());
        r.register(a, 1);
        r.register(b, 1);
        assert_eq!(r.stop_all(&viewer(1000, false), 2), ["a"]);
        assert!(ta.is_cancelled() && !tb.is_cancelled());
        assert_eq!(r.stop_all(&viewer(0, true), 2), ["a", "b"]);
        assert!(tb.is_cancelled());
    }

    #[test]
    fn byte_counters_are_read_at_request_time() {
        let r = Registry::default();
        r.register(started(1, 1000, "/c/a.conf"), 1);
        r.network(1, up(1), 2);
        let counters = |tun: &str| (tun == "ovs1").then_some((7, 8));
        let c = r.status(&viewer(1000, false), "a", &counters, 3).unwrap();
        assert_eq!((c.bytes_in, c.bytes_out), (7, 8));
    }

    #[test]
    fn ended_sessions_stay_for_a_while_and_a_few_per_user() {
        let r = Registry::default();
        for id in 1..=20 {
            r.register(started(id, 1000, "/c/a.conf"), id);
            r.exited(id, Some(1), None, id);
        }
        r.register(started(99, 1001, "/c/b.conf"), 20);
        r.exited(99, Some(1), None, 20);
        let all = r.list(&viewer(0, true), &no_counters, 21);
        let mine: Vec<u32> = all
            .iter()
            .filter(|c| c.uid == 1000)
            .map(|c| c.pid)
            .collect();
        assert_eq!(mine.len(), MAX_EXITED_PER_USER);
        assert_eq!(mine[0], 100 + 13, "the oldest went first");
        assert_eq!(all.iter().filter(|c| c.uid == 1001).count(), 1);
        assert!(r
            .list(&viewer(0, true), &no_counters, 20 + KEEP_EXITED)
            .is_empty());
    }

    #[test]
    fn the_log_is_read_by_line_number_and_ends_with_the_output() {
        let r = Registry::default();
        r.register(started(1, 1000, "/c/a.conf"), 1);
        r.output(1, b"Options error: Unrecognized option or missing or extra parameter(s) in a.conf:3: bogus (2.6.14)\nUse --help for more information.\n");
        let me = viewer(1000, false);
        let (lines, ended) = r.log(&me, "a", 0, 10, 2).unwrap();
        assert!(lines.lines[0].contains("Unrecognized option"));
        assert_eq!((lines.first, lines.next, ended), (0, 2, false));
        assert_eq!(
            r.last_line(1).as_deref(),
            Some("Use --help for more information.")
        );
        r.exited(1, Some(1), None, 3);
        assert!(!r.log(&me, "a", 2, 10, 3).unwrap().1, "output still open");
        r.output_ended(1);
        let (lines, ended) = r.log(&me, "a", 2, 10, 3).unwrap();
        assert!(lines.lines.is_empty() && ended);
    }
}
