//! `snapshot save` to object storage from a live etcd 3.5.1, against a real S3-compatible
//! server (s3s-fs 0.14.1 on loopback): the stored object (decompressed) is byte for byte what
//! etcdctl saves; a server killed mid-upload or bad keys leave nothing under the key and no
//! spool file; and the round trip ends in a booted cluster: save to `s3://.../snap.db.zst`,
//! restore three members from that URL, boot them, read the data back.

use crate::support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::etcd::{ClusterSpec, EtcdCluster};
use support::s3::S3Server;
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{EtcdBins, EtcdVersion};
use support::{cmd, tools};

const BUCKET: &str = "backups";

struct Setup {
    s3: S3Server,
    etcd: EtcdCluster,
    bins: EtcdBins,
    dir: tempfile::TempDir,
}

/// s3s-fs and a one-member etcd 3.5.1 holding `mib` MiB of values that do not compress.
fn setup(mib: usize) -> Option<Setup> {
    let bins = tools::require(tools::etcd_suite(EtcdVersion::V35))?;
    let s3bin = tools::require(tools::s3s_fs())?;
    let etcd = SnapshotMaker::new(&bins).start();
    let mut l = Loader::new(etcd.endpoint());
    let kvs = (0..mib * 16).map(|i| {
        let v = support::corrupt::pseudo_random_bytes(i as u64, 64 * 1024);
        (format!("/registry/blobs/{i:06}").into_bytes(), v)
    });
    l.put_all_parallel(4, kvs);
    l.put(b"/registry/hello", b"world");
    l.flush();
    Some(Setup {
        s3: S3Server::start(&s3bin, BUCKET),
        etcd,
        bins,
        dir: tempfile::tempdir().expect("tempdir"),
    })
}

fn url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// `etcdsnap snapshot save` against the setup's etcd and s3s-fs, with its spool in `tmp`.
fn save_cmd(s: &Setup, dest: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    s.s3.configure(&mut c);
    c.env("TMPDIR", s.dir.path())
        .args(["snapshot", "save", "--endpoints", s.etcd.endpoint(), dest])
        .args(extra);
    c
}

fn unpack(key: &str, stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if key.ends_with(".zst") {
        zstd::stream::read::Decoder::new(stored)
            .expect("zstd")
            .read_to_end(&mut out)
            .expect("unzstd");
    } else if key.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(stored)
            .read_to_end(&mut out)
            .expect("gunzip");
    } else {
        out = stored.to_vec();
    }
    out
}

/// Files left in the setup's temp dir (the spool must be gone).
fn leftovers(s: &Setup) -> Vec<String> {
    support::fixtures::names_in(s.dir.path())
        .into_iter()
        .filter(|n| n != "etcdctl.db")
        .collect()
}

#[test]
fn objects_saved_to_s3_are_what_etcdctl_saves() {
    let Some(s) = setup(12) else { return };
    let theirs = s.dir.path().join("etcdctl.db");
    s.etcd
        .ctl()
        .snapshot_save(&theirs)
        .expect_success("etcdctl snapshot save");
    let want = std::fs::read(&theirs).expect("etcdctl's file");
    assert!(want.len() > 12 << 20, "{} bytes", want.len());
    for key in ["plain/snap.db", "zstd/snap.db.zst", "gzip/snap.db.gz"] {
        let out = cmd::run(
            &mut save_cmd(
                &s,
                &url(key),
                &["--upload-part-size", "5", "--compression-level", "1"],
            ),
            Duration::from_secs(120),
        );
        assert!(out.success(), "{key}: {out}");
        assert_eq!(out.stdout, format!("Snapshot saved at {}\n", url(key)));
        let stored = std::fs::read(s.s3.object_file(BUCKET, key)).expect("stored object");
        let got = unpack(key, &stored);
        assert!(
            got == want,
            "{key}: {} vs {} bytes differ",
            got.len(),
            want.len()
        );
    }
    assert_eq!(s.s3.pending_uploads(), Vec::<String>::new());
    assert_eq!(leftovers(&s), Vec::<String>::new(), "spool files left");
}

#[test]
fn a_server_killed_mid_upload_fails_the_save_and_leaves_nothing() {
    let Some(mut s) = setup(48) else { return };
    let key = "etcd/snap.db";
    let mut child = save_cmd(&s, &url(key), &["--upload-part-size", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdsnap");
    // As soon as the first part is on the server, the server dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.s3.pending_uploads().iter().any(|n| n.contains(".part-")) {
        assert!(Instant::now() < deadline, "no part reached the server");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the save ended before any part landed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    s.s3.kill();
    let (status, timed_out) = cmd::wait_deadline(&mut child, Duration::from_secs(120));
    assert!(!timed_out, "the save hung after the server died");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert_eq!(status.and_then(|s| s.code()), Some(5), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("Error: {}: ", s.etcd.endpoint())),
        "{err}"
    );
    assert!(err.contains(&url(key)), "{err}");
    s.s3.restart();
    assert_eq!(
        s.s3.objects(BUCKET),
        Vec::<String>::new(),
        "nothing under the key"
    );
    assert_eq!(leftovers(&s), Vec::<String>::new(), "spool files left");
}

#[test]
fn a_save_killed_mid_upload_leaves_no_spool_and_no_object() {
    let Some(s) = setup(48) else { return };
    let key = "etcd/snap.db.zst";
    let mut child = save_cmd(&s, &url(key), &["--upload-part-size", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcdsnap");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.s3.pending_uploads().iter().any(|n| n.contains(".part-")) {
        assert!(Instant::now() < deadline, "no part reached the server");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the save ended before any part landed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL: no chance to clean up. The spool has no name, the upload is never completed.
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(
        leftovers(&s),
        Vec::<String>::new(),
        "a spool file outlived the process"
    );
    assert_eq!(
        s.s3.objects(BUCKET),
        Vec::<String>::new(),
        "nothing under the key"
    );
}

#[test]
fn bad_keys_fail_the_save_before_anything_is_stored() {
    let Some(s) = setup(1) else { return };
    let mut c = save_cmd(&s, &url("snap.db.zst"), &[]);
    c.env("AWS_SECRET_ACCESS_KEY", "wrong");
    let out = cmd::run(&mut c, Duration::from_secs(60));
    assert_eq!(out.code(), Some(5), "{out}");
    assert_eq!(
        out.stderr,
        format!(
            "Error: {}: start {}: upload: 403 Forbidden: SignatureDoesNotMatch\n",
            s.etcd.endpoint(),
            url("snap.db.zst")
        )
    );
    assert_eq!(s.s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(s.s3.pending_uploads(), Vec::<String>::new());
    assert_eq!(leftovers(&s), Vec::<String>::new());
}

/// The values etcd serves under /registry/hello and the blob count.
fn data_of(c: &EtcdCluster) -> (Option<Vec<u8>>, String) {
    let count = c.etcdctl(&[
        "get",
        "/registry/blobs/",
        "--prefix",
        "--count-only",
        "-w",
        "fields",
    ]);
    let count = count
        .lines()
        .find(|l| l.starts_with("\"Count\""))
        .unwrap_or_default()
        .to_string();
    (c.ctl().get("/registry/hello"), count)
}

#[test]
fn save_to_s3_zst_restore_three_members_from_the_url_and_boot() {
    let Some(s) = setup(2) else { return };
    let before = data_of(&s.etcd);
    assert_eq!(before.0.as_deref(), Some(&b"world"[..]));
    assert!(before.1.ends_with(" 32"), "{:?}", before.1);
    let dest = url("etcd/snap-{time}.db.zst");
    let out = cmd::run(&mut save_cmd(&s, &dest, &[]), Duration::from_secs(120));
    assert!(out.success(), "{out}");
    let saved = out
        .stdout
        .strip_prefix("Snapshot saved at ")
        .and_then(|r| r.strip_suffix('\n'))
        .expect("saved at")
        .to_string();
    assert!(
        saved.starts_with(&url("etcd/snap-2")) && saved.ends_with("Z.db.zst"),
        "{saved}"
    );

    let spec = ClusterSpec::new(&s.bins, 3).token("from-s3");
    let out_dir = spec.dir.join("restored");
    std::fs::create_dir(&out_dir).expect("mkdir");
    for m in &spec.members {
        let dir = out_dir.join(format!("{}.etcd", m.name));
        let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
        s.s3.configure(&mut c);
        c.args(["snapshot", "restore", &saved, "--name", &m.name])
            .args(["--initial-cluster", &spec.initial_cluster()])
            .args(["--initial-cluster-token", "from-s3"])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .arg("--data-dir")
            .arg(&dir);
        let o = cmd::run(&mut c, Duration::from_secs(120));
        assert!(o.success(), "{o}");
    }
    let names: Vec<String> = spec.members.iter().map(|m| m.name.clone()).collect();
    let mut spec = spec;
    for (i, n) in names.iter().enumerate() {
        spec = spec.data_dir(i, &out_dir.join(format!("{n}.etcd")));
    }
    let restored = spec.start();
    let members = restored.etcdctl_json(&["member", "list", "-w", "json"]);
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(data_of(&restored), before, "the data came back");
    restored.ctl().put("/after-restore", "ok");
    assert_eq!(
        restored.ctl().get("/after-restore").as_deref(),
        Some(&b"ok"[..])
    );
}

/// The spool for the save's check goes to $TMPDIR: when that is unusable, the save fails
/// cleanly, before anything is uploaded.
#[test]
fn an_unusable_tmpdir_fails_the_save_cleanly() {
    let Some(s) = setup(1) else { return };
    let mut c = save_cmd(&s, &url("x.db"), &[]);
    c.env("TMPDIR", s.dir.path().join("missing"));
    let out = cmd::run(&mut c, Duration::from_secs(60));
    assert_eq!(out.code(), Some(5), "{out}");
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
    assert_eq!(s.s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(s.s3.pending_uploads(), Vec::<String>::new());
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started and has not reaped.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// SIGINT, SIGTERM, SIGHUP (a dropped SSH session) and SIGQUIT while a
/// save uploads: the multipart upload is aborted (s3s-fs keeps no part),
/// no object appears, no spool is left, one line says what was done, and
/// the exit code is 128 + the signal. (SIGHUP and SIGQUIT used to kill
/// the save and leave the upload open on the server.)
#[test]
fn signals_during_an_upload_abort_it() {
    let Some(s) = setup(24) else { return };
    let etcd_pid = s.etcd.members[0].pid();
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
    ] {
        let key = format!("etcd/{name}.db");
        let child = save_cmd(&s, &url(&key), &["--upload-part-size", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start etcdsnap");
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.s3.pending_uploads().is_empty() {
            assert!(Instant::now() < deadline, "{name}: no upload started");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Hold etcd still so that the save cannot finish first.
        signal(etcd_pid, libc::SIGSTOP);
        signal(child.id(), sig);
        let out = child.wait_with_output().expect("wait");
        signal(etcd_pid, libc::SIGCONT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + sig), "{name}: {err}");
        assert_eq!(
            err,
            format!(
                "Error: {}: interrupted by {name}, nothing saved (aborted the multipart upload to {})\n",
                s.etcd.endpoint(),
                url(&key)
            ),
            "{name}"
        );
        assert_eq!(s.s3.objects(BUCKET), Vec::<String>::new(), "{name}");
        assert_eq!(s.s3.pending_uploads(), Vec::<String>::new(), "{name}");
        assert_eq!(leftovers(&s), Vec::<String>::new(), "{name}: spool left");
    }
}

/// A full $TMPDIR: the error names the spool (what it is for) and the
/// directory, not `/proc/self/fd/N`, and nothing is left on the server.
#[test]
fn a_full_tmpdir_names_the_spool_and_the_directory() {
    let Some(s) = setup(12) else { return };
    let mnt = s.dir.path().join("small-tmp");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|st| st.success());
    let out = if mounted {
        let mut c = save_cmd(&s, &url("full.db"), &[]);
        c.env("TMPDIR", &mnt);
        let out = cmd::run(&mut c, Duration::from_secs(120));
        let left = support::fixtures::names_in(&mnt);
        let _ = Command::new("umount").arg(&mnt).status();
        assert_eq!(left, Vec::<String>::new(), "spool left in $TMPDIR");
        assert!(out.stderr.contains("no space left on device"), "{out}");
        out
    } else {
        // No tmpfs here: a file size limit fails the spool's writes the
        // same way (SIGXFSZ ignored, as for a full disk).
        println!("note: cannot mount a tmpfs here; a file size limit stands in for it");
        let base = save_cmd(&s, &url("full.db"), &[]);
        let mut line = format!("trap '' XFSZ; exec {}", env!("CARGO_BIN_EXE_etcdsnap"));
        for a in base.get_args() {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        let mut c = Command::new("prlimit");
        s.s3.configure(&mut c);
        c.env("TMPDIR", &mnt)
            .args(["--fsize=4000000", "sh", "-c", &line]);
        let out = cmd::run(&mut c, Duration::from_secs(120));
        assert!(out.stderr.contains("file too large"), "{out}");
        out
    };
    println!("{}", out.stderr.trim());
    assert_eq!(out.code(), Some(5), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "write the spool (the local copy checked before the upload completes, as big as the snapshot) in $TMPDIR {}: ",
            mnt.display()
        )),
        "{out}"
    );
    assert!(!out.stderr.contains("/proc/self/fd"), "{out}");
    assert_eq!(s.s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(s.s3.pending_uploads(), Vec::<String>::new());
}
