//! Which openvpn `exe_path` is (its version and build options), asked with `--version` and
//! kept until the file changes: replacing openvpn 2.6 by 2.7 takes effect at the next
//! session, without a restart of the service.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use openvpnserv_core::linux::openvpn::Build;
use tracing::{info, warn};

/// How long `openvpn --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// Asks `openvpn --version`; `None` when it cannot be run or does not answer as openvpn.
pub async fn detect(openvpn: &Path) -> Option<Build> {
    let run = tokio::process::Command::new(openvpn)
        .arg("--version")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(VERSION_TIMEOUT, run).await {
        Ok(Ok(out)) => Build::parse(&String::from_utf8_lossy(&out.stdout)),
        Ok(Err(_)) | Err(_) => None,
    }
}

/// The build of `exe_path`, fixed (tests) or detected and kept per version of the file.
#[derive(Debug)]
pub(crate) enum Builds {
    /// Always this build.
    Fixed(Build),
    /// Detected; re-read when the file changes.
    Detect(Mutex<Option<(Option<Stamp>, Build)>>),
}

impl Builds {
    /// `build`, or (with `None`) whatever the file is, detected.
    pub(crate) fn new(build: Option<Build>) -> Self {
        build.map_or_else(|| Builds::Detect(Mutex::new(None)), Builds::Fixed)
    }

    /// The build of `openvpn` now.
    pub(crate) async fn get(&self, openvpn: &Path) -> Build {
        let cache = match self {
            Builds::Fixed(b) => return *b,
            Builds::Detect(cache) => cache,
        };
        let now = stamp(openvpn);
        let known = *cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, build)) = known {
            if seen == now {
                return build;
            }
        }
        let build = if now.is_none() {
            warn!(
                "exe_path {} does not exist; sessions cannot start until it does",
                openvpn.display()
            );
            Build::default()
        } else if let Some(build) = detect(openvpn).await {
            info!(
                openvpn = %openvpn.display(),
                version = %build.version_text(),
                iproute = build.iproute,
                dco = build.dco,
                "openvpn {} at {}{}",
                build.version_text(),
                openvpn.display(),
                if known.is_some() { " (the file changed)" } else { "" }
            );
            build
        } else {
            warn!(
                "{} --version did not answer as openvpn does; assuming openvpn 2.6 without --iproute",
                openvpn.display()
            );
            Build::default()
        };
        *cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, build));
        build
    }
}
