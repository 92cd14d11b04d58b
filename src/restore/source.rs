//! Where a restore's snapshot comes from: a local, uncompressed file is
//! opened in place (memory map, kernel copies); any other location (a URL,
//! a `.zst` or `.gz` file) is read once straight into the first member's
//! staged db, hashed on the way, and then checked and edited there as if
//! it had been a local file.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::RestoreError;
use super::options::RestoreOptions;
use crate::location::Location;
use crate::progress::Progress;
use crate::snapshot::SnapshotFile;
use crate::snapshot::hash::HashCheck;
use crate::snapshot::stream::Streamed;

use super::stream::SnapshotReader;

/// The snapshot a restore reads.
///
/// ```no_run
/// use etcdsnap::{Location, RestoreOptions, RestoreSource, restore};
///
/// let opts = RestoreOptions::default().with_data_dir("m1.etcd");
/// // A local file, read in place:
/// restore(std::path::Path::new("backup.db"), &opts, &|_| {})?;
/// // Any location, read once:
/// let loc = Location::parse("s3://backups/etcd/snap.db.zst")?;
/// restore(RestoreSource::Location(loc), &opts, &|_| {})?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RestoreSource<'a> {
    /// A local file: opened in place when uncompressed; a `.zst` or `.gz`
    /// name is decompressed as it is read. Never taken for a URL.
    Path(PathBuf),
    /// A [`Location`] (a URL, or a local file), read once, straight into
    /// the first member's db, unless it is a local, uncompressed file.
    Location(Location),
    /// A stream: its bytes go straight into the first member's db, are
    /// checked against etcd's trailer and the source's own digest, then
    /// everything proceeds as for a snapshot streamed from a location.
    Reader(SnapshotReader<'a>),
}

impl From<PathBuf> for RestoreSource<'_> {
    fn from(p: PathBuf) -> Self {
        RestoreSource::Path(p)
    }
}

impl From<&Path> for RestoreSource<'_> {
    fn from(p: &Path) -> Self {
        RestoreSource::Path(p.to_path_buf())
    }
}

impl From<Location> for RestoreSource<'_> {
    fn from(l: Location) -> Self {
        RestoreSource::Location(l)
    }
}

impl<'a> From<SnapshotReader<'a>> for RestoreSource<'a> {
    fn from(r: SnapshotReader<'a>) -> Self {
        RestoreSource::Reader(r)
    }
}

/// Where the snapshot comes from, as the restore reads it.
pub(crate) enum Source<'a> {
    /// A local, uncompressed file (a `file://` URL made a path).
    Plain(PathBuf),
    /// Any other location: read once, streaming.
    Streamed(Location),
    /// A stream.
    Reader(SnapshotReader<'a>),
    /// Written into the first member's db by the caller (a point-in-time
    /// restore applies recorded changes there).
    #[cfg(feature = "repo")]
    Fill(Box<super::run::Fill<'a>>),
}

impl<'a> RestoreSource<'a> {
    /// How the restore reads it.
    pub(crate) fn resolve(self, opts: &RestoreOptions) -> Source<'a> {
        let loc = match self {
            RestoreSource::Reader(r) => return Source::Reader(r),
            RestoreSource::Path(p) => Location::local_file(p, &opts.location),
            RestoreSource::Location(l) => l,
        };
        match loc.local_path() {
            Some(p) if loc.is_plain_file() => Source::Plain(p.to_path_buf()),
            _ => Source::Streamed(loc),
        }
    }
}

/// Streams `loc` into `db` (the first member's empty, staged db) and
/// checks it there ([`check_streamed`]). Returns the db, opened as the
/// snapshot the rest of the restore reads (named by the location in
/// messages), and whether the hash was verified.
pub(crate) fn stream_into_first(
    loc: &Location,
    db: &File,
    db_path: &Path,
    opts: &RestoreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SnapshotFile, bool), RestoreError> {
    let streamed = loc.stream_into(db, true, progress)?;
    check_streamed(
        &streamed,
        None,
        loc.as_str(),
        db,
        db_path,
        opts.skip_hash_check,
    )
}

/// Checks a snapshot just streamed into `db`: its body against
/// `vouched_for` (the SHA-256 the source itself recorded, if any: always
/// checked, and it stands in for a missing trailer), and against etcd's
/// SHA-256 trailer unless `skip_hash_check`. Then cuts the trailer off and
/// reopens `db` as the snapshot named `name`. Returns it and whether a
/// digest was verified.
pub(crate) fn check_streamed(
    streamed: &Streamed,
    vouched_for: Option<[u8; 32]>,
    name: &str,
    db: &File,
    db_path: &Path,
    skip_hash_check: bool,
) -> Result<(SnapshotFile, bool), RestoreError> {
    let computed = streamed.body_digest;
    if let Some(expected) = vouched_for
        && expected != computed
    {
        return Err(RestoreError::SourceHashMismatch {
            name: name.to_string(),
            expected,
            computed,
        });
    }
    let trailer_verified = match (streamed.trailer, skip_hash_check) {
        (_, true) => false,
        (None, false) if vouched_for.is_none() => return Err(RestoreError::MissingHash),
        (None, false) => false,
        (Some(stored), false) => match HashCheck::compare(stored, computed) {
            HashCheck::Mismatch { stored, computed } => {
                return Err(RestoreError::HashMismatch { stored, computed });
            }
            _ => true,
        },
    };
    db.set_len(streamed.body_len())
        .map_err(RestoreError::io("truncate", db_path))?;
    let reopened = File::open(db_path).map_err(RestoreError::io("open", db_path))?;
    Ok((
        SnapshotFile::from_file(reopened, name)?,
        vouched_for.is_some() || trailer_verified,
    ))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// Writes `bytes` to a fresh db and checks it as streamed with
    /// `trailer` and `vouched_for`; returns the outcome and the db's length.
    fn check(
        bytes: &[u8],
        trailer: Option<[u8; 32]>,
        vouched_for: Option<[u8; 32]>,
        skip: bool,
    ) -> (Result<bool, RestoreError>, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        std::fs::write(&path, bytes).expect("write");
        let db = File::options().write(true).open(&path).expect("open");
        let body_len = bytes.len() - if trailer.is_some() { 32 } else { 0 };
        let streamed = Streamed {
            len: bytes.len() as u64,
            trailer,
            body_digest: Sha256::digest(&bytes[..body_len]).into(),
        };
        let got = check_streamed(&streamed, vouched_for, "src", &db, &path, skip).map(|(_, v)| v);
        (got, std::fs::metadata(&path).expect("stat").len())
    }

    #[test]
    fn digests_decide_as_for_a_file_and_the_source_vouches_too() {
        let file = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/snapshots/small-v35.db"
        ))
        .expect("fixture");
        let (body, tail) = file.split_at(file.len() - 32);
        let good: [u8; 32] = tail.try_into().expect("32 bytes");
        let bad = [7u8; 32];
        let digest: [u8; 32] = Sha256::digest(body).into();
        let n = body.len() as u64;

        let (r, len) = check(&file, Some(good), None, false);
        assert_eq!((r.ok(), len), (Some(true), n));
        let (r, len) = check(&file, Some(good), None, true);
        assert_eq!((r.ok(), len), (Some(false), n));
        let (r, _) = check(&file, Some(bad), None, false);
        assert!(matches!(r, Err(RestoreError::HashMismatch { stored, .. }) if stored == bad));
        let (r, len) = check(&file, Some(bad), None, true);
        assert_eq!((r.ok(), len), (Some(false), n));
        let (r, len) = check(&file, Some(bad), Some(digest), true);
        assert_eq!((r.ok(), len), (Some(true), n));
        // The source's own digest is checked even with --skip-hash-check.
        let (r, _) = check(&file, Some(good), Some(bad), true);
        assert!(matches!(r, Err(RestoreError::SourceHashMismatch { name, .. }) if name == "src"));

        let (r, _) = check(body, None, None, false);
        assert!(matches!(r, Err(RestoreError::MissingHash)));
        let (r, len) = check(body, None, None, true);
        assert_eq!((r.ok(), len), (Some(false), n));
        let (r, len) = check(body, None, Some(digest), false);
        assert_eq!((r.ok(), len), (Some(true), n));
    }
}
