//! `etcdsnap snapshot save` against real etcd 3.5.1 and 3.4.23 on
//! loopback, over plain HTTP, over TLS with client certificates, and with
//! auth: the file saved is the one `etcdctl snapshot save` writes from
//! the same quiesced server, and the output is etcdctl's.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::cmd::{self, CmdOutput};
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::tls;
use support::tools::{self, EtcdVersion, etcd_child_env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Tls,
    Auth,
}

fn etcdsnap(args: &[String]) -> CmdOutput {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    etcd_child_env(&mut c);
    c.args(args);
    cmd::run(&mut c, Duration::from_secs(120))
}

/// A value of `n` bytes that does not compress to nothing.
fn value(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| char::from(b'a' + ((i * 7 + seed * 13 + i / 5) % 26) as u8))
        .collect()
}

/// Enough data for several 32 KiB chunks.
fn load(ctl: &Etcdctl) {
    ctl.put("name", "jormun");
    for i in 0..12 {
        ctl.put(&format!("/data/{i:02}"), &value(i, 16 * 1024));
    }
}

/// Users `root` (password `rootpw`) and `alice` (no role), auth on.
fn enable_auth(ctl: &Etcdctl) -> Etcdctl {
    ctl.ok(&["role", "add", "root"]);
    ctl.ok(&["user", "add", "root:rootpw"]);
    ctl.ok(&["user", "grant-role", "root", "root"]);
    ctl.ok(&["user", "add", "alice:alicepw"]);
    ctl.ok(&["auth", "enable"]);
    ctl.clone().user("root:rootpw")
}

struct Setup {
    cluster: EtcdCluster,
    ctl: Etcdctl,
    certs: tls::Certs,
    dir: tempfile::TempDir,
}

fn start(v: EtcdVersion, mode: Mode) -> Option<Setup> {
    let bins = tools::require(tools::etcd_suite(v))?;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tls::make(dir.path());
    let mut spec = ClusterSpec::new(&bins, 1);
    if mode == Mode::Tls {
        spec = spec.tls(&certs);
    }
    let cluster = spec.start();
    let mut ctl = cluster.ctl_member(0);
    load(&ctl);
    if mode == Mode::Auth {
        ctl = enable_auth(&ctl);
    }
    Some(Setup {
        cluster,
        ctl,
        certs,
        dir,
    })
}

/// Our global flags for `mode` (the same ones etcdctl was given).
fn flags(s: &Setup, mode: Mode) -> Vec<String> {
    let mut f = vec![format!("--endpoints={}", s.cluster.endpoint())];
    match mode {
        Mode::Plain => {}
        Mode::Tls => f.extend(s.certs.client_args()),
        Mode::Auth => f.push("--user=root:rootpw".into()),
    }
    f
}

fn matches_etcdctl(v: EtcdVersion, mode: Mode) {
    let Some(s) = start(v, mode) else { return };
    let theirs = s.dir.path().join("etcdctl.db");
    let ours = s.dir.path().join("etcdsnap.db");
    let out = s.ctl.snapshot_save(&theirs);
    out.expect_success("etcdctl snapshot save");

    // Global flags before the subcommand.
    let mut args = flags(&s, mode);
    args.extend(["snapshot".into(), "save".into(), ours.display().to_string()]);
    let out = etcdsnap(&args);
    assert!(out.success(), "{out}");
    assert_eq!(
        out.stdout,
        format!("Snapshot saved at {}\n", ours.display())
    );
    assert_eq!(out.stderr, "", "nothing on stderr without a terminal");

    let a = std::fs::read(&theirs).expect("etcdctl's file");
    let b = std::fs::read(&ours).expect("our file");
    if mode == Mode::Auth && v == EtcdVersion::V35 {
        // Authenticate goes through raft, and 3.5 stores the consistent
        // index of every applied entry: each client's login moves it, so
        // two saves of a 3.5 auth server are never byte-identical,
        // whoever takes them (3.4 does not store it for logins: there the
        // files are identical). Every bucket but that index must match,
        // as Go's bbolt reads them.
        assert_same_but_consistent_index(&theirs, &ours);
    } else {
        assert!(
            a == b,
            "{v:?} {mode:?}: {} vs {} bytes differ",
            a.len(),
            b.len()
        );
    }
    let mode_bits = std::fs::metadata(&ours).expect("stat").permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode_bits.mode() & 0o777, 0o600);

    // Global flags after it, into an existing file (replaced, as etcdctl does).
    let mut args = vec!["snapshot".into(), "save".into(), ours.display().to_string()];
    args.extend(flags(&s, mode));
    let out = etcdsnap(&args);
    assert!(out.success(), "{out}");
    if !(mode == Mode::Auth && v == EtcdVersion::V35) {
        assert!(std::fs::read(&ours).expect("again") == a);
    }
    assert_no_part_files(s.dir.path());
}

/// No `*.part` file is left in `dir`.
fn assert_no_part_files(dir: &Path) {
    let parts: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "left behind: {parts:?}");
}

/// Go's bbolt dump of both files, all buckets, except the `meta` bucket's
/// `consistent_index` (and `term`, 3.5) values.
fn assert_same_but_consistent_index(a: &Path, b: &Path) {
    let dump = |p: &Path| -> Vec<String> {
        let out = support::oracles::run_boltcheck_snapshot("dump", p);
        assert!(out.success(), "{out}");
        out.stdout
            .lines()
            .filter(|l| {
                // `6d657461` = "meta"; keys consistent_index / term.
                !(l.starts_with("6d657461 636f6e73697374656e745f696e646578 ")
                    || l.starts_with("6d657461 7465726d "))
            })
            .map(String::from)
            .collect()
    };
    let (da, db) = (dump(a), dump(b));
    assert!(da.len() > 15, "dump too small: {} entries", da.len());
    let differ: Vec<usize> = (0..da.len().max(db.len()))
        .filter(|&i| da.get(i) != db.get(i))
        .collect();
    assert!(
        differ.is_empty(),
        "entries differ at {differ:?} ({} vs {} entries)",
        da.len(),
        db.len()
    );
}

#[test]
fn v35_plain() {
    matches_etcdctl(EtcdVersion::V35, Mode::Plain);
}

#[test]
fn v35_tls_client_certs() {
    matches_etcdctl(EtcdVersion::V35, Mode::Tls);
}

#[test]
fn v35_auth() {
    matches_etcdctl(EtcdVersion::V35, Mode::Auth);
}

#[test]
fn v34_plain() {
    matches_etcdctl(EtcdVersion::V34, Mode::Plain);
}

#[test]
fn v34_tls_client_certs() {
    matches_etcdctl(EtcdVersion::V34, Mode::Tls);
}

#[test]
fn v34_auth() {
    matches_etcdctl(EtcdVersion::V34, Mode::Auth);
}

/// `--user NAME` without a password on a terminal: the password is asked for there, with
/// etcdctl's prompt; the right one saves, a wrong one fails with etcdctl's error and exit
/// code and leaves no file.
fn password_prompt(v: EtcdVersion) {
    if tools::require(tools::script()).is_none() {
        return;
    }
    let Some(s) = start(v, Mode::Auth) else {
        return;
    };
    let bins = tools::require(tools::etcd_suite(v)).expect("found by start");
    let ep = s.cluster.endpoint().to_string();
    let error_line = |o: &CmdOutput| {
        o.stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("Error:"))
            .map(|l| l.trim_end().to_string())
    };
    for (password, works) in [("rootpw", true), ("wrong", false)] {
        let theirs = s.dir.path().join(format!("etcdctl-{password}.db"));
        let ours = s.dir.path().join(format!("etcdsnap-{password}.db"));
        let typed = format!("{password}\n");
        let t = Etcdctl::new(&bins, vec![ep.clone()]).command(&[
            "--user",
            "root",
            "snapshot",
            "save",
            &theirs.to_string_lossy(),
        ]);
        let t = cmd::run_on_terminal(&t, "Password: ", &typed, Duration::from_secs(120));
        let mut o = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
        etcd_child_env(&mut o);
        o.args(["--endpoints", &ep, "--user", "root", "snapshot", "save"])
            .arg(&ours);
        let o = cmd::run_on_terminal(&o, "Password: ", &typed, Duration::from_secs(120));
        for out in [&t, &o] {
            assert!(out.stdout.starts_with("Password: "), "the prompt: {out}");
            assert_eq!(out.success(), works, "{password}: {out}");
        }
        if works {
            assert!(
                o.stdout
                    .contains(&format!("Snapshot saved at {}\r\n", ours.display())),
                "{o}"
            );
            assert!(theirs.exists() && ours.exists());
        } else {
            // Ours names the endpoint and user before etcd's words, which etcdctl prints alone.
            let (ours_line, theirs_line) = (error_line(&o), error_line(&t));
            let theirs_cause = theirs_line
                .as_deref()
                .and_then(|l| l.strip_prefix("Error: "));
            assert!(
                theirs_cause.is_some_and(|c| ours_line.as_deref().is_some_and(|l| l.ends_with(c))),
                "{o}\n{t}"
            );
            assert_eq!(o.code(), t.code(), "{o}\n{t}");
            assert!(!ours.exists(), "nothing kept after a failed save");
        }
    }
    assert_no_part_files(s.dir.path());
}

#[test]
fn v35_password_prompt() {
    password_prompt(EtcdVersion::V35);
}

#[test]
fn v34_password_prompt() {
    password_prompt(EtcdVersion::V34);
}

/// An embedder's async code may call the synchronous library `save`: from
/// inside a tokio runtime it saves as from anywhere else, instead of
/// panicking on a runtime started within a runtime.
#[test]
fn v35_library_save_from_inside_a_runtime() {
    let Some(s) = start(EtcdVersion::V35, Mode::Plain) else {
        return;
    };
    let out = s.dir.path().join("library.db");
    let opts = etcdsnap::SaveOptions::new(&out).with_endpoints([s.cluster.endpoint()]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let summary = rt
        .block_on(async { etcdsnap::save(&opts, &|_| {}) })
        .expect("save from inside a runtime");
    assert!(summary.status.revision > 1);
    let snap = etcdsnap::Snapshot::open(&out).expect("open");
    assert!(snap.verify(&Default::default()).is_ok());
}
