//! `etcdsnap snapshot save FILE`: etcdctl's command, with its flags, output
//! and exit codes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use etcdsnap::save;

use super::global::GlobalArgs;
use super::progress::Bar;
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, Failure, SaveArgs};

/// The output formats etcdctl accepts (save prints the same whatever the
/// format, as etcdctl does).
const FORMATS: &[&str] = &["fields", "json", "protobuf", "simple", "table"];

/// etcdctl's words for a save without exactly one file.
pub const SAVE_ARGS: &str = "snapshot save expects one argument";

pub fn run(a: &SaveArgs, global: &GlobalArgs, write_out: &str) -> Result<(), Failure> {
    let file = &a.file;
    if !a.more.is_empty() {
        return Err(Failure::new(EXIT_BAD_ARGS, SAVE_ARGS));
    }
    if !FORMATS.contains(&write_out) {
        return Err(Failure::new(EXIT_BAD_FEATURE, "unsupported output format"));
    }
    let mut opts = global
        .with_process_env()?
        .save_options_prompting(PathBuf::from(file))?;
    // SIGINT/SIGTERM: the save notices, removes FILE.part and returns;
    // the exit code is then 128 + the signal, as if it had killed us.
    let flag = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let value = usize::try_from(sig).unwrap_or(1);
        signal_hook::flag::register_usize(sig, Arc::clone(&flag), value)
            .map_err(|e| Failure::new(super::EXIT_ERROR, format!("signal handler: {e}")))?;
    }
    opts.interrupt = Some(flag);
    let mut compress = etcdsnap::CompressOptions::default();
    if let Some(level) = a.compression_level {
        compress.zstd_level = level;
        compress.gzip_level = u32::try_from(level).unwrap_or(0).min(9);
    }
    if let Some(threads) = a.compression_threads {
        compress.threads = threads;
    }
    opts.location = etcdsnap::LocationOptions::default()
        .with_compress(compress)
        .with_part_size(a.upload_part_size.saturating_mul(1 << 20));

    let bar = Bar::new();
    let result = save(&opts, &|p| bar.update(p));
    bar.finish();
    let summary = result.map_err(|e| Failure::new(e.exit_code(), e))?;
    print!("{}", etcdsnap::format::render_saved(&summary));
    Ok(())
}
