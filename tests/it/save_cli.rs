//! The command line of `snapshot save` and etcdctl's global flags,
//! compared with etcdctl 3.5.1 and 3.4.23 run live with the same
//! arguments and environment, and with the outputs recorded from etcdctl
//! 3.4.23-3.7.1 in testdata/save/.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::cmd::{self, CmdOutput};
use support::etcd::EtcdCluster;
use support::fixtures;
use support::ports;
use support::tools::{self, EtcdBins, EtcdVersion, etcd_child_env};

const BIN: &str = env!("CARGO_BIN_EXE_etcdsnap");

fn run(program: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> CmdOutput {
    let mut c = Command::new(program);
    etcd_child_env(&mut c);
    c.current_dir(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    cmd::run(&mut c, Duration::from_secs(60))
}

fn ours(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> CmdOutput {
    run(Path::new(BIN), dir, env, args)
}

fn recorded(name: &str) -> String {
    std::fs::read_to_string(fixtures::testdata(&format!("save/{name}"))).expect("recorded")
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn last_error_line(s: &str) -> Option<&str> {
    s.lines().rev().find(|l| l.starts_with("Error:"))
}

/// etcdctl 3.4.23-3.7.1 all printed the same for two endpoints: exit 5,
/// this one line, nothing created.
#[test]
fn two_endpoints_as_recorded() {
    for tag in ["v34", "v35", "v36", "v37"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = ours(
            dir.path(),
            &[],
            &[
                "--endpoints",
                "http://127.0.0.1:22379,http://127.0.0.1:22399",
                "snapshot",
                "save",
                "snap.db",
            ],
        );
        assert_eq!(
            out.stderr,
            recorded(&format!("{tag}-two-endpoints.stderr.txt"))
        );
        assert_eq!(
            out.stdout,
            recorded(&format!("{tag}-two-endpoints.stdout.txt"))
        );
        let rc: i32 = recorded(&format!("{tag}-two-endpoints.rc.txt"))
            .trim()
            .parse()
            .expect("rc");
        assert_eq!(out.code(), Some(rc));
        assert!(files(dir.path()).is_empty());
    }
}

/// Recorded: exit 5, `Error: context deadline exceeded`, nothing left.
/// etcdsnap says the same, naming the endpoint and why, within the dial
/// timeout (etcdctl hangs without --command-timeout).
#[test]
fn unreachable_as_recorded() {
    for tag in ["v34", "v35", "v36", "v37"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ep = format!("http://127.0.0.1:{}", ports::free_port());
        let out = ours(
            dir.path(),
            &[],
            &[
                "--endpoints",
                &ep,
                "--command-timeout",
                "3s",
                "snapshot",
                "save",
                "snap.db",
            ],
        );
        let rec = recorded(&format!("{tag}-unreachable.stderr.txt"));
        let want = last_error_line(&rec).expect("recorded error line");
        assert_eq!(want, "Error: context deadline exceeded");
        let got = last_error_line(&out.stderr).expect("our error line");
        assert!(
            got.starts_with(&format!("Error: {ep}: context deadline exceeded")),
            "{got}"
        );
        let rc: i32 = recorded(&format!("{tag}-unreachable.rc.txt"))
            .trim()
            .parse()
            .expect("rc");
        assert_eq!(out.code(), Some(rc));
        assert_eq!(out.stdout, "");
        assert!(files(dir.path()).is_empty());
        assert_eq!(recorded(&format!("{tag}-unreachable.files.txt")), "");
    }
}

/// `ETCDCTL_API=3 etcdsnap --endpoints URL snapshot save snap.db` prints
/// what etcdctl printed (recorded), leaves one file.
#[test]
fn ok_as_recorded_and_as_live_etcdctl() {
    for v in [EtcdVersion::V35, EtcdVersion::V34] {
        let Some(bins) = tools::require(tools::etcd_suite(v)) else {
            return;
        };
        let cluster = EtcdCluster::single(&bins);
        cluster.ctl().put("name", "jormun");
        let dir = tempfile::tempdir().expect("tempdir");
        let ep = cluster.endpoint();
        let args = ["--endpoints", ep, "snapshot", "save", "snap.db"];
        let out = ours(dir.path(), &[("ETCDCTL_API", "3")], &args);
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout, recorded(&format!("{}-ok.stdout.txt", v.tag())));
        assert_eq!(out.stderr, "");
        assert_eq!(files(dir.path()), vec!["snap.db"]);
        let size = std::fs::metadata(dir.path().join("snap.db"))
            .expect("saved")
            .len();
        assert_eq!(size % 512, 32);

        // The ETCDCTL_* variables stand in for the flags.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let out = ours(
            dir2.path(),
            &[
                ("ETCDCTL_ENDPOINTS", ep),
                ("ETCDCTL_DIAL_TIMEOUT", "3s"),
                ("ETCDCTL_FOO", "1"),
            ],
            &["snapshot", "save", "snap.db"],
        );
        assert!(out.success(), "{out}");
        assert_eq!(
            out.stderr,
            "unrecognized environment variable ETCDCTL_FOO=1\n"
        );
        assert_eq!(files(dir2.path()), vec!["snap.db"]);
    }
}

/// Environment, arguments, and whether etcdctl words the error as we do.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, bool);

/// Argument errors: the exit code etcdctl 3.5.1 and 3.4.23 give, and the
/// same `Error:` line where etcdsnap words it the same.
#[test]
fn argument_errors_match_etcdctl() {
    let mut suites: Vec<EtcdBins> = Vec::new();
    for v in [EtcdVersion::V35, EtcdVersion::V34] {
        let Some(b) = tools::require(tools::etcd_suite(v)) else {
            return;
        };
        suites.push(b);
    }
    let dead = format!("127.0.0.1:{}", ports::free_port());
    // (env, args, same error line?)
    let cases: Vec<Case> = vec![
        (vec![], vec!["snapshot", "save"], true),
        (vec![], vec!["snapshot", "save", "a.db", "b.db"], true),
        (
            vec![],
            vec!["--dial-timeout=xx", "snapshot", "save", "a.db"],
            true,
        ),
        (
            vec![],
            vec!["snapshot", "save", "a.db", "--dial-timeout=3x"],
            true,
        ),
        (
            vec![],
            vec!["--insecure-transport=maybe", "snapshot", "save", "a.db"],
            true,
        ),
        (
            vec![],
            vec!["--cacert=/nonexist", "snapshot", "save", "a.db"],
            true,
        ),
        (
            vec![],
            vec!["--cert=/tmp/nonexist", "snapshot", "save", "a.db"],
            true,
        ),
        (vec![], vec!["-w", "xml", "snapshot", "save", "a.db"], true),
        (
            vec![],
            vec!["--endpoints=", "snapshot", "save", "a.db"],
            true,
        ),
        (
            vec![],
            vec!["snapshot", "restore", "x.db", "--keepalive-time=1q"],
            true,
        ),
        // Both a variable and its flag: etcdctl logs it as a fatal line.
        (
            vec![("ETCDCTL_ENDPOINTS", "127.0.0.1:5")],
            vec!["--endpoints", &dead, "snapshot", "save", "a.db"],
            false,
        ),
        (
            vec![("ETCDCTL_API", "4")],
            vec!["snapshot", "save", "a.db"],
            false,
        ),
    ];
    for (env, args, same_text) in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env3: Vec<(&str, &str)> = vec![("ETCDCTL_API", "3")];
        env3.extend(env.iter().copied());
        let env3: Vec<(&str, &str)> = {
            // A later ETCDCTL_API wins.
            let mut m: Vec<(&str, &str)> = Vec::new();
            for (k, v) in env3 {
                m.retain(|(k2, _)| *k2 != k);
                m.push((k, v));
            }
            m
        };
        let o = ours(dir.path(), &env3, args);
        for b in &suites {
            let t = run(&b.etcdctl, dir.path(), &env3, args);
            assert_eq!(
                o.code(),
                t.code(),
                "{args:?} vs etcdctl {}: ours {o}\netcdctl {t}",
                b.version.version()
            );
            let (ol, tl) = (last_error_line(&o.stderr), last_error_line(&t.stderr));
            if *same_text {
                assert_eq!(ol, tl, "{args:?} vs etcdctl {}", b.version.version());
            } else {
                assert!(ol.is_some(), "{args:?}: {o}");
            }
        }
        assert!(
            files(dir.path()).is_empty(),
            "{args:?}: {:?}",
            files(dir.path())
        );
    }
    // etcdctl's fatal texts, in our one line.
    let dir = tempfile::tempdir().expect("tempdir");
    let o = ours(
        dir.path(),
        &[("ETCDCTL_ENDPOINTS", "x:1")],
        &["--endpoints", &dead, "snapshot", "save", "a.db"],
    );
    assert!(o.stderr.contains("conflicting environment variable \"ETCDCTL_ENDPOINTS\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"), "{o}");
    let o = ours(
        dir.path(),
        &[("ETCDCTL_API", "4")],
        &["snapshot", "save", "a.db"],
    );
    assert_eq!(o.stderr, "Error: unsupported API version 4\n");
    let o = ours(
        dir.path(),
        &[("ETCDCTL_API", "2")],
        &["snapshot", "save", "a.db"],
    );
    assert_eq!(o.code(), Some(1));
    assert!(
        o.stderr.starts_with("Error: unsupported API version 2"),
        "{o}"
    );
}

/// Offline commands take the global flags anywhere and ignore them
/// (files they name need not exist); their output does not change.
/// Variables are not read there, so a variable and a flag may both be set.
#[test]
fn global_flags_are_accepted_and_ignored_offline() {
    let snap = fixtures::snapshot("small-v35.db");
    let snap = snap.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let globals = [
        "--endpoints=https://127.0.0.1:1",
        "--cacert=/nonexistent/ca.pem",
        "--cert",
        "/nonexistent/c.pem",
        "--key=/nonexistent/k.pem",
        "--user=root:pw",
        "--password=x",
        "--dial-timeout=3s",
        "--command-timeout=1m",
        "--keepalive-time=2s",
        "--keepalive-timeout=6s",
        "--insecure-skip-tls-verify",
        "--insecure-transport=false",
        "--discovery-srv=example.invalid",
        "--discovery-srv-name=x",
        "--insecure-discovery",
        "--hex",
        "--debug=false",
    ];
    let env = [
        ("ETCDCTL_API", "3"),
        ("ETCDCTL_CACERT", "/also/missing.pem"),
    ];
    for cmd in [
        vec!["snapshot", "status", snap, "-w", "json"],
        vec!["snapshot", "verify", snap],
    ] {
        let plain = ours(dir.path(), &env, &cmd);
        assert!(plain.success(), "{plain}");
        let before: Vec<&str> = globals.iter().copied().chain(cmd.iter().copied()).collect();
        let after: Vec<&str> = cmd.iter().copied().chain(globals.iter().copied()).collect();
        for args in [before, after] {
            let o = ours(dir.path(), &env, &args);
            assert!(o.success(), "{args:?}: {o}");
            assert_eq!(o.stdout, plain.stdout, "{args:?}");
        }
    }
    // restore: the guide's command line, with the global flags after it.
    let data = dir.path().join("m1.etcd");
    let mut args = vec![
        "snapshot",
        "restore",
        snap,
        "--name",
        "m1",
        "--initial-cluster",
        "m1=https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ];
    args.extend(globals);
    let o = ours(dir.path(), &env, &args);
    assert!(o.success(), "{o}");
    assert!(data.join("member/snap/db").is_file());
}
