//! `etcdsnap snapshot prune LOCATION --keep-last N [--keep-hourly H
//! --keep-daily D --keep-weekly W] [--dry-run]`.

use etcdsnap::{LocationPruneOptions, RetentionPolicy, prune};
use serde_json::json;

use super::progress::Bar;
use super::{Failure, PruneArgs, json_or_simple, location_failure, one_file};

pub fn run(a: &PruneArgs, write_out: &str) -> Result<(), Failure> {
    let text = one_file(&a.location, &a.more, "snapshot prune")?;
    let json = json_or_simple(write_out, "prune")?;
    let policy = RetentionPolicy::last(a.keep_last)
        .with_hourly(a.keep_hourly)
        .with_daily(a.keep_daily)
        .with_weekly(a.keep_weekly);
    let opts = LocationPruneOptions::new(policy).with_dry_run(a.dry_run);
    let loc = super::parse_location(&text)?;
    let bar = Bar::new();
    let report = prune(&loc, &opts, &|p| bar.update(p));
    bar.finish();
    let report = report.map_err(location_failure)?;
    for (l, why) in &report.unsound {
        eprintln!("warning: {l} does not verify: {why}");
    }
    if json {
        let snaps: Vec<_> = report
            .snapshots
            .iter()
            .map(|s| {
                json!({
                    "location": s.location,
                    "time": chrono::DateTime::<chrono::Utc>::from(s.time).to_rfc3339(),
                    "keep": s.keep.iter().map(|k| k.name()).collect::<Vec<_>>(),
                    "deleted": s.keep.is_empty() && !report.dry_run,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "dryRun": report.dry_run, "snapshots": snaps })
        );
        return Ok(());
    }
    let gone = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for s in &report.snapshots {
        if s.keep.is_empty() {
            println!("{gone:<12} {}", s.location);
        } else {
            let why: Vec<&str> = s.keep.iter().map(|k| k.name()).collect();
            println!("{:<12} {} ({})", "keep", s.location, why.join(", "));
        }
    }
    let deleted = report.deleted().count();
    println!(
        "{} snapshots: {} kept, {deleted} {gone}",
        report.snapshots.len(),
        report.snapshots.len() - deleted
    );
    Ok(())
}
