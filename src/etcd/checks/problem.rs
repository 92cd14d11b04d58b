//! What the etcd-level checks report: typed [`SchemaProblem`]s whose
//! `Display` is the line `snapshot verify` prints, each marked as an error
//! (etcd would crash on it or corrupt data) or a warning (restore replaces
//! it, or etcd tolerates it).

use std::fmt;

use super::super::buckets;
use super::super::gogo::GogoError;
use super::super::revision::{self, Revision, RevisionError};
use crate::bolt::Clipped;

/// How serious a problem is for a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// Restore replaces the record, or etcd tolerates it: reported, the
    /// snapshot is still restored.
    Warning,
    /// etcd would crash (at boot or when the record is used) or corrupt
    /// data: verify fails and restore refuses.
    Error,
}

/// Readable form of a key: text when printable ASCII, else hex.
pub(crate) fn printable_key(k: &[u8]) -> String {
    if !k.is_empty() && k.iter().all(|b| (0x20..0x7f).contains(b)) {
        format!("{:?}", String::from_utf8_lossy(k))
    } else {
        format!("(hex){}", crate::go::hex::encode(k))
    }
}

/// [`printable_key`] of the bytes kept, then how long the whole was when
/// clipped.
fn printable(c: &Clipped) -> String {
    format!("{}{}", printable_key(c), c.suffix())
}

fn rev_name(k: &Clipped) -> String {
    if k.is_clipped() {
        return printable(k);
    }
    match revision::parse(k) {
        Ok(r) if r.tombstone => format!("{}_{} (tombstone)", r.rev.main, r.rev.sub),
        Ok(r) => format!("{}_{}", r.rev.main, r.rev.sub),
        Err(_) => printable_key(k),
    }
}

fn rev(r: Revision) -> String {
    format!("{}_{}", r.main, r.sub)
}

/// What is wrong with one record (or bucket).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum SchemaProblemKind {
    /// A top-level key that is not a bucket.
    NotABucket {
        /// What etcd does with it.
        effect: &'static str,
    },
    /// A bucket etcd always has is missing.
    MissingBucket {
        /// Who creates it.
        effect: &'static str,
    },
    /// A key of the `key` bucket is not a revision.
    BadRevisionKey {
        /// Why.
        error: RevisionError,
        /// What etcd does with it.
        effect: &'static str,
    },
    /// A nested bucket where etcd expects a value (etcd reads it as empty).
    NestedBucket,
    /// A value that does not decode as the protobuf message etcd expects.
    Undecodable {
        /// The message type (`mvccpb.KeyValue`, ...).
        message: &'static str,
        /// gogo-protobuf's error.
        error: GogoError,
        /// What etcd does with it.
        effect: &'static str,
    },
    /// A `KeyValue` whose key is empty.
    EmptyUserKey,
    /// A `KeyValue` whose mod_revision is not its revision.
    ModRevision {
        /// In the value.
        found: i64,
        /// From the key.
        revision: i64,
    },
    /// A `KeyValue` whose revisions and version do not fit together.
    InconsistentKeyValue {
        /// create_revision.
        create: i64,
        /// mod_revision.
        modified: i64,
        /// version.
        version: i64,
    },
    /// The same revision as a live entry and a tombstone.
    DuplicateRevision {
        /// Whether both are of the same user key (etcd panics at boot).
        same_key: bool,
    },
    /// A revision not after the previous one.
    RevisionOrder,
    /// A `meta` value etcd needs is missing.
    Missing {
        /// What etcd (or restore) does about it.
        effect: &'static str,
    },
    /// A value that is not in the format etcd expects.
    Malformed {
        /// The value.
        value: Clipped,
        /// What was expected.
        expected: &'static str,
        /// What etcd (or restore) does with it.
        effect: &'static str,
    },
    /// A value that is JSON etcd's Go decoder refuses.
    BadJson {
        /// The value.
        value: Clipped,
        /// What Go's `encoding/json` says.
        error: String,
        /// What etcd does with it.
        effect: &'static str,
    },
    /// The finished compaction is after the scheduled one.
    FinishedAfterScheduled {
        /// Finished compaction.
        finished: Revision,
        /// Scheduled compaction.
        scheduled: Revision,
    },
    /// Compacted beyond the latest revision.
    CompactedBeyondLatest {
        /// Compaction revision (main).
        compacted: i64,
        /// Latest revision (main).
        latest: i64,
    },
    /// A `members`/`members_removed` key that is not a hex member ID.
    NotMemberId {
        /// What restore and etcd do with it.
        effect: &'static str,
    },
    /// A `members_removed` value that is not `removed`.
    NotRemoved {
        /// What restore and etcd do with it.
        effect: &'static str,
    },
    /// A `members` value that is not this member's JSON.
    NotMemberRecord {
        /// What restore and etcd do with it.
        effect: &'static str,
    },
    /// A lease stored under a key that is not its ID.
    LeaseIdMismatch {
        /// The ID in the value.
        id: i64,
    },
    /// An auth user or role stored under a key that is not its name.
    NameMismatch {
        /// The name in the value.
        name: Clipped,
    },
    /// An alarm is raised in the snapshot.
    ActiveAlarm {
        /// The member that raised it.
        member: u64,
        /// The alarm type (1 NOSPACE, 2 CORRUPT).
        alarm: u64,
    },
}

/// One etcd-level problem.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SchemaProblem {
    /// The top-level bucket (empty for problems with the buckets
    /// themselves, whose name is then the key).
    pub bucket: Vec<u8>,
    /// The key.
    pub key: Clipped,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub kind: SchemaProblemKind,
}

impl SchemaProblem {
    /// Whether this makes the snapshot unusable.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bucket.is_empty() {
            write!(f, "{}: ", printable(&self.key))?;
        } else {
            let key = if self.bucket == buckets::KEY {
                rev_name(&self.key)
            } else {
                printable(&self.key)
            };
            write!(
                f,
                "bucket {} key {key}: ",
                String::from_utf8_lossy(&self.bucket)
            )?;
        }
        match &self.kind {
            SchemaProblemKind::NotABucket { effect } => {
                write!(f, "top-level key is not a bucket ({effect})")
            }
            SchemaProblemKind::MissingBucket { effect } => {
                write!(f, "bucket is missing ({effect})")
            }
            SchemaProblemKind::BadRevisionKey { error, effect } => write!(f, "{error} ({effect})"),
            SchemaProblemKind::NestedBucket => {
                f.write_str("is a nested bucket (etcd reads it as an empty value)")
            }
            SchemaProblemKind::Undecodable {
                message,
                error,
                effect,
            } => write!(f, "value does not decode as {message}: {error} ({effect})"),
            SchemaProblemKind::EmptyUserKey => f.write_str("KeyValue has an empty key"),
            SchemaProblemKind::ModRevision { found, revision } => write!(
                f,
                "mod_revision {found} differs from the revision {revision}"
            ),
            SchemaProblemKind::InconsistentKeyValue {
                create,
                modified,
                version,
            } => write!(
                f,
                "inconsistent KeyValue: create_revision {create}, mod_revision {modified}, version {version}"
            ),
            SchemaProblemKind::DuplicateRevision { same_key: true } => f.write_str(
                "appears twice (live and tombstone) for the same key (etcd panics restoring its index)",
            ),
            SchemaProblemKind::DuplicateRevision { same_key: false } => {
                f.write_str("appears twice (live and tombstone)")
            }
            SchemaProblemKind::RevisionOrder => f.write_str("is not after the previous revision"),
            SchemaProblemKind::Missing { effect } => write!(f, "missing ({effect})"),
            SchemaProblemKind::Malformed {
                value,
                expected,
                effect,
            } => write!(
                f,
                "malformed value {}: {expected} ({effect})",
                printable(value)
            ),
            SchemaProblemKind::BadJson {
                value,
                error,
                effect,
            } => write!(
                f,
                "malformed value {}: {error} ({effect})",
                printable(value)
            ),
            SchemaProblemKind::FinishedAfterScheduled {
                finished,
                scheduled,
            } => write!(
                f,
                "finished compaction {} is after the scheduled one {}",
                rev(*finished),
                rev(*scheduled)
            ),
            SchemaProblemKind::CompactedBeyondLatest { compacted, latest } => write!(
                f,
                "compacted at revision {compacted} beyond the latest revision {latest}"
            ),
            SchemaProblemKind::NotMemberId { effect } => {
                write!(f, "key is not a hex member ID ({effect})")
            }
            SchemaProblemKind::NotRemoved { effect } => {
                write!(f, "value is not \"removed\" ({effect})")
            }
            SchemaProblemKind::NotMemberRecord { effect } => {
                write!(f, "value is not a member record with this ID ({effect})")
            }
            SchemaProblemKind::LeaseIdMismatch { id } => write!(
                f,
                "leasepb.Lease with ID {id} is not stored under its 8-byte ID (etcd uses the ID in the value)"
            ),
            SchemaProblemKind::NameMismatch { name } => write!(
                f,
                "record names {} (etcd looks it up by the key)",
                printable(name)
            ),
            SchemaProblemKind::ActiveAlarm { member, alarm } => {
                let what = match alarm {
                    1 => "NOSPACE".to_owned(),
                    2 => "CORRUPT".to_owned(),
                    other => format!("type {other}"),
                };
                write!(
                    f,
                    "alarm {what} raised by member {member:x} is active (the restored cluster starts with it)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_keys_and_values_are_clipped_in_messages() {
        let p = SchemaProblem {
            bucket: buckets::META.to_vec(),
            key: Clipped::new(&[b'k'; 1000]),
            severity: Severity::Warning,
            kind: SchemaProblemKind::Malformed {
                value: Clipped::new(&[0xff; 5000]),
                expected: "expected 8 bytes",
                effect: "restore rewrites it",
            },
        };
        assert_eq!(
            p.to_string(),
            format!(
                "bucket meta key {:?}... (1000 bytes): malformed value (hex){}... (5000 bytes): expected 8 bytes (restore rewrites it)",
                "k".repeat(256),
                "ff".repeat(256)
            )
        );
        let short = SchemaProblem {
            key: Clipped::new(b"term"),
            kind: SchemaProblemKind::Malformed {
                value: Clipped::new(&[1, 2]),
                expected: "expected 8 bytes",
                effect: "restore rewrites it",
            },
            ..p
        };
        assert_eq!(
            short.to_string(),
            "bucket meta key \"term\": malformed value (hex)0102: expected 8 bytes (restore rewrites it)"
        );
    }
}
