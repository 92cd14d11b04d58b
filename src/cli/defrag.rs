//! `etcdsnap snapshot defrag IN OUT` and `etcdsnap snapshot compact IN OUT
//! [--revision R]`: a snapshot rewritten densely packed (after etcd's
//! compaction, for compact), as `etcdutl defrag` and `etcdctl compact`
//! would leave it, without booting etcd.

use super::format::humanize;
use clap::Args;
use etcdsnap::{RewriteOptions, RewriteSummary, rewrite};
use serde_json::json;

use super::progress::Bar;
use super::{
    EXIT_BAD_ARGS, EXIT_ERROR, Failure, TARGET_HELP, json_or_simple, open_snapshot, resolve_target,
    target_choice,
};

#[derive(Args, Debug)]
pub struct DefragArgs {
    /// The snapshot: a file, a URL (s3://, gs://, az://, file://), .zst or .gz
    #[arg(value_name = "IN")]
    input: String,
    /// Where to write the result (written as OUT.part, renamed when complete); or a URL; .zst/.gz compress
    #[arg(value_name = "OUT")]
    output: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    #[arg(long, value_name = "VERSION", default_value = "auto", help = TARGET_HELP,
          allow_hyphen_values = true)]
    target_version: String,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    #[command(flatten)]
    files: DefragArgs,
    /// Compact at this revision (default: the latest); revisions below it are then gone, as after `etcdctl compact`
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    revision: Option<i64>,
}

pub fn run_defrag(a: &DefragArgs, write_out: &str) -> Result<(), Failure> {
    run(a, None, write_out, "snapshot defrag")
}

pub fn run_compact(a: &CompactArgs, write_out: &str) -> Result<(), Failure> {
    let rev = a.revision.unwrap_or(0);
    if a.revision.is_some_and(|r| r <= 0) {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            format!("--revision must be a positive revision, not {rev}"),
        ));
    }
    run(&a.files, Some(rev), write_out, "snapshot compact")
}

fn run(
    a: &DefragArgs,
    compact: Option<i64>,
    write_out: &str,
    command: &str,
) -> Result<(), Failure> {
    if !a.more.is_empty() {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            format!("{command} requires exactly two arguments: IN and OUT"),
        ));
    }
    let json = json_or_simple(write_out, command)?;
    let choice = target_choice(&a.target_version)?;
    let out = super::parse_location(&a.output)?;
    let bar = Bar::new();
    let snap = open_snapshot(&a.input, &bar);
    bar.finish();
    let snap = snap?;
    let target = resolve_target(&snap, choice)?;
    let opts = RewriteOptions::default()
        .with_compact(compact)
        .with_target(target);
    let done = rewrite(&snap, &out, &opts).map_err(|e| Failure::new(EXIT_ERROR, e))?;
    print_summary(&done, json);
    Ok(())
}

fn print_summary(d: &RewriteSummary, json: bool) {
    let s = &d.status;
    if json {
        println!(
            "{}",
            json!({
                "location": d.location,
                "sizeBefore": d.size_before,
                "sizeAfter": d.size_after,
                "compactRevision": d.compacted,
                "removedRevisions": d.removed,
                "hash": s.hash,
                "revision": s.revision,
                "totalKey": s.total_key,
                "totalSize": s.total_size,
            })
        );
        return;
    }
    if let Some(r) = d.compacted {
        println!("compacted at revision {r}: {} revisions removed", d.removed);
    }
    println!(
        "wrote {}: {} -> {} (hash {}, revision {}, {} keys)",
        d.location,
        humanize::bytes(d.size_before),
        humanize::bytes(d.size_after),
        s.hash,
        s.revision,
        s.total_key
    );
}
