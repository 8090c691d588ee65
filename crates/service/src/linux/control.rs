//! The control socket, `/run/openvpn<id>/control` (`proto::control`): `list`, `status`,
//! `stop`, `stop_all` and `log` of the service's connections.
//!
//! One JSON request per message, one JSON response per message. Who asks comes from the
//! kernel (`SO_PEERCRED`, at accept) and the user database (off the event loop, once per
//! connection); an ordinary user sees, reads and stops only their own connections, root and
//! members of the admin group all of them ([`Registry`]). Bounded as the service socket is:
//! [`MAX_PER_USER`] connections per uid and [`MAX_CONNECTIONS`] in all (refused right in the
//! accept loop), [`IDLE_TIMEOUT`] to send each request, [`WRITE_TIMEOUT`] to take each
//! response, one request at a time per connection, and the loop yields after each answer.
//! A stop is the service stop of one session: the session's own code sends SIGTERM, serves
//! the down sequence, kills after the grace and undoes everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openvpnserv_core::limits::{LimitError, Limits, Slot};
use openvpnserv_proto::control::{
    ErrorCode, Request, Response, MAX_LOG_LINES, MAX_REQUEST, MAX_RESPONSE,
};
use openvpnserv_settings::Instance;
use tokio_seqpacket::{UnixSeqpacket, UnixSeqpacketListener};
use tracing::{debug, info, warn, Instrument};

use super::identity::{peer_credentials, resolve, GidMembership, PeerCred};
use super::offload;
use super::registry::{Counters, Registry, Viewer};
use super::session::{send_now, Shared};
use openvpnserv_policy::Membership;

/// Control connections one uid may hold at once.
pub const MAX_PER_USER: usize = 4;
/// Control connections in all.
pub const MAX_CONNECTIONS: usize = 128;
/// Time a client has to send each request; an idle connection is closed after it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to take each response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The control socket of an instance.
pub fn socket_path(instance: &Instance) -> PathBuf {
    Path::new(&instance.run_dir()).join("control")
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The byte counters of a tun from `/sys/class/net/<tun>/statistics` (received,
/// transmitted).
pub fn sysfs_counters(tun: &str) -> Option<(u64, u64)> {
    if tun.is_empty() || tun.contains('/') || tun.starts_with('.') {
        return None;
    }
    let read = |what: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{tun}/statistics/{what}"))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((read("rx_bytes")?, read("tx_bytes")?))
}

/// The answer to one request.
pub fn answer(
    registry: &Registry,
    viewer: &Viewer,
    request: Request,
    counters: Counters<'_>,
    now: u64,
) -> Response {
    let result = match request {
        Request::List => Ok(Response::Connections {
            connections: registry.list(viewer, counters, now),
        }),
        Request::Status { name } => registry
            .status(viewer, &name, counters, now)
            .map(|connection| Response::Connection { connection }),
        Request::Stop { name } => registry.stop(viewer, &name, now).map(|stopped| {
            if let Some(n) = &stopped {
                info!(uid = viewer.uid, user = %viewer.name, connection = %n, "stop asked over the control socket");
            }
            Response::Stopping {
                names: stopped.into_iter().collect(),
            }
        }),
        Request::StopAll => {
            let names = registry.stop_all(viewer, now);
            if !names.is_empty() {
                info!(uid = viewer.uid, user = %viewer.name, connections = ?names, "stop of all asked over the control socket");
            }
            Ok(Response::Stopping { names })
        }
        Request::Log {
            name,
            from,
            max_lines,
        } => {
            let max = max_lines.unwrap_or(MAX_LOG_LINES).min(MAX_LOG_LINES) as usize;
            registry
                .log(viewer, &name, from, max, now)
                .map(|(lines, ended)| fit_log(lines.lines, lines.first, ended))
        }
    };
    result.unwrap_or_else(Response::from)
}

/// A log response cut (whole lines from the end) to fit [`MAX_RESPONSE`]; `next` says where
/// the cut lines start.
fn fit_log(mut lines: Vec<String>, first: u64, ended: bool) -> Response {
    // The envelope without lines, with room for the largest numbers.
    let envelope = Response::Log {
        lines: Vec::new(),
        first: u64::MAX,
        next: u64::MAX,
        ended: false,
    }
    .encode()
    .len();
    let mut size = envelope;
    let mut keep = 0;
    for line in &lines {
        // Each line as a JSON string, and its comma.
        let len = serde_json::to_string(line).map_or(usize::MAX, |s| s.len()) + 1;
        if size.saturating_add(len) > MAX_RESPONSE {
            break;
        }
        size += len;
        keep += 1;
    }
    let all = keep == lines.len();
    lines.truncate(keep);
    Response::Log {
        next: first + keep as u64,
        first,
        lines,
        // Lines were held back: more follow even when openvpn has ended.
        ended: ended && all,
    }
}

/// Accepts control connections until the service stops.
pub async fn run<N: Send + Sync + 'static>(
    listener: UnixSeqpacketListener,
    shared: Arc<Shared<N>>,
) {
    let limits = Limits::new(MAX_CONNECTIONS, MAX_PER_USER);
    let mut listener = listener;
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    if let Some((cred, slot)) = admit(&limits, &conn) {
                        let span = tracing::info_span!("control", uid = cred.uid, client_pid = cred.pid.unwrap_or(0));
                        connections.spawn(serve(Arc::clone(&shared), conn, cred, slot).instrument(span));
                    }
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    warn!("control socket: accept failed: {e}; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shared.shutdown.cancelled() => break,
        }
    }
    drop(listener);
    connections.close();
    // Connections end at their next request (the service is stopping) or time out.
    let _ = tokio::time::timeout(IDLE_TIMEOUT, connections.wait()).await;
}

/// Identifies the peer and takes a connection slot; refuses (without waiting) otherwise.
fn admit(limits: &Limits, conn: &UnixSeqpacket) -> Option<(PeerCred, Slot)> {
    let cred = match peer_credentials(conn) {
        Ok(c) => c,
        Err(e) => {
            warn!("control socket: refusing a client that cannot be identified: {e}");
            return None;
        }
    };
    match limits.acquire(cred.uid) {
        Ok(slot) => Some((cred, slot)),
        Err(limit) => {
            let message = match limit {
                LimitError::PerUser { limit } => format!(
                    "uid {} already has {limit} control connections open, the limit; close one and try again",
                    cred.uid
                ),
                LimitError::Total { limit } => format!(
                    "the service already serves {limit} control connections, its limit; try again shortly"
                ),
            };
            debug!(uid = cred.uid, "control socket: refused: {message}");
            send_now(
                conn,
                &Response::error(ErrorCode::Unavailable, message).encode(),
            );
            None
        }
    }
}

/// Who the peer is: the user database, off the event loop.
async fn viewer<N>(shared: &Shared<N>, cred: PeerCred) -> Result<Viewer, Response> {
    let uid = cred.uid;
    let admin_group = shared.settings.ovpn_admin_group.clone();
    let job = move || {
        let identity = resolve(cred)?;
        let admin =
            identity.uid == 0 || GidMembership(identity.all_groups()).is_member(&admin_group);
        Ok::<_, super::identity::IdentityError>(Viewer {
            uid: identity.uid,
            name: identity.name,
            admin,
        })
    };
    match shared
        .offload
        .run(uid, "looking up the caller", offload::LIMIT, job)
        .await
    {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Response::error(
            ErrorCode::Unavailable,
            format!("{e}; the service only answers accounts in the user database"),
        )),
        Err(e) => Err(Response::error(ErrorCode::Unavailable, e.to_string())),
    }
}

async fn reply(conn: &UnixSeqpacket, response: &Response) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.send(&response.encode())).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            debug!("control socket: cannot send the response: {e}");
            false
        }
        Err(_) => {
            debug!("control socket: the client did not take the response within {WRITE_TIMEOUT:?}");
            false
        }
    }
}

/// Serves one control connection: requests until it closes, idles, or the service stops.
async fn serve<N>(shared: Arc<Shared<N>>, conn: UnixSeqpacket, cred: PeerCred, _slot: Slot) {
    let mut buf = vec![0u8; MAX_REQUEST + 1];
    let mut who: Option<Viewer> = None;
    loop {
        let received = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, conn.recv(&mut buf)) => r,
            () = shared.shutdown.cancelled() => {
                let _ = reply(&conn, &Response::error(ErrorCode::Unavailable, "the service is stopping")).await;
                return;
            }
        };
        let n = match received {
            Err(_) => {
                debug!("control socket: no request within {IDLE_TIMEOUT:?}; closing");
                return;
            }
            Ok(Err(_) | Ok(0)) => return,
            Ok(Ok(n)) => n,
        };
        let response = match Request::decode(&buf[..n]) {
            Err(e) => Response::error(
                ErrorCode::BadRequest,
                format!("{e}; send one JSON request per message as docs/ISERVICE.md shows"),
            ),
            Ok(request) => {
                if who.is_none() {
                    match viewer(&shared, cred.clone()).await {
                        Ok(v) => who = Some(v),
                        Err(refusal) => {
                            let _ = reply(&conn, &refusal).await;
                            return;
                        }
                    }
                }
                let viewer = who.as_ref().expect("set above");
                answer(&shared.registry, viewer, request, &sysfs_counters, now())
            }
        };
        if !reply(&conn, &response).await {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::registry::Started;
    use openvpnserv_proto::control::State;
    use tokio_util::sync::CancellationToken;

    fn viewer(uid: u32) -> Viewer {
        Viewer {
            uid,
            name: format!("u{uid}"),
            admin: false,
        }
    }

    fn registry_with_log(lines: usize, len: usize) -> Registry {
        let r = Registry::default();
        r.register(
            Started {
                id: 1,
                uid: 1000,
                user: "u1000".into(),
                config: "/c/a.conf".into(),
                pid: 5,
                stop: CancellationToken::new(),
            },
            1,
        );
        let line = format!("{}\n", "\u{1}".repeat(len));
        for _ in 0..lines {
            r.output(1, line.as_bytes());
        }
        r
    }

    /// Control characters take six bytes each in JSON: a full ring of them would not fit
    /// one response, so it is cut, and `next` says where to go on.
    #[test]
    fn a_log_response_is_cut_to_fit_and_says_where_to_continue() {
        let r = registry_with_log(1000, 250);
        let req = Request::Log {
            name: "a".into(),
            from: 0,
            max_lines: None,
        };
        let resp = answer(&r, &viewer(1000), req, &|_| None, 2);
        let bytes = resp.encode();
        assert!(bytes.len() <= MAX_RESPONSE, "{} bytes", bytes.len());
        let Response::Log {
            lines,
            first,
            next,
            ended,
        } = resp
        else {
            panic!("{resp:?}")
        };
        assert!(
            !lines.is_empty() && lines.len() < 1000,
            "{} lines",
            lines.len()
        );
        assert_eq!(next, first + lines.len() as u64);
        assert!(!ended);
        assert_eq!(Response::decode(&bytes).unwrap().encode(), bytes);
    }

    #[test]
    fn requests_are_answered_for_the_caller() {
        let r = registry_with_log(3, 1);
        let list = |uid| match answer(&r, &viewer(uid), Request::List, &|_| None, 2) {
            Response::Connections { connections } => connections.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!((list(1000), list(1001)), (1, 0));
        let stop = answer(
            &r,
            &viewer(1001),
            Request::Stop { name: "a".into() },
            &|_| None,
            2,
        );
        assert!(
            matches!(
                stop,
                Response::Error {
                    code: ErrorCode::Forbidden,
                    ..
                }
            ),
            "{stop:?}"
        );
        let status = |uid| {
            answer(
                &r,
                &viewer(uid),
                Request::Status { name: "a".into() },
                &|_| None,
                2,
            )
        };
        assert!(
            matches!(status(1000), Response::Connection { connection } if connection.state == State::Starting)
        );
        let stop = answer(
            &r,
            &viewer(1000),
            Request::Stop { name: "a".into() },
            &|_| None,
            2,
        );
        assert_eq!(
            stop,
            Response::Stopping {
                names: vec!["a".into()]
            }
        );
        let log = answer(
            &r,
            &viewer(1000),
            Request::Log {
                name: "a".into(),
                from: 1,
                max_lines: Some(1),
            },
            &|_| None,
            2,
        );
        assert!(
            matches!(
                log,
                Response::Log {
                    first: 1,
                    next: 2,
                    ..
                }
            ),
            "{log:?}"
        );
    }
}
