//! `etcdsnap snapshot defrag` against the real tools.
//!
//! Every fixture (recorded from etcd 3.4 to 3.7, snapshots and raw member
//! dbs) is defragmented; the result must have the `etcdutl snapshot status`
//! (3.5.1) hash, revision and key count of the original, pass Go bbolt's
//! check (boltcheck) and etcdsnap's own verify, and be no larger than what
//! `etcdutl defrag` leaves for the same db.

use crate::support;

use std::path::Path;

use support::{cli, fixtures, oracles, require_tool, tools};

const FIXTURES: &[&str] = &[
    "small-v34.db",
    "small-v35.db",
    "small-v36.db",
    "small-v37.db",
    "auth-v34.db",
    "auth-v35.db",
    "auth-v36.db",
    "auth-v37.db",
    "k8s-v34.db",
    "k8s-v35.db",
    "k8s-v36.db",
    "k8s-v37.db",
    "small-v35.member.db",
    "auth-v36.member.db",
    "k8s-v34.member.db",
];

/// `etcdutl snapshot status -w json`: (hash, revision, totalKey).
fn etcdutl_status(file: &Path) -> (u64, i64, u64) {
    let v = oracles::status_json(&oracles::run_etcdutl_status(file, "json"));
    (
        v["hash"].as_u64().expect("hash"),
        v["revision"].as_i64().expect("revision"),
        v["totalKey"].as_u64().expect("totalKey"),
    )
}

fn assert_boltcheck_ok(file: &Path) {
    let out = oracles::run_boltcheck_snapshot("check", file);
    assert!(
        out.success() && out.stdout.contains("OK"),
        "boltcheck on {}: {}{}",
        file.display(),
        out.stdout,
        out.stderr
    );
}

#[test]
fn every_fixture_keeps_its_status_and_passes_go_bbolts_check() {
    require_tool!(tools::etcdutl35());
    require_tool!(tools::boltcheck());
    let dir = tempfile::tempdir().expect("tmp");
    for name in FIXTURES {
        let input = fixtures::snapshot(name);
        let out = dir.path().join(format!("{name}.defrag"));
        cli::ok(&["snapshot", "defrag", cli::s(&input), cli::s(&out)]);
        assert_eq!(
            etcdutl_status(&out),
            etcdutl_status(&input),
            "{name}: status of the defragmented copy"
        );
        assert_boltcheck_ok(&out);
        let verify = cli::ok(&["snapshot", "verify", cli::s(&out)]);
        assert!(verify.starts_with("OK"), "{name}: {verify}");
        let (before, after) = (len(&input), len(&out));
        assert!(after <= before + 32, "{name}: {before} -> {after}");
        // Nothing free is left: every page is in use.
        let stats = cli::ok(&["-w", "json", "snapshot", "verify", cli::s(&out)]);
        let v: serde_json::Value = serde_json::from_str(&stats).expect("verify json");
        assert_eq!(v["pages"]["free"].as_u64(), Some(0), "{name}: {v}");
    }
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).expect("stat").len()
}

/// The same db defragmented by `etcdutl defrag --data-dir` and by
/// etcdsnap: ours is no larger, and holds the same data.
#[test]
fn no_larger_than_etcdutl_defrag_of_the_same_db() {
    let etcdutl = require_tool!(tools::etcdutl35());
    require_tool!(tools::boltcheck());
    for name in ["k8s-v35.db", "k8s-v34.db", "auth-v35.db", "small-v35.db"] {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("d.etcd");
        let restored = oracles::run_etcdutl_restore(
            &fixtures::snapshot(name),
            &["--data-dir", cli::s(&data), "--skip-hash-check"],
        );
        restored.expect_success("etcdutl snapshot restore");
        let db = data.join("member/snap/db");
        let copy = dir.path().join("member.db");
        std::fs::copy(&db, &copy).expect("copy db");
        let out = support::cmd::run(
            std::process::Command::new(&etcdutl)
                .args(["defrag", "--data-dir"])
                .arg(&data),
            std::time::Duration::from_secs(120),
        );
        out.expect_success("etcdutl defrag");
        let ours = dir.path().join("ours.db");
        cli::ok(&["snapshot", "defrag", cli::s(&copy), cli::s(&ours)]);
        // etcd's status of its own defragmented db and of ours agree.
        assert_eq!(etcdutl_status(&ours), etcdutl_status(&db), "{name}");
        let body = len(&ours) - 32;
        assert!(
            body <= len(&db),
            "{name}: etcdsnap wrote {body} bytes, etcdutl defrag left {}",
            len(&db)
        );
        assert_boltcheck_ok(&ours);
    }
}

#[test]
fn compressed_output_and_refusals() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = fixtures::snapshot("k8s-v35.db");
    let out = dir.path().join("k8s.db.zst");
    let text = cli::ok(&[
        "-w",
        "json",
        "snapshot",
        "defrag",
        cli::s(&input),
        cli::s(&out),
    ]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["revision"].as_i64(), Some(570));
    let plain = cli::ok(&["-w", "json", "snapshot", "status", cli::s(&input)]);
    let packed = cli::ok(&["-w", "json", "snapshot", "status", cli::s(&out)]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&plain).expect("json"),
        serde_json::from_str(&packed).expect("json"),
    );
    assert_eq!(a["hash"], b["hash"]);
    assert_eq!(a["totalKey"], b["totalKey"]);
    assert!(!dir.path().join("k8s.db.zst.part").exists());

    // A snapshot whose trailer does not match is not laundered into one
    // that does; nothing is written.
    let mut bytes = std::fs::read(&input).expect("read");
    let n = bytes.len();
    bytes[n - 40] ^= 1;
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, &bytes).expect("write");
    let dest = dir.path().join("never.db");
    let (code, err) = cli::err(&["snapshot", "defrag", cli::s(&bad), cli::s(&dest)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("expected sha256"), "{err}");
    assert!(!dest.exists());
    let (code, _) = cli::err(&["snapshot", "defrag", cli::s(&input)]);
    assert_eq!(code, Some(128), "a missing OUT is a bad argument");
}
