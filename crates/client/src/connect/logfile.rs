//! Windows: openvpn's output goes to a log file in the user's own directory, as OpenVPN-GUI
//! does with its log folder (`--log`, which the service's whitelist allows), so that the
//! pipe protocol stays upstream's and a failure can still show openvpn's last lines. The
//! file is `%LOCALAPPDATA%\iservice\log\<name>.log`, `<name>` as the Linux service names
//! connections. The reading is plain file I/O, tested on every platform.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::registry::{Lookup, Registry};

/// How much of the end of the file is read for its last lines.
const TAIL_BYTES: u64 = 64 * 1024;

/// The log file for `config` under `base` (`%LOCALAPPDATA%`).
pub fn log_path(base: &Path, config: &Path) -> PathBuf {
    let name = openvpnserv_proto::control::connection_name(&config.to_string_lossy(), |_| false);
    base.join("iservice")
        .join("log")
        .join(format!("{name}.log"))
}

/// The last `count` lines of the file at `path` (from its last 64 KiB at most).
pub fn tail(path: &Path, count: usize) -> std::io::Result<Vec<String>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    // A read that starts inside the file may start inside a line.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(count);
    Ok(lines[from..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// [`Registry`] over a log file: openvpn's last lines from it; no names (there is no
/// service registry to ask).
#[derive(Debug, Clone)]
pub struct LogFileRegistry {
    /// The log file.
    pub path: PathBuf,
}

impl Registry for LogFileRegistry {
    fn name_of(&self, _pid: u32) -> Lookup<'_, String> {
        Box::pin(async { None })
    }

    fn log_tail(&self, _pid: u32, lines: u32) -> Lookup<'_, Vec<String>> {
        let path = self.path.clone();
        Box::pin(async move {
            let count = usize::try_from(lines).unwrap_or(usize::MAX);
            tokio::task::spawn_blocking(move || tail(&path, count).ok())
                .await
                .ok()
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn the_log_file_is_named_after_the_config() {
        let base = Path::new("/home/alice/AppData/Local");
        assert_eq!(
            log_path(base, Path::new("C:\\Users\\alice\\config\\office.ovpn")),
            base.join("iservice").join("log").join("office.log")
        );
    }

    #[test]
    fn the_tail_is_the_last_lines_without_a_cut_first_one() {
        // tempfile is a Unix-only dependency; this test runs under Wine too.
        let dir = std::env::temp_dir().join(format!("iservice-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.log");
        std::fs::write(&path, "one\r\ntwo\r\nthree\r\n").unwrap();
        assert_eq!(tail(&path, 2).unwrap(), ["two", "three"]);
        assert_eq!(tail(&path, 10).unwrap(), ["one", "two", "three"]);
        let mut long = String::new();
        for i in 0..20_000 {
            let _ = writeln!(long, "line {i}");
        }
        std::fs::write(&path, long).unwrap();
        let lines = tail(&path, 3).unwrap();
        assert_eq!(lines, ["line 19997", "line 19998", "line 19999"]);
        assert!(tail(&dir.join("missing"), 3).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
