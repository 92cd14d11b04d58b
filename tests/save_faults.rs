//! Every way a save can fail leaves nothing behind: no `FILE`, no
//! `FILE.part`, an older `FILE` untouched; one line on stderr naming the
//! endpoint and the cause; a non-zero exit. Real etcd 3.5.1 on loopback
//! (and 3.4.23 where the failure depends on the server).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::cmd::{self, CmdOutput};
use support::etcd::{ClusterSpec, EtcdCluster};
use support::snapmaker::Loader;
use support::tools::{self, EtcdVersion, scrub_etcd_env};
use support::{ports, tls};

const BIN: &str = env!("CARGO_BIN_EXE_etcdsnap");
const OLD: &[u8] = b"an older backup that must survive";

fn etcdsnap_cmd(args: &[String]) -> Command {
    let mut c = Command::new(BIN);
    scrub_etcd_env(&mut c);
    c.args(args);
    c
}

fn etcdsnap(args: &[String]) -> CmdOutput {
    cmd::run(&mut etcdsnap_cmd(args), Duration::from_secs(60))
}

/// A directory holding an older `snap.db`.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("snap.db");
    std::fs::write(&f, OLD).expect("old backup");
    (d, f)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One `Error:` line naming the endpoint and containing `cause`; exit
/// `code`; only the old `snap.db` left in `dir` (plus `keep`).
#[track_caller]
fn assert_clean_failure(out: &CmdOutput, endpoint: &str, cause: &str, code: i32, dir: &Path, keep: &[&str]) {
    assert_eq!(out.code(), Some(code), "{out}");
    assert_eq!(out.stdout, "", "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {out}");
    let line = lines[0];
    assert!(line.starts_with(&format!("Error: {endpoint}: ")), "{line}");
    assert!(line.contains(cause), "want {cause:?} in {line}");
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.push("snap.db".into());
    want.sort();
    assert_eq!(names(dir), want, "left behind");
    assert_eq!(std::fs::read(dir.join("snap.db")).expect("old"), OLD);
}

fn save_args(endpoint: &str, extra: &[String], file: &Path) -> Vec<String> {
    let mut a = vec![format!("--endpoints={endpoint}")];
    a.extend(extra.iter().cloned());
    a.extend(["snapshot".into(), "save".into(), file.display().to_string()]);
    a
}

#[test]
fn unreachable_endpoint_fails_within_the_dial_timeout() {
    let (dir, file) = workdir();
    let ep = format!("http://127.0.0.1:{}", ports::free_port());
    let start = Instant::now();
    let out = etcdsnap(&save_args(&ep, &["--dial-timeout=1s".into()], &file));
    let took = start.elapsed();
    assert_clean_failure(&out, &ep, "context deadline exceeded", 5, dir.path(), &[]);
    assert!(out.stderr.contains("connection refused"), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

fn tls_cluster() -> Option<(EtcdCluster, tls::Certs, tempfile::TempDir)> {
    let bins = tools::require(tools::etcd_suite(EtcdVersion::V35))?;
    let cdir = tempfile::tempdir().expect("tempdir");
    let certs = tls::make(cdir.path());
    let cluster = ClusterSpec::new(&bins, 1).tls(&certs).start();
    cluster.ctl().put("k", "v");
    Some((cluster, certs, cdir))
}

#[test]
fn tls_failures() {
    let Some((cluster, certs, _cdir)) = tls_cluster() else { return };
    let ep = cluster.endpoint().to_string();
    let p = |p: &Path| p.display().to_string();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "wrong CA",
            vec![
                format!("--cacert={}", p(&certs.other_ca)),
                format!("--cert={}", p(&certs.client)),
                format!("--key={}", p(&certs.client_key)),
            ],
            "UnknownIssuer",
        ),
        (
            "no client certificate",
            vec![format!("--cacert={}", p(&certs.ca))],
            "client certificate",
        ),
        (
            "plain HTTP to a TLS port",
            vec!["--dial-timeout=1s".into()],
            "",
        ),
    ];
    for (what, flags, cause) in cases {
        let (dir, file) = workdir();
        let target = if what.starts_with("plain") {
            ep.replace("https://", "http://")
        } else {
            ep.clone()
        };
        let start = Instant::now();
        let out = etcdsnap(&save_args(&target, &flags, &file));
        assert!(start.elapsed() < Duration::from_secs(15), "{what}: slow");
        println!("{what}: {}", out.stderr.trim());
        assert_clean_failure(&out, &target, cause, 5, dir.path(), &[]);
    }
    // The right certificates work, also with a scheme-less endpoint and
    // --insecure-skip-tls-verify instead of the CA.
    for flags in [
        certs.client_args(),
        vec![
            "--insecure-skip-tls-verify".into(),
            format!("--cert={}", p(&certs.client)),
            format!("--key={}", p(&certs.client_key)),
        ],
    ] {
        let (dir, file) = workdir();
        let bare = ep.trim_start_matches("https://");
        let out = etcdsnap(&save_args(bare, &flags, &file));
        assert!(out.success(), "{out}");
        assert_eq!(names(dir.path()), vec!["snap.db"]);
        assert_ne!(std::fs::read(&file).expect("new"), OLD);
    }
}

#[test]
fn a_missing_certificate_file_is_a_bad_argument() {
    let (dir, file) = workdir();
    let out = etcdsnap(&save_args(
        "https://127.0.0.1:1",
        &["--cacert=/definitely/not/here.pem".into()],
        &file,
    ));
    assert_eq!(out.code(), Some(128), "{out}");
    assert_eq!(
        out.stderr,
        "Error: open /definitely/not/here.pem: no such file or directory\n"
    );
    assert_eq!(names(dir.path()), vec!["snap.db"]);
}

/// Bad password, unknown user, and a user without the root role.
#[test]
fn auth_failures() {
    for v in [EtcdVersion::V35, EtcdVersion::V34] {
        let Some(bins) = tools::require(tools::etcd_suite(v)) else { return };
        let cluster = ClusterSpec::new(&bins, 1).start();
        let ctl = cluster.ctl();
        ctl.put("k", "v");
        ctl.ok(&["role", "add", "root"]);
        ctl.ok(&["user", "add", "root:rootpw"]);
        ctl.ok(&["user", "grant-role", "root", "root"]);
        ctl.ok(&["user", "add", "alice:alicepw"]);
        ctl.ok(&["auth", "enable"]);
        let ep = cluster.endpoint().to_string();
        for (user, cause) in [
            ("root:wrong", "authentication failed, invalid user ID or password"),
            ("nobody:pw", "authentication failed, invalid user ID or password"),
            ("alice:alicepw", "permission denied"),
        ] {
            let (dir, file) = workdir();
            let out = etcdsnap(&save_args(&ep, &[format!("--user={user}")], &file));
            println!("{v:?} {user}: {}", out.stderr.trim());
            assert_clean_failure(&out, &ep, cause, 5, dir.path(), &[]);
            // etcdctl refuses it too.
            let theirs = dir.path().join("etcdctl.db");
            let e = cluster.ctl().user(user).snapshot_save(&theirs);
            assert!(!e.success(), "{v:?} {user}: etcdctl succeeded");
            assert!(e.stderr.contains(cause), "{v:?} {user}: etcdctl: {e}");
        }
    }
}
