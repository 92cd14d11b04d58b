//! etcd-level checks of a structurally sound database: revision keys are
//! well formed and strictly ordered, `key` values decode as
//! `mvccpb.KeyValue` and agree with their revision, the `meta` values are
//! well formed and consistent, membership and lease records parse.
//!
//! Runs as a [`Visitor`] during the same walk as the structural check.

use prost::Message;

use super::buckets;
use super::kv::{KeyValue, KeyValueRef, Lease};
use super::meta;
use super::revision::{self, RevKey, Revision};
use crate::bolt::{LeafElem, Visitor};

/// Most problems kept; the rest are counted.
pub const MAX_SCHEMA_PROBLEMS: usize = 1000;

/// One etcd-level problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// The top-level bucket, lossily printed (empty for the root).
    pub bucket: String,
    /// The key, printed readably (revision, text or hex).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.bucket.is_empty() {
            write!(f, "{}: {}", self.key, self.message)
        } else {
            write!(
                f,
                "bucket {} key {}: {}",
                self.bucket, self.key, self.message
            )
        }
    }
}

/// The etcd-level findings of a walk.
#[derive(Debug, Clone, Default)]
pub struct SchemaChecks {
    problems: Vec<SchemaProblem>,
    omitted: u64,
    first_rev: Option<RevKey>,
    last_rev: Option<RevKey>,
    top_level: Vec<Vec<u8>>,
    consistent_index: Option<u64>,
    scheduled: Option<Revision>,
    finished: Option<Revision>,
}

/// Readable form of a key: text when printable ASCII, else hex.
pub fn printable_key(k: &[u8]) -> String {
    if !k.is_empty() && k.iter().all(|b| (0x20..0x7f).contains(b)) {
        format!("{:?}", String::from_utf8_lossy(k))
    } else {
        format!(
            "(hex){}",
            k.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

fn rev_name(k: &[u8]) -> String {
    match revision::parse(k) {
        Ok(r) if r.tombstone => format!("{}_{} (tombstone)", r.rev.main, r.rev.sub),
        Ok(r) => format!("{}_{}", r.rev.main, r.rev.sub),
        Err(_) => printable_key(k),
    }
}

impl SchemaChecks {
    /// Empty findings.
    pub fn new() -> SchemaChecks {
        SchemaChecks::default()
    }

    fn problem(&mut self, bucket: &[u8], key: String, message: String) {
        if self.problems.len() < MAX_SCHEMA_PROBLEMS {
            self.problems.push(SchemaProblem {
                bucket: String::from_utf8_lossy(bucket).into_owned(),
                key,
                message,
            });
        } else {
            self.omitted += 1;
        }
    }

    /// Runs the checks that need the whole database and returns every
    /// problem found, and the number of problems not kept.
    pub fn finish(mut self) -> (Vec<SchemaProblem>, u64) {
        for required in [buckets::KEY, buckets::META] {
            if !self.top_level.iter().any(|b| b == required) {
                self.problem(
                    b"",
                    printable_key(required),
                    "bucket is missing (etcd always creates it)".into(),
                );
            }
        }
        if self.top_level.iter().any(|b| b == buckets::META) && self.consistent_index.is_none() {
            self.problem(
                buckets::META,
                printable_key(meta::CONSISTENT_INDEX),
                "missing".into(),
            );
        }
        let latest = self.last_rev.map(|r| r.rev);
        if let (Some(s), Some(f)) = (self.scheduled, self.finished)
            && f > s
        {
            self.problem(
                buckets::META,
                printable_key(meta::FINISHED_COMPACT_REV),
                format!(
                    "finished compaction {}_{} is after the scheduled one {}_{}",
                    f.main, f.sub, s.main, s.sub
                ),
            );
        }
        if let (Some(f), Some(l)) = (self.finished, latest)
            && f.main > l.main
        {
            self.problem(
                buckets::META,
                printable_key(meta::FINISHED_COMPACT_REV),
                format!(
                    "compacted at revision {} beyond the latest revision {}",
                    f.main, l.main
                ),
            );
        }
        (self.problems, self.omitted)
    }

    fn key_entry(&mut self, e: &LeafElem<'_>) {
        let rk = match revision::parse(e.key) {
            Ok(r) => r,
            Err(err) => {
                self.problem(buckets::KEY, printable_key(e.key), err.to_string());
                return;
            }
        };
        if let Some(prev) = self.last_rev {
            self.check_order(prev, rk);
        } else {
            self.first_rev = Some(rk);
        }
        self.last_rev = Some(rk);
        if e.is_bucket() {
            self.problem(buckets::KEY, rev_name(e.key), "is a nested bucket".into());
            return;
        }
        if e.value.is_empty() {
            // `--bump-revision` markers: an empty value at a revision, kept
            // by etcd as a KeyValue with an empty key.
            return;
        }
        let Some(kv) = KeyValueRef::parse(e.value) else {
            let err = KeyValue::decode(e.value)
                .err()
                .map_or_else(|| "bad wire type".to_owned(), |e| e.to_string());
            self.problem(
                buckets::KEY,
                rev_name(e.key),
                format!("value does not decode as mvccpb.KeyValue: {err}"),
            );
            return;
        };
        if kv.key.is_empty() {
            self.problem(
                buckets::KEY,
                rev_name(e.key),
                "KeyValue has an empty key".into(),
            );
        }
        if rk.tombstone {
            return;
        }
        if kv.mod_revision != rk.rev.main {
            self.problem(
                buckets::KEY,
                rev_name(e.key),
                format!(
                    "mod_revision {} differs from the revision {}",
                    kv.mod_revision, rk.rev.main
                ),
            );
        }
        if kv.create_revision <= 0 || kv.create_revision > kv.mod_revision || kv.version < 1 {
            self.problem(
                buckets::KEY,
                rev_name(e.key),
                format!(
                    "inconsistent KeyValue: create_revision {}, mod_revision {}, version {}",
                    kv.create_revision, kv.mod_revision, kv.version
                ),
            );
        }
    }

    fn check_order(&mut self, prev: RevKey, next: RevKey) {
        if next.rev <= prev.rev {
            let what = if next.rev == prev.rev {
                "appears twice (live and tombstone)"
            } else {
                "is not after the previous revision"
            };
            self.problem(
                buckets::KEY,
                format!("{}_{}", next.rev.main, next.rev.sub),
                what.into(),
            );
        }
    }

    fn meta_entry(&mut self, e: &LeafElem<'_>) {
        let k = e.key;
        let bad = |what: &str| format!("malformed value {}: {what}", printable_key(e.value));
        if k == meta::CONSISTENT_INDEX {
            match meta::decode_u64(e.value) {
                Some(v) => self.consistent_index = Some(v),
                None => self.problem(buckets::META, printable_key(k), bad("expected 8 bytes")),
            }
        } else if k == meta::TERM {
            if meta::decode_u64(e.value).is_none() {
                self.problem(buckets::META, printable_key(k), bad("expected 8 bytes"));
            }
        } else if k == meta::SCHEDULED_COMPACT_REV || k == meta::FINISHED_COMPACT_REV {
            match meta::decode_compact_rev(e.value) {
                Some(r) if k == meta::SCHEDULED_COMPACT_REV => self.scheduled = Some(r),
                Some(r) => self.finished = Some(r),
                None => self.problem(
                    buckets::META,
                    printable_key(k),
                    bad("expected a 17-byte revision"),
                ),
            }
        } else if k == meta::CONF_STATE {
            if serde_json::from_slice::<serde_json::Value>(e.value).is_err() {
                self.problem(buckets::META, printable_key(k), bad("not JSON"));
            }
        } else if k == meta::STORAGE_VERSION && meta::storage_version(e.value).is_none() {
            self.problem(buckets::META, printable_key(k), bad("not a version"));
        }
    }

    fn members_entry(&mut self, bucket: &[u8], e: &LeafElem<'_>) {
        let id = std::str::from_utf8(e.key)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        let Some(id) = id else {
            self.problem(
                bucket,
                printable_key(e.key),
                "key is not a hex member ID".into(),
            );
            return;
        };
        if bucket == buckets::MEMBERS_REMOVED {
            if e.value != b"removed" {
                self.problem(
                    bucket,
                    printable_key(e.key),
                    "value is not \"removed\"".into(),
                );
            }
            return;
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(e.value).ok();
        let json_id = json
            .as_ref()
            .and_then(|j| j.get("id"))
            .and_then(|v| v.as_u64());
        if json_id != Some(id) {
            self.problem(
                bucket,
                printable_key(e.key),
                "value is not a member record with this ID".into(),
            );
        }
    }

    fn lease_entry(&mut self, e: &LeafElem<'_>) {
        let id = <[u8; 8]>::try_from(e.key).ok().map(i64::from_be_bytes);
        let lease = Lease::decode(e.value).ok();
        match (id, lease) {
            (Some(id), Some(l)) if l.id == id => {}
            _ => self.problem(
                buckets::LEASE,
                printable_key(e.key),
                "not a leasepb.Lease stored under its 8-byte ID".into(),
            ),
        }
    }
}

impl Visitor for SchemaChecks {
    fn fork(&self) -> Self {
        SchemaChecks::new()
    }

    fn merge(&mut self, later: Self) {
        if let (Some(prev), Some(next)) = (self.last_rev, later.first_rev) {
            self.check_order(prev, next);
        }
        if self.first_rev.is_none() {
            self.first_rev = later.first_rev;
        }
        if later.last_rev.is_some() {
            self.last_rev = later.last_rev;
        }
        for p in later.problems {
            if self.problems.len() < MAX_SCHEMA_PROBLEMS {
                self.problems.push(p);
            } else {
                self.omitted += 1;
            }
        }
        self.omitted += later.omitted;
        self.top_level.extend(later.top_level);
        self.consistent_index = later.consistent_index.or(self.consistent_index);
        self.scheduled = later.scheduled.or(self.scheduled);
        self.finished = later.finished.or(self.finished);
    }

    fn entry(&mut self, path: &[&[u8]], e: &LeafElem<'_>) {
        match path {
            [] => {
                if !e.is_bucket() {
                    self.problem(
                        b"",
                        printable_key(e.key),
                        "top-level key is not a bucket".into(),
                    );
                }
                self.top_level.push(e.key.to_vec());
            }
            [b] if *b == buckets::KEY => self.key_entry(e),
            [b] if *b == buckets::META => self.meta_entry(e),
            [b] if *b == buckets::MEMBERS || *b == buckets::MEMBERS_REMOVED => {
                self.members_entry(b, e)
            }
            [b] if *b == buckets::LEASE => self.lease_entry(e),
            _ => {}
        }
    }
}
