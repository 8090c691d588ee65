//! The accept loop and the service's lifetime.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_seqpacket::UnixSeqpacketListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::net::Network;
use super::session::{admit, serve, Shared};

/// Connections accepted before the loop lets sessions run.
const ACCEPT_BATCH: u32 = 8;

/// Back-off after an accept error such as `EMFILE`, so that a flood cannot spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Tells systemd (if it is watching) how the service is doing.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!("sd_notify failed: {e}");
    }
}

/// Runs the service until SIGTERM or SIGINT: recovers what a previous run left, reports
/// ready, accepts clients, and on stop ends every session (SIGTERM, 2 s grace, SIGKILL,
/// clean-up) before returning.
pub async fn run<N: Network>(
    mut listener: UnixSeqpacketListener,
    shared: Arc<Shared<N>>,
) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown: CancellationToken = shared.shutdown.clone();

    // openvpn of a previous run that died goes before its journals are replayed.
    if let Some(systemd) = &shared.systemd {
        match systemd.stop_leftovers().await {
            Ok(0) => {}
            Ok(n) => info!("stopped {n} session unit(s) a previous run left"),
            Err(e) => warn!("cannot stop the session units a previous run left: {e}"),
        }
    }
    let first_id = shared.network.recover().await;
    shared.number_sessions_from(first_id);
    let sessions = TaskTracker::new();
    info!(
        socket = %shared.instance.socket_path(),
        max_sessions = shared.settings.max_sessions,
        max_sessions_per_user = shared.settings.max_sessions_per_user,
        "ready"
    );
    notify(&[sd_notify::NotifyState::Ready]);

    let mut accepted_in_a_row: u32 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    if let Some(admitted) = admit(&shared, conn) {
                        sessions.spawn(serve(Arc::clone(&shared), admitted));
                    }
                    // Under a connection flood the socket is always ready; let the sessions
                    // run between small batches of accepts (tokio's cooperative budget does
                    // not cover this listener).
                    accepted_in_a_row += 1;
                    if accepted_in_a_row % ACCEPT_BATCH == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => {
                    error!("accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    drop(listener);
    shutdown.cancel();
    sessions.close();
    sessions.wait().await;
    info!("stopped");
    Ok(())
}
