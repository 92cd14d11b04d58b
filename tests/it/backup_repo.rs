//! The backup commands' behaviour beyond the happy path: encryption at
//! rest, `backup restore` with every `snapshot restore` flag (the same dirs
//! as a restore of the file), raw member dbs, and the errors an operator
//! meets (not a repository, a non-empty directory, unknown or ambiguous
//! IDs, wrong keys, a snapshot whose trailer does not match, a snapshot
//! `snapshot verify` refuses, from a file, a compressed file or object
//! storage, an encrypted init where a repository is).

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::cli::{BIN, err, ok, run, s};
use support::corrupt::{self, Expect};
use support::files;
use support::fixtures;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_encrypted_repository_keeps_nothing_readable() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let keyf = work.path().join("repo.key");
    let (code, e) = err(&["backup", "init", s(&repo), "--encrypt"]);
    assert_eq!(code, Some(128), "{e}");
    ok(&[
        "backup",
        "init",
        s(&repo),
        "--encrypt",
        "--key-file",
        s(&keyf),
    ]);
    let key = std::fs::read_to_string(&keyf).expect("key");
    assert_eq!(key.trim().len(), 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keyf).expect("stat").permissions().mode() & 0o777,
        0o600
    );

    let snap = fixtures::snapshot("k8s-v35.db");
    let (_, e) = err(&["backup", "push", s(&repo), s(&snap)]);
    assert!(e.contains("encrypted: pass --key-file"), "{e}");
    let v: Value = serde_json::from_str(&ok(&[
        "backup",
        "push",
        s(&repo),
        s(&snap),
        "--key-file",
        s(&keyf),
        "-w",
        "json",
    ]))
    .expect("json");
    let id = v["id"].as_str().expect("id");
    // Plain BLAKE3 IDs would give the content away; keyed ones do not.
    let plain_id = blake3::hash(&std::fs::read(&snap).expect("read")[..4096]);
    for (rel, bytes) in files::contents(&repo) {
        assert!(
            !contains(&bytes, b"/registry/"),
            "{rel} holds plaintext keys"
        );
        assert!(
            !contains(&bytes, plain_id.as_bytes()),
            "{rel} holds a plain ID"
        );
    }
    let o = run(&["backup", "cat", s(&repo), id, "--key-file", s(&keyf)]);
    assert!(o.status.success());
    assert!(o.stdout == std::fs::read(&snap).expect("read"));
    ok(&[
        "backup",
        "check",
        s(&repo),
        "--read-data",
        "--key-file",
        s(&keyf),
    ]);

    // Another key is refused up front.
    let other = work.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).expect("write");
    let (_, e) = err(&["backup", "ls", s(&repo), "--key-file", s(&other)]);
    assert!(e.contains("does not hold this repository's key"), "{e}");
    // A damaged key file is a clear error.
    std::fs::write(&other, "not a key").expect("write");
    let (_, e) = err(&["backup", "ls", s(&repo), "--key-file", s(&other)]);
    assert!(e.contains("64 hex digits"), "{e}");
    // A key for a repository that takes none: the CLI names its flag.
    let plain = work.path().join("plain");
    ok(&["backup", "init", s(&plain)]);
    let (_, e) = err(&["backup", "ls", s(&plain), "--key-file", s(&keyf)]);
    assert!(
        e.contains("this repository is not encrypted: do not pass --key-file"),
        "{e}"
    );
}

#[test]
fn backup_restore_writes_what_snapshot_restore_writes() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let snap = fixtures::snapshot("k8s-v35.db");
    let v: Value = serde_json::from_str(&ok(&["backup", "push", s(&repo), s(&snap), "-w", "json"]))
        .expect("json");
    let id = &v["id"].as_str().expect("id")[..8];
    let ic = "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380,c=http://127.0.0.3:2380";
    let cases: Vec<Vec<&str>> = vec![
        vec!["--initial-cluster", ic, "--all-members", "--out-dir", "OUT"],
        vec![
            "--name",
            "b",
            "--initial-cluster",
            ic,
            "--initial-advertise-peer-urls",
            "http://127.0.0.2:2380",
            "--initial-cluster-token",
            "tok",
            "--data-dir",
            "OUT/b.etcd",
            "--wal-dir",
            "OUT/wal",
            "--bump-revision",
            "1000",
            "--mark-compacted",
            "--target-version",
            "3.6",
        ],
        vec![
            "--data-dir",
            "OUT/d.etcd",
            "--target-version",
            "3.4",
            "--bump-revision",
            "5",
        ],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let a_out = work.path().join(format!("repo{i}"));
        let b_out = work.path().join(format!("file{i}"));
        std::fs::create_dir(&a_out).expect("mkdir");
        std::fs::create_dir(&b_out).expect("mkdir");
        let with = |out: &Path| -> Vec<String> {
            flags.iter().map(|f| f.replace("OUT", s(out))).collect()
        };
        let a_flags = with(&a_out);
        let b_flags = with(&b_out);
        let mut a = vec!["-w", "json", "backup", "restore", s(&repo), id];
        a.extend(a_flags.iter().map(String::as_str));
        let mut b = vec!["-w", "json", "snapshot", "restore", s(&snap)];
        b.extend(b_flags.iter().map(String::as_str));
        let ja: Value = serde_json::from_str(&ok(&a)).expect("json");
        let jb: Value = serde_json::from_str(&ok(&b)).expect("json");
        assert_eq!(ja["clusterId"], jb["clusterId"], "case {i}");
        assert_eq!(ja["hashVerified"], true);
        let (ta, tb) = (files::contents(&a_out), files::contents(&b_out));
        assert_eq!(
            ta.keys().collect::<Vec<_>>(),
            tb.keys().collect::<Vec<_>>(),
            "case {i}"
        );
        for (k, v) in &ta {
            assert!(v == &tb[k], "case {i}: {k} differs");
        }
    }
    // The same flag errors as snapshot restore, before anything is read.
    let (code, e) = err(&["backup", "restore", s(&repo), id, "--all-members"]);
    assert_eq!(code, Some(128), "{e}");
    assert!(e.contains("--all-members needs --out-dir"), "{e}");
    let (code, e) = err(&[
        "backup",
        "restore",
        s(&repo),
        id,
        "--bump-revision",
        "5",
        "--data-dir",
        s(&work.path().join("x.etcd")),
    ]);
    assert_eq!(code, Some(128), "{e}");
    assert!(e.contains("--mark-compacted required"), "{e}");
    assert!(!work.path().join("x.etcd").exists());
}

#[test]
fn raw_member_dbs_and_bad_trailers() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let raw = fixtures::snapshot("small-v35.member.db");
    let (_, e) = err(&["backup", "push", s(&repo), s(&raw)]);
    assert!(
        e.contains("snapshot missing hash but --skip-hash-check=false"),
        "{e}"
    );
    let v: Value = serde_json::from_str(&ok(&[
        "backup",
        "push",
        s(&repo),
        s(&raw),
        "--skip-hash-check",
        "-w",
        "json",
    ]))
    .expect("json");
    let id = v["id"].as_str().expect("id");
    let o = run(&["backup", "cat", s(&repo), id]);
    assert!(o.stdout == std::fs::read(&raw).expect("read"));
    // It restores without --skip-hash-check: the repository recorded its
    // SHA-256 and checks it.
    let d = work.path().join("raw.etcd");
    let j: Value = serde_json::from_str(&ok(&[
        "-w",
        "json",
        "backup",
        "restore",
        s(&repo),
        id,
        "--data-dir",
        s(&d),
    ]))
    .expect("json");
    assert_eq!(j["hashVerified"], true);

    // A snapshot whose trailer does not match its body is refused.
    let mut bytes = std::fs::read(fixtures::snapshot("small-v35.db")).expect("read");
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let bad = work.path().join("bad.db");
    std::fs::write(&bad, &bytes).expect("write");
    let (_, e) = err(&["backup", "push", s(&repo), s(&bad)]);
    assert!(e.contains("SHA-256 trailer does not match"), "{e}");
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["backup", "ls", s(&repo), "-w", "json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .len(),
        1
    );
    // Not a bbolt file at all.
    std::fs::write(&bad, vec![7u8; 4096 + 32]).expect("write");
    let (_, e) = err(&["backup", "push", s(&repo), s(&bad), "--skip-hash-check"]);
    assert!(e.starts_with("Error: "), "{e}");
}

#[test]
fn operator_errors_are_clear() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let (code, e) = err(&["backup", "ls", s(&repo)]);
    assert_eq!(code, Some(1));
    assert!(e.contains("not an etcdsnap backup repository"), "{e}");
    std::fs::create_dir(&repo).expect("mkdir");
    std::fs::write(repo.join("something"), "x").expect("write");
    let (_, e) = err(&["backup", "init", s(&repo)]);
    assert!(e.contains("exists and is not empty"), "{e}");
    std::fs::remove_file(repo.join("something")).expect("rm");
    ok(&["backup", "init", s(&repo)]);
    let (_, e) = err(&["backup", "init", s(&repo)]);
    assert!(e.contains("already holds a repository"), "{e}");
    assert_eq!(
        ok(&["backup", "ls", s(&repo)]).lines().count(),
        1,
        "header only"
    );

    for f in ["small-v35.db", "small-v34.db", "auth-v35.db", "k8s-v34.db"] {
        ok(&["backup", "push", s(&repo), s(&fixtures::snapshot(f))]);
    }
    let (_, e) = err(&["backup", "cat", s(&repo), "ffffffff"]);
    assert!(e.contains("no snapshot ffffffff"), "{e}");
    let (code, e) = err(&["backup", "cat", s(&repo), "ab"]);
    assert_eq!(code, Some(128), "{e}");
    let listed: Value =
        serde_json::from_str(&ok(&["backup", "ls", s(&repo), "-w", "json"])).expect("json");
    let ids: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    let (code, e) = err(&["backup", "forget", s(&repo)]);
    assert!(
        e.contains("give snapshot IDs, or at least one --keep-last/--keep-hourly/--keep-daily/--keep-weekly rule"),
        "{e}"
    );
    assert_eq!(code, Some(128), "{e}");
    let (_, e) = err(&["backup", "forget", s(&repo), &ids[0], "--keep-last", "1"]);
    assert!(e.contains("not both"), "{e}");
    ok(&["backup", "forget", s(&repo), &ids[0][..6]]);
    let after: Value =
        serde_json::from_str(&ok(&["backup", "ls", s(&repo), "-w", "json"])).expect("json");
    assert_eq!(after.as_array().expect("array").len(), 3);
    // forget leaves the pages: check notes them, prune removes them.
    let chk = ok(&["backup", "check", s(&repo)]);
    assert!(chk.contains("note: 1 pack(s) hold no chunk"), "{chk}");
    ok(&["backup", "prune", s(&repo)]);
    let chk = ok(&["backup", "check", s(&repo), "--read-data"]);
    assert!(!chk.contains("note:"), "{chk}");
    // -w table is not offered.
    let (code, _) = err(&["backup", "ls", s(&repo), "-w", "table"]);
    assert_eq!(code, Some(4));
}

#[test]
fn push_from_compressed_files_and_object_storage() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let plain = std::fs::read(fixtures::snapshot("k8s-v35.db")).expect("read");
    let zst = work.path().join("k8s.db.zst");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 3).expect("zstd")).expect("write");
    let v: Value = serde_json::from_str(&ok(&["backup", "push", s(&repo), s(&zst), "-w", "json"]))
        .expect("json");
    assert_eq!(v["source"].as_str(), Some(s(&zst)));
    let o = run(&["backup", "cat", s(&repo), v["id"].as_str().expect("id")]);
    assert!(
        o.stdout == plain,
        "cat of a pushed .zst is the uncompressed snapshot"
    );
    let (_, e) = err(&["backup", "push", s(&repo), s(&zst), "--time-from-file"]);
    assert!(
        e.contains("--time-from-file needs a local, uncompressed"),
        "{e}"
    );

    // From an S3-compatible server on loopback.
    let Some(bin) = support::tools::require(support::tools::s3s_fs()) else {
        return;
    };
    let server = support::s3::S3Server::start(&bin, "backups");
    let key = server.object_file("backups", "etcd/snap.db");
    std::fs::create_dir_all(key.parent().expect("parent")).expect("mkdir");
    std::fs::write(&key, &plain).expect("put");
    let mut c = Command::new(BIN);
    server.configure(&mut c);
    let o = c
        .args([
            "backup",
            "push",
            s(&repo),
            "s3://backups/etcd/snap.db",
            "-w",
            "json",
        ])
        .output()
        .expect("push");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["newChunks"], 0, "the same pages as the .zst push");
    assert_eq!(v["source"], "s3://backups/etcd/snap.db");
    // A missing object: one clear error, nothing stored.
    let mut c = Command::new(BIN);
    server.configure(&mut c);
    let o = c
        .args(["backup", "push", s(&repo), "s3://backups/etcd/missing.db"])
        .output()
        .expect("push");
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("s3://backups/etcd/missing.db"), "{e}");
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["backup", "ls", s(&repo), "-w", "json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .len(),
        2
    );
}

/// The damaged files that only verify's structural and etcd-level checks
/// see: the bbolt tree or an etcd record broken, the trailer recomputed.
fn unsound_variants() -> Vec<&'static corrupt::Variant> {
    corrupt::corpus()
        .iter()
        .filter(|v| matches!(v.expect, Expect::Structural | Expect::EtcdRecord))
        .filter(|v| corrupt::trailer_ok(&v.bytes))
        .collect()
}

/// `snapshot verify`'s problem lines for `file` (it must refuse it).
fn verify_problems(file: &Path) -> Vec<String> {
    let o = run(&["snapshot", "verify", s(file)]);
    assert_eq!(o.status.code(), Some(1), "{}", s(file));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!lines.is_empty(), "{}", s(file));
    lines
}

/// The repository holds no snapshot and no object a snapshot would need.
#[track_caller]
fn holds_nothing(repo: &Path) {
    let listed: Value =
        serde_json::from_str(&ok(&["backup", "ls", s(repo), "-w", "json"])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    for dir in ["packs", "lists", "snapshots", "known"] {
        let dir = repo.join(dir);
        if dir.exists() {
            assert!(files::paths(&dir).is_empty(), "{:?}", files::paths(&dir));
        }
    }
}

#[test]
fn push_refuses_what_verify_refuses() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let variants = unsound_variants();
    let kinds = |e: Expect| variants.iter().filter(|v| v.expect == e).count();
    assert!(
        kinds(Expect::Structural) >= 10 && kinds(Expect::EtcdRecord) >= 3,
        "{} structural, {} etcd-level",
        kinds(Expect::Structural),
        kinds(Expect::EtcdRecord)
    );
    for v in &variants {
        let file = v.write_to(work.path());
        let problems = verify_problems(&file);
        let (code, e) = err(&["backup", "push", s(&repo), s(&file)]);
        assert_eq!(code, Some(1), "{}: {e}", v.name);
        assert!(
            e.contains("the snapshot is not sound, not pushed: ") && e.contains(&problems[0]),
            "{}: verify says {problems:?}, push says {e}",
            v.name
        );
        // A raw member db (no trailer): --skip-hash-check skips the
        // trailer, not the checks.
        let raw = work.path().join(format!("{}.member.db", v.name));
        std::fs::write(&raw, v.body_bytes()).expect("write");
        let (code, e) = err(&["backup", "push", s(&repo), s(&raw), "--skip-hash-check"]);
        assert_eq!(code, Some(1), "{}: {e}", v.name);
        assert!(e.contains("not sound, not pushed"), "{}: {e}", v.name);
    }
    // Refused before anything was stored.
    holds_nothing(&repo);

    // The damaged files verify accepts (with warnings) are stored.
    for v in corrupt::corpus()
        .iter()
        .filter(|v| v.expect == Expect::Accept)
    {
        let file = v.write_to(work.path());
        let mut a = vec!["backup", "push", s(&repo), s(&file)];
        if !corrupt::trailer_ok(&v.bytes) {
            a.push("--skip-hash-check");
        }
        ok(&a);
    }
    ok(&["backup", "check", s(&repo), "--read-data"]);
}

#[test]
fn push_from_a_location_refuses_what_verify_refuses() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let variants = unsound_variants();
    let picked: Vec<&corrupt::Variant> = [Expect::Structural, Expect::EtcdRecord]
        .iter()
        .filter_map(|e| variants.iter().copied().find(|v| v.expect == *e))
        .collect();
    assert_eq!(picked.len(), 2);
    for v in &picked {
        let problems = verify_problems(&v.write_to(work.path()));
        let zst = work.path().join(format!("{}.db.zst", v.name));
        std::fs::write(&zst, zstd::encode_all(&v.bytes[..], 3).expect("zstd")).expect("write");
        let (code, e) = err(&["backup", "push", s(&repo), s(&zst)]);
        assert_eq!(code, Some(1), "{}: {e}", v.name);
        assert!(
            e.contains("not sound, not pushed") && e.contains(&problems[0]),
            "{}: {e}",
            v.name
        );
    }
    holds_nothing(&repo);

    let Some(bin) = support::tools::require(support::tools::s3s_fs()) else {
        return;
    };
    let server = support::s3::S3Server::start(&bin, "backups");
    for v in &picked {
        let key = format!("etcd/{}.db", v.name);
        let obj = server.object_file("backups", &key);
        std::fs::create_dir_all(obj.parent().expect("parent")).expect("mkdir");
        std::fs::write(&obj, &v.bytes).expect("put");
        let mut c = Command::new(BIN);
        server.configure(&mut c);
        let url = format!("s3://backups/{key}");
        let o = c
            .args(["backup", "push", s(&repo), &url])
            .output()
            .expect("push");
        assert_eq!(o.status.code(), Some(1), "{url}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&url) && e.contains("not sound, not pushed"),
            "{e}"
        );
    }
    holds_nothing(&repo);
}

#[test]
fn a_refused_encrypted_init_leaves_no_key_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let keyf = work.path().join("new.key");
    let (code, e) = err(&[
        "backup",
        "init",
        s(&repo),
        "--encrypt",
        "--key-file",
        s(&keyf),
    ]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("already holds a repository"), "{e}");
    assert!(!keyf.exists(), "a key that opens nothing was left");
    // The repository is as it was.
    ok(&["backup", "ls", s(&repo)]);

    let full = work.path().join("full");
    std::fs::create_dir(&full).expect("mkdir");
    std::fs::write(full.join("something"), "x").expect("write");
    let (_, e) = err(&[
        "backup",
        "init",
        s(&full),
        "--encrypt",
        "--key-file",
        s(&keyf),
    ]);
    assert!(e.contains("exists and is not empty"), "{e}");
    assert!(!keyf.exists());

    // Where init can go, the key is made and opens the repository.
    let fresh = work.path().join("fresh");
    ok(&[
        "backup",
        "init",
        s(&fresh),
        "--encrypt",
        "--key-file",
        s(&keyf),
    ]);
    assert!(keyf.exists());
    ok(&["backup", "ls", s(&fresh), "--key-file", s(&keyf)]);
}
