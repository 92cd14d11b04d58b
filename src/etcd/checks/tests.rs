//! Each rule on a database built here, for each target where it differs.

use super::*;
use crate::bolt::Db;
use crate::bolt::check::{WalkOptions, walk};
use crate::bolt::tx::{self, BucketChanges, WriteOptions};
use crate::etcd::revision::Revision;

type Records<'r> = &'r [(&'r [u8], &'r [(&'r [u8], &'r [u8])])];

/// A database with `key` (one sound revision) and `meta` (a consistent
/// index), plus `records`, checked for `target`.
fn findings(target: TargetVersion, records: Records<'_>) -> SchemaFindings {
    let mut img = tx::new_image(4096);
    let mut ch = BucketChanges::new();
    let kv = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar".to_vec();
    ch.bucket(buckets::KEY.to_vec())
        .put(Revision { main: 2, sub: 0 }.encode().to_vec(), kv);
    ch.bucket(buckets::META.to_vec()).put(
        super::super::meta::CONSISTENT_INDEX.to_vec(),
        7u64.to_be_bytes().to_vec(),
    );
    for (bucket, entries) in records {
        let b = ch.bucket(bucket.to_vec());
        for (k, v) in *entries {
            b.put(k.to_vec(), v.to_vec());
        }
    }
    let db = Db::open(&img).expect("open");
    tx::plan(db, &ch, WriteOptions::default())
        .expect("plan")
        .apply_to(&mut img);
    let db = Db::open(&img).expect("reopen");
    let opts = WalkOptions::default().with_threads(1);
    let (report, checks) = walk(db, SchemaChecks::for_target(target), &opts);
    assert!(report.is_ok(), "{:?}", report.problems);
    checks.finish_report()
}

/// The one problem found, with its severity.
fn one(target: TargetVersion, records: Records<'_>) -> (Severity, SchemaProblemKind, String) {
    let f = findings(target, records);
    assert_eq!(f.problems.len(), 1, "{:#?}", f.problems);
    let p = &f.problems[0];
    (p.severity, p.kind.clone(), p.to_string())
}

fn severity(target: TargetVersion, records: Records<'_>) -> Severity {
    one(target, records).0
}

const V34: TargetVersion = TargetVersion::V3_4;
const V35: TargetVersion = TargetVersion::V3_5;
const V36: TargetVersion = TargetVersion::V3_6;

#[test]
fn sound_records_pass() {
    let user = b"\x0a\x05alice\x12\x03pw!\x1a\x04root";
    let role = b"\x0a\x06reader\x12\x0a\x08\x00\x12\x04app/\x1a\x00";
    let lease = b"\x08\x05\x10\x3c";
    let alarm_none = b"\x08\x01";
    let f = findings(
        V36,
        &[
            (
                b"auth",
                &[
                    (b"authRevision", &[0, 0, 0, 0, 0, 0, 0, 3]),
                    (b"authEnabled", &[1]),
                ],
            ),
            (b"authUsers", &[(b"alice", user)]),
            (b"authRoles", &[(b"reader", role)]),
            (b"lease", &[(&5i64.to_be_bytes(), lease)]),
            (b"alarm", &[(alarm_none, b"")]),
            (
                b"cluster",
                &[
                    (b"clusterVersion", b"3.5.0"),
                    (b"downgrade", br#"{"target-version":"","enabled":false}"#),
                ],
            ),
            (
                b"meta",
                &[(b"confState", br#"{"voters":[1],"auto_leave":false}"#)],
            ),
            (
                b"members",
                &[(b"1", br#"{"id":1,"peerURLs":["http://127.0.0.1:2380"]}"#)],
            ),
            (b"members_removed", &[(b"2", b"removed")]),
        ],
    );
    assert!(f.problems.is_empty(), "{:#?}", f.problems);
}

#[test]
fn auth_revision_shorter_than_8_bytes_panics_etcd() {
    let (s, _, text) = one(V35, &[(b"auth", &[(b"authRevision", b"\x01\x02\x03")])]);
    assert_eq!(s, Severity::Error);
    assert!(text.contains("panics at boot"), "{text}");
    // Longer: etcd reads the first 8 bytes.
    assert_eq!(
        severity(V35, &[(b"auth", &[(b"authRevision", &[0; 9])])]),
        Severity::Warning
    );
    assert_eq!(
        severity(V35, &[(b"auth", &[(b"authEnabled", b"true")])]),
        Severity::Warning
    );
}

#[test]
fn alarm_keys_must_be_alarm_members() {
    let (s, kind, text) = one(V35, &[(b"alarm", &[(b"\x08", b"")])]);
    assert_eq!(s, Severity::Error);
    assert!(matches!(kind, SchemaProblemKind::Undecodable { .. }));
    assert!(
        text.contains("etcdserverpb.AlarmMember: unexpected EOF"),
        "{text}"
    );
    let (s, kind, _) = one(V35, &[(b"alarm", &[(b"\x08\x07\x10\x01", b"")])]);
    assert_eq!(s, Severity::Warning);
    assert_eq!(
        kind,
        SchemaProblemKind::ActiveAlarm {
            member: 7,
            alarm: 1
        }
    );
}

#[test]
fn users_and_roles_must_decode() {
    let (s, _, text) = one(V35, &[(b"authUsers", &[(b"bob", b"\x0a\x09bob")])]);
    assert_eq!(s, Severity::Error);
    assert!(text.contains("authpb.User: unexpected EOF"), "{text}");
    let (s, _, text) = one(V35, &[(b"authRoles", &[(b"r", b"\x12\x02\x08\xff")])]);
    assert_eq!(s, Severity::Error);
    assert!(text.contains("authpb.Role"), "{text}");
    let (s, kind, _) = one(V35, &[(b"authUsers", &[(b"bob", b"\x0a\x03eve")])]);
    assert_eq!(s, Severity::Warning);
    assert!(matches!(kind, SchemaProblemKind::NameMismatch { .. }));
}

#[test]
fn leases_in_etcds_range_must_decode() {
    let k5 = 5i64.to_be_bytes();
    assert_eq!(
        severity(V35, &[(b"lease", &[(&k5, b"\x08")])]),
        Severity::Error
    );
    // Negative IDs are beyond the lessor's scan.
    let neg = (-5i64).to_be_bytes();
    assert_eq!(
        severity(V35, &[(b"lease", &[(&neg, b"\x08")])]),
        Severity::Warning
    );
    let (s, kind, _) = one(V35, &[(b"lease", &[(&k5, b"\x08\x06")])]);
    assert_eq!(s, Severity::Warning);
    assert_eq!(kind, SchemaProblemKind::LeaseIdMismatch { id: 6 });
}

#[test]
fn meta_values() {
    assert_eq!(
        severity(V35, &[(b"meta", &[(b"scheduledCompactRev", b"\x00\x01")])]),
        Severity::Error
    );
    let long = Revision { main: 1, sub: 0 }.encode();
    let mut long = long.to_vec();
    long.push(b'x');
    assert_eq!(
        severity(V35, &[(b"meta", &[(b"finishedCompactRev", &long)])]),
        Severity::Warning
    );
    // Restore rewrites the consistent index.
    assert_eq!(
        severity(V35, &[(b"meta", &[(b"consistent_index", b"\x01")])]),
        Severity::Warning
    );
    // confState: read by etcd 3.6 only, and only without a storageVersion.
    let bad = |t| severity(t, &[(b"meta", &[(b"confState", br#"{"voters":"1"}"#)])]);
    assert_eq!(bad(V35), Severity::Warning);
    assert_eq!(bad(V36), Severity::Error);
    let f = findings(
        V36,
        &[(
            b"meta",
            &[
                (b"confState", br#"{"voters":"1"}"#),
                (b"storageVersion", b"3.6.0"),
            ],
        )],
    );
    assert!(f.is_ok(), "{:#?}", f.problems);
}

#[test]
fn cluster_values_by_target() {
    let bad_version = |t| severity(t, &[(b"cluster", &[(b"clusterVersion", b"3.5")])]);
    assert_eq!(bad_version(V35), Severity::Warning);
    assert_eq!(bad_version(V36), Severity::Error);
    let bad = |t| {
        severity(
            t,
            &[(b"cluster", &[(b"downgrade", br#"{"enabled":"yes"}"#)])],
        )
    };
    assert_eq!(bad(V34), Severity::Warning);
    assert_eq!(bad(V35), Severity::Error);
    let no_target = br#"{"enabled":true,"target-version":"3.4"}"#;
    assert_eq!(
        severity(V35, &[(b"cluster", &[(b"downgrade", no_target)])]),
        Severity::Error
    );
}

#[test]
fn members_are_only_warnings() {
    let (s, _, text) = one(V35, &[(b"members", &[(b"zz", b"{")])]);
    assert_eq!(s, Severity::Warning);
    assert!(text.contains("restore replaces this bucket"), "{text}");
    let (s, _, text) = one(V34, &[(b"members", &[(b"1a", b"{")])]);
    assert_eq!(s, Severity::Warning);
    assert!(text.contains("etcd 3.4"), "{text}");
}

#[test]
fn key_bucket_rules() {
    // A short key inside etcd's scan range makes bytesToRev panic.
    assert_eq!(
        severity(
            V35,
            &[(b"key", &[(b"\x00\x00\x00\x00\x00\x00\x00\x05", b"")])]
        ),
        Severity::Error
    );
    // Beyond the scan range (a negative main revision): skipped.
    assert_eq!(
        severity(V35, &[(b"key", &[(b"\x80", b"")])]),
        Severity::Warning
    );
    // A value that does not decode: etcd exits at boot.
    let rev3 = Revision { main: 3, sub: 0 }.encode();
    let (s, _, text) = one(V35, &[(b"key", &[(&rev3, b"\x0a\x05a")])]);
    assert_eq!(s, Severity::Error);
    assert!(text.contains("mvccpb.KeyValue: unexpected EOF"), "{text}");
    // Fields that disagree with the revision: etcd serves them as stored.
    let kv = b"\x0a\x01a\x10\x03\x18\x09\x20\x01";
    assert_eq!(
        severity(V35, &[(b"key", &[(&rev3, kv)])]),
        Severity::Warning
    );
    // The same key live and deleted at one revision: the index panics.
    let mut tomb = rev3.to_vec();
    tomb.push(b't');
    let live = b"\x0a\x01a\x10\x03\x18\x03\x20\x01";
    let f = findings(V35, &[(b"key", &[(&rev3, live), (&tomb, b"\x0a\x01a")])]);
    assert_eq!(f.problems.len(), 1, "{:#?}", f.problems);
    assert_eq!(
        f.problems[0].kind,
        SchemaProblemKind::DuplicateRevision { same_key: true }
    );
    assert!(!f.is_ok());
    let f = findings(V35, &[(b"key", &[(&rev3, live), (&tomb, b"\x0a\x01b")])]);
    assert!(f.is_ok(), "{:#?}", f.problems);
    assert_eq!(f.problems.len(), 1);
}

#[test]
fn a_missing_key_bucket_is_a_warning() {
    let img = tx::new_image(4096);
    let db = Db::open(&img).expect("open");
    let (report, checks) = walk(db, SchemaChecks::default(), &WalkOptions::default());
    assert!(report.is_ok());
    let f = checks.finish_report();
    assert!(f.is_ok(), "{:#?}", f.problems);
    assert_eq!(f.warnings().count(), 2);
}

#[test]
fn problems_past_the_limit_are_counted_not_built() {
    let mut ch = SchemaChecks::default();
    for _ in 0..MAX_SCHEMA_PROBLEMS {
        ch.problem(
            buckets::META,
            b"k",
            Severity::Warning,
            SchemaProblemKind::NestedBucket,
        );
    }
    ch.problem_with(buckets::META, b"k", Severity::Error, || {
        unreachable!("a problem past the limit is built")
    });
    let f = ch.finish_incomplete();
    assert_eq!(
        (f.problems.len(), f.omitted, f.omitted_errors),
        (MAX_SCHEMA_PROBLEMS, 1, 1)
    );
}
