//! `etcdsnap snapshot compact` against real etcd 3.5.1 and 3.4.23.
//!
//! A snapshot with history, deletions, leases and an earlier compaction is
//! taken from a live etcd. For several revisions R, etcd itself is booted
//! on it (restored by etcdutl) and runs `etcdctl compact R --physical` and
//! `etcdctl defrag`; etcdsnap compacts the same snapshot at R, and a second
//! etcd is booted on that. Both must give the same `get` answers at every
//! revision from R to the latest, the same `endpoint hashkv --rev` values,
//! and refuse reads below R with etcd's error. With 3.4.23 the snapshot
//! is saved, restored (by its etcdctl), compacted and booted by 3.4.23
//! throughout, and etcdsnap reads it with the target version it detects.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::tools::{EtcdBins, EtcdVersion};
use support::{cli, oracles, require_tool, tools};

const TOKEN: &str = "etcdsnap-compact";

struct History {
    _dir: tempfile::TempDir,
    snapshot: PathBuf,
    /// The compaction done before the snapshot.
    earlier: i64,
    current: i64,
}

fn rev_of(ctl: &Etcdctl) -> i64 {
    ctl.json(&["get", "no-such-key"])["header"]["revision"]
        .as_i64()
        .expect("revision")
}

/// Puts, overwrites, deletes (single and ranges), leased keys, a
/// compaction, more changes, a deletion as the very last change.
fn make_history(bins: &EtcdBins) -> History {
    let cluster = EtcdCluster::single(bins);
    let ctl = cluster.ctl();
    for round in 0..4 {
        for k in 0..6 {
            ctl.put(&format!("k{k}"), &format!("v{k}-{round}"));
        }
        ctl.ok(&["del", &format!("k{round}")]);
    }
    let lease = ctl.ok(&["lease", "grant", "3600"]);
    let id = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_owned();
    ctl.ok(&["put", "--lease", &id, "leased/a", "1"]);
    ctl.ok(&["put", "--lease", &id, "leased/b", "2"]);
    let earlier = rev_of(&ctl) - 3;
    ctl.ok(&["compact", &earlier.to_string(), "--physical"]);
    for k in 0..6 {
        ctl.put(&format!("k{k}"), &format!("after-{k}"));
        if k % 2 == 0 {
            ctl.ok(&["del", &format!("k{k}")]);
        }
    }
    ctl.put("leased/a", "3");
    ctl.ok(&["del", "k", "--prefix"]);
    ctl.put("z", "last-put");
    ctl.ok(&["del", "z"]);
    let current = rev_of(&ctl);
    let dir = tempfile::tempdir().expect("tmp");
    let snapshot = dir.path().join("history.db");
    cluster
        .ctl_member(0)
        .snapshot_save(&snapshot)
        .expect_success("snapshot save");
    History {
        _dir: dir,
        snapshot,
        earlier,
        current,
    }
}

/// A one-member etcd booted on `snapshot` restored by etcdutl.
fn boot(bins: &EtcdBins, snapshot: &Path) -> EtcdCluster {
    let spec = ClusterSpec::new(bins, 1).token(TOKEN);
    let m = &spec.members[0];
    let out = oracles::run_restore(
        bins,
        snapshot,
        &[
            "--data-dir",
            cli::s(&m.data_dir),
            "--name",
            &m.name.clone(),
            "--initial-cluster",
            &spec.initial_cluster(),
            "--initial-advertise-peer-urls",
            &m.peer_url(),
            "--initial-cluster-token",
            TOKEN,
        ],
    );
    out.expect_success("etcdutl snapshot restore");
    spec.start()
}

/// What etcd answers at each revision from `from` to `to`: the `get ""
/// --prefix` kvs and count, and `endpoint hashkv --rev` hash and compact
/// revision.
fn answers(ctl: &Etcdctl, from: i64, to: i64) -> Vec<(i64, Value, Value, Value, Value)> {
    (from..=to)
        .map(|rev| {
            let r = rev.to_string();
            let get = ctl.json(&["get", "", "--prefix", "--rev", &r]);
            // etcd refuses a hash at the compacted revision itself: the
            // refusal is part of the answer.
            let hk = ctl.run(&["-w", "json", "endpoint", "hashkv", "--rev", &r]);
            let (hash, compact) = if hk.success() {
                let v: Value = serde_json::from_str(hk.stdout.trim()).expect("hashkv json");
                let hk = &v[0]["HashKV"];
                (hk["hash"].clone(), hk["compact_revision"].clone())
            } else {
                let refused = hk.stderr.contains("required revision has been compacted");
                assert!(refused, "hashkv at {rev}: {}", hk.stderr);
                (Value::from("compacted"), Value::Null)
            };
            (rev, get["kvs"].clone(), get["count"].clone(), hash, compact)
        })
        .collect()
}

/// Every entry of a top-level bucket.
fn bucket(file: &Path, name: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snap = etcdsnap::Snapshot::open(file).expect("open");
    let db = snap.db().expect("db");
    let b = db.root().bucket(name).expect("bucket").expect("exists");
    b.iter()
        .map(|e| e.map(|e| (e.key.to_vec(), e.value.to_vec())))
        .collect::<Result<_, _>>()
        .expect("entries")
}

fn assert_compacted_below(ctl: &Etcdctl, rev: i64) {
    let out = ctl.run(&["get", "", "--prefix", "--rev", &(rev - 1).to_string()]);
    assert!(
        !out.success() && out.stderr.contains("required revision has been compacted"),
        "get at {}: {}{}",
        rev - 1,
        out.stdout,
        out.stderr
    );
}

#[test]
fn compact_matches_etcd_compact_and_defrag() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    compact_matches(&bins);
}

#[test]
fn compact_matches_etcd_34_compact_and_defrag() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V34));
    require_tool!(tools::boltcheck());
    // etcdutl 3.5.1 reads what 3.4 writes: the status check below.
    require_tool!(tools::etcdutl35());
    compact_matches(&bins);
}

/// The differential test of the module documentation, with `bins`.
fn compact_matches(bins: &EtcdBins) {
    let h = make_history(bins);
    let dir = tempfile::tempdir().expect("tmp");
    let mid = (h.earlier + h.current) / 2;
    for rev in [h.earlier + 1, mid, h.current] {
        // etcd's own compaction and defragmentation.
        let theirs = boot(bins, &h.snapshot);
        let tctl = theirs.ctl();
        tctl.ok(&["compact", &rev.to_string(), "--physical"]);
        tctl.ok(&["defrag"]);
        let want = answers(&tctl, rev, h.current);
        assert_compacted_below(&tctl, rev);
        let saved = dir.path().join(format!("etcd-compacted-{rev}.db"));
        theirs
            .ctl_member(0)
            .snapshot_save(&saved)
            .expect_success("snapshot save");

        // etcdsnap's, booted.
        let out = dir.path().join(format!("compacted-{rev}.db"));
        let mut args = vec!["snapshot", "compact", cli::s(&h.snapshot), cli::s(&out)];
        let r = rev.to_string();
        if rev != h.current {
            args.extend(["--revision", &r]);
        }
        let summary = cli::ok(&args);
        assert!(
            summary.contains(&format!("compacted at revision {rev}")),
            "{summary}"
        );
        let ours = boot(bins, &out);
        let octl = ours.ctl();
        let got = answers(&octl, rev, h.current);
        assert_eq!(got, want, "compaction at {rev}");
        assert_compacted_below(&octl, rev);
        // The revisions kept are exactly the ones etcd kept.
        assert_eq!(
            bucket(&out, b"key"),
            bucket(&saved, b"key"),
            "key bucket at {rev}"
        );
        let meta = bucket(&out, b"meta");
        let rev_key = |r: i64| {
            let mut k = r.to_be_bytes().to_vec();
            k.push(b'_');
            k.extend_from_slice(&0i64.to_be_bytes());
            k
        };
        for name in [&b"scheduledCompactRev"[..], b"finishedCompactRev"] {
            let v = meta.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            assert_eq!(
                v,
                Some(rev_key(rev)),
                "meta {}",
                String::from_utf8_lossy(name)
            );
        }
        // etcdsnap's own reader agrees on the compacted revision.
        let below = cli::run(&["get", cli::s(&out), "k1", "--rev", &(rev - 1).to_string()]);
        assert!(
            String::from_utf8_lossy(&below.stderr).contains("required revision has been compacted"),
            "{below:?}"
        );
        let check = oracles::run_boltcheck_snapshot("check", &out);
        assert!(
            check.success() && check.stdout.contains("OK"),
            "{}",
            check.stdout
        );
        let status = oracles::run_etcdutl_status(&out, "json");
        status.expect_success("etcdutl snapshot status");
        // The release's own snapshot tool reads it too (etcdctl for 3.4).
        let mut own = bins.snapshot_tool_cmd();
        own.args(["snapshot", "status", "-w", "json", cli::s(&out)]);
        support::cmd::run(&mut own, std::time::Duration::from_secs(60))
            .expect_success("snapshot status of the release");
        // A compaction at R is never larger than a defrag alone.
        let defragged = dir.path().join("defrag.db");
        cli::ok(&[
            "snapshot",
            "defrag",
            cli::s(&h.snapshot),
            cli::s(&defragged),
        ]);
        let len = |p: &Path| std::fs::metadata(p).expect("stat").len();
        assert!(len(&out) <= len(&defragged));
    }
}

#[test]
fn revisions_etcd_refuses_are_refused_with_its_words() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let h = make_history(&bins);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("never.db");
    for (rev, words) in [
        (h.earlier, "required revision has been compacted"),
        (h.earlier - 1, "required revision has been compacted"),
        (h.current + 1, "required revision is a future revision"),
    ] {
        let (code, err) = cli::err(&[
            "snapshot",
            "compact",
            cli::s(&h.snapshot),
            cli::s(&out),
            "--revision",
            &rev.to_string(),
        ]);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err.trim(), format!("Error: etcdserver: mvcc: {words}"));
        assert!(!out.exists());
    }
    // What etcd itself says to the same requests.
    let etcd = boot(&bins, &h.snapshot);
    let o = etcd.ctl().run(&["compact", &h.earlier.to_string()]);
    assert!(
        o.stderr.contains("required revision has been compacted"),
        "{}",
        o.stderr
    );
    let o = etcd.ctl().run(&["compact", &(h.current + 1).to_string()]);
    assert!(
        o.stderr.contains("required revision is a future revision"),
        "{}",
        o.stderr
    );
}
