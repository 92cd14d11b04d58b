//! `etcdsnap snapshot status`.

use etcdsnap::etcd::TargetVersion;
use etcdsnap::format::{OutputFormat, render_status};
use etcdsnap::snapshot::Snapshot;

use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, Failure, StatusArgs, one_file};

pub fn run(args: &StatusArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&args.files, "snapshot status")?;
    let target: TargetVersion = args
        .target_version
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_ARGS, e))?;
    let format: OutputFormat = write_out
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_FEATURE, e))?;
    let snap = Snapshot::open(&file).map_err(|e| Failure::new(EXIT_ERROR, e))?;
    let status = snap
        .status(target)
        .map_err(|e| Failure::new(EXIT_ERROR, e))?;
    print!("{}", render_status(&status, format));
    Ok(())
}
