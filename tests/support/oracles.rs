//! Thin wrappers around the reference tools, for differential tests. Each returns the raw
//! [`CmdOutput`] (stdout, stderr, status, panic classification). They panic if the tool is
//! missing: call `require_tool!(tools::...)` first.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::cmd::{self, CmdOutput};
use super::corrupt;
use super::tools::{self, EtcdBins, etcd_child_env};

/// Timeout for one oracle run.
pub const ORACLE_TIMEOUT: Duration = Duration::from_secs(120);

fn etcdutl35_cmd() -> Command {
    let p = tools::etcdutl35()
        .unwrap_or_else(|e| panic!("etcdutl 3.5.1 missing (use require_tool! first): {e}"));
    let mut c = Command::new(p);
    etcd_child_env(&mut c);
    c
}

/// `etcdutl 3.5.1 snapshot status FILE -w FORMAT` (`simple`, `table`, `json`, `fields`, ...).
pub fn run_etcdutl_status(file: &Path, format: &str) -> CmdOutput {
    let mut c = etcdutl35_cmd();
    c.arg("snapshot")
        .arg("status")
        .arg(file)
        .arg("-w")
        .arg(format);
    cmd::run(&mut c, ORACLE_TIMEOUT)
}

/// `etcdutl 3.5.1 snapshot restore FILE ARGS...` (give `--data-dir` etc. in `args`).
pub fn run_etcdutl_restore(file: &Path, args: &[&str]) -> CmdOutput {
    let mut c = etcdutl35_cmd();
    c.arg("snapshot").arg("restore").arg(file).args(args);
    cmd::run(&mut c, ORACLE_TIMEOUT)
}

/// `snapshot status FILE -w FORMAT` with the tool of `bins`' release (etcdutl for 3.5,
/// `ETCDCTL_API=3 etcdctl` for 3.4).
pub fn run_status(bins: &EtcdBins, file: &Path, format: &str) -> CmdOutput {
    let mut c = bins.snapshot_tool_cmd();
    c.arg("snapshot")
        .arg("status")
        .arg(file)
        .arg("-w")
        .arg(format);
    cmd::run(&mut c, ORACLE_TIMEOUT)
}

/// `snapshot restore FILE ARGS...` with the tool of `bins`' release.
pub fn run_restore(bins: &EtcdBins, file: &Path, args: &[&str]) -> CmdOutput {
    for a in args {
        super::etcd::assert_loopback_urls(a);
    }
    let mut c = bins.snapshot_tool_cmd();
    c.arg("snapshot").arg("restore").arg(file).args(args);
    cmd::run(&mut c, ORACLE_TIMEOUT)
}

/// Parses the stdout of a successful `-w json` status run.
#[track_caller]
pub fn status_json(out: &CmdOutput) -> serde_json::Value {
    let s = out.expect_success("snapshot status");
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("status JSON ({e}): {s}"))
}

/// `boltcheck SUBCOMMAND FILE` (`check`, `dump`, `info`) on a file without a trailer.
pub fn run_boltcheck(subcommand: &str, file: &Path) -> CmdOutput {
    let p = tools::boltcheck()
        .unwrap_or_else(|e| panic!("boltcheck missing (use require_tool! first): {e}"));
    let mut c = Command::new(p);
    c.arg(subcommand).arg(file);
    cmd::run(&mut c, ORACLE_TIMEOUT)
}

/// `boltcheck SUBCOMMAND` on `bytes`, with the SHA-256 trailer removed first if it has one
/// (`len % 512 == 32`). The bytes go to a temporary file.
pub fn run_boltcheck_bytes(subcommand: &str, bytes: &[u8]) -> CmdOutput {
    let dir = tempfile::tempdir().expect("temp dir for boltcheck input");
    let p = dir.path().join("body.db");
    std::fs::write(&p, corrupt::strip_trailer(bytes)).expect("write boltcheck input");
    run_boltcheck(subcommand, &p)
}

/// `boltcheck SUBCOMMAND` on a snapshot file, stripping its trailer into a temporary copy.
pub fn run_boltcheck_snapshot(subcommand: &str, file: &Path) -> CmdOutput {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    run_boltcheck_bytes(subcommand, &bytes)
}
