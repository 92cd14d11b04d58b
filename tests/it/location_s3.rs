//! Snapshots in object storage, against a real S3-compatible server (s3s-fs 0.14.1 on
//! loopback, started and stopped by each test): status, verify and restore read a URL as
//! they read a local file, compressed or not; uploads are multipart and visible only when
//! complete; every failure (bad keys, missing bucket, a server killed mid-transfer, a server
//! error part-way) is one line naming the URL, leaves nothing behind and exits non-zero.

use crate::support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use etcdsnap::{Location, LocationError, LocationOptions};
use support::proxy::{CutProxy, Link};
use support::s3::S3Server;
use support::{fixtures, oracles, tools};

const BUCKET: &str = "backups";
const PART: usize = 5 << 20;

fn server() -> Option<S3Server> {
    let bin = tools::require(tools::s3s_fs())?;
    Some(S3Server::start(&bin, BUCKET))
}

/// Options that reach `s` without touching this process's environment.
fn opts(s: &S3Server) -> LocationOptions {
    let mut o = LocationOptions::default()
        .with_part_size(PART)
        .with_retries(1);
    for (k, v) in s.env() {
        o = o.with_config(k, v);
    }
    o
}

fn url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

fn etcdsnap(s: &S3Server, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    s.configure(&mut c);
    c.args(args).output().expect("run etcdsnap")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `etcdsnap snapshot restore FROM --data-dir DIR EXTRA...`.
fn restore(s: &S3Server, from: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "snapshot",
        "restore",
        from,
        "--data-dir",
        dir.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    etcdsnap(s, &args)
}

/// Puts `bytes` on the server as the object `key`, as its own storage holds objects.
fn put_file(s: &S3Server, key: &str, bytes: &[u8]) {
    let p = s.object_file(BUCKET, key);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("put");
}

fn zstd_bytes(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 19).expect("zstd")
}

fn gzip_bytes(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

/// Every file under `root`: relative name, mode and bytes.
fn tree(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let md = std::fs::metadata(&p).expect("stat");
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if md.is_dir() {
                out.push((rel, md.permissions().mode() & 0o777, Vec::new()));
                stack.push(p);
            } else {
                out.push((
                    rel,
                    md.permissions().mode() & 0o777,
                    std::fs::read(&p).expect("read"),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn status_verify_and_restore_read_urls_as_local_files() {
    let Some(s) = server() else { return };
    let local = fixtures::snapshot("k8s-v35.db");
    let bytes = std::fs::read(&local).expect("fixture");
    put_file(&s, "etcd/k8s.db", &bytes);
    put_file(&s, "etcd/k8s.db.zst", &zstd_bytes(&bytes));
    put_file(&s, "etcd/k8s.db.gz", &gzip_bytes(&bytes));

    let local_status = etcdsnap(
        &s,
        &[
            "snapshot",
            "status",
            "-w",
            "json",
            local.to_str().expect("utf-8"),
        ],
    );
    assert!(local_status.status.success(), "{}", stderr(&local_status));
    // The local answer is etcdutl's (when etcdutl is here to ask).
    if let Some(_etcdutl) = tools::require(tools::etcdutl35()) {
        let theirs = oracles::run_etcdutl_status(&local, "json");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&local_status.stdout).expect("json"),
            oracles::status_json(&theirs)
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let local_dir = tmp.path().join("local.etcd");
    let o = restore(&s, local.to_str().expect("utf-8"), &local_dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want_tree = tree(&local_dir);

    for key in ["etcd/k8s.db", "etcd/k8s.db.zst", "etcd/k8s.db.gz"] {
        let u = url(key);
        let st = etcdsnap(&s, &["snapshot", "status", "-w", "json", &u]);
        assert!(st.status.success(), "{u}: {}", stderr(&st));
        assert_eq!(st.stdout, local_status.stdout, "{u}: status");

        let v = etcdsnap(&s, &["snapshot", "verify", "-w", "json", &u]);
        assert!(v.status.success(), "{u}: {}", stderr(&v));
        let j: serde_json::Value = serde_json::from_slice(&v.stdout).expect("json");
        assert_eq!(j["ok"], true, "{u}");
        assert_eq!(j["file"], u.as_str());
        assert_eq!(j["fileSize"], bytes.len() as u64);
        assert_eq!(j["sha256"]["state"], "verified", "{u}");

        let dir = tmp.path().join(format!("{}.etcd", key.replace('/', "_")));
        let r = restore(&s, &u, &dir, &["-w", "json"]);
        assert!(r.status.success(), "{u}: {}", stderr(&r));
        let j: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
        assert_eq!(j["hashVerified"], true, "{u}");
        assert_eq!(
            tree(&dir),
            want_tree,
            "{u}: restored files differ from the local restore"
        );
    }
}

#[test]
fn a_corrupt_object_is_refused_like_a_corrupt_file() {
    let Some(s) = server() else { return };
    let mut bytes = fixtures::read_snapshot("small-v35.db");
    let n = bytes.len();
    bytes[n - 100] ^= 0x55; // in the last page: the trailer no longer matches
    put_file(&s, "bad.db.zst", &zstd_bytes(&bytes));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m.etcd");
    let o = restore(&s, &url("bad.db.zst"), &dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error: expected sha256 ["),
        "{}",
        stderr(&o)
    );
    assert!(!dir.exists(), "a failed restore left its data dir");
    assert_eq!(fixtures::names_in(tmp.path()), Vec::<String>::new());
    let v = etcdsnap(&s, &["snapshot", "verify", &url("bad.db.zst")]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).contains("sha256 mismatch"));
}

#[test]
fn uploads_are_multipart_and_byte_exact() {
    let Some(s) = server() else { return };
    let o = opts(&s);
    let data = support::corrupt::pseudo_random_bytes(131, 2 * PART + 12_345);
    // Sizes around the part boundary: one short part, exactly one, one and a byte, three.
    for (len, parts) in [
        (1, 1),
        (PART - 1, 1),
        (PART, 1),
        (PART + 1, 2),
        (data.len(), 3),
    ] {
        let key = format!("sizes/{len}.bin");
        let loc = Location::parse_with(&url(&key), &o).expect("parse");
        let mut w = loc.create().expect("create");
        // Uneven writes, as a stream delivers them.
        for c in data[..len].chunks(70_001) {
            w.write_all(c).expect("write");
        }
        w.finish().expect("finish");
        assert_eq!(w.parts(), parts, "{len} bytes");
        assert!(
            !s.object_file(BUCKET, &key).exists(),
            "{len}: visible before publish"
        );
        w.publish().expect("publish");
        assert_eq!(
            std::fs::read(s.object_file(BUCKET, &key)).expect("stored"),
            &data[..len]
        );
    }
    assert_eq!(s.pending_uploads(), Vec::<String>::new());

    // Compressed: what is stored is a zstd (gzip) stream of the snapshot.
    let snap = fixtures::read_snapshot("k8s-v35.db");
    for key in ["c/k8s.db.zst", "c/k8s.db.gz"] {
        let loc = Location::parse_with(&url(key), &o).expect("parse");
        let mut w = loc.create().expect("create");
        w.write_all(&snap).expect("write");
        w.publish().expect("publish");
        let stored = std::fs::read(s.object_file(BUCKET, key)).expect("stored");
        let mut back = Vec::new();
        if key.ends_with(".zst") {
            zstd::stream::read::Decoder::new(&stored[..])
                .expect("zstd")
                .read_to_end(&mut back)
                .expect("unzstd");
        } else {
            flate2::read::MultiGzDecoder::new(&stored[..])
                .read_to_end(&mut back)
                .expect("gunzip");
        }
        assert_eq!(back, snap, "{key}");
        assert!(stored.len() < snap.len(), "{key}: {} bytes", stored.len());
    }
}

#[test]
fn an_unpublished_upload_is_aborted_and_never_visible() {
    let Some(s) = server() else { return };
    let loc = Location::parse_with(&url("etcd/snap.db"), &opts(&s)).expect("parse");
    {
        let mut w = loc.create().expect("create");
        w.write_all(&vec![1u8; 2 * PART + 10]).expect("write");
        w.finish().expect("every part uploaded");
        assert_eq!(s.objects(BUCKET), Vec::<String>::new());
        assert!(
            !s.pending_uploads().is_empty(),
            "the parts are on the server"
        );
    }
    // Dropped without publish: aborted, the server removed the parts.
    assert_eq!(s.objects(BUCKET), Vec::<String>::new());
    assert_eq!(s.pending_uploads(), Vec::<String>::new());
}

/// Waits until the server holds at least one uploaded part.
fn wait_for_a_part(s: &S3Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.pending_uploads().iter().any(|n| n.contains(".part-")) {
        assert!(Instant::now() < deadline, "no part reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_server_killed_mid_upload_fails_the_upload_and_leaves_nothing() {
    let Some(mut s) = server() else { return };
    let u = url("etcd/snap.db");
    let loc = Location::parse_with(&u, &opts(&s)).expect("parse");
    let mut w = loc.create().expect("create");
    let noise = support::corrupt::pseudo_random_bytes(3, PART * 3);
    w.write_all(&noise[..PART * 2]).expect("first parts");
    wait_for_a_part(&s);
    s.kill();
    let e = w
        .write_all(&noise[PART * 2..])
        .and_then(|()| w.finish())
        .expect_err("the server is gone");
    let text = e.to_string();
    assert!(text.starts_with(&format!("{u}: upload: ")), "{text}");
    assert!(!text.contains('\n'), "{text}");
    drop(w);
    s.restart();
    assert_eq!(
        s.objects(BUCKET),
        Vec::<String>::new(),
        "nothing under the key"
    );
    assert!(matches!(
        loc.open_snapshot(&|_| {}),
        Err(LocationError::NotFound { .. })
    ));
}

#[test]
fn a_server_error_part_way_fails_the_upload_and_leaves_nothing() {
    let Some(s) = server() else { return };
    let u = url("etcd/snap.db");
    let loc = Location::parse_with(&u, &opts(&s)).expect("parse");
    let mut w = loc.create().expect("create");
    w.write_all(&vec![7u8; PART + 1]).expect("first part");
    wait_for_a_part(&s);
    // The server forgets the upload: its next answer is an error (NoSuchUpload).
    for n in s.pending_uploads() {
        if n.ends_with(".json") {
            std::fs::remove_file(s.root().join(n)).expect("remove upload record");
        }
    }
    let e = w
        .write_all(&vec![7u8; 2 * PART])
        .and_then(|()| w.publish().map(|_| ()))
        .expect_err("the server refuses");
    let text = e.to_string();
    // s3s-fs answers NoSuchUpload, and may close the connection before
    // reading the part (then the client sees a broken pipe).
    assert!(text.starts_with(&format!("{u}: upload: ")), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(s.objects(BUCKET), Vec::<String>::new());
}

#[test]
fn bad_keys_and_missing_buckets_are_one_clear_line() {
    let Some(s) = server() else { return };
    put_file(&s, "k.db", &fixtures::read_snapshot("small-v35.db"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    s.configure(&mut c);
    let o = c
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args(["snapshot", "status", &url("k.db")])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "Error: {}: download: 403 Forbidden: SignatureDoesNotMatch\n",
            url("k.db")
        )
    );

    let o = etcdsnap(&s, &["snapshot", "status", "s3://no-such-bucket/k.db"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: s3://no-such-bucket/k.db: bucket not found\n"
    );
    let o = etcdsnap(&s, &["snapshot", "verify", &url("absent.db")]);
    assert_eq!(
        stderr(&o),
        format!("Error: {}: not found\n", url("absent.db"))
    );

    // The writer finds out when it starts, before any byte is taken.
    let bad = opts(&s).with_config("aws_secret_access_key", "nope");
    let e = Location::parse_with(&url("w.db"), &bad)
        .expect("parse")
        .create()
        .expect_err("bad keys");
    assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
    let e = Location::parse_with("s3://no-such-bucket/w.db", &opts(&s))
        .expect("parse")
        .create()
        .expect_err("no bucket");
    assert_eq!(e.to_string(), "s3://no-such-bucket/w.db: bucket not found");
    assert_eq!(s.objects(BUCKET), vec!["k.db".to_string()]);
}

/// A refusal of the credentials is its own variant, whatever the request,
/// and keeps the store's error as its source; the text is unchanged.
#[test]
fn refusals_are_typed_and_keep_the_store_error() {
    use std::error::Error as _;
    let Some(s) = server() else { return };
    put_file(&s, "k.db", &fixtures::read_snapshot("small-v35.db"));
    let bad = opts(&s).with_config("aws_secret_access_key", "nope");
    let e = Location::parse_with(&url("k.db"), &bad)
        .expect("parse")
        .open_snapshot(&|_| {})
        .expect_err("bad keys");
    assert!(e.is_permission_denied(), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: download: 403 Forbidden: SignatureDoesNotMatch",
            url("k.db")
        )
    );
    let store = e
        .source()
        .and_then(|s| s.downcast_ref::<object_store::Error>())
        .expect("the store's error is the source");
    assert!(
        matches!(store, object_store::Error::PermissionDenied { .. }),
        "{store:?}"
    );
    let e = Location::parse_with(&url("w.db"), &bad)
        .expect("parse")
        .create()
        .expect_err("bad keys");
    assert!(
        matches!(e, LocationError::PermissionDenied { op: "upload", .. }),
        "{e:?}"
    );
    // A missing object keeps the store's NotFound.
    let e = Location::parse_with(&url("absent.db"), &opts(&s))
        .expect("parse")
        .open_snapshot(&|_| {})
        .expect_err("absent");
    assert!(matches!(e, LocationError::NotFound { .. }), "{e:?}");
    assert!(
        e.source()
            .and_then(|s| s.downcast_ref::<object_store::Error>())
            .is_some_and(|s| matches!(s, object_store::Error::NotFound { .. })),
        "{e:?}"
    );
}

#[test]
fn a_download_cut_mid_transfer_fails_and_a_restore_leaves_nothing() {
    let Some(mut s) = server() else { return };
    // Big enough that it cannot all sit in socket buffers when the server dies.
    let big = support::corrupt::pseudo_random_bytes(11, 96 << 20);
    put_file(&s, "big.db", &big);
    let loc = Location::parse_with(&url("big.db"), &opts(&s)).expect("parse");
    let pid = s.pid();
    let killed = std::sync::atomic::AtomicBool::new(false);
    let e = loc
        .open_snapshot(&|p| {
            if p.done > 0 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // SIGKILL by PID: the connection drops mid-body.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        })
        .expect_err("cut");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: download: ", url("big.db"))),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    s.kill();

    // The same through restore: nothing is left in the parent dir.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m.etcd");
    let o = restore(&s, &url("big.db"), &dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("Error: {}: download: ", url("big.db"))),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(fixtures::names_in(tmp.path()), Vec::<String>::new());
}

/// `time` as a save's `{time}` would name it, `n` hours before 2025-01-06 12:00 UTC.
fn stamp(hours_before: i64) -> String {
    let t0 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_736_164_800);
    let before = std::time::Duration::from_secs(3600 * u64::try_from(hours_before).expect("hours"));
    etcdsnap::expand_time("{time}", t0 - before)
}

#[test]
fn prune_keeps_the_rules_and_the_newest_sound_snapshot() {
    let Some(s) = server() else { return };
    let good = zstd_bytes(&fixtures::read_snapshot("small-v35.db"));
    let mut bad = fixtures::read_snapshot("small-v35.db");
    let n = bad.len();
    bad[n - 1] ^= 1; // the trailer no longer matches
    // Every 12 hours for 3 days; the newest one is corrupt. Plus names prune must not touch.
    for h in (0..72).step_by(12) {
        let body = if h == 0 {
            zstd_bytes(&bad)
        } else {
            good.clone()
        };
        put_file(&s, &format!("etcd/snap-{}.db.zst", stamp(h)), &body);
    }
    put_file(&s, "etcd/snap-latest.db.zst", &good);
    put_file(&s, "etcd/other-20250101T000000Z.db.zst", &good);
    put_file(&s, "etcd/snap-20250101T000000Z.db", &good);
    let template = url("etcd/snap-{time}.db.zst");

    let run = |extra: &[&str]| {
        let mut args = vec!["snapshot", "prune", &template];
        args.extend_from_slice(extra);
        etcdsnap(&s, &args)
    };
    let dry = run(&["--keep-last", "1", "--keep-daily", "2", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let all_before = s.objects(BUCKET);
    assert_eq!(all_before.len(), 9, "a dry run deletes nothing");
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    let line = |h: i64| {
        text.lines()
            .find(|l| l.contains(&stamp(h)))
            .unwrap_or_else(|| panic!("no line for {h}h: {text}"))
            .to_string()
    };
    // Newest: kept by --keep-last (and it is the newest of its day), though it is unsound.
    assert!(
        line(0).starts_with("keep") && line(0).contains("(last, daily)"),
        "{text}"
    );
    // 12h ago: the newest that verifies, kept whatever the rules say.
    assert!(line(12).contains("(newest sound)"), "{text}");
    // 24h ago: the newest of the day before.
    assert!(line(24).contains("(daily)"), "{text}");
    for h in [36, 48, 60] {
        assert!(line(h).starts_with("would delete"), "{text}");
    }
    assert!(
        text.ends_with("6 snapshots: 3 kept, 3 would delete\n"),
        "{text}"
    );
    assert!(stderr(&dry).contains("does not verify"), "{}", stderr(&dry));

    let real = run(&["--keep-last", "1", "--keep-daily", "2"]);
    assert!(real.status.success(), "{}", stderr(&real));
    let mut want: Vec<String> = [0, 12, 24]
        .iter()
        .map(|h| format!("etcd/snap-{}.db.zst", stamp(*h)))
        .collect();
    want.extend([
        "etcd/other-20250101T000000Z.db.zst".to_string(),
        "etcd/snap-20250101T000000Z.db".to_string(),
        "etcd/snap-latest.db.zst".to_string(),
    ]);
    want.sort();
    assert_eq!(s.objects(BUCKET), want);
}

/// A prefix without `{time}` prunes the objects directly under it, as a
/// local directory: what sits deeper ("subdirectories") is another series.
#[test]
fn prune_of_a_prefix_leaves_deeper_objects() {
    let Some(s) = server() else { return };
    let good = zstd_bytes(&fixtures::read_snapshot("small-v35.db"));
    for h in [0, 12, 24] {
        put_file(&s, &format!("flat/snap-{}.db.zst", stamp(h)), &good);
    }
    put_file(&s, &format!("flat/old/snap-{}.db.zst", stamp(36)), &good);
    let out = etcdsnap(
        &s,
        &["snapshot", "prune", &url("flat/"), "--keep-last", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want = vec![
        format!("flat/old/snap-{}.db.zst", stamp(36)),
        format!("flat/snap-{}.db.zst", stamp(0)),
    ];
    want.sort();
    let left: Vec<String> = s
        .objects(BUCKET)
        .into_iter()
        .filter(|o| o.starts_with("flat/"))
        .collect();
    assert_eq!(left, want);
}

#[test]
fn prune_deletes_nothing_when_no_snapshot_verifies() {
    let Some(s) = server() else { return };
    let mut bad = fixtures::read_snapshot("small-v35.db");
    let n = bad.len();
    bad[n - 1] ^= 1;
    for h in [0, 1, 2] {
        put_file(&s, &format!("snap-{}.db", stamp(h)), &bad);
    }
    let o = etcdsnap(
        &s,
        &[
            "snapshot",
            "prune",
            &url("snap-{time}.db"),
            "--keep-last",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("none of the 3 snapshots verifies; nothing deleted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.objects(BUCKET).len(), 3);
}

/// Options that reach `s` through `proxy`. The store's own retry of a broken response body is
/// bounded by its retry timeout, counted from the first request: short here, as it is long
/// past when a multi-gigabyte download breaks (the case these tests stand for).
fn through(s: &S3Server, proxy: &CutProxy) -> LocationOptions {
    opts(s)
        .with_config("aws_endpoint", proxy.endpoint())
        .with_retry_timeout(Duration::from_millis(200))
}

/// Waits until `done` holds (at most a minute).
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A saved snapshot of about 10 MiB put as `key`, and its bytes.
fn put_k8s(s: &S3Server, key: &str) -> Vec<u8> {
    let bytes = fixtures::read_snapshot("k8s-v35.db");
    put_file(s, key, &bytes);
    bytes
}

/// `loc` opened while `proxy` breaks once, 3 MiB into the object, as `link` says, and is up
/// again `hold` later.
fn open_broken_once(
    loc: &Location,
    proxy: &CutProxy,
    link: Link,
    hold: Duration,
) -> Result<etcdsnap::Snapshot, LocationError> {
    proxy.set_after(3 << 20, link);
    std::thread::scope(|sc| {
        let h = sc.spawn(|| loc.open_snapshot(&|_| {}));
        wait_for("the trip", || proxy.trips() == 1 || h.is_finished());
        std::thread::sleep(hold);
        proxy.set(Link::Up);
        h.join().expect("download thread")
    })
}

#[test]
fn a_download_cut_mid_object_resumes_where_it_broke() {
    let Some(s) = server() else { return };
    let bytes = put_k8s(&s, "k8s.db");
    let proxy = CutProxy::start(support::http::parse_loopback_url(&s.endpoint()));
    let loc = Location::parse_with(&url("k8s.db"), &through(&s, &proxy)).expect("parse");
    // Cut for longer than the store's own retries last.
    let snap = open_broken_once(&loc, &proxy, Link::Cut, Duration::from_millis(600))
        .expect("the download resumes after the cut");
    assert_eq!(proxy.trips(), 1);
    assert!(proxy.accepted() >= 2, "{}", proxy.accepted());
    // Every byte arrived once, in order: the SHA-256 trailer matches the body.
    assert_eq!(snap.file_len(), bytes.len() as u64);
    let report = snap.verify(&Default::default());
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_download_stalled_past_the_read_timeout_resumes() {
    let Some(s) = server() else { return };
    let bytes = put_k8s(&s, "k8s.db");
    let proxy = CutProxy::start(support::http::parse_loopback_url(&s.endpoint()));
    let o = through(&s, &proxy).with_read_timeout(Duration::from_secs(1));
    let loc = Location::parse_with(&url("k8s.db"), &o).expect("parse");
    // Silent (no FIN, no RST) for well past the read timeout: the response that stalled and
    // the first resumptions time out.
    let snap = open_broken_once(&loc, &proxy, Link::Stalled, Duration::from_millis(2500))
        .expect("the download resumes after the stall");
    assert_eq!(snap.file_len(), bytes.len() as u64);
    let report = snap.verify(&Default::default());
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_restore_survives_more_cuts_than_the_store_retries() {
    let Some(s) = server() else { return };
    let local = fixtures::snapshot("k8s-v35.db");
    put_k8s(&s, "k8s.db");
    let proxy = CutProxy::start(support::http::parse_loopback_url(&s.endpoint()));
    let tmp = tempfile::tempdir().expect("tempdir");
    let want = tmp.path().join("local.etcd");
    let o = restore(&s, local.to_str().expect("utf-8"), &want, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The CLI's defaults (3 retries): cut 5 times, 2 MiB apart, each time progress was made.
    let dir = tmp.path().join("s3.etcd");
    let done = std::sync::atomic::AtomicBool::new(false);
    let r = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
            s.configure(&mut c);
            c.env("AWS_ENDPOINT", proxy.endpoint());
            let r = c
                .args(["snapshot", "restore", &url("k8s.db"), "--data-dir"])
                .arg(&dir)
                .args(["-w", "json"])
                .output()
                .expect("run etcdsnap");
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        });
        for i in 1..=5 {
            proxy.set_after(2 << 20, Link::Cut);
            wait_for("a trip", || {
                proxy.trips() == i || done.load(std::sync::atomic::Ordering::SeqCst)
            });
            std::thread::sleep(Duration::from_millis(50));
            proxy.set(Link::Up);
        }
        h.join().expect("restore thread")
    });
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(proxy.trips(), 5);
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(j["hashVerified"], true);
    assert_eq!(tree(&dir), tree(&want), "restored files differ");
}

#[test]
fn an_object_replaced_mid_download_is_refused_not_mixed() {
    let Some(s) = server() else { return };
    let bytes = put_k8s(&s, "k8s.db");
    let proxy = CutProxy::start(support::http::parse_loopback_url(&s.endpoint()));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m.etcd");
    proxy.set_after(3 << 20, Link::Cut);
    let r = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
            s.configure(&mut c);
            c.env("AWS_ENDPOINT", proxy.endpoint());
            c.args(["snapshot", "restore", &url("k8s.db"), "--data-dir"])
                .arg(&dir)
                .output()
                .expect("run etcdsnap")
        });
        wait_for("the trip", || proxy.trips() == 1 || h.is_finished());
        // Another version of the same size, different past the cut.
        let mut other = bytes.clone();
        other[8 << 20] ^= 0xff;
        put_file(&s, "k8s.db", &other);
        proxy.set(Link::Up);
        h.join().expect("restore thread")
    });
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    let err = stderr(&r);
    assert!(
        err.starts_with(&format!(
            "Error: {}: download: the object changed during the download",
            url("k8s.db")
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(fixtures::names_in(tmp.path()), Vec::<String>::new());
}
