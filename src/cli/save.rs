//! `etcdsnap snapshot save FILE`: etcdctl's command, with its flags, output
//! and exit codes.

use std::path::PathBuf;

use etcdsnap::{SaveError, save};

use super::global::GlobalArgs;
use super::interrupt;
use super::progress::Bar;
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, Failure, SaveArgs};

/// The output formats etcdctl accepts (save prints the same whatever the
/// format, as etcdctl does).
const FORMATS: &[&str] = &["fields", "json", "protobuf", "simple", "table"];

/// etcdctl's words for a save without exactly one file.
pub const SAVE_ARGS: &str = "snapshot save expects one argument";

/// etcdctl's exit code for a failed command (cobrautl.ExitError).
const SAVE_EXIT_ERROR: u8 = 5;

/// The exit code etcdctl uses for a failed save: 128 for bad arguments
/// (unreadable certificate files, a location that does not parse), 128 +
/// the signal for an interruption (as if the signal had killed it), 5
/// otherwise.
pub fn exit_code(e: &SaveError) -> u8 {
    match e {
        SaveError::Options(_) | SaveError::TlsFiles(_) => EXIT_BAD_ARGS,
        SaveError::Location(etcdsnap::LocationError::Parse { .. }) => EXIT_BAD_ARGS,
        SaveError::Interrupted { signal, .. } => {
            u8::try_from(signal.saturating_add(128)).unwrap_or(SAVE_EXIT_ERROR)
        }
        _ => SAVE_EXIT_ERROR,
    }
}

pub fn run(a: &SaveArgs, global: &GlobalArgs, write_out: &str) -> Result<(), Failure> {
    let file = &a.file;
    if !a.more.is_empty() {
        return Err(Failure::new(EXIT_BAD_ARGS, SAVE_ARGS));
    }
    if !FORMATS.contains(&write_out) {
        return Err(Failure::new(EXIT_BAD_FEATURE, "unsupported output format"));
    }
    let mut compress = etcdsnap::CompressOptions::default();
    if let Some(level) = a.compression_level {
        compress = compress
            .with_zstd_level(level)
            .with_gzip_level(u32::try_from(level).unwrap_or(0).min(9));
    }
    if let Some(threads) = a.compression_threads {
        compress = compress.with_threads(threads);
    }
    let opts = global
        .with_process_env()?
        .save_options_prompting(PathBuf::from(file))?
        // SIGINT, SIGTERM, SIGHUP, SIGQUIT: the save notices, removes
        // FILE.part (aborts the upload) and says so; the exit code is
        // then 128 + the signal, as if it had killed us.
        .with_interrupt(interrupt::install(interrupt::Mode::Cooperative(
            "nothing saved",
        ))?)
        .with_location(
            super::location_options()?
                .with_compress(compress)
                .with_part_size(a.upload_part_size.saturating_mul(1 << 20)),
        );

    let bar = Bar::new();
    let result = save(&opts, &|p| bar.update(p));
    bar.finish();
    let summary = result.map_err(|e| Failure::new(exit_code(&e), e))?;
    print!("{}", super::format::render_saved(&summary));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_etcdctls() {
        let e = SaveError::NotOneEndpoint(vec!["a".into(), "b".into()]);
        assert_eq!(exit_code(&e), 5);
        assert_eq!(exit_code(&SaveError::TlsFiles("x".into())), 128);
        let i = |signal| SaveError::Interrupted {
            endpoint: "e".into(),
            signal,
            removed: String::new(),
        };
        assert_eq!(exit_code(&i(libc::SIGTERM as usize)), 143);
        assert_eq!(exit_code(&i(libc::SIGQUIT as usize)), 131);
    }
}
