//! The `key` bucket as etcd 3.5's MVCC store restores it at boot
//! (`mvcc.store.restore`): every key in `[1_0, MaxInt64_MaxInt64)` is
//! read as a revision with `bytesToRev` and its value decoded as
//! `mvccpb.KeyValue`; the index then takes each user key's revisions in
//! order.

use super::super::buckets;
use super::super::gogo::GogoError;
use super::super::kv::KeyValueRef;
use super::super::revision::{self, REV_LEN, RevKey};
use super::{SchemaChecks, SchemaProblemKind, Severity};

/// etcd's scan starts at revision (1, 0)...
const SCAN_MIN: [u8; REV_LEN] = *b"\0\0\0\0\0\0\0\x01_\0\0\0\0\0\0\0\0";
/// ...and ends before (MaxInt64, MaxInt64).
const SCAN_MAX: [u8; REV_LEN] =
    *b"\x7f\xff\xff\xff\xff\xff\xff\xff_\x7f\xff\xff\xff\xff\xff\xff\xff";

/// Whether etcd's restore reads this key.
fn scanned(key: &[u8]) -> bool {
    key >= &SCAN_MIN[..] && key < &SCAN_MAX[..]
}

impl SchemaChecks {
    pub(super) fn key_entry(&mut self, e: &crate::bolt::LeafElem<'_>) {
        let in_scan = scanned(e.key);
        let rk = match revision::parse(e.key) {
            Ok(r) => Some(r),
            Err(error) => {
                let (severity, effect) = if !in_scan {
                    (Severity::Warning, "etcd skips it")
                } else if e.key.len() < REV_LEN {
                    (
                        Severity::Error,
                        "etcd panics restoring its index: bytesToRev reads 17 bytes",
                    )
                } else {
                    (
                        Severity::Warning,
                        "etcd reads the revision from bytes 0-8 and 9-17",
                    )
                };
                self.problem(
                    buckets::KEY,
                    e.key,
                    severity,
                    SchemaProblemKind::BadRevisionKey { error, effect },
                );
                None
            }
        };
        if e.is_bucket() {
            // etcd's range reads a nested bucket as a nil value, which
            // decodes as an empty KeyValue.
            self.problem(
                buckets::KEY,
                e.key,
                Severity::Warning,
                SchemaProblemKind::NestedBucket,
            );
            if let Some(rk) = rk {
                self.next_rev(rk, b"");
            }
            return;
        }
        let kv = match KeyValueRef::decode(e.value) {
            Ok(kv) => kv,
            Err(error) => {
                self.undecodable(e.key, in_scan, error);
                if let Some(rk) = rk {
                    self.next_rev(rk, b"");
                }
                return;
            }
        };
        let Some(rk) = rk else { return };
        self.next_rev(rk, kv.key);
        if e.value.is_empty() {
            // `--bump-revision` markers: an empty value at a revision, kept
            // by etcd as a KeyValue with an empty key.
            return;
        }
        if kv.key.is_empty() {
            self.problem(
                buckets::KEY,
                e.key,
                Severity::Warning,
                SchemaProblemKind::EmptyUserKey,
            );
        }
        if rk.tombstone {
            return;
        }
        if kv.mod_revision != rk.rev.main {
            self.problem(
                buckets::KEY,
                e.key,
                Severity::Warning,
                SchemaProblemKind::ModRevision {
                    found: kv.mod_revision,
                    revision: rk.rev.main,
                },
            );
        }
        if kv.create_revision <= 0 || kv.create_revision > kv.mod_revision || kv.version < 1 {
            self.problem(
                buckets::KEY,
                e.key,
                Severity::Warning,
                SchemaProblemKind::InconsistentKeyValue {
                    create: kv.create_revision,
                    modified: kv.mod_revision,
                    version: kv.version,
                },
            );
        }
    }

    fn undecodable(&mut self, key: &[u8], in_scan: bool, error: GogoError) {
        let (severity, effect) = if in_scan {
            (
                Severity::Error,
                "etcd exits at boot: failed to unmarshal mvccpb.KeyValue",
            )
        } else {
            (Severity::Warning, "etcd skips it")
        };
        self.problem(
            buckets::KEY,
            key,
            severity,
            SchemaProblemKind::Undecodable {
                message: "mvccpb.KeyValue",
                error,
                effect,
            },
        );
    }

    /// Records the next revision, checking it against the previous one.
    fn next_rev(&mut self, rk: RevKey, user_key: &[u8]) {
        if self.first.rev.is_none() {
            self.first.rev = Some(rk);
            self.first.user_key = user_key.to_vec();
        } else {
            self.check_order(rk, user_key);
        }
        self.last.rev = Some(rk);
        self.last.user_key.clear();
        self.last.user_key.extend_from_slice(user_key);
    }

    /// `next` must come after the last revision seen.
    pub(super) fn check_order(&mut self, next: RevKey, user_key: &[u8]) {
        let Some(prev) = self.last.rev else { return };
        if next.rev > prev.rev {
            return;
        }
        let key = if next.tombstone {
            let mut k = next.rev.encode().to_vec();
            k.push(revision::TOMBSTONE_MARK);
            k
        } else {
            next.rev.encode().to_vec()
        };
        let kind = if next.rev == prev.rev {
            let same_key = self.last.user_key == user_key;
            SchemaProblemKind::DuplicateRevision { same_key }
        } else {
            SchemaProblemKind::RevisionOrder
        };
        // The same user key twice at one revision makes etcd's index panic
        // ("'put' with an unexpected smaller revision"), and so does a key
        // whose revisions go backwards; which key a revision out of order
        // belongs to is not tracked, so any is refused.
        let severity = match kind {
            SchemaProblemKind::DuplicateRevision { same_key: false } => Severity::Warning,
            _ => Severity::Error,
        };
        self.problem(buckets::KEY, &key, severity, kind);
    }
}
