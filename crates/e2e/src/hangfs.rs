//! A mount whose lookups never answer (a hung NFS, autofs or FUSE mount), from
//! `crates/e2e/data/hangfs.py` (python3-fusepy): every name containing `hang` blocks until
//! the mount is released.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fixture::eventually;

/// The running file system; released, unmounted and stopped (by PID) when dropped.
#[derive(Debug)]
pub struct HangFs {
    /// Where it is mounted; `<mountpoint>/hang…` never answers.
    pub mountpoint: PathBuf,
    release: PathBuf,
    child: Child,
}

fn mounted(path: &Path) -> bool {
    let wanted = path.display().to_string();
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(1) == Some(wanted.as_str()))
    })
}

impl HangFs {
    /// Mounts it at `dir/hangfs` (root only).
    pub fn mount(dir: &Path) -> Self {
        let mountpoint = dir.join("hangfs");
        std::fs::create_dir_all(&mountpoint).expect("mountpoint");
        let release = dir.join("hangfs.release");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hangfs.py");
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&mountpoint)
            .arg(&release)
            .stdin(Stdio::null())
            .spawn()
            .expect("run hangfs.py (scripts/setup.sh installs python3-fusepy)");
        let fs = Self {
            mountpoint,
            release,
            child,
        };
        assert!(
            eventually(Duration::from_secs(10), || mounted(&fs.mountpoint)),
            "hangfs did not mount at {}",
            fs.mountpoint.display()
        );
        fs
    }

    /// Lets every blocked lookup finish (with "no such file").
    pub fn release(&self) {
        let _ = std::fs::write(&self.release, b"");
    }
}

impl Drop for HangFs {
    fn drop(&mut self) {
        self.release();
        // Lookups in flight finish first; then the mount can go.
        for _ in 0..100 {
            let _ = Command::new("umount")
                .arg(&self.mountpoint)
                .stderr(Stdio::null())
                .status();
            if !mounted(&self.mountpoint) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.release);
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}
