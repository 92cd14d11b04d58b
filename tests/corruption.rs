//! Corrupted snapshots (the corpus of `tests/support/corrupt.rs`): `verify`
//! and `status` exit non-zero with a clear message and never panic, each
//! damage is caught by the layer it belongs to, and our structural check
//! agrees with Go's bbolt on every file Go can open without crashing.

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
        let want = if v.body == Body::Valid {
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
const STRICTER_THAN_GO_1_3_6: [(&str, &str); 8] = [
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
