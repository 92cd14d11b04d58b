//! `etcdsnap snapshot status` against what etcdutl 3.6.14 and 3.7.1 printed
//! (`testdata/status/v36`, `v37`, recorded from the real binaries, which
//! cannot be installed here), in all four formats, on every fixture: those
//! made by 3.4.23 and 3.5.1 and those made by 3.6.14 and 3.7.1 servers.
//! Also what the default (`--target-version auto`) picks for each fixture,
//! and etcdutl 3.5.1 live on the 3.6/3.7 fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{fixtures, oracles, require_tool, tools};

const FORMATS: [&str; 4] = ["simple", "table", "json", "fields"];

fn ours(file: &Path, format: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "status"])
        .arg(file)
        .args(["-w", format])
        .args(extra)
        .output()
        .expect("run etcdsnap");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every fixture: (name, path). The 3.6/3.7 `k8s` ones come from the shared
/// recordings (a skip locally when absent, a failure under CI).
fn every_fixture() -> Vec<(String, std::path::PathBuf)> {
    let mut names: Vec<&str> = fixtures::SAVED_SNAPSHOTS
        .iter()
        .chain(fixtures::MEMBER_DBS.iter())
        .chain(fixtures::NEW_FIXTURES.iter())
        .copied()
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = fixtures::snapshot(name);
        out.push((name.to_string(), path));
    }
    out
}

fn recorded(version: &str, name: &str, format: &str) -> String {
    let p = fixtures::testdata(&format!("status/{version}/{name}.{format}"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn matches_recorded(version: &str, target: &str) {
    let all = every_fixture();
    assert!(all.len() >= 20, "fixtures: {}", all.len());
    for (name, path) in all {
        for format in FORMATS {
            let want = recorded(version, &name, format);
            let (ok, out, err) = ours(&path, format, &["--target-version", target]);
            assert!(ok, "{name} -w {format}: {err}");
            assert_eq!(out, want, "{name} -w {format} as {target}");
        }
    }
}

#[test]
fn matches_etcdutl_3_6_14_on_every_fixture() {
    matches_recorded("v36", "3.6");
}

#[test]
fn matches_etcdutl_3_7_1_on_every_fixture() {
    matches_recorded("v37", "3.7");
}

/// Without `--target-version` (auto) the rules follow the file's own
/// storage version: 3.5 for files made by 3.4/3.5 (none recorded), 3.6 and
/// 3.7 for theirs.
#[test]
fn auto_follows_the_storage_version() {
    for (name, path) in every_fixture() {
        let version = if name.contains("-v36") {
            "v36"
        } else if name.contains("-v37") {
            "v37"
        } else {
            "v35"
        };
        for format in FORMATS {
            let want = match version {
                "v35" => {
                    std::fs::read_to_string(fixtures::testdata(&format!("status/{name}.{format}")))
                        .expect("3.5.1 golden")
                }
                v => recorded(v, &name, format),
            };
            let (ok, out, err) = ours(&path, format, &[]);
            assert!(ok, "{name}: {err}");
            assert_eq!(out, want, "{name} -w {format} (auto)");
            let (_, explicit, _) = ours(&path, format, &["--target-version", "auto"]);
            assert_eq!(explicit, out, "{name}: --target-version auto");
        }
    }
}

/// The 3.5 rules on files made by 3.6/3.7 servers, against etcdutl 3.5.1
/// run now.
#[test]
fn target_3_5_matches_live_etcdutl_3_5_1_on_new_fixtures() {
    require_tool!(tools::etcdutl35());
    for (name, path) in every_fixture() {
        if !(name.contains("-v36") || name.contains("-v37")) {
            continue;
        }
        for format in FORMATS {
            let theirs = oracles::run_etcdutl_status(&path, format);
            assert!(theirs.success(), "etcdutl: {}", theirs.stderr);
            let (ok, out, err) = ours(&path, format, &["--target-version", "3.5"]);
            assert!(ok, "{name}: {err}");
            assert_eq!(out, theirs.stdout, "{name} -w {format}");
        }
    }
}
