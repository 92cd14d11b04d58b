//! Corrupted snapshots (the corpus of `tests/support/corrupt.rs`): `verify`
//! and `status` exit non-zero with a clear message and never panic, each
//! damage is caught by the layer it belongs to, and our structural check
//! agrees with Go's bbolt on every file Go can open without crashing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use etcdsnap::bolt::Db;
use etcdsnap::bolt::check;
use support::corrupt::{self, Body, Expect};
use support::{fixtures, oracles, require_tool, tools};

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .arg(file)
        .output()
        .expect("run etcdsnap")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 0 or 1 and nothing else: no panic (101), no signal.
fn assert_clean_exit(o: &Output, what: &str) {
    let code = o.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        !text(&o.stderr).contains("panicked"),
        "{what}: {}",
        text(&o.stderr)
    );
}

#[test]
fn corpus_has_at_least_fifteen_kinds() {
    assert!(corrupt::corpus().len() >= 15);
}

#[test]
fn verify_and_status_fail_cleanly_on_every_variant() {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in corrupt::corpus() {
        let path = v.write_to(dir.path());
        let verify = run(&["snapshot", "verify"], &path);
        let what = format!("verify {}", v.name);
        assert_clean_exit(&verify, &what);
        let out = text(&verify.stdout);
        if v.expect == Expect::Accept {
            assert_eq!(
                verify.status.code(),
                Some(0),
                "{what}: {out}{}",
                text(&verify.stderr)
            );
        } else {
            assert_eq!(verify.status.code(), Some(1), "{what} must fail: {out}");
            assert!(text(&verify.stderr).starts_with("Error: "), "{what}");
            let layer_line = match v.expect {
                Expect::MissingHash => out.contains("missing hash") || out.contains("truncated"),
                Expect::HashMismatch => out.contains("sha256 mismatch"),
                Expect::NotBbolt => out.contains("not a bbolt database"),
                Expect::Structural => out.lines().any(|l| !l.contains("sha256")),
                Expect::EtcdRecord => out.lines().any(|l| l.starts_with("bucket ")),
                Expect::Accept => true,
            };
            assert!(layer_line, "{what}: no {:?} line in:\n{out}", v.expect);
        }

        let status = run(&["snapshot", "status"], &path);
        let what = format!("status {}", v.name);
        assert_clean_exit(&status, &what);
        match v.body {
            Body::Valid => assert_eq!(
                status.status.code(),
                Some(0),
                "{what}: {}",
                text(&status.stderr)
            ),
            Body::NotBbolt | Body::Structural => {
                assert_eq!(
                    status.status.code(),
                    Some(1),
                    "{what} must fail: {}",
                    text(&status.stdout)
                );
                let err = text(&status.stderr);
                assert!(
                    err.starts_with("Error: ") && err.len() > 12,
                    "{what}: {err}"
                );
            }
        }

        // The body alone, as a raw db copy.
        let body = dir.path().join(format!("{}.body", v.name));
        std::fs::write(&body, v.body_bytes()).expect("write body");
        let verify_body = run(&["snapshot", "verify", "--skip-hash-check"], &body);
        let what = format!("verify --skip-hash-check {}.body", v.name);
        assert_clean_exit(&verify_body, &what);
        let want = if v.body == Body::Valid && v.expect != Expect::EtcdRecord {
            Some(0)
        } else {
            Some(1)
        };
        assert_eq!(
            verify_body.status.code(),
            want,
            "{what}: {}",
            text(&verify_body.stdout)
        );
    }
}

#[test]
fn errors_name_the_page_and_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, needle) in [
        ("branch-child-self", "points at its own page"),
        ("branch-child-ancestor", "multiple references"),
        ("branch-child-meta0", "meta page 0"),
        ("branch-child-beyond-hwm", "out of bounds"),
        ("root-page-zeroed", "all zeros"),
        ("leaf-elem-pos-absurd", "runs past the end of the page"),
        ("leaf-count-absurd", "does not fit"),
        ("k8s-leaf-keys-out-of-order", "needs to be >"),
        ("branch-separator-violation", "ancestor"),
        ("root-page-id-mismatch", "identifies the page as"),
        ("inline-bucket-nested-flag", "nested bucket"),
        ("meta-hwm-beyond-file", "truncated"),
        ("overflow-past-eof", "overflow of"),
        ("branch-child-meta0", "(stack: [... 823 0])"),
        (
            "freelist-lists-live-overflow",
            "reachable freed (overflow page of page",
        ),
        ("freelist-lists-itself", "lists itself as free"),
        ("freelist-lists-live-leaf", "reachable freed"),
        ("meta-page-size-disagree", "declares page size 8192"),
        ("nested-bucket-ancestor", "multiple references"),
    ] {
        let v = corrupt::variant(name);
        let path = v.write_to(dir.path());
        let o = run(&["snapshot", "status"], &path);
        let err = text(&o.stderr);
        assert!(err.contains(needle), "{name}: expected {needle:?} in {err}");
    }
}

/// Where Go bbolt 1.3.6 (the oracle we can build here) says OK but our check
/// does not, and why: checks that bbolt added in 1.3.7/1.4, or that no Go
/// version makes.
const STRICTER_THAN_GO_1_3_6: [(&str, &str); 11] = [
    (
        "freelist-lists-live-overflow",
        "Go compares only the first page of a run with the freelist",
    ),
    (
        "freelist-lists-itself",
        "Go never compares the freelist's own pages with the free set",
    ),
    (
        "meta-page-size-disagree",
        "Go reads with meta 0's page size and never looks at the size the active meta declares",
    ),
    (
        "root-page-id-mismatch",
        "page id validation on fetch: bbolt >= 1.3.7 panics",
    ),
    ("leaf-keys-out-of-order", "key order: bbolt >= 1.3.7 Check"),
    (
        "k8s-leaf-keys-out-of-order",
        "key order: bbolt >= 1.3.7 Check",
    ),
    (
        "branch-keys-out-of-order",
        "key order: bbolt >= 1.3.7 Check",
    ),
    (
        "branch-separator-violation",
        "key order across branches: bbolt >= 1.3.7 Check",
    ),
    (
        "inline-bucket-nested-flag",
        "Go never checks inside inline buckets",
    ),
    (
        "inline-bucket-bad-flags",
        "Go never checks inside inline buckets (its cursor panics later)",
    ),
    (
        "inline-bucket-bad-count",
        "Go never checks inside inline buckets (its cursor panics later)",
    ),
];

/// Pages beyond the end of the file: Go maps past EOF and reads zeros or
/// crashes; it does not compare the high-water mark with the file length.
const NOT_CHECKED_BY_GO: [(&str, &str); 1] = [(
    "meta-hwm-beyond-file",
    "Go does not compare the high-water mark with the file size",
)];

fn ours_ok(body: &[u8]) -> bool {
    match Db::open(body) {
        Ok(db) => db.size() <= body.len() as u64 && check(db).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn structural_check_agrees_with_go_bbolt() {
    require_tool!(tools::boltcheck());
    let mut compared = 0;
    for name in fixtures::SAVED_SNAPSHOTS
        .iter()
        .chain(fixtures::SAVED_SNAPSHOTS_35_ONLY.iter())
        .chain(fixtures::MEMBER_DBS.iter())
    {
        let bytes = fixtures::read_snapshot(name);
        let body = corrupt::strip_trailer(&bytes);
        let go = oracles::run_boltcheck_bytes("check", body);
        assert!(
            go.success() && go.stdout.trim() == "OK",
            "{name}: {}",
            go.stdout
        );
        assert!(ours_ok(body), "{name}");
        compared += 1;
    }
    for v in corrupt::corpus() {
        let body = v.body_bytes();
        let go = oracles::run_boltcheck_bytes("check", body);
        if go.panicked() || go.timed_out {
            continue;
        }
        let go_ok = go.success() && go.stdout.trim() == "OK";
        let ours = ours_ok(body);
        let reason = STRICTER_THAN_GO_1_3_6
            .iter()
            .chain(NOT_CHECKED_BY_GO.iter())
            .find(|(n, _)| *n == v.name);
        match reason {
            Some((_, why)) => {
                assert!(
                    go_ok && !ours,
                    "{}: expected Go OK and ours not ({why})",
                    v.name
                )
            }
            None => assert_eq!(go_ok, ours, "{}: Go says {:?}", v.name, go.stdout),
        }
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} files compared");
}

#[test]
#[ignore]
fn print_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in corrupt::corpus() {
        let path = v.write_to(dir.path());
        let o = run(&["snapshot", "status"], &path);
        println!("== {}\n{}", v.name, text(&o.stderr));
    }
}

fn restore_into(file: &Path, parent: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "restore"])
        .arg(file)
        .arg("--data-dir")
        .arg(parent.join("d.etcd"))
        .output()
        .expect("run etcdsnap")
}

/// Records etcd would crash on, and the line verify and restore print.
const ETCD_ERRORS: [(&str, &str); 7] = [
    (
        "auth-revision-short",
        "bucket auth key \"authRevision\": malformed value (hex)000001: expected 8 bytes (etcd panics at boot",
    ),
    (
        "alarm-not-alarm-member",
        "bucket alarm key (hex)0880: value does not decode as etcdserverpb.AlarmMember: unexpected EOF",
    ),
    (
        "meta-compact-rev-short",
        "bucket meta key \"scheduledCompactRev\": malformed value",
    ),
    (
        "cluster-downgrade-not-json",
        "bucket cluster key \"downgrade\"",
    ),
    (
        "auth-user-not-user",
        "bucket authUsers key \"alice\": value does not decode as authpb.User",
    ),
    ("auth-role-not-role", "value does not decode as authpb.Role"),
    ("lease-not-lease", "value does not decode as leasepb.Lease"),
];

/// Findings restore replaces or etcd tolerates: warnings, and the restore goes ahead.
const ETCD_WARNINGS: [(&str, &str); 2] = [
    (
        "members-record-malformed",
        "value is not a member record with this ID (restore replaces this bucket)",
    ),
    (
        "key-bucket-missing",
        "\"key\": bucket is missing (etcd creates it at boot)",
    ),
];

#[test]
fn records_that_crash_etcd_fail_verify_and_restore_with_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, needle) in ETCD_ERRORS {
        let v = corrupt::variant(name);
        assert_eq!(v.expect, Expect::EtcdRecord, "{name}");
        let path = v.write_to(dir.path());
        let o = run(&["snapshot", "verify"], &path);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o.stdout));
        assert!(
            text(&o.stdout).contains(needle),
            "{name}: {}",
            text(&o.stdout)
        );
        let parent = dir.path().join(format!("{name}.out"));
        std::fs::create_dir(&parent).expect("parent");
        let o = restore_into(&path, &parent);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.starts_with("Error: snapshot data check failed.") && err.contains(needle),
            "{name}: {err}"
        );
        assert!(
            fixtures::names_in(&parent).is_empty(),
            "{name}: left behind"
        );
    }
}

#[test]
fn what_restore_replaces_or_etcd_tolerates_is_a_warning_and_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, needle) in ETCD_WARNINGS {
        let v = corrupt::variant(name);
        assert_eq!(v.expect, Expect::Accept, "{name}");
        let path = v.write_to(dir.path());
        let o = run(&["snapshot", "verify"], &path);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stdout));
        let warned = |err: &str| {
            err.lines()
                .any(|l| l.starts_with("warning: ") && l.contains(needle))
        };
        assert!(warned(&text(&o.stderr)), "{name}: {}", text(&o.stderr));
        let parent = dir.path().join(format!("{name}.out"));
        std::fs::create_dir(&parent).expect("parent");
        let o = restore_into(&path, &parent);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        assert!(warned(&text(&o.stderr)), "{name}: {}", text(&o.stderr));
        let db = parent.join("d.etcd/member/snap/db");
        let o = run(&["snapshot", "verify", "--skip-hash-check"], &db);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: restored db: {}",
            text(&o.stdout)
        );
    }
}

#[test]
fn freed_pages_in_use_are_refused_by_restore_with_the_page_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, line) in [
        (
            "freelist-lists-live-overflow",
            "reachable freed (overflow page of page",
        ),
        ("freelist-lists-itself", "lists itself as free"),
        ("freelist-lists-live-leaf", "reachable freed"),
    ] {
        let path = corrupt::variant(name).write_to(dir.path());
        let v = run(&["snapshot", "verify"], &path);
        let first = text(&v.stdout).lines().next().unwrap_or("").to_owned();
        assert!(
            first.starts_with("page ") && first.contains(line),
            "{name}: {first}"
        );
        let parent = dir.path().join(format!("{name}.out"));
        std::fs::create_dir(&parent).expect("parent");
        let o = restore_into(&path, &parent);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = text(&o.stderr);
        assert!(
            err.starts_with("Error: snapshot file integrity check failed.") && err.contains(&first),
            "{name}: {err}"
        );
        assert!(
            fixtures::names_in(&parent).is_empty(),
            "{name}: left behind"
        );
    }
}

/// Opens every nested bucket below `b` through the public API; panics if the walk does
/// not end within `budget` opens.
fn walk_every_bucket(b: &etcdsnap::bolt::Bucket<'_>, budget: &mut u32) {
    for e in b.iter() {
        let Ok(e) = e else { return };
        if !e.is_bucket() {
            continue;
        }
        *budget = budget.checked_sub(1).expect("the walk does not end");
        if let Ok(Some(child)) = b.bucket(e.key) {
            walk_every_bucket(&child, budget);
        }
    }
}

#[test]
fn a_recursive_walk_of_every_variant_ends() {
    for v in corrupt::corpus() {
        let Ok(db) = Db::open(v.body_bytes()) else {
            continue;
        };
        let mut budget = 10_000;
        walk_every_bucket(&db.root(), &mut budget);
    }
    // The cycle is there, and refused: the nested bucket's root is its parent's.
    let v = corrupt::variant("nested-bucket-ancestor");
    let db = Db::open(v.body_bytes()).expect("open");
    let key = db.root().bucket(b"key").expect("read").expect("key bucket");
    let nested = key
        .iter()
        .filter_map(Result::ok)
        .find(|e| e.is_bucket())
        .expect("the nested bucket entry");
    let err = key.bucket(nested.key).expect_err("the cycle is refused");
    assert!(
        err.to_string()
            .contains("already the root of another bucket"),
        "{err}"
    );
}

/// Writes every variant's bbolt body into `$FUZZ_SEEDS` (used by
/// `fuzz/seed.sh` to seed `bolt_open_check`).
#[test]
#[ignore = "writes fuzz seeds; run by fuzz/seed.sh"]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("FUZZ_SEEDS") else {
        panic!("set FUZZ_SEEDS to the directory to write");
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the seed dir");
    for v in corrupt::corpus() {
        std::fs::write(dir.join(format!("corrupt-{}", v.name)), v.body_bytes())
            .expect("write a seed");
    }
}
