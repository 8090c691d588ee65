//! The helper programs the network layer runs (`nft`, `resolvconf`): bounded in time, and
//! tied to the service's life.
//!
//! A helper must not outlive the service. Were the service killed while `nft` adds a
//! session's table, the orphaned `nft` could add it after the next run had replayed the
//! journal, looked for the table and found nothing to delete: the table would stay for good
//! (the fault suite found exactly that). So each helper gets SIGKILL when the service dies.
//! Each change a helper makes is all or nothing (`nft` applies a ruleset as one transaction,
//! `resolvconf -d` removes whatever `-a` left), so a killed helper leaves either the change,
//! which the replay undoes, or nothing.

use std::ffi::OsStr;
use std::io;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::sys;

/// How long a helper may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `program args…` with `input` on its stdin; returns its stdout, or an error that
/// quotes its stderr.
pub(crate) async fn run(
    program: impl AsRef<OsStr>,
    args: &[&str],
    input: Option<&str>,
) -> io::Result<String> {
    run_within(program.as_ref(), args, input, TIMEOUT).await
}

async fn run_within(
    program: &OsStr,
    args: &[&str],
    input: Option<&str>,
    limit: Duration,
) -> io::Result<String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    sys::die_with_service(&mut cmd);
    let what = || format!("{} {}", program.to_string_lossy(), args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", what())))?;
    // The whole exchange is bounded: a helper that never reads its stdin must not hold the
    // session either. (kill_on_drop ends it when the time runs out.)
    let exchange = async {
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).await?;
        }
        child.wait_with_output().await
    };
    let out = tokio::time::timeout(limit, exchange).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{} took over {limit:?}", what()),
        )
    })??;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{} failed ({}): {}",
            what(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper that never reads its stdin, given more than a pipe holds: the write itself
    /// must be bounded (it used to be written before the time limit started).
    #[tokio::test(flavor = "current_thread")]
    async fn a_helper_that_does_not_read_its_input_is_cut_off_in_time() {
        let input = "x".repeat(1 << 20);
        let started = std::time::Instant::now();
        let r = run_within(
            OsStr::new("sh"),
            &["-c", "sleep 20"],
            Some(&input),
            Duration::from_millis(300),
        )
        .await;
        let e = r.expect_err("the helper cannot have succeeded");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
