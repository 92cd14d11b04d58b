//! `etcdsnap snapshot status`.

use super::format::{OutputFormat, render_status};

use super::progress::Bar;
use super::{
    EXIT_BAD_FEATURE, Failure, StatusArgs, one_file, open_snapshot, resolve_target,
    snapshot_failure, target_choice,
};

pub fn run(args: &StatusArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&args.file, &args.more, "snapshot status")?;
    let choice = target_choice(&args.target_version)?;
    let format: OutputFormat = write_out
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_FEATURE, e))?;
    let bar = Bar::new();
    let snap = open_snapshot(&file, &bar);
    bar.finish();
    let snap = snap?;
    let target = resolve_target(&snap, choice)?;
    let status = snap.status(target).map_err(snapshot_failure)?;
    print!("{}", render_status(&status, format));
    Ok(())
}
