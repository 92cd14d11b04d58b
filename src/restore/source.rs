//! Where a restore's snapshot comes from: a local, uncompressed file is
//! opened in place (memory map, kernel copies); any other location (a URL,
//! a `.zst` or `.gz` file) is read once straight into the first member's
//! staged db, hashed on the way, and then checked and edited there as if
//! it had been a local file.

use std::fs::File;
use std::path::Path;

use super::error::RestoreError;
use super::options::RestoreOptions;
use crate::location::{Location, LocationOptions};
use crate::progress::Progress;
use crate::snapshot::SnapshotFile;
use crate::snapshot::hash::HashCheck;

/// The snapshot option as a location, when it is not a plain local file.
pub(crate) fn streamed_location(opts: &RestoreOptions) -> Result<Option<Location>, RestoreError> {
    // A path that is not UTF-8 is no URL and has no extension we know.
    let Some(text) = opts.snapshot.to_str() else {
        return Ok(None);
    };
    let loc = Location::parse_with(text, &LocationOptions::default())?;
    Ok((!loc.is_plain_file()).then_some(loc))
}

/// Streams `loc` into `db` (the first member's empty, staged db), checks
/// the SHA-256 trailer against the bytes as they arrived, and cuts the
/// trailer off. Returns the db, opened as the snapshot the rest of the
/// restore reads (named by the location in messages), and whether the
/// hash was verified.
pub(crate) fn stream_into_first(
    loc: &Location,
    db: &File,
    db_path: &Path,
    opts: &RestoreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SnapshotFile, bool), RestoreError> {
    let streamed = loc.stream_into(db, true, progress)?;
    let verified = match (streamed.trailer, opts.skip_hash_check) {
        (_, true) => false,
        (None, false) => return Err(RestoreError::MissingHash),
        (Some(stored), false) => match HashCheck::compare(stored, streamed.body_digest) {
            HashCheck::Mismatch { stored, computed } => {
                return Err(RestoreError::HashMismatch { stored, computed });
            }
            _ => true,
        },
    };
    db.set_len(streamed.body_len())
        .map_err(RestoreError::io("truncate", db_path))?;
    let reopened = File::open(db_path).map_err(RestoreError::io("open", db_path))?;
    Ok((SnapshotFile::from_file(reopened, loc.as_str())?, verified))
}
