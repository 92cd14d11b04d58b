//! `etcdsnap snapshot hashkv FILE [--rev R]`: etcd's KV history hash, as
//! `etcdutl hashkv` (3.6, 3.7) prints it.

use super::format::{OutputFormat, render_hashkv};
use clap::Args;
use etcdsnap::mvcc::Store;

use super::progress::Bar;
use super::{
    EXIT_BAD_FEATURE, EXIT_ERROR, Failure, TARGET_HELP, open_snapshot, resolve_target,
    target_choice,
};

#[derive(Args, Debug)]
pub struct HashKvArgs {
    /// The snapshot file (or a raw member/snap/db copy); a URL (s3://, gs://, az://, file://), .zst or .gz
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    /// Maximum revision to hash (default: latest revision)
    #[arg(
        long,
        value_name = "R",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    rev: i64,
    #[arg(long, value_name = "VERSION", default_value = "auto", help = TARGET_HELP,
          allow_hyphen_values = true)]
    target_version: String,
}

pub fn run(args: &HashKvArgs, write_out: &str) -> Result<(), Failure> {
    if !args.more.is_empty() {
        // cobra.ExactArgs(1)'s wording and etcdutl's exit code.
        return Err(Failure::new(
            EXIT_ERROR,
            format!("accepts 1 arg(s), received {}", 1 + args.more.len()),
        ));
    }
    let choice = target_choice(&args.target_version)?;
    // etcdutl refuses an unknown format before it reads the file, but
    // builds a printer for protobuf that only refuses when asked to print.
    let format: Result<OutputFormat, _> = write_out.parse();
    if let Err(e) = &format
        && write_out != "protobuf"
    {
        return Err(Failure::new(EXIT_BAD_FEATURE, e));
    }
    let bar = Bar::new();
    let snap = open_snapshot(&args.file, &bar);
    bar.finish();
    let snap = snap?;
    let target = resolve_target(&snap, choice)?;
    let store = Store::open(&snap)
        .map_err(|e| Failure::new(EXIT_ERROR, e))?
        .with_rules(target);
    let hash = store
        .hash_kv(args.rev)
        .map_err(|e| Failure::new(EXIT_ERROR, e))?;
    let format = format.map_err(|e| Failure::new(EXIT_BAD_FEATURE, e))?;
    print!("{}", render_hashkv(&hash, format, target));
    Ok(())
}
