//! `etcdsnap snapshot status`.

use etcdsnap::Snapshot;
use etcdsnap::format::{OutputFormat, render_status};

use super::{
    EXIT_BAD_FEATURE, Failure, StatusArgs, one_file, resolve_target, snapshot_failure,
    target_choice,
};

pub fn run(args: &StatusArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&args.file, &args.more, "snapshot status")?;
    let choice = target_choice(&args.target_version)?;
    let format: OutputFormat = write_out
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_FEATURE, e))?;
    let snap = Snapshot::open(&file).map_err(snapshot_failure)?;
    let target = resolve_target(&snap, choice)?;
    let status = snap.status(target).map_err(snapshot_failure)?;
    print!("{}", render_status(&status, format));
    Ok(())
}
