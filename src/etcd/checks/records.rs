//! The buckets other than `key`, each read the way etcd reads it:
//!
//! * `meta`: `consistent_index` and `term` (BE8; restore rewrites both),
//!   the compaction revisions (`bytesToRev`: fewer than 17 bytes panics at
//!   boot), `confState` (JSON, read by etcd 3.6 when there is no
//!   `storageVersion`), `storageVersion`;
//! * `members`, `members_removed`: restore replaces them (3.5, 3.6); etcd
//!   3.4 keeps its membership in the `.snap`;
//! * `lease`: `leasepb.Lease` for every key in `[0, MaxInt64)` at boot;
//! * `alarm`: every key an `etcdserverpb.AlarmMember`, at boot;
//! * `auth`: `authRevision` BE8 at boot, `authEnabled` 1 byte;
//! * `authUsers`, `authRoles`: `authpb.User`/`authpb.Role`, decoded on
//!   use (`user list`, authentication, permission checks) with a panic on
//!   failure;
//! * `cluster`: `clusterVersion` (go-semver, read by etcd 3.6 at boot),
//!   `downgrade` (JSON, read by etcd 3.5 and 3.6 at boot).

use super::super::gogo::{self, Schema, Value};
use super::super::revision::Revision;
use super::super::version::TargetVersion;
use super::super::{buckets, meta};
use super::golike::{GoType, go_json_struct, go_json_struct_value, go_semver_ok};
use super::{SchemaChecks, SchemaProblemKind, Severity};
use crate::bolt::{Clipped, LeafElem};

const CLUSTER_VERSION: &[u8] = b"clusterVersion";
const DOWNGRADE: &[u8] = b"downgrade";
const AUTH_REVISION: &[u8] = b"authRevision";
const AUTH_ENABLED: &[u8] = b"authEnabled";

const CONF_STATE_FIELDS: [(&str, GoType); 5] = [
    ("voters", GoType::U64Slice),
    ("learners", GoType::U64Slice),
    ("voters_outgoing", GoType::U64Slice),
    ("learners_next", GoType::U64Slice),
    ("auto_leave", GoType::Bool),
];

const DOWNGRADE_FIELDS: [(&str, GoType); 2] = [
    ("target-version", GoType::String),
    ("enabled", GoType::Bool),
];

/// A protobuf record etcd decodes, and what happens when it cannot.
struct Decoding {
    schema: &'static Schema,
    /// The Go message name, for messages.
    message: &'static str,
    severity: Severity,
    effect: &'static str,
}

/// The value etcd reads for an entry: a nested bucket reads as nil.
fn value<'a>(e: &LeafElem<'a>) -> &'a [u8] {
    if e.is_bucket() { &[] } else { e.value }
}

/// etcd's `bytesToRev`, which reads bytes 0..8 and 9..17 of a longer value.
fn bytes_to_rev(v: &[u8]) -> Option<Revision> {
    let main = i64::from_be_bytes(v.get(0..8)?.try_into().ok()?);
    let sub = i64::from_be_bytes(v.get(9..17)?.try_into().ok()?);
    Some(Revision { main, sub })
}

impl SchemaChecks {
    fn malformed(
        &mut self,
        bucket: &[u8],
        e: &LeafElem<'_>,
        severity: Severity,
        expected: &'static str,
        effect: &'static str,
    ) {
        self.problem_with(bucket, e.key, severity, || SchemaProblemKind::Malformed {
            value: Clipped::new(value(e)),
            expected,
            effect,
        });
    }

    fn nested(&mut self, bucket: &[u8], e: &LeafElem<'_>) {
        if e.is_bucket() {
            self.problem(
                bucket,
                e.key,
                Severity::Warning,
                SchemaProblemKind::NestedBucket,
            );
        }
    }

    pub(super) fn meta_entry(&mut self, e: &LeafElem<'_>) {
        let k = e.key;
        let v = value(e);
        let b = buckets::META;
        if k == meta::CONSISTENT_INDEX || k == meta::TERM {
            if k == meta::CONSISTENT_INDEX {
                self.consistent_index = true;
            }
            if e.is_bucket() {
                self.malformed(
                    b,
                    e,
                    Severity::Error,
                    "a nested bucket where 8 bytes belong",
                    "restore cannot overwrite it",
                );
            } else if v.len() != 8
                && (k == meta::CONSISTENT_INDEX || self.target != TargetVersion::V3_4)
            {
                self.malformed(
                    b,
                    e,
                    Severity::Warning,
                    "expected 8 bytes",
                    "restore rewrites it",
                );
            } else if v.len() != 8 {
                self.malformed(
                    b,
                    e,
                    Severity::Warning,
                    "expected 8 bytes",
                    "etcd 3.4 does not read it",
                );
            }
        } else if k == meta::SCHEDULED_COMPACT_REV || k == meta::FINISHED_COMPACT_REV {
            match bytes_to_rev(v) {
                None => self.malformed(
                    b,
                    e,
                    Severity::Error,
                    "expected a 17-byte revision",
                    "etcd panics at boot reading it",
                ),
                Some(r) => {
                    if meta::decode_compact_rev(v).is_none() {
                        self.malformed(
                            b,
                            e,
                            Severity::Warning,
                            "expected a 17-byte revision",
                            "etcd reads bytes 0-8 and 9-17",
                        );
                    }
                    if k == meta::SCHEDULED_COMPACT_REV {
                        self.scheduled = Some(r);
                    } else {
                        self.finished = Some(r);
                    }
                }
            }
        } else if k == meta::CONF_STATE {
            self.conf_state = Some(go_json_struct(v, "raftpb.ConfState", &CONF_STATE_FIELDS));
            self.conf_state_value = Clipped::new(v);
        } else if k == meta::STORAGE_VERSION {
            self.storage_version_ok = go_semver_ok(v);
            if !self.storage_version_ok {
                self.malformed(
                    b,
                    e,
                    Severity::Warning,
                    "not a version",
                    "etcd 3.6 ignores it and detects the version from confState and term",
                );
            }
        } else {
            self.nested(b, e);
        }
    }

    /// The `meta` checks that need the whole bucket (or the whole file).
    pub(super) fn finish_meta(&mut self) {
        if self.has_meta && !self.consistent_index {
            self.problem(
                buckets::META,
                meta::CONSISTENT_INDEX,
                Severity::Warning,
                SchemaProblemKind::Missing {
                    effect: "restore writes it",
                },
            );
        }
        if let Some(Err(error)) = self.conf_state.clone() {
            // etcd 3.6 decodes confState to detect a 3.5 schema when there
            // is no valid storageVersion, and panics if it cannot.
            let (severity, effect) = if self.target >= TargetVersion::V3_6
                && !self.storage_version_ok
            {
                (
                    Severity::Error,
                    "etcd 3.6 and later panic at boot decoding it",
                )
            } else {
                (
                    Severity::Warning,
                    "etcd 3.4 and 3.5 do not read it; 3.6 panics on it when there is no storageVersion",
                )
            };
            let value = std::mem::take(&mut self.conf_state_value);
            self.problem(
                buckets::META,
                meta::CONF_STATE,
                severity,
                SchemaProblemKind::BadJson {
                    value,
                    error,
                    effect,
                },
            );
        }
        let latest = self.last.rev.map(|r| r.rev);
        if let (Some(s), Some(f)) = (self.scheduled, self.finished)
            && f > s
        {
            self.problem(
                buckets::META,
                meta::FINISHED_COMPACT_REV,
                Severity::Warning,
                SchemaProblemKind::FinishedAfterScheduled {
                    finished: f,
                    scheduled: s,
                },
            );
        }
        if let (Some(f), Some(l)) = (self.finished, latest)
            && f.main > l.main
        {
            self.problem(
                buckets::META,
                meta::FINISHED_COMPACT_REV,
                Severity::Warning,
                SchemaProblemKind::CompactedBeyondLatest {
                    compacted: f.main,
                    latest: l.main,
                },
            );
        }
    }

    pub(super) fn members_entry(&mut self, bucket: &[u8], e: &LeafElem<'_>) {
        let effect = if self.target == TargetVersion::V3_4 {
            "etcd 3.4 keeps its membership in the .snap and does not read this bucket"
        } else {
            "restore replaces this bucket"
        };
        let id = std::str::from_utf8(e.key)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        let Some(id) = id else {
            self.problem(
                bucket,
                e.key,
                Severity::Warning,
                SchemaProblemKind::NotMemberId { effect },
            );
            return;
        };
        if bucket == buckets::MEMBERS_REMOVED {
            if value(e) != b"removed" {
                self.problem(
                    bucket,
                    e.key,
                    Severity::Warning,
                    SchemaProblemKind::NotRemoved { effect },
                );
            }
            return;
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(value(e)).ok();
        let json_id = json
            .as_ref()
            .and_then(|j| j.get("id"))
            .and_then(|v| v.as_u64());
        if json_id != Some(id) {
            self.problem(
                bucket,
                e.key,
                Severity::Warning,
                SchemaProblemKind::NotMemberRecord { effect },
            );
        }
    }

    /// Decodes `v` by gogo's rules; a failure is reported as `how` says.
    fn decode_record<'v>(
        &mut self,
        bucket: &[u8],
        key: &[u8],
        v: &'v [u8],
        how: Decoding,
    ) -> Option<Vec<(i32, Value<'v>)>> {
        let mut fields = Vec::new();
        match gogo::decode(how.schema, v, |n, x| fields.push((n, x))) {
            Ok(()) => Some(fields),
            Err(error) => {
                self.problem(
                    bucket,
                    key,
                    how.severity,
                    SchemaProblemKind::Undecodable {
                        message: how.message,
                        error,
                        effect: how.effect,
                    },
                );
                None
            }
        }
    }

    pub(super) fn lease_entry(&mut self, e: &LeafElem<'_>) {
        let b = buckets::LEASE;
        self.nested(b, e);
        // etcd's lessor reads the keys in [int64(0), int64(MaxInt64)).
        let scanned = e.key >= &[0u8; 8][..] && e.key < &i64::MAX.to_be_bytes()[..];
        let (severity, effect) = if scanned {
            (
                Severity::Error,
                "etcd panics at boot: failed to unmarshal lease proto item",
            )
        } else {
            (Severity::Warning, "etcd skips it")
        };
        let Some(fields) = self.decode_record(
            b,
            e.key,
            value(e),
            Decoding {
                schema: &gogo::LEASE,
                message: "leasepb.Lease",
                severity,
                effect,
            },
        ) else {
            return;
        };
        let id = fields
            .iter()
            .rev()
            .find_map(|(n, v)| match (n, v) {
                (1, Value::Varint(x)) => Some(*x as i64),
                _ => None,
            })
            .unwrap_or(0);
        if scanned && e.key != id.to_be_bytes() {
            self.problem(
                b,
                e.key,
                Severity::Warning,
                SchemaProblemKind::LeaseIdMismatch { id },
            );
        }
    }

    pub(super) fn alarm_entry(&mut self, e: &LeafElem<'_>) {
        let b = buckets::ALARM;
        // The key is the record; the value is ignored.
        let Some(fields) = self.decode_record(
            b,
            e.key,
            e.key,
            Decoding {
                schema: &gogo::ALARM_MEMBER,
                message: "etcdserverpb.AlarmMember",
                severity: Severity::Error,
                effect: "etcd exits at boot restoring its alarms",
            },
        ) else {
            return;
        };
        let last = |want: i32| {
            fields.iter().rev().find_map(|(n, v)| match (n, v) {
                (n, Value::Varint(x)) if *n == want => Some(*x),
                _ => None,
            })
        };
        let (member, alarm) = (last(1).unwrap_or(0), last(2).unwrap_or(0));
        if alarm != 0 {
            self.problem(
                b,
                e.key,
                Severity::Warning,
                SchemaProblemKind::ActiveAlarm { member, alarm },
            );
        }
    }

    pub(super) fn auth_entry(&mut self, e: &LeafElem<'_>) {
        let b = buckets::AUTH;
        let v = value(e);
        if e.key == AUTH_REVISION {
            if v.len() < 8 {
                self.malformed(
                    b,
                    e,
                    Severity::Error,
                    "expected 8 bytes",
                    "etcd panics at boot reading the auth revision",
                );
            } else if v.len() > 8 {
                self.malformed(
                    b,
                    e,
                    Severity::Warning,
                    "expected 8 bytes",
                    "etcd reads the first 8",
                );
            }
        } else if e.key == AUTH_ENABLED {
            if v != [1] && v != [0] {
                self.malformed(
                    b,
                    e,
                    Severity::Warning,
                    "expected 0x01 or 0x00",
                    "etcd treats authentication as disabled",
                );
            }
        } else {
            self.nested(b, e);
        }
    }

    pub(super) fn auth_record_entry(&mut self, bucket: &[u8], e: &LeafElem<'_>) {
        self.nested(bucket, e);
        let (schema, message, effect) = if bucket == buckets::AUTH_USERS {
            (
                &gogo::USER,
                "authpb.User",
                "etcd panics on `user list`, `user get` and authentication",
            )
        } else {
            (
                &gogo::ROLE,
                "authpb.Role",
                "etcd panics on `role list`, `role get` and permission checks",
            )
        };
        let Some(fields) = self.decode_record(
            bucket,
            e.key,
            value(e),
            Decoding {
                schema,
                message,
                severity: Severity::Error,
                effect,
            },
        ) else {
            return;
        };
        let name = fields
            .iter()
            .rev()
            .find_map(|(n, v)| match (n, v) {
                (1, Value::Bytes(x)) => Some(*x),
                _ => None,
            })
            .unwrap_or(&[]);
        if !e.is_bucket() && name != e.key {
            self.problem(
                bucket,
                e.key,
                Severity::Warning,
                SchemaProblemKind::NameMismatch {
                    name: Clipped::new(name),
                },
            );
        }
    }

    pub(super) fn cluster_entry(&mut self, e: &LeafElem<'_>) {
        let b = buckets::CLUSTER;
        let v = value(e);
        if e.key == CLUSTER_VERSION {
            if !go_semver_ok(v) {
                let (severity, effect) = if self.target >= TargetVersion::V3_6 {
                    (
                        Severity::Error,
                        "etcd 3.6 and later panic at boot parsing it",
                    )
                } else {
                    (
                        Severity::Warning,
                        "etcd 3.4 and 3.5 do not read it; 3.6 panics on it",
                    )
                };
                self.malformed(b, e, severity, "not a version", effect);
            }
        } else if e.key == DOWNGRADE {
            let checked =
                go_json_struct_value(v, "DowngradeInfo", &DOWNGRADE_FIELDS).and_then(|j| {
                    // Go matches field names case-insensitively.
                    let get = |name: &str| {
                        j.as_object().and_then(|o| {
                            o.get(name).or_else(|| {
                                o.iter()
                                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                    .map(|(_, v)| v)
                            })
                        })
                    };
                    let enabled = get("enabled").and_then(serde_json::Value::as_bool);
                    let target = get("target-version")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    if enabled == Some(true) && !go_semver_ok(target.as_bytes()) {
                        // The version is named by its first bytes only.
                        let shown = Clipped::new(target.as_bytes());
                        Err(format!(
                            "downgrade enabled with target version {:?}{}, which is not a version",
                            String::from_utf8_lossy(&shown),
                            shown.suffix()
                        ))
                    } else {
                        Ok(())
                    }
                });
            if let Err(error) = checked {
                let (severity, effect) = if self.target == TargetVersion::V3_4 {
                    (Severity::Warning, "etcd 3.4 does not read it")
                } else {
                    (Severity::Error, "etcd panics at boot decoding it")
                };
                self.problem_with(b, e.key, severity, || SchemaProblemKind::BadJson {
                    value: Clipped::new(v),
                    error,
                    effect,
                });
            }
        } else {
            self.nested(b, e);
        }
    }
}
