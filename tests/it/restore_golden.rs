//! `etcdsnap snapshot restore` against what the real tools wrote for the
//! same arguments (`testdata/golden`, made by etcdctl 3.4.23 and etcdutl
//! 3.5.1, and recorded from etcdutl 3.6.14 and 3.7.1): WAL and `.snap`
//! bytes identical (for 3.6/3.7, to one of the recorded `.snap` variants),
//! same files and modes, same content in every bucket (Go bbolt's own
//! reading), and a db Go checks clean. The 3.6/3.7 cases run with the
//! default `--target-version auto`, which must pick their release from the
//! fixture's storage version.

use crate::support;

use etcdsnap::DataDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{fixtures, oracles, require_tool, tools};

struct Case {
    name: String,
    snapshot: std::path::PathBuf,
    args: Vec<String>,
    /// `None`: the default (auto).
    target: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let dir = fixtures::testdata("golden");
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 12);
    for name in names {
        let args = std::fs::read_to_string(dir.join(&name).join("args")).expect("args");
        let mut lines = args.lines().map(str::to_owned);
        let file = lines.next().expect("snapshot line");
        let snapshot = fixtures::snapshot(&file);
        out.push(Case {
            target: match &name[..3] {
                "v34" => Some("3.4"),
                "v35" => Some("3.5"),
                _ => None,
            },
            name,
            snapshot,
            args: lines.collect(),
        });
    }
    out
}

/// `find . -printf '%M %p'`-style listing, sorted like the golden `tree`.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
        let p = root.join(rel);
        let md = std::fs::symlink_metadata(&p).expect("stat");
        out.push(format!(
            "{} {}",
            mode_string(md.is_dir(), md.permissions().mode()),
            if rel.is_empty() {
                ".".into()
            } else {
                format!("./{rel}")
            }
        ));
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                let n = e.expect("entry").file_name().to_string_lossy().into_owned();
                let child = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                walk(root, &child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

fn mode_string(dir: bool, mode: u32) -> String {
    let mut s = String::from(if dir { "d" } else { "-" });
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn restore(case: &Case, data_dir: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    cmd.args(["-w", "json", "snapshot", "restore"])
        .arg(&case.snapshot)
        .arg("--data-dir")
        .arg(data_dir)
        .args(&case.args);
    if let Some(t) = case.target {
        cmd.args(["--target-version", t]);
    }
    let out = cmd.output().expect("run etcdsnap");
    assert!(
        out.status.success(),
        "{}: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
    let want = match &case.name[..3] {
        "v34" => "3.4",
        "v35" => "3.5",
        "v36" => "3.6",
        _ => "3.7",
    };
    assert_eq!(summary["targetVersion"], want, "{}", case.name);
    let from = if case.target.is_some() {
        "flag"
    } else {
        "auto"
    };
    assert_eq!(summary["targetVersionFrom"], from, "{}", case.name);
}

#[test]
fn wal_snap_and_tree_match_the_real_tools() {
    for case in cases() {
        let golden = fixtures::testdata("golden").join(&case.name);
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("d");
        restore(&case, &data);

        let mut want_tree: Vec<String> = std::fs::read_to_string(golden.join("tree"))
            .expect("tree")
            .lines()
            .map(str::to_owned)
            .collect();
        want_tree.sort();
        assert_eq!(tree(&data), want_tree, "{}: files and modes", case.name);

        let wal_name = "0000000000000000-0000000000000000.wal";
        let layout = DataDir::new(&data);
        let wal = std::fs::read(layout.wal_dir().join(wal_name)).expect("wal");
        let prefix = std::fs::read(golden.join(format!("{wal_name}.prefix"))).expect("prefix");
        let size: usize = std::fs::read_to_string(golden.join("wal-size"))
            .expect("wal-size")
            .trim()
            .parse()
            .expect("number");
        assert_eq!(wal.len(), size, "{}: WAL size", case.name);
        assert_eq!(
            &wal[..prefix.len()],
            &prefix[..],
            "{}: WAL records",
            case.name
        );
        assert!(
            support::files::all_zero(&wal[prefix.len()..]),
            "{}: WAL tail",
            case.name
        );

        // 3.6/3.7: any recorded variant is a correct output.
        let mut variants = Vec::new();
        let mut snap_name = None;
        for e in std::fs::read_dir(&golden).expect("golden") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            if name.ends_with(".snap") {
                snap_name = Some(name.clone());
            }
            if name.ends_with(".snap") || name.contains(".snap.variant-") {
                variants.push(std::fs::read(&p).expect("golden .snap"));
            }
        }
        let snap_name = snap_name.expect("a .snap");
        let ours = std::fs::read(layout.snap_dir().join(&snap_name)).expect("our .snap");
        assert!(
            variants.contains(&ours),
            "{}: .snap matches none of {} recorded variants",
            case.name,
            variants.len()
        );
    }
}

#[test]
fn db_content_matches_and_checks_clean_with_go_bbolt() {
    require_tool!(tools::boltcheck());
    for case in cases() {
        let golden = fixtures::testdata("golden").join(&case.name);
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("d");
        restore(&case, &data);
        let db = DataDir::new(&data).db_path();
        let check = oracles::run_boltcheck("check", &db);
        assert_eq!(check.stdout.trim(), "OK", "{}: {}", case.name, check.stderr);
        let dump = oracles::run_boltcheck("dump", &db);
        assert!(dump.success(), "{}", dump.stderr);
        let key_bucket = "6b6579 ";
        let nonkey: Vec<&str> = dump
            .stdout
            .lines()
            .filter(|l| !l.starts_with(key_bucket))
            .collect();
        let want = std::fs::read_to_string(golden.join("db-nonkey-buckets.dump")).expect("dump");
        assert_eq!(
            nonkey,
            want.lines().collect::<Vec<_>>(),
            "{}: non-key buckets",
            case.name
        );
        // The key bucket is the snapshot's, untouched.
        let src = oracles::run_boltcheck_snapshot("dump", &case.snapshot);
        let src_keys: Vec<&str> = src
            .stdout
            .lines()
            .filter(|l| l.starts_with(key_bucket))
            .collect();
        let our_keys: Vec<&str> = dump
            .stdout
            .lines()
            .filter(|l| l.starts_with(key_bucket))
            .collect();
        assert_eq!(our_keys, src_keys, "{}: key bucket", case.name);
    }
}
