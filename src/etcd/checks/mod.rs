//! etcd-level checks of a structurally sound database, run as a
//! [`Visitor`] during the same walk as the structural check.
//!
//! Every record etcd decodes is decoded here the way etcd 3.5 decodes it
//! (the generated gogo-protobuf code, Go's `encoding/json`, go-semver,
//! `binary.BigEndian`), and each finding is classified by one rule:
//!
//! * **error**: etcd would crash on it (at boot, or when the record is
//!   used: `user list`, a lease revoke...) or restore could not write its
//!   edits; verify fails and restore refuses;
//! * **warning**: restore replaces the record (`members`,
//!   `consistent_index`...), or etcd tolerates it (a missing `key` bucket,
//!   a `KeyValue` whose fields disagree with its revision); reported, and
//!   the snapshot is restored.
//!
//! Some rules depend on the etcd version the snapshot is restored for
//! (etcd 3.6 reads `cluster/clusterVersion` and `meta/confState`, 3.5 does
//! not), hence the [`TargetVersion`].

mod golike;
mod keys;
mod problem;
mod records;

pub(crate) use problem::printable_key;
pub use problem::{SchemaProblem, SchemaProblemKind, Severity};

use super::buckets;
use super::revision::{RevKey, Revision};
use super::version::TargetVersion;
use crate::bolt::{Clipped, LeafElem, Visitor};

/// Most problems kept; the rest are counted.
pub const MAX_SCHEMA_PROBLEMS: usize = 1000;

/// The last revision seen in the `key` bucket, with its user key (to tell
/// a live entry and a tombstone of the same key at the same revision).
#[derive(Debug, Clone, Default)]
struct LastRev {
    rev: Option<RevKey>,
    user_key: Vec<u8>,
}

/// The etcd-level findings of a walk.
#[derive(Debug, Clone)]
pub struct SchemaChecks {
    target: TargetVersion,
    problems: Vec<SchemaProblem>,
    omitted: u64,
    omitted_errors: u64,
    first: LastRev,
    last: LastRev,
    /// Whether the root holds an entry named `key` / `meta` (bucket or not).
    has_key: bool,
    has_meta: bool,
    consistent_index: bool,
    scheduled: Option<Revision>,
    finished: Option<Revision>,
    /// `meta/confState` as Go's decoder judged it (None when absent).
    conf_state: Option<Result<(), String>>,
    conf_state_value: Clipped,
    storage_version_ok: bool,
}

impl Default for SchemaChecks {
    fn default() -> Self {
        SchemaChecks::for_target(TargetVersion::default())
    }
}

impl SchemaChecks {
    /// Empty findings, classified for a restore to `target`.
    pub fn for_target(target: TargetVersion) -> SchemaChecks {
        SchemaChecks {
            target,
            problems: Vec::new(),
            omitted: 0,
            omitted_errors: 0,
            first: LastRev::default(),
            last: LastRev::default(),
            has_key: false,
            has_meta: false,
            consistent_index: false,
            scheduled: None,
            finished: None,
            conf_state: None,
            conf_state_value: Clipped::default(),
            storage_version_ok: false,
        }
    }

    fn push(&mut self, p: SchemaProblem) {
        if self.problems.len() < MAX_SCHEMA_PROBLEMS {
            self.problems.push(p);
        } else {
            self.omit(p.severity);
        }
    }

    /// Counts a problem not kept.
    fn omit(&mut self, severity: Severity) {
        self.omitted += 1;
        if severity == Severity::Error {
            self.omitted_errors += 1;
        }
    }

    fn problem(&mut self, bucket: &[u8], key: &[u8], severity: Severity, kind: SchemaProblemKind) {
        self.problem_with(bucket, key, severity, || kind);
    }

    /// Records a problem, built only when there is room for it (`bucket`
    /// is one of etcd's bucket names; `key` and what `kind` copies from the
    /// input are clipped).
    fn problem_with(
        &mut self,
        bucket: &[u8],
        key: &[u8],
        severity: Severity,
        kind: impl FnOnce() -> SchemaProblemKind,
    ) {
        if self.problems.len() >= MAX_SCHEMA_PROBLEMS {
            self.omit(severity);
            return;
        }
        self.push(SchemaProblem {
            bucket: bucket.to_vec(),
            key: Clipped::new(key),
            severity,
            kind: kind(),
        });
    }

    /// What was found about the records seen, without the checks that need
    /// the whole database (missing buckets and values): for a walk that
    /// could not reach every page.
    pub fn finish_incomplete(self) -> SchemaFindings {
        SchemaFindings {
            problems: self.problems,
            omitted: self.omitted,
            omitted_errors: self.omitted_errors,
        }
    }

    /// Runs the checks that need the whole database and returns every
    /// problem found (errors and warnings, in walk order), with the number
    /// of problems not kept and of errors among them.
    pub fn finish_report(mut self) -> SchemaFindings {
        for (present, required, effect) in [
            (self.has_key, buckets::KEY, "etcd creates it at boot"),
            (self.has_meta, buckets::META, "restore creates it"),
        ] {
            if !present {
                self.problem(
                    b"",
                    required,
                    Severity::Warning,
                    SchemaProblemKind::MissingBucket { effect },
                );
            }
        }
        self.finish_meta();
        self.finish_incomplete()
    }
}

/// Everything the etcd-level checks found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SchemaFindings {
    /// Problems kept, errors and warnings, in walk order.
    pub problems: Vec<SchemaProblem>,
    /// Problems not kept.
    pub omitted: u64,
    /// Errors among those not kept.
    pub omitted_errors: u64,
}

impl SchemaFindings {
    /// Whether nothing would stop a restore (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.omitted_errors == 0 && !self.problems.iter().any(SchemaProblem::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &SchemaProblem> {
        self.problems.iter().filter(|p| p.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &SchemaProblem> {
        self.problems.iter().filter(|p| !p.is_error())
    }
}

impl Visitor for SchemaChecks {
    fn fork(&self) -> Self {
        SchemaChecks::for_target(self.target)
    }

    fn merge(&mut self, later: Self) {
        if let Some(next) = later.first.rev {
            self.check_order(next, &later.first.user_key);
        }
        if self.first.rev.is_none() {
            self.first = later.first;
        }
        if later.last.rev.is_some() {
            self.last = later.last;
        }
        for p in later.problems {
            self.push(p);
        }
        self.omitted += later.omitted;
        self.omitted_errors += later.omitted_errors;
        self.has_key |= later.has_key;
        self.has_meta |= later.has_meta;
        self.consistent_index |= later.consistent_index;
        self.scheduled = later.scheduled.or(self.scheduled);
        self.finished = later.finished.or(self.finished);
        if later.conf_state.is_some() {
            self.conf_state = later.conf_state;
            self.conf_state_value = later.conf_state_value;
        }
        self.storage_version_ok |= later.storage_version_ok;
    }

    fn entry(&mut self, path: &[&[u8]], e: &LeafElem<'_>) {
        match path {
            [] => self.top_level_entry(e),
            [b] if *b == buckets::KEY => self.key_entry(e),
            [b] if *b == buckets::META => self.meta_entry(e),
            [b] if *b == buckets::MEMBERS || *b == buckets::MEMBERS_REMOVED => {
                self.members_entry(b, e)
            }
            [b] if *b == buckets::LEASE => self.lease_entry(e),
            [b] if *b == buckets::ALARM => self.alarm_entry(e),
            [b] if *b == buckets::AUTH => self.auth_entry(e),
            [b] if *b == buckets::AUTH_USERS || *b == buckets::AUTH_ROLES => {
                self.auth_record_entry(b, e)
            }
            [b] if *b == buckets::CLUSTER => self.cluster_entry(e),
            _ => {}
        }
    }
}

impl SchemaChecks {
    fn top_level_entry(&mut self, e: &LeafElem<'_>) {
        if !e.is_bucket() {
            // etcd creates its buckets at boot and exits when a plain key
            // holds the name; another plain key only breaks defrag.
            let (severity, effect) = if buckets::ALL.contains(&e.key) {
                (
                    Severity::Error,
                    "etcd exits at boot: it cannot create its bucket",
                )
            } else {
                (Severity::Warning, "etcd's defrag fails on it")
            };
            self.problem(
                b"",
                e.key,
                severity,
                SchemaProblemKind::NotABucket { effect },
            );
        }
        self.has_key |= e.key == buckets::KEY;
        self.has_meta |= e.key == buckets::META;
    }
}

#[cfg(test)]
mod tests;
