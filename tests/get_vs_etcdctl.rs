//! `etcdsnap get` against `etcdctl get` of a real etcd booted from the same
//! snapshot, for etcd 3.5.1 and 3.4.23.
//!
//! Each test restores a snapshot with the release's own tool, boots that
//! release's etcd on it (one member, loopback), then runs a list of `get`
//! invocations through both `etcdctl` and `etcdsnap get FILE ...` and
//! requires the same exit code, the same `Error:` line and the same stdout
//! byte for byte, in the simple, json, fields and protobuf outputs. The only
//! thing set aside is the header's cluster ID, member ID and raft term: the
//! booted etcd has the IDs its restore gave it, etcdsnap those recorded in
//! the snapshot (checked separately against the original cluster's).
//!
//! Snapshots: one made at test time per release with history (overwrites,
//! deletes, a delete-range, a re-created key), leases, keys that tie under
//! every sort target, binary and odd keys, a physical compaction and changes
//! after it; and the committed fixtures (small, auth, k8s).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{EtcdBins, EtcdVersion};
use support::{fixtures, oracles, require_tool, tools};

const TOKEN: &str = "etcdsnap-get-test";

/// What one command printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    error: Option<String>,
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("run command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        error: stderr
            .lines()
            .find(|l| l.starts_with("Error:"))
            .map(str::to_owned),
    }
}

/// Restores `snapshot` with the release's tool and boots one member on it.
fn boot(bins: &EtcdBins, snapshot: &Path) -> EtcdCluster {
    let spec = ClusterSpec::new(bins, 1).token(TOKEN);
    let m = &spec.members[0];
    let args = [
        "--name".to_string(),
        m.name.clone(),
        "--initial-cluster".into(),
        spec.initial_cluster(),
        "--initial-advertise-peer-urls".into(),
        m.peer_url(),
        "--initial-cluster-token".into(),
        TOKEN.into(),
        "--data-dir".into(),
        m.data_dir.to_string_lossy().into_owned(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    oracles::run_restore(bins, snapshot, &a).expect_success("snapshot restore");
    spec.start()
}

/// Sets the header IDs and term of an output aside.
fn normalize(format: &str, out: &[u8]) -> Vec<u8> {
    match format {
        "json" => {
            let mut s = String::from_utf8_lossy(out).into_owned();
            // A 3.4 snapshot records no term, so etcdsnap leaves it out.
            if let Some(i) = s.find(",\"raft_term\":") {
                let start = i + ",\"raft_term\":".len();
                let end = s[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(s.len(), |e| start + e);
                s.replace_range(i..end, "");
            }
            for field in ["\"cluster_id\":", "\"member_id\":"] {
                if let Some(i) = s.find(field) {
                    let start = i + field.len();
                    let end = s[start..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(s.len(), |e| start + e);
                    s.replace_range(start..end, "N");
                }
            }
            s.into_bytes()
        }
        "fields" => {
            let s = String::from_utf8_lossy(out);
            let mut o = String::new();
            for line in s.split_inclusive('\n') {
                if line.starts_with("\"ClusterID\"")
                    || line.starts_with("\"MemberID\"")
                    || line.starts_with("\"RaftTerm\"")
                {
                    o.push_str("(id)\n");
                } else {
                    o.push_str(line);
                }
            }
            o.into_bytes()
        }
        "protobuf" => match RangeResponse::decode(out) {
            Ok(mut r) => {
                if let Some(h) = r.header.as_mut() {
                    h.cluster_id = 0;
                    h.member_id = 0;
                    h.raft_term = 0;
                }
                r.encode_to_vec()
            }
            Err(_) => out.to_vec(),
        },
        _ => out.to_vec(),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct Header {
    #[prost(uint64, tag = "1")]
    cluster_id: u64,
    #[prost(uint64, tag = "2")]
    member_id: u64,
    #[prost(int64, tag = "3")]
    revision: i64,
    #[prost(uint64, tag = "4")]
    raft_term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Kv {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(int64, tag = "2")]
    create_revision: i64,
    #[prost(int64, tag = "3")]
    mod_revision: i64,
    #[prost(int64, tag = "4")]
    version: i64,
    #[prost(bytes = "vec", tag = "5")]
    value: Vec<u8>,
    #[prost(int64, tag = "6")]
    lease: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<Header>,
    #[prost(message, repeated, tag = "2")]
    kvs: Vec<Kv>,
    #[prost(bool, tag = "3")]
    more: bool,
    #[prost(int64, tag = "4")]
    count: i64,
}

fn os(s: &[u8]) -> OsString {
    OsString::from_vec(s.to_vec())
}

fn target(v: EtcdVersion) -> &'static str {
    match v {
        EtcdVersion::V34 => "3.4",
        EtcdVersion::V35 => "3.5",
    }
}

/// Runs every case in every format through both tools and compares.
/// Returns the number of comparisons made.
fn compare(
    ctl: &Etcdctl,
    version: EtcdVersion,
    file: &Path,
    cases: &[Vec<OsString>],
    formats: &[&str],
) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases {
        let count_only = case.iter().any(|a| a == "--count-only");
        if count_only && version == EtcdVersion::V34 {
            continue; // etcdctl 3.4 has no --count-only
        }
        for format in formats {
            let mut theirs = ctl.command(&["-w", format, "get"]);
            theirs.args(case);
            let theirs = run(theirs);
            let mut ours = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
            ours.args(["-w", format, "get", "--target-version", target(version)])
                .arg(file)
                .args(case);
            let ours = run(ours);
            n += 1;
            let same = theirs.code == ours.code
                && theirs.error == ours.error
                && normalize(format, &theirs.stdout) == normalize(format, &ours.stdout);
            if !same {
                failures.push(format!(
                    "get -w {format} {case:?}:\n  etcdctl: exit {:?} {:?}\n{}\n  etcdsnap: exit {:?} {:?}\n{}",
                    theirs.code,
                    theirs.error,
                    String::from_utf8_lossy(&theirs.stdout),
                    ours.code,
                    ours.error,
                    String::from_utf8_lossy(&ours.stdout)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} comparisons differ ({}):\n{}",
        failures.len(),
        file.display(),
        failures.join("\n")
    );
    n
}

/// Cases any snapshot can take: whole key space, ranges, sorts, limits.
fn generic_cases() -> Vec<Vec<OsString>> {
    let s = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let mut c = vec![
        s(&["--prefix", ""]),
        s(&["--from-key", ""]),
        s(&["--prefix", "", "--keys-only"]),
        s(&["--prefix", "", "--count-only"]),
        s(&["--prefix", "", "--limit", "3"]),
        s(&["--prefix", "", "--limit=1", "--keys-only"]),
        s(&["--prefix", "", "--print-value-only"]),
        s(&["--prefix", "", "--hex"]),
        s(&["--prefix", "", "--order", "DESCEND"]),
        s(&["a", "z"]),
        s(&["missing"]),
        s(&[""]),
        s(&["--prefix", "", "--count-only", "--keys-only"]),
        s(&["--prefix", "--from-key", "a"]),
        s(&["a", "b", "c"]),
        s(&["--prefix", "a", "b"]),
        s(&["--consistency", "s", "--prefix", ""]),
        s(&["--consistency", "x", "a"]),
        s(&["--sort-by", "bogus", "a"]),
        s(&["--order", "sideways", "a"]),
        s(&["--prefix", "", "--rev", "-3"]),
    ];
    for target in ["KEY", "VERSION", "CREATE", "MODIFY", "VALUE"] {
        for order in ["", "ASCEND", "DESCEND"] {
            let mut v = s(&["--prefix", "", "--sort-by", target, "--keys-only"]);
            if !order.is_empty() {
                v.push("--order".into());
                v.push(order.into());
            }
            c.push(v);
        }
        c.push(s(&[
            "--prefix",
            "",
            "--sort-by",
            target,
            "--order",
            "descend",
            "--limit",
            "4",
        ]));
    }
    c
}

fn with_rev(mut c: Vec<OsString>, rev: i64) -> Vec<OsString> {
    c.push("--rev".into());
    c.push(rev.to_string().into());
    c
}

/// What the test-time workload left, to aim queries at.
struct Made {
    path: PathBuf,
    compacted: i64,
    current: i64,
    cluster_id: u64,
    member_id: u64,
}

fn make_snapshot(bins: &EtcdBins, dir: &Path) -> Made {
    let maker = SnapshotMaker::new(bins);
    let mut cluster = maker.start();
    let mut l = Loader::new(cluster.endpoint());
    let lease = l.grant_lease(3600);
    // One txn of 60 keys: they tie on create, mod and version revisions.
    for i in 0..60 {
        let v = format!("v{}", (i * 7919) % 23).repeat(1 + i % 4);
        l.put(
            format!("/registry/pods/ns0/p{i:02}").as_bytes(),
            v.as_bytes(),
        );
    }
    l.flush();
    for i in 0..20 {
        l.put(format!("/registry/pods/ns1/p{i:02}").as_bytes(), b"one");
    }
    l.flush();
    for i in 0..10 {
        l.put(
            format!("/registry/configmaps/ns0/cm{i}").as_bytes(),
            &vec![b'x'; i * 10],
        );
        l.flush();
    }
    for (k, v) in [
        (&b"a"[..], &b"1"[..]),
        (b"b", b"2"),
        (b"c\nnl", b"v\nx"),
        (b"del\x7fkey", b"\x01\xff\xfe"),
        (b"empty", b""),
        (b"\xff\xfe\xfd", b"binary key"),
        (b"\xff\xff", b"top"),
        (b"quote\"back\\slash", b"tab\there"),
        ("unicode-\u{e9}\u{2028}".as_bytes(), "caf\u{e9}".as_bytes()),
    ] {
        l.put(k, v);
    }
    l.flush();
    l.put_lease(b"lease/k1", b"leased", lease);
    l.put_lease(b"lease/k2", b"leased too", lease);
    l.flush();
    // History: overwrites in several txns.
    for round in 0..2 {
        for i in 0..(10 - 5 * round) {
            l.put(
                format!("/registry/pods/ns0/p{i:02}").as_bytes(),
                format!("round{round}").as_bytes(),
            );
        }
        l.flush();
    }
    for i in 0..5 {
        l.delete(format!("/registry/pods/ns1/p{i:02}").as_bytes());
    }
    l.flush();
    l.delete_range(
        b"/registry/configmaps/ns0/cm5",
        b"/registry/configmaps/ns0/cm8",
    );
    l.put(b"/registry/pods/ns1/p00", b"reborn");
    l.flush();
    let compacted = l.compact(true);
    for i in 10..15 {
        l.put(
            format!("/registry/pods/ns0/p{i:02}").as_bytes(),
            b"after compaction",
        );
    }
    l.flush();
    l.delete(b"b");
    l.put(b"b2", b"2");
    l.flush();
    let current = l.revision();
    let header = cluster.etcdctl_json(&["get", "a"]);
    let id = |k: &str| header["header"][k].as_u64().expect("header id");
    let (cluster_id, member_id) = (id("cluster_id"), id("member_id"));
    let path = dir.join(format!("made-{}.db", bins.version.tag()));
    cluster
        .ctl_member(0)
        .snapshot_save(&path)
        .expect_success("snapshot save");
    cluster.stop();
    Made {
        path,
        compacted,
        current,
        cluster_id,
        member_id,
    }
}

fn made_cases(m: &Made) -> Vec<Vec<OsString>> {
    let s = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let mut c = generic_cases();
    let mut specific = vec![
        s(&["/registry/pods/ns0/p03"]),
        s(&["--prefix", "/registry/pods/ns1/"]),
        s(&["--prefix", "/registry/pods/"]),
        s(&["--prefix", "/registry/pods/", "--count-only"]),
        s(&["--prefix", "/registry/pods/ns0/", "--sort-by=VERSION"]),
        s(&[
            "--prefix",
            "/registry/pods/ns0/",
            "--sort-by=VALUE",
            "--order=DESCEND",
        ]),
        s(&[
            "--prefix",
            "/registry/pods/ns0/",
            "--sort-by=MODIFY",
            "--limit",
            "7",
        ]),
        s(&[
            "--prefix",
            "/registry/pods/ns0/",
            "--sort-by=CREATE",
            "--order=DESCEND",
            "--keys-only",
        ]),
        s(&["--from-key", "/registry/pods/ns1/p10"]),
        s(&["/registry/configmaps/", "/registry/configmaps0"]),
        s(&["--prefix", "lease/"]),
        s(&["b"]),
        s(&["b2"]),
        s(&["empty"]),
        vec![os(b"del\x7fkey")],
        vec![os(b"c\nnl")],
        vec!["--prefix".into(), os(b"\xff")],
        vec!["--prefix".into(), os(b"\xff\xff")],
        vec!["--from-key".into(), os(b"\xff\xfe")],
        s(&["--prefix", "quote"]),
        s(&["--prefix", "unicode"]),
    ];
    c.append(&mut specific);
    // Reads at several revisions: compacted, the compaction revision, in
    // between, current, future.
    for rev in [
        1,
        m.compacted - 1,
        m.compacted,
        m.compacted + 1,
        m.current - 1,
        m.current,
        m.current + 1,
        m.current + 1000,
    ] {
        for base in [
            s(&["--prefix", ""]),
            s(&["--prefix", "/registry/pods/ns1/", "--count-only"]),
            s(&["/registry/pods/ns0/p01"]),
            s(&["b"]),
            s(&[
                "--prefix",
                "/registry/",
                "--sort-by=VERSION",
                "--order=DESCEND",
                "--limit=10",
            ]),
        ] {
            c.push(with_rev(base, rev));
        }
    }
    c
}

const FORMATS: [&str; 4] = ["simple", "json", "fields", "protobuf"];

fn made_snapshot_matches(version: EtcdVersion) {
    let bins = require_tool!(tools::etcd_suite(version));
    let dir = tempfile::tempdir().expect("tempdir");
    let m = make_snapshot(&bins, dir.path());
    let cluster = boot(&bins, &m.path);
    let cases = made_cases(&m);
    let n = compare(&cluster.ctl(), version, &m.path, &cases, &FORMATS);
    assert!(n > 300, "only {n} comparisons");
    // The header IDs are those of the cluster the snapshot came from.
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["-w", "json", "get"])
        .arg(&m.path)
        .arg("a")
        .output()
        .expect("etcdsnap");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["header"]["cluster_id"].as_u64(), Some(m.cluster_id));
    assert_eq!(v["header"]["member_id"].as_u64(), Some(m.member_id));
    assert_eq!(v["header"]["revision"].as_i64(), Some(m.current));
}

#[test]
fn made_snapshot_v35() {
    made_snapshot_matches(EtcdVersion::V35);
}

#[test]
fn made_snapshot_v34() {
    made_snapshot_matches(EtcdVersion::V34);
}

fn fixture_matches(version: EtcdVersion, name: &str, user: Option<&str>) {
    let bins = require_tool!(tools::etcd_suite(version));
    let file = fixtures::snapshot(name);
    let cluster = boot(&bins, &file);
    let mut ctl = cluster.ctl();
    if let Some(u) = user {
        ctl = ctl.user(u);
    }
    let s = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let mut cases = generic_cases();
    cases.extend([
        s(&["name"]),
        s(&["foo"]),
        s(&["foo", "--rev", "2"]),
        s(&["foo", "--rev", "3"]),
        s(&["--prefix", "/registry/", "--count-only"]),
        s(&[
            "--prefix",
            "/registry/configmaps/",
            "--keys-only",
            "--limit",
            "20",
        ]),
        s(&[
            "--prefix",
            "/registry/pods/",
            "--rev",
            "100",
            "--count-only",
        ]),
        s(&["--prefix", "/registry/pods/", "--rev", "400", "--keys-only"]),
        s(&[
            "--prefix",
            "/registry/",
            "--sort-by=MODIFY",
            "--order=DESCEND",
            "--limit=25",
            "--keys-only",
        ]),
        s(&["--prefix", "/registry/", "--sort-by=VERSION", "--keys-only"]),
        s(&[
            "--prefix",
            "/registry/",
            "--sort-by=CREATE",
            "--keys-only",
            "--order=DESCEND",
        ]),
    ]);
    compare(&ctl, version, &file, &cases, &FORMATS);
}

#[test]
fn fixtures_v35() {
    fixture_matches(EtcdVersion::V35, "small-v35.db", None);
    fixture_matches(EtcdVersion::V35, "k8s-v35.db", None);
    fixture_matches(EtcdVersion::V35, "auth-v35.db", Some("root:rootpw"));
}

#[test]
fn fixtures_v34() {
    fixture_matches(EtcdVersion::V34, "small-v34.db", None);
    fixture_matches(EtcdVersion::V34, "k8s-v34.db", None);
    fixture_matches(EtcdVersion::V34, "auth-v34.db", Some("root:rootpw"));
}

#[test]
fn raw_member_db_answers_like_the_saved_snapshot() {
    // A member/snap/db copy has no trailer; get reads it all the same.
    for (saved, raw) in [
        ("k8s-v35.db", "k8s-v35.member.db"),
        ("small-v34.db", "small-v34.member.db"),
    ] {
        let get = |f: &str| {
            Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
                .args(["-w", "json", "get"])
                .arg(fixtures::snapshot(f))
                .args(["--prefix", ""])
                .output()
                .expect("etcdsnap")
                .stdout
        };
        assert_eq!(get(saved), get(raw), "{saved}");
        assert!(!get(raw).is_empty());
    }
}
