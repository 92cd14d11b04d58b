//! `apply_changes` (point-in-time restore) against a real etcd 3.5.1.
//!
//! A member is written to, `etcdctl snapshot save` takes the base at
//! revision A, then a workload runs (puts, overwrites, single and range
//! deletes, multi-operation transactions, leases granted, attached,
//! revoked and left to expire, an `etcdctl compact` in the middle) while
//! `etcdctl watch --rev A+1 -w json` records it in the background. After
//! every operation the test records what etcd answers at that revision
//! (`get "" --prefix -w json`, `endpoint hashkv --rev R`, `lease list`).
//! The watch's events become three `ChangeSegment`s (leases taken at the
//! boundaries as `lease list`/`timetolive` give them, the compaction as a
//! `CompactionRecord`), and for EVERY revision from A to the end the base
//! brought to R must answer `etcdsnap get` as etcd answered, hash as etcd
//! hashed, hold the leases etcd held, pass bbolt's own checker and
//! `snapshot verify`; for a few R the result is restored and booted, and
//! the booted etcd answers the same. Also: random event sequences applied
//! in one segment or several give the same `key` bucket and pass the
//! checker, and the refusals (below the base, beyond the chain, holes,
//! overlaps, inconsistent events) with nothing written.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use etcdsnap::etcd::KeyValue;
use etcdsnap::etcd::change::{
    ChangeSegment, CompactionRecord, EventKind, KeyEvent, LeaseRecord, RevisionChanges,
};
use etcdsnap::{
    ApplyOptions, ChangeError, Location, PointInTime, RewriteError, Snapshot, TargetVersion,
    apply_changes,
};
use serde_json::Value;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::tools::{EtcdBins, EtcdVersion};
use support::{b64, cli, fixtures, oracles, require_tool, tools};

const TOKEN: &str = "etcdsnap-apply-changes";

/// Synthetic observation time of a revision (seconds after the epoch), so
/// that `--to-time` has something exact to resolve.
fn observed(rev: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(rev as u64 * 10)
}

fn apply_to(
    base: &Path,
    segs: &[ChangeSegment],
    to: PointInTime,
    out: &Path,
) -> etcdsnap::ApplySummary {
    let src = Snapshot::open(base).expect("base snapshot");
    let loc = Location::parse(cli::s(out)).expect("location");
    let opts = ApplyOptions::new(to).with_target(TargetVersion::V3_5);
    apply_changes(&src, segs, &loc, &opts).unwrap_or_else(|e| panic!("apply to {to:?}: {e}"))
}

fn try_apply(base: &Path, segs: &[ChangeSegment], to: i64, out: &Path) -> Result<(), RewriteError> {
    let src = Snapshot::open(base).expect("base snapshot");
    let loc = Location::parse(cli::s(out)).expect("location");
    let opts = ApplyOptions::new(PointInTime::Revision(to)).with_target(TargetVersion::V3_5);
    apply_changes(&src, segs, &loc, &opts).map(|_| ())
}

/// `kvs` of a `get -w json` answer (empty when none).
fn kvs(v: &Value) -> Value {
    v.get("kvs").cloned().unwrap_or(Value::Array(Vec::new()))
}

/// What `etcdsnap get FILE "" --prefix -w json` answers, header aside.
fn our_get(file: &Path) -> Value {
    let out = cli::ok(&["get", cli::s(file), "", "--prefix", "-w", "json"]);
    kvs(&serde_json::from_str(out.trim()).expect("our get JSON"))
}

/// `etcdsnap snapshot hashkv FILE --rev R -w json`'s hash and compact revision.
fn our_hashkv(file: &Path, rev: i64) -> (u64, i64) {
    let out = cli::ok(&[
        "snapshot",
        "hashkv",
        cli::s(file),
        "--rev",
        &rev.to_string(),
        "-w",
        "json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).expect("hashkv JSON");
    (
        v["hash"].as_u64().expect("hash"),
        v["compactRevision"].as_i64().expect("compactRevision"),
    )
}

/// `etcdctl endpoint hashkv --rev R -w json`: hash and compact revision,
/// `None` where etcd refuses (compacted).
fn live_hashkv(ctl: &Etcdctl, rev: i64) -> Option<(u64, i64)> {
    let out = ctl.run(&[
        "endpoint",
        "hashkv",
        "--rev",
        &rev.to_string(),
        "-w",
        "json",
    ]);
    if !out.success() {
        assert!(
            out.stderr.contains("compacted"),
            "hashkv --rev {rev}: {out}"
        );
        return None;
    }
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("etcdctl JSON");
    let h = &v[0]["HashKV"];
    let field = |k: &str| h.get(k).and_then(Value::as_i64).unwrap_or(0);
    Some((field("hash") as u64, field("compact_revision")))
}

fn revision(ctl: &Etcdctl) -> i64 {
    ctl.json(&["get", "no-such-key"])["header"]["revision"]
        .as_i64()
        .expect("revision")
}

/// `lease list`: the IDs alive now.
fn lease_ids(ctl: &Etcdctl) -> BTreeSet<i64> {
    let v = ctl.json(&["lease", "list"]);
    v.get("leases")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|l| l["id"].as_i64()).collect())
        .unwrap_or_default()
}

/// `lease timetolive ID`: the granted TTL, 0 once the lease is gone.
fn granted_ttl(ctl: &Etcdctl, id: i64) -> i64 {
    let v = ctl.json(&["lease", "timetolive", &format!("{id:x}")]);
    v.get("granted-ttl").and_then(Value::as_i64).unwrap_or(0)
}

fn grant(ctl: &Etcdctl, ttl: i64) -> i64 {
    ctl.json(&["lease", "grant", &ttl.to_string()])["ID"]
        .as_i64()
        .expect("lease ID")
}

/// `etcdctl txn` with `ops` as the success branch (no compare).
fn txn(ctl: &Etcdctl, ops: &[&str]) {
    let mut c = ctl.command(&["txn"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("etcdctl txn");
    let mut input = String::from("\n");
    for op in ops {
        input.push_str(op);
        input.push('\n');
    }
    input.push_str("\n\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write txn");
    let out = child.wait_with_output().expect("txn output");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("SUCCESS"),
        "txn {ops:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The background `etcdctl watch`, stopped (by its pid) when dropped.
struct Watch {
    child: Child,
    out: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(ctl: &Etcdctl, from: i64, out: PathBuf) -> Watch {
        let f = std::fs::File::create(&out).expect("watch output");
        let mut c = ctl.command(&[
            "watch",
            "--rev",
            &from.to_string(),
            "--prefix",
            "",
            "-w",
            "json",
        ]);
        c.stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::null());
        Watch {
            child: c.spawn().expect("etcdctl watch"),
            out,
        }
    }

    /// Every event printed so far, by revision, once the watch has
    /// printed revision `upto`.
    fn events_upto(&self, upto: i64) -> BTreeMap<i64, Vec<KeyEvent>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let revs = parse_watch(&self.out);
            if revs.keys().next_back().is_some_and(|&r| r >= upto) {
                return revs;
            }
            assert!(Instant::now() < deadline, "the watch never reached {upto}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The events of `etcdctl watch -w json` (one WatchResponse per line).
fn parse_watch(path: &Path) -> BTreeMap<i64, Vec<KeyEvent>> {
    let mut revs: BTreeMap<i64, Vec<KeyEvent>> = BTreeMap::new();
    let f = std::fs::File::open(path).expect("watch output");
    for line in std::io::BufReader::new(f).lines() {
        let line = line.expect("line");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue; // a line still being written
        };
        for e in v["Events"].as_array().into_iter().flatten() {
            let kv = &e["kv"];
            let int = |k: &str| kv.get(k).and_then(Value::as_i64).unwrap_or(0);
            let bytes = |k: &str| {
                kv.get(k)
                    .and_then(Value::as_str)
                    .map(|s| b64::decode(s).expect("base64"))
                    .unwrap_or_default()
            };
            let kind = if e.get("type").and_then(Value::as_i64) == Some(1) {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            let kv = KeyValue {
                key: bytes("key"),
                create_revision: int("create_revision"),
                mod_revision: int("mod_revision"),
                version: int("version"),
                value: bytes("value"),
                lease: int("lease"),
            };
            revs.entry(kv.mod_revision)
                .or_default()
                .push(KeyEvent { kind, kv });
        }
    }
    revs
}

/// What etcd answered right after the operation that made a revision.
struct Live {
    kvs: Value,
    hash: (u64, i64),
    leases: BTreeSet<i64>,
}

/// A segment of the recorded events in `first..=last`, with the leases
/// alive at its end and those its puts attach (with their granted TTLs).
fn segment(
    revs: &BTreeMap<i64, Vec<KeyEvent>>,
    first: i64,
    last: i64,
    alive: &BTreeMap<i64, i64>,
    ttls: &BTreeMap<i64, i64>,
    compactions: Vec<CompactionRecord>,
) -> ChangeSegment {
    let revisions: Vec<RevisionChanges> = revs
        .range(first..=last)
        .map(|(&r, evs)| RevisionChanges {
            revision: r,
            events: evs.clone(),
            observed: observed(r),
        })
        .collect();
    let mut leases: BTreeMap<i64, LeaseRecord> = alive
        .iter()
        .map(|(&id, &ttl)| {
            (
                id,
                LeaseRecord {
                    id,
                    ttl,
                    alive_at_end: true,
                },
            )
        })
        .collect();
    for ev in revisions.iter().flat_map(|r| &r.events) {
        let id = ev.kv.lease;
        if ev.kind == EventKind::Put && id != 0 {
            leases.entry(id).or_insert(LeaseRecord {
                id,
                ttl: ttls.get(&id).copied().unwrap_or(0),
                alive_at_end: false,
            });
        }
    }
    ChangeSegment {
        first,
        last,
        revisions,
        leases: leases.into_values().collect(),
        compactions,
        sealed: observed(last) + Duration::from_secs(5),
    }
}

/// The leases alive now with their granted TTLs.
fn alive_now(ctl: &Etcdctl) -> BTreeMap<i64, i64> {
    lease_ids(ctl)
        .into_iter()
        .map(|id| (id, granted_ttl(ctl, id)))
        .collect()
}

/// Leases of a snapshot file (via the library), ID → granted TTL.
fn file_leases(file: &Path) -> BTreeMap<i64, i64> {
    let snap = Snapshot::open(file).expect("open");
    let store = etcdsnap::mvcc::Store::open(&snap).expect("store");
    store
        .leases()
        .expect("leases")
        .into_iter()
        .map(|l| (l.id, l.ttl))
        .collect()
}

#[track_caller]
fn assert_checked(file: &Path) {
    let check = oracles::run_boltcheck_snapshot("check", file);
    assert!(
        check.success() && check.stdout.contains("OK"),
        "boltcheck {}: {}{}",
        file.display(),
        check.stdout,
        check.stderr
    );
    cli::ok(&["snapshot", "verify", cli::s(file)]);
}

/// Restores `file` with etcdsnap and boots a one-member etcd on it.
fn restore_and_boot(bins: &EtcdBins, file: &Path) -> EtcdCluster {
    let spec = ClusterSpec::new(bins, 1).token(TOKEN);
    let m = &spec.members[0];
    let (ic, peer, name) = (spec.initial_cluster(), m.peer_url(), m.name.clone());
    cli::ok(&[
        "snapshot",
        "restore",
        cli::s(file),
        "--data-dir",
        cli::s(&m.data_dir),
        "--name",
        &name,
        "--initial-cluster",
        &ic,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster-token",
        TOKEN,
    ]);
    spec.start()
}

#[test]
fn every_revision_matches_what_a_live_etcd_answered() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();

    // The base: plain keys, a lease that lives on (l0) and one revoked
    // later (l1), both with keys.
    ctl.put("a", "a1");
    ctl.put("b", "b1");
    ctl.put("c", "c1");
    let l0 = grant(&ctl, 600);
    let l1 = grant(&ctl, 900);
    ctl.ok(&["put", "lk0", "v", &format!("--lease={l0:x}")]);
    ctl.ok(&["put", "lk1", "v", &format!("--lease={l1:x}")]);
    let base = dir.path().join("base.db");
    cluster
        .ctl_member(0)
        .snapshot_save(&base)
        .expect_success("snapshot save");
    let a = revision(&ctl);
    let watch = Watch::start(&ctl, a + 1, dir.path().join("watch.json"));

    let mut live: BTreeMap<i64, Live> = BTreeMap::new();
    let mut ttls: BTreeMap<i64, i64> = [(l0, 600), (l1, 900)].into();
    let record = |live: &mut BTreeMap<i64, Live>| {
        let r = revision(&ctl);
        let kvs = kvs(&ctl.json(&["get", "", "--prefix"]));
        let hash = live_hashkv(&ctl, r).expect("hash before the compaction");
        live.insert(
            r,
            Live {
                kvs,
                hash,
                leases: lease_ids(&ctl),
            },
        );
    };
    record(&mut live);

    // Segment 1: overwrites, deletes, a transaction, a range delete, a
    // lease granted and attached, a lease revoked (its key goes with it).
    ctl.put("a", "a2");
    record(&mut live);
    ctl.ok(&["del", "b"]);
    record(&mut live);
    let l2 = grant(&ctl, 1200);
    ttls.insert(l2, 1200);
    ctl.ok(&["put", "d", "d1", &format!("--lease={l2:x}")]);
    record(&mut live);
    txn(&ctl, &["put e e1", "put a a3", "del c"]);
    record(&mut live);
    ctl.put("x/1", "1");
    record(&mut live);
    ctl.put("x/2", "2");
    record(&mut live);
    ctl.ok(&["del", "x/", "--prefix"]);
    record(&mut live);
    ctl.ok(&["lease", "revoke", &format!("{l1:x}")]);
    record(&mut live);
    let b1 = revision(&ctl);
    let alive1 = alive_now(&ctl);

    // Segment 2: a short lease whose key expires with it, a key moved to
    // another lease, a transaction deleting and re-creating.
    let l3 = grant(&ctl, 4);
    ttls.insert(l3, 4);
    ctl.ok(&["put", "exp", "soon", &format!("--lease={l3:x}")]);
    record(&mut live);
    let before = revision(&ctl);
    let deadline = Instant::now() + Duration::from_secs(30);
    while revision(&ctl) == before {
        assert!(Instant::now() < deadline, "lease {l3:x} never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    record(&mut live);
    ctl.ok(&["put", "a", "a4", &format!("--lease={l2:x}")]);
    record(&mut live);
    txn(&ctl, &["del e", "put f f1", "put k k1"]);
    record(&mut live);
    let b2 = revision(&ctl);
    let alive2 = alive_now(&ctl);

    // Segment 3: writes, a compaction in the middle, writes after it.
    ctl.put("g", "g1");
    record(&mut live);
    ctl.ok(&["put", "a", "a5"]); // off its lease
    record(&mut live);
    let compact_at = a + 4;
    let seen_at = revision(&ctl);
    // hashkv before the compaction, for the revisions it is not applied at.
    let pre: BTreeMap<i64, (u64, i64)> = live.iter().map(|(&r, l)| (r, l.hash)).collect();
    ctl.ok(&["compact", &compact_at.to_string()]);
    ctl.put("h", "h1");
    record(&mut live);
    txn(&ctl, &["put i i1", "del g", "put d d2"]);
    record(&mut live);
    ctl.ok(&["del", "a", "e"]); // a range: a and d
    let end = revision(&ctl);
    record(&mut live);
    let alive3 = alive_now(&ctl);
    // hashkv after the compaction, where etcd still answers.
    let post: BTreeMap<i64, Option<(u64, i64)>> =
        (seen_at..=end).map(|r| (r, live_hashkv(&ctl, r))).collect();

    let revs = watch.events_upto(end);
    drop(watch);
    let segs = vec![
        segment(&revs, a + 1, b1, &alive1, &ttls, vec![]),
        segment(&revs, b1 + 1, b2, &alive2, &ttls, vec![]),
        segment(
            &revs,
            b2 + 1,
            end,
            &alive3,
            &ttls,
            vec![CompactionRecord {
                revision: compact_at,
                seen_at_revision: seen_at,
            }],
        ),
    ];
    assert_eq!(
        live.keys().copied().collect::<Vec<_>>(),
        (a..=end).collect::<Vec<_>>()
    );

    for (&r, want) in &live {
        let out = dir.path().join(format!("at-{r}.db"));
        let done = apply_to(&base, &segs, PointInTime::Revision(r), &out);
        assert_eq!((done.base_revision, done.revision), (a, r));
        assert_eq!(
            done.compacted,
            (r >= seen_at).then_some(compact_at),
            "at {r}"
        );
        assert_eq!(our_get(&out), want.kvs, "get at {r}");
        let hash = if r >= seen_at {
            post[&r]
        } else {
            Some(pre[&r])
        };
        if let Some(h) = hash {
            assert_eq!(our_hashkv(&out, r), h, "hashkv at {r}");
        }
        let leases = file_leases(&out);
        assert_eq!(
            leases.keys().copied().collect::<BTreeSet<_>>(),
            want.leases,
            "leases at {r}"
        );
        for (id, ttl) in &leases {
            assert_eq!(Some(ttl), ttls.get(id), "lease {id:x} at {r}");
        }
        assert_checked(&out);
    }

    // --to-time: the newest revision observed by then.
    let mid = a + 5;
    let by_time = dir.path().join("by-time.db");
    let done = apply_to(
        &base,
        &segs,
        PointInTime::Time(observed(mid) + Duration::from_secs(3)),
        &by_time,
    );
    assert_eq!(done.revision, mid);
    assert_eq!(
        std::fs::read(&by_time).expect("read"),
        std::fs::read(dir.path().join(format!("at-{mid}.db"))).expect("read")
    );

    // Booted: inside segment 1, at a boundary, and after the compaction.
    for r in [a + 3, b2, end - 1] {
        let booted = restore_and_boot(&bins, &dir.path().join(format!("at-{r}.db")));
        let bctl = booted.ctl();
        assert_eq!(bctl.all_kvs(), live[&r].kvs, "booted at {r}");
        assert_eq!(revision(&bctl), r);
        assert_eq!(lease_ids(&bctl), live[&r].leases, "booted leases at {r}");
        for id in &live[&r].leases {
            assert_eq!(granted_ttl(&bctl, *id), ttls[id], "booted lease {id:x}");
        }
    }
}

// ---------------------------------------------------------------------
// Synthetic changes on the small fixture (revision 4: `name` live, `foo`
// deleted at 3).

const FIXTURE_REV: i64 = 4;

fn put(rev: i64, key: &str, create: i64, version: i64, lease: i64) -> KeyEvent {
    KeyEvent {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key.into(),
            create_revision: create,
            mod_revision: rev,
            version,
            value: format!("{key}@{rev}").into_bytes(),
            lease,
        },
    }
}

fn del(rev: i64, key: &str) -> KeyEvent {
    KeyEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: key.into(),
            mod_revision: rev,
            ..KeyValue::default()
        },
    }
}

fn seg(first: i64, last: i64, revisions: Vec<(i64, Vec<KeyEvent>)>) -> ChangeSegment {
    ChangeSegment {
        first,
        last,
        revisions: revisions
            .into_iter()
            .map(|(revision, events)| RevisionChanges {
                revision,
                events,
                observed: observed(revision),
            })
            .collect(),
        leases: vec![],
        compactions: vec![],
        sealed: observed(last),
    }
}

/// A sound two-segment chain on the fixture: revisions 5..=7.
fn sound_chain() -> Vec<ChangeSegment> {
    vec![
        seg(
            5,
            6,
            vec![
                (5, vec![put(5, "k", 5, 1, 0)]),
                (6, vec![put(6, "k", 5, 2, 0), del(6, "name")]),
            ],
        ),
        seg(7, 7, vec![(7, vec![del(7, "k")])]),
    ]
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let base = fixtures::snapshot("small-v35.db");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.db");
    let err = |segs: &[ChangeSegment], to: i64| -> ChangeError {
        let e = try_apply(&base, segs, to, &out).expect_err("refused");
        assert!(!out.exists(), "{e}: something was written");
        match e {
            RewriteError::Changes(c) => c,
            other => panic!("not a change error: {other}"),
        }
    };
    let chain = sound_chain();
    // The sound chain applies at every revision it covers.
    for r in FIXTURE_REV..=7 {
        try_apply(&base, &chain, r, &dir.path().join(format!("ok-{r}.db"))).expect("sound");
    }
    let e = err(&chain, 3);
    assert_eq!(
        e,
        ChangeError::BelowBase {
            requested: 3,
            base: 4
        }
    );
    assert_eq!(
        e.to_string(),
        "revision 3 is below the base snapshot's revision 4 (restore from an older full snapshot)"
    );
    let e = err(&chain, 8);
    assert_eq!(
        e.to_string(),
        "revision 8 is beyond the last recorded revision 7"
    );
    assert_eq!(
        err(&[], 5),
        ChangeError::BeyondLast {
            requested: 5,
            last: 4
        }
    );

    let mut hole = chain.clone();
    hole[1] = seg(8, 8, vec![(8, vec![del(8, "k")])]);
    let e = err(&hole, 6);
    assert_eq!(
        e,
        ChangeError::Hole {
            segment: 1,
            first: 8,
            expected: 7
        }
    );
    assert_eq!(
        e.to_string(),
        "recorded changes have a hole: segment 1 starts at revision 8, revisions from 7 are missing"
    );
    assert!(matches!(
        err(&chain[1..], 7),
        ChangeError::Hole {
            segment: 0,
            first: 7,
            expected: 5
        }
    ));
    let mut overlap = chain.clone();
    overlap[1] = seg(6, 7, vec![(7, vec![del(7, "k")])]);
    let e = err(&overlap, 7);
    assert_eq!(
        e,
        ChangeError::Overlap {
            segment: 1,
            first: 6,
            expected: 7
        }
    );
    assert_eq!(
        e.to_string(),
        "recorded changes overlap: segment 1 starts at revision 6, but the chain already covers the revisions before 7"
    );
    assert!(matches!(
        err(&[seg(4, 5, vec![])], 5),
        ChangeError::Overlap { segment: 0, .. }
    ));

    // Inconsistent segments: each case and the words that say why.
    let bad = |revisions: Vec<(i64, Vec<KeyEvent>)>, what: &str| {
        let e = err(&[seg(5, 7, revisions)], 5);
        let ChangeError::Inconsistent {
            segment: 0,
            first: 5,
            last: 7,
            what: got,
        } = &e
        else {
            panic!("{e:?}");
        };
        assert!(got.contains(what), "{got:?} lacks {what:?}");
        assert!(
            e.to_string().starts_with("segment 0 (revisions 5 to 7): "),
            "{e}"
        );
    };
    bad(
        vec![
            (6, vec![put(6, "k", 6, 1, 0)]),
            (5, vec![put(5, "j", 5, 1, 0)]),
        ],
        "revision 5 follows revision 6",
    );
    bad(
        vec![(8, vec![put(8, "k", 8, 1, 0)])],
        "revision 8 is beyond the segment",
    );
    bad(vec![(5, vec![])], "revision 5 has no event");
    bad(
        vec![(5, vec![put(6, "k", 6, 1, 0)])],
        "mod revision 6 in revision 5",
    );
    bad(
        vec![(5, vec![put(5, "k", 5, 1, 0), del(5, "k")])],
        "the key changes twice in one revision",
    );
    bad(
        vec![(5, vec![put(5, "k", 5, 2, 0)])],
        "version 1 exactly when created by this revision",
    );
    bad(
        vec![(5, vec![put(5, "k", 6, 1, 0)])],
        "a put with create revision 6 and version 1",
    );
    bad(
        vec![
            (5, vec![put(5, "k", 5, 1, 0)]),
            (6, vec![put(6, "k", 5, 3, 0)]),
        ],
        "after one with 5 and 1",
    );
    bad(
        vec![(5, vec![del(5, "k")]), (6, vec![del(6, "k")])],
        "deletes a key already deleted",
    );
    bad(
        vec![(5, vec![del(5, "k")]), (6, vec![put(6, "k", 2, 3, 0)])],
        "of a deleted key",
    );
    let mut valued = del(5, "k");
    valued.kv.value = b"v".to_vec();
    bad(
        vec![(5, vec![valued])],
        "a delete carrying more than the key",
    );
    bad(
        vec![(5, vec![put(5, "k", 5, 1, 0x42)])],
        "attaches lease 42, which the segment does not record",
    );
    bad(vec![(5, vec![put(5, "", 5, 1, 0)])], "empty key");
    let mut compacting = seg(5, 7, vec![(5, vec![put(5, "k", 5, 1, 0)])]);
    compacting.compactions = vec![CompactionRecord {
        revision: 6,
        seen_at_revision: 5,
    }];
    let e = err(&[compacting], 5);
    assert!(
        e.to_string()
            .contains("compaction at revision 6 learnt at revision 5"),
        "{e}"
    );
    let backwards = seg(5, 3, vec![]);
    assert!(
        err(&[backwards], 4)
            .to_string()
            .contains("its last revision is before its first")
    );
}

/// A live key as the model holds it: create revision, version, value, lease.
type ModelKv = (i64, i64, Vec<u8>, i64);
/// Every live key at a revision.
type ModelState = BTreeMap<String, ModelKv>;
/// Recorded revisions: each with its events.
type Recorded = Vec<(i64, Vec<KeyEvent>)>;

/// One generated operation of a revision.
#[derive(Debug, Clone)]
enum Op {
    /// Put key `k` (from the pool), on lease `lease` (0: none).
    Put { k: usize, lease: i64 },
    /// Delete key `k` if it is live.
    Del { k: usize },
}

const POOL: [&str; 6] = ["name", "foo", "k0", "k1", "k2/x", "k3"];
const LEASES: [i64; 2] = [0x10, 0x20];

/// The events etcd would deliver for the generated revisions, and the
/// state it would hold after each (key → (create, version, value, lease)).
fn simulate(txns: &[Vec<Op>]) -> (Recorded, BTreeMap<i64, ModelState>) {
    let snap = Snapshot::open(fixtures::snapshot("small-v35.db")).expect("fixture");
    let store = etcdsnap::mvcc::Store::open(&snap).expect("store");
    let mut state: ModelState = BTreeMap::new();
    let all = store
        .range(&etcdsnap::mvcc::RangeRequest::key(b"\0").with_range_end(b"\0"))
        .expect("range");
    for kv in &all.kvs {
        let k = String::from_utf8_lossy(kv.key).into_owned();
        state.insert(
            k,
            (kv.create_revision, kv.version, kv.value.to_vec(), kv.lease),
        );
    }
    let mut states = BTreeMap::from([(FIXTURE_REV, state.clone())]);
    let mut revs = Vec::new();
    let mut rev = FIXTURE_REV;
    for ops in txns {
        let r = rev + 1;
        let mut events = Vec::new();
        let mut seen = BTreeSet::new();
        for op in ops {
            let (k, is_put) = match op {
                Op::Put { k, .. } => (*k, true),
                Op::Del { k } => (*k, false),
            };
            let key = POOL[k % POOL.len()];
            if !seen.insert(key) {
                continue; // etcd refuses a key twice in one transaction
            }
            if let Op::Put { lease, .. } = op {
                let (create, version) = match state.get(key) {
                    Some((c, v, _, _)) => (*c, v + 1),
                    None => (r, 1),
                };
                let ev = put(r, key, create, version, *lease);
                state.insert(key.into(), (create, version, ev.kv.value.clone(), *lease));
                events.push(ev);
            } else if state.remove(key).is_some() {
                events.push(del(r, key));
            }
            let _ = is_put;
        }
        if events.is_empty() {
            continue; // no revision for a transaction that changed nothing
        }
        rev = r;
        revs.push((r, events));
        states.insert(r, state.clone());
    }
    (revs, states)
}

/// Splits the revisions into segments at the given cut points, each
/// recording both leases alive (they live on), and the compaction in the
/// segment covering the revision it was learnt at.
fn split(
    revs: &[(i64, Vec<KeyEvent>)],
    last: i64,
    cuts: &[i64],
    compaction: Option<CompactionRecord>,
) -> Vec<ChangeSegment> {
    let mut bounds: Vec<i64> = cuts
        .iter()
        .copied()
        .filter(|&c| c > FIXTURE_REV && c < last)
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(last);
    let mut first = FIXTURE_REV + 1;
    let mut out = Vec::new();
    for b in bounds {
        let mut s = seg(
            first,
            b,
            revs.iter()
                .filter(|(r, _)| (first..=b).contains(r))
                .cloned()
                .collect(),
        );
        s.leases = LEASES
            .iter()
            .map(|&id| LeaseRecord {
                id,
                ttl: 60,
                alive_at_end: true,
            })
            .collect();
        if let Some(c) = compaction.filter(|c| (first..=b).contains(&c.seen_at_revision)) {
            s.compactions.push(c);
        }
        out.push(s);
        first = b + 1;
    }
    out
}

/// Every entry of a bucket of a snapshot file.
fn bucket_entries(file: &Path, name: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snap = Snapshot::open(file).expect("open");
    let db = snap.db().expect("db");
    let Some(b) = db.root().bucket(name).expect("bucket") else {
        return Vec::new();
    };
    b.iter()
        .map(|e| {
            let e = e.expect("entry");
            (e.key.to_vec(), e.value.to_vec())
        })
        .collect()
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0..POOL.len(), 0..3usize).prop_map(|(k, l)| Op::Put {
            k,
            lease: if l == 0 { 0 } else { LEASES[l - 1] }
        }),
        (0..POOL.len()).prop_map(|k| Op::Del { k }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    #[test]
    fn one_segment_or_several_give_the_same_file_that_etcd_would_hold(
        txns in proptest::collection::vec(proptest::collection::vec(op_strategy(), 1..4), 1..14),
        cuts in proptest::collection::vec(5i64..20, 0..4),
        to_pick in 0usize..100,
        compact_pick in proptest::option::of((0usize..100, 0usize..100)),
    ) {
        if tools::require(tools::boltcheck()).is_none() { return Ok(()); }
        let (revs, states) = simulate(&txns);
        let last = states.keys().next_back().copied().unwrap_or(FIXTURE_REV);
        let all: Vec<i64> = states.keys().copied().collect();
        let to = all[to_pick % all.len()];
        // A compaction at a revision it could have been run at (above the
        // fixture's compaction, none), learnt at or after it.
        // (Learnt after the fixture: one learnt by then is the fixture's.)
        let compaction = compact_pick.and_then(|(c, s)| {
            let revision = all[c % all.len()];
            let later: Vec<i64> = all.iter().copied().filter(|&r| r >= revision && r > FIXTURE_REV).collect();
            (!later.is_empty()).then(|| CompactionRecord { revision, seen_at_revision: later[s % later.len()] })
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let base = fixtures::snapshot("small-v35.db");
        let one = dir.path().join("one.db");
        let many = dir.path().join("many.db");
        apply_to(&base, &split(&revs, last, &[], compaction), PointInTime::Revision(to), &one);
        apply_to(&base, &split(&revs, last, &cuts, compaction), PointInTime::Revision(to), &many);
        for name in [&b"key"[..], b"meta", b"members", b"cluster"] {
            proptest::prop_assert_eq!(bucket_entries(&one, name), bucket_entries(&many, name));
        }
        for f in [&one, &many] {
            assert_checked(f);
            // What etcd would hold at `to`: every live key, as the model says.
            let snap = Snapshot::open(f).expect("open");
            let store = etcdsnap::mvcc::Store::open(&snap).expect("store");
            proptest::prop_assert_eq!(store.revisions().current, to);
            let got: ModelState = store
                .range(&etcdsnap::mvcc::RangeRequest::key(b"\0").with_range_end(b"\0"))
                .expect("range")
                .kvs
                .iter()
                .map(|kv| (String::from_utf8_lossy(kv.key).into_owned(), (kv.create_revision, kv.version, kv.value.to_vec(), kv.lease)))
                .collect();
            proptest::prop_assert_eq!(&got, &states[&to]);
            // Every lease a live key holds is there.
            let leases = file_leases(f);
            for (_, _, _, lease) in got.values() {
                proptest::prop_assert!(*lease == 0 || leases.contains_key(lease));
            }
            // History: every revision after the compaction still readable
            // as the model had it.
            let compacted = compaction.filter(|c| c.seen_at_revision <= to).map_or(0, |c| c.revision);
            proptest::prop_assert_eq!(store.revisions().compacted, compacted);
            for (&r, want) in states.range(compacted.max(FIXTURE_REV)..=to) {
                let at: ModelState = store
                    .range(&etcdsnap::mvcc::RangeRequest::key(b"\0").with_range_end(b"\0").with_revision(r))
                    .expect("range at r")
                    .kvs
                    .iter()
                    .map(|kv| (String::from_utf8_lossy(kv.key).into_owned(), (kv.create_revision, kv.version, kv.value.to_vec(), kv.lease)))
                    .collect();
                proptest::prop_assert_eq!(&at, want, "at {}", r);
            }
        }
    }
}
