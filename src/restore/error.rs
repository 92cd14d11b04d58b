//! Errors of a restore. Texts follow etcdutl's where people grep for them.

use std::path::PathBuf;

use super::membership::ClusterError;
use crate::bolt::BoltError;
use crate::etcd::SchemaProblem;
use crate::location::LocationError;
use crate::raft::RaftError;
use crate::snapshot::SnapshotError;

/// Why a restore failed. Nothing is left behind when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A flag is wrong or flags conflict (etcdutl exits 128 for these).
    #[error(transparent)]
    Flags(#[from] FlagsError),
    /// The membership flags are inconsistent (etcd's bootstrap checks).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The snapshot could not be opened, or is structurally unsound.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot's location could not be read (a URL, a compressed
    /// file).
    #[error(transparent)]
    Location(#[from] LocationError),
    /// No trailer and no `--skip-hash-check`.
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    /// The trailer does not match (etcd prints both digests as Go byte slices).
    #[error("expected sha256 {}, got {}", go_bytes(stored), go_bytes(computed))]
    HashMismatch {
        /// Digest stored in the file.
        stored: [u8; 32],
        /// Digest of the body.
        computed: [u8; 32],
    },
    /// A streamed snapshot could not be read (the source's own error).
    #[error("read {name}: {source}")]
    Read {
        /// The source, as the reader named it.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A streamed snapshot's body does not have the SHA-256 its source
    /// recorded for it.
    #[error(
        "{name}: SHA-256 of the snapshot is {}, its source recorded {}",
        crate::snapshot::hash::hex(computed),
        crate::snapshot::hash::hex(expected)
    )]
    SourceHashMismatch {
        /// The source.
        name: String,
        /// What the source recorded.
        expected: [u8; 32],
        /// What arrived.
        computed: [u8; 32],
    },
    /// etcd-level problems that would crash etcd or corrupt its data.
    #[error(
        "snapshot data check failed. {count} problems found.\n{}",
        schema_lines(problems)
    )]
    Schema {
        /// Number of problems (errors only; warnings do not stop a restore).
        count: u64,
        /// The errors kept.
        problems: Vec<SchemaProblem>,
    },
    /// The data dir exists and may not be written (3.4: exists at all;
    /// 3.5+: exists and is not empty).
    #[error("data-dir {path:?} {what}")]
    DataDirExists {
        /// The data dir, as given.
        path: String,
        /// etcd's wording for the version.
        what: &'static str,
    },
    /// `--out-dir` did not exist when the restore started and appeared
    /// before it could be published (another process created it).
    #[error("out-dir {0:?} appeared while restoring")]
    OutDirAppeared(String),
    /// The snapshot's storage version is newer than the target release
    /// reads (etcd refuses such data; see `force`).
    #[error("the snapshot's storage version {storage} is newer than {}", match target {
        Some(t) => format!("target version {t}"),
        None => format!("any target version etcdsnap knows ({})", crate::etcd::TargetVersion::ALL[crate::etcd::TargetVersion::ALL.len() - 1]),
    })]
    StorageTooNew {
        /// `meta/storageVersion` of the snapshot.
        storage: String,
        /// The target asked for; `None` for `auto` with a version newer
        /// than every known release.
        target: Option<crate::etcd::TargetVersion>,
    },
    /// The WAL dir exists.
    #[error("wal-dir {0:?} exists")]
    WalDirExists(String),
    /// The directory that would hold the data dir does not exist.
    #[error("parent directory {} of {} does not exist", parent.display(), path.display())]
    MissingParent {
        /// The missing directory.
        parent: PathBuf,
        /// What was to be created in it.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("{op} {}: {}", path.display(), crate::go::errno::text(source))]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Planning the database edits failed.
    #[error("editing the database: {0}")]
    Bolt(#[from] BoltError),
    /// The compaction (`--compact`) was refused, with etcd's words, or
    /// the dense member db (`--compact`, `--defrag`) could not be written.
    #[error(transparent)]
    Rewrite(#[from] crate::rewrite::RewriteError),
    /// Writing the WAL or `.snap` failed.
    #[error(transparent)]
    Raft(#[from] RaftError),
}

impl RestoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RestoreError {
        let path = path.into();
        move |source| RestoreError::Io { op, path, source }
    }
}

/// One line per problem.
fn schema_lines(problems: &[SchemaProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Go's `%v` of a byte slice: `[1 2 3]`.
fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Which restore options are wrong or conflict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsError {
    /// `--revision-bump` without `--mark-compacted` or the reverse (etcd
    /// 3.5 and 3.6; etcd's wording).
    #[error("--mark-compacted required if --revision-bump > 0")]
    BumpWithoutMarkCompacted,
    /// The revision bump would take the revision past the largest int64.
    #[error(
        "a revision bump of {by} would take the revision past the largest int64 (latest revision is {latest})"
    )]
    BumpOverflow {
        /// The bump asked for.
        by: u64,
        /// The snapshot's latest revision.
        latest: i64,
    },
    /// A member name cannot name its data dir `<name>.etcd`.
    #[error(
        "member name {name:?} cannot name a data dir ({}): it is empty or contains '/' or NUL",
        if *all_members { "every member needs a data dir" } else { "give the data dir" }
    )]
    BadMemberName {
        /// The name.
        name: String,
        /// Whether every member's data dir was to be made
        /// ([`RestoreOptions::with_all_members_out_dir`](crate::RestoreOptions::with_all_members_out_dir)),
        /// rather than the one member's, which a data dir given would name.
        all_members: bool,
    },
    /// Every member restored
    /// ([`RestoreOptions::with_all_members_out_dir`](crate::RestoreOptions::with_all_members_out_dir))
    /// with a data dir or WAL dir given as well.
    #[error(
        "restoring every member writes <out dir>/<name>.etcd for each: no data dir or WAL dir may be given"
    )]
    AllMembersWithDir,
    /// No member in the initial cluster (etcd's wording).
    #[error("initial cluster unset and no discovery URL found")]
    NoInitialCluster,
    /// Two members would be written to one data dir.
    #[error("two members would share one data dir")]
    SharedDataDir,
    /// No member to restore.
    #[error("no member to restore")]
    NoMember,
    /// A compaction at a negative revision.
    #[error("a compaction revision must be 0 (the latest) or more, not {revision}")]
    BadCompactRevision {
        /// The revision given.
        revision: i64,
    },
    /// Neither a location nor a reader was given.
    #[error("no snapshot to restore")]
    NoSnapshot,
    /// The automatic target version found data of a release under whose
    /// rules the options mean something else.
    #[error(
        "the snapshot holds etcd {found} data, which changes how these options read: give a target version"
    )]
    TargetVersionNeeded {
        /// The release the data is from.
        found: crate::etcd::version::TargetVersion,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flag error is typed, reads as etcd words it, and is a bad-args
    /// exit.
    #[test]
    fn flag_errors_are_typed_with_etcds_text() {
        let e = RestoreError::from(FlagsError::BumpWithoutMarkCompacted);
        assert_eq!(
            e.to_string(),
            "--mark-compacted required if --revision-bump > 0"
        );
        assert!(matches!(
            e,
            RestoreError::Flags(FlagsError::BumpWithoutMarkCompacted)
        ));
        let e = RestoreError::from(FlagsError::BadMemberName {
            name: "a/b".into(),
            all_members: false,
        });
        assert_eq!(
            e.to_string(),
            "member name \"a/b\" cannot name a data dir (give the data dir): it is empty or contains '/' or NUL"
        );
    }
}
