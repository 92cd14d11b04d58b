//! `etcdsnap snapshot hashkv` against etcd:
//!
//! - what `etcdutl hashkv FILE --rev R -w simple|json` of etcd 3.6.14 and
//!   3.7.1 printed on every fixture (`testdata/hashkv/v36`, `v37`, recorded
//!   from the real binaries, which cannot be installed here), byte for
//!   byte with the exit code, errors included;
//! - `etcdctl endpoint hashkv --rev R` of a live etcd 3.5.1 (and 3.4.23)
//!   member, for every revision of a history with overwrites, deletions, a
//!   txn, a physical compaction at a tombstone and changes after it, asked
//!   before the member's snapshot is saved and compared with
//!   `snapshot hashkv` of that snapshot;
//! - the corruption corpus: an answer or an `Error:` line, never a panic.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::corrupt;
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{EtcdBins, EtcdVersion};
use support::{cmd, fixtures, require_tool, tools};

/// `etcdsnap snapshot hashkv FILE ARGS...`: (exit code, stdout, stderr).
fn ours(file: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    c.args(["snapshot", "hashkv"]).arg(file).args(args);
    let out = cmd::run(&mut c, Duration::from_secs(120));
    assert!(!out.panicked() && !out.timed_out, "{args:?}:\n{out}");
    (out.code(), out.stdout, out.stderr)
}

/// Every recording of one release: (fixture, revision, format, contents).
fn recordings(version: &str) -> Vec<(String, String, String, String)> {
    let dir = fixtures::testdata(&format!("hashkv/{version}"));
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        // FILE.revR.FORMAT
        let (rest, format) = name.rsplit_once('.').expect("format suffix");
        let (file, rev) = rest.rsplit_once(".rev").expect(".revR");
        let text = std::fs::read_to_string(&path).expect("read recording");
        out.push((file.to_owned(), rev.to_owned(), format.to_owned(), text));
    }
    out.sort();
    out
}

fn matches_recorded(version: &str, target: &str) {
    let all = recordings(version);
    assert!(all.len() >= 80, "{version}: {} recordings", all.len());
    // 3.7's recordings cover the compacted k8s fixtures (3.6's were not
    // recorded on them): hashes with a compaction and a refused revision.
    if version == "v37" {
        assert!(
            all.iter().any(|r| r.3.contains(", 68\n")),
            "no compacted case"
        );
        assert!(
            all.iter().any(|r| r.3.starts_with("Error: ")),
            "no error case"
        );
    }
    for (file, rev, format, want) in all {
        let path = fixtures::snapshot(&file);
        let (code, stdout, stderr) = ours(
            &path,
            &["--rev", &rev, "-w", &format, "--target-version", target],
        );
        let got = format!("{stdout}{stderr}rc={}\n", code.unwrap_or(-1));
        assert_eq!(got, want, "{version} {file} --rev {rev} -w {format}");
    }
}

#[test]
fn matches_etcdutl_3_6_14_recordings() {
    matches_recorded("v36", "3.6");
}

#[test]
fn matches_etcdutl_3_7_1_recordings() {
    matches_recorded("v37", "3.7");
}

/// Without `--target-version`, a 3.6/3.7 fixture follows its own release.
#[test]
fn auto_follows_the_storage_version_on_new_fixtures() {
    for version in ["v36", "v37"] {
        for (file, rev, format, want) in recordings(version) {
            if !file.contains(&format!("-{version}.")) {
                continue;
            }
            let (code, stdout, stderr) =
                ours(&fixtures::snapshot(&file), &["--rev", &rev, "-w", &format]);
            let got = format!("{stdout}{stderr}rc={}\n", code.unwrap_or(-1));
            assert_eq!(got, want, "{file} --rev {rev} -w {format} (auto)");
        }
    }
}

/// The table and fields outputs (not recorded: from etcdutl's printers),
/// and etcdutl's refusals of other formats: an unknown one before the file
/// is read, protobuf only when printing.
#[test]
fn other_formats_follow_etcdutls_printers() {
    let k8s = fixtures::snapshot("k8s-v35.db");
    let (code, out, _) = ours(&k8s, &["-w", "table", "--target-version", "3.6"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "+------------+---------------+------------------+\n\
         |    HASH    | HASH REVISION | COMPACT REVISION |\n\
         +------------+---------------+------------------+\n\
         | 4134706016 |           570 |               68 |\n\
         +------------+---------------+------------------+\n"
    );
    let (_, out, _) = ours(&k8s, &["-w", "table", "--target-version", "3.7"]);
    assert!(out.starts_with("┌────────────┬"), "{out}");
    let (_, out, _) = ours(&k8s, &["-w", "fields", "--target-version", "3.7"]);
    assert_eq!(
        out,
        "\"Hash\" : 4134706016\n\"Hash revision\" : 570\n\"Compact revision\" : 68\n"
    );
    let (code, out, err) = ours(&k8s, &["-w", "protobuf"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            Some(4),
            "",
            "Error: protobuf not supported as output format\n"
        )
    );
    let (code, _, err) = ours(&k8s, &["-w", "protobuf", "--rev", "1"]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(1),
            "Error: mvcc: required revision has been compacted\n"
        )
    );
    let (code, _, err) = ours(&k8s, &["-w", "yaml", "--rev", "1"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(4), "Error: unsupported output format\n")
    );
}

/// Splitting the scan over threads changes nothing.
#[test]
fn one_thread_and_many_agree() {
    use etcdsnap::mvcc::Store;
    let snap = etcdsnap::Snapshot::open(fixtures::snapshot("k8s-v34.db")).expect("open");
    for rev in [0, 68, 69, 200, 380, 569] {
        let one = Store::open(&snap)
            .expect("store")
            .with_threads(1)
            .hash_kv(rev);
        let many = Store::open(&snap)
            .expect("store")
            .with_threads(7)
            .hash_kv(rev);
        // Compared as printed: the errors (a compacted revision) carry no
        // PartialEq, and their Debug form shows every field.
        assert_eq!(format!("{one:?}"), format!("{many:?}"), "rev {rev}");
    }
}

/// What a live member answered for one revision.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Hash { hash: u32, compact: i64 },
    Error(String),
}

/// `etcdctl endpoint hashkv --rev R -w json` of the live member.
fn theirs(ctl: &support::etcd::Etcdctl, rev: i64) -> Answer {
    let out = ctl.run(&[
        "endpoint",
        "hashkv",
        "--rev",
        &rev.to_string(),
        "-w",
        "json",
    ]);
    if !out.success() {
        // "Failed to get the hash of endpoint URL (etcdserver: mvcc: ...)"
        let msg = out
            .stderr
            .lines()
            .find_map(|l| l.split_once("(etcdserver: ").map(|(_, m)| m))
            .and_then(|m| m.strip_suffix(')'))
            .unwrap_or_else(|| panic!("etcdctl endpoint hashkv --rev {rev}:\n{out}"));
        return Answer::Error(msg.to_owned());
    }
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("etcdctl JSON");
    let h = &v[0]["HashKV"];
    // encoding/json with omitempty: a zero is left out.
    let field = |k: &str| h.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    Answer::Hash {
        hash: u32::try_from(field("hash")).expect("a 32-bit hash"),
        compact: field("compact_revision"),
    }
}

/// `snapshot hashkv FILE --rev R` in the JSON and simple formats, as an
/// [`Answer`] (the two formats must agree).
fn ours_answer(file: &Path, rev: i64, current: i64, extra: &[&str]) -> Answer {
    let r = rev.to_string();
    let mut json_args = vec!["--rev", &r, "-w", "json"];
    json_args.extend_from_slice(extra);
    let (code, out, err) = ours(file, &json_args);
    let mut simple_args = vec!["--rev", &r];
    simple_args.extend_from_slice(extra);
    let (scode, sout, serr) = ours(file, &simple_args);
    assert_eq!((scode, &serr), (code, &err), "--rev {rev}: simple vs json");
    if code != Some(0) {
        assert_eq!(code, Some(1), "--rev {rev}: {err}");
        let msg = err
            .strip_prefix("Error: ")
            .and_then(|m| m.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("--rev {rev}: {err}"));
        return Answer::Error(msg.to_owned());
    }
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("our JSON");
    let hash = v["hash"].as_u64().expect("hash");
    let hash_rev = v["hashRevision"].as_i64().expect("hashRevision");
    let compact = v["compactRevision"].as_i64().expect("compactRevision");
    assert_eq!(hash_rev, if rev == 0 { current } else { rev });
    assert_eq!(sout, format!("{hash}, {hash_rev}, {compact}\n"));
    Answer::Hash {
        hash: u32::try_from(hash).expect("32-bit"),
        compact,
    }
}

fn live_member_agrees(version: EtcdVersion, target: &str) {
    let bins: EtcdBins = require_tool!(tools::etcd_suite(version));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = SnapshotMaker::new(&bins).start();
    let mut l = Loader::new(cluster.endpoint());
    let step = |l: &mut Loader, f: &dyn Fn(&mut Loader)| {
        f(l);
        l.flush()
    };
    step(&mut l, &|l| l.put(b"a", b"1")); // 2
    step(&mut l, &|l| l.put(b"b", b"1")); // 3
    step(&mut l, &|l| l.put(b"c", b"1")); // 4
    step(&mut l, &|l| l.put(b"a", b"2")); // 5
    step(&mut l, &|l| l.delete(b"b")); // 6
    step(&mut l, &|l| l.put(b"d", b"1")); // 7
    // One txn of three changes: sub revisions 0, 1, 2.
    step(&mut l, &|l| {
        l.put(b"e", b"1");
        l.put(b"c", b"2");
        l.delete(b"d");
    }); // 8
    step(&mut l, &|l| l.put(b"b", b"2")); // 9
    step(&mut l, &|l| l.put(b"f", b"1")); // 10
    step(&mut l, &|l| l.put(b"h", b"1")); // 11
    step(&mut l, &|l| l.delete(b"f")); // 12: a tombstone at the compaction
    let compacted = l.compact(true);
    assert_eq!(compacted, 12);
    step(&mut l, &|l| l.put(b"a", b"3")); // 13
    step(&mut l, &|l| l.put(b"g", b"1")); // 14
    step(&mut l, &|l| l.delete(b"e")); // 15
    step(&mut l, &|l| l.put(b"c", b"3")); // 16
    step(&mut l, &|l| l.put(b"b", b"3")); // 17: only h is as it was at 12
    step(&mut l, &|l| l.put(b"h", b"2")); // 18: no key is as it was at 12
    step(&mut l, &|l| l.delete(b"g")); // 19: the newest change a deletion
    l.delete_range(b"a", b"z"); // 20: no key alive
    let current = l.revision();
    assert_eq!(current, 20);

    let ctl = cluster.ctl_member(0);
    let revs: Vec<i64> = (0..=current + 1).collect();
    let answers: Vec<Answer> = revs.iter().map(|&r| theirs(&ctl, r)).collect();
    let snap = dir.path().join("live.db");
    ctl.snapshot_save(&snap).expect_success("snapshot save");
    cluster.stop();

    let mut hashes = Vec::new();
    for (&rev, want) in revs.iter().zip(&answers) {
        let got = ours_answer(&snap, rev, current, &["--target-version", target]);
        assert_eq!(&got, want, "{} --rev {rev}", version.version());
        if let Answer::Hash { hash, .. } = got {
            hashes.push(hash);
        }
    }
    // The history is not trivial: refusals on both sides, distinct hashes.
    assert!(matches!(&answers[1], Answer::Error(m) if m.contains("compacted")));
    assert!(matches!(answers.last(), Some(Answer::Error(m)) if m.contains("future")));
    hashes.sort_unstable();
    hashes.dedup();
    assert!(hashes.len() >= 8, "{hashes:?}");
    // `auto` reads a 3.4/3.5 snapshot with the 3.5 rules.
    if target == "3.5" {
        for &rev in &[0, 12, 13, 20] {
            assert_eq!(
                ours_answer(&snap, rev, current, &[]),
                ours_answer(&snap, rev, current, &["--target-version", "3.5"]),
            );
        }
    }
}

#[test]
fn matches_etcdctl_endpoint_hashkv_of_a_live_3_5_1_member() {
    live_member_agrees(EtcdVersion::V35, "3.5");
}

#[test]
fn matches_etcdctl_endpoint_hashkv_of_a_live_3_4_23_member() {
    live_member_agrees(EtcdVersion::V34, "3.4");
}

#[test]
fn corrupt_files_get_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut refused = 0;
    for v in corrupt::corpus() {
        let p = v.write_to(dir.path());
        for args in [
            &["--rev", "0"][..],
            &["--rev", "300", "--target-version", "3.6"],
        ] {
            let (code, _, err) = ours(&p, args);
            match code {
                Some(0) => {}
                Some(1) => {
                    assert!(err.starts_with("Error: "), "{} {args:?}: {err}", v.name);
                    refused += 1;
                }
                other => panic!("{} {args:?}: exit {other:?}: {err}", v.name),
            }
        }
    }
    assert!(refused > 0, "the corpus has files hashkv must refuse");
}
