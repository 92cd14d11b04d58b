//! `etcdsnap snapshot status`.

use etcdsnap::Snapshot;
use etcdsnap::TargetVersion;
use etcdsnap::format::{OutputFormat, render_status};

use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, Failure, StatusArgs, one_file, snapshot_failure};

pub fn run(args: &StatusArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&args.files, "snapshot status")?;
    let target: TargetVersion = args
        .target_version
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_ARGS, e))?;
    let format: OutputFormat = write_out
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_FEATURE, e))?;
    let snap = Snapshot::open(&file).map_err(snapshot_failure)?;
    let status = snap.status(target).map_err(snapshot_failure)?;
    print!("{}", render_status(&status, format));
    Ok(())
}
