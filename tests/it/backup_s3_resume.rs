//! A repository in object storage read over a connection that breaks (issue 23's failure, for
//! `backup` commands): s3s-fs behind a [`CutProxy`] that cuts or stalls the connection half way
//! through the bytes a command reads, inside a pack. `backup cat` and `backup restore` go on from
//! the byte they reached and give exactly the bytes pushed (cat) and what `snapshot restore` of
//! the file writes (restore); with `ETCDSNAP_RETRIES=0` the same cut fails with one line naming
//! the pack and the byte. The retries and timeouts come from the CLI's `ETCDSNAP_RETRIES`,
//! `ETCDSNAP_RETRY_TIMEOUT` and `ETCDSNAP_READ_TIMEOUT`, short here so the tests are quick.
//!
//! Also: `backup cat REPO ID -o FILE` killed with SIGKILL at several points leaves FILE as it
//! was or whole, never partial.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::cli::{BIN, ok, s};
use support::files;
use support::fixtures;
use support::proxy::{CutProxy, Link};
use support::s3::S3Server;

const BUCKET: &str = "backups";

fn repo_url() -> String {
    format!("s3://{BUCKET}/team/etcd")
}

fn server() -> Option<S3Server> {
    let bin = support::tools::require(support::tools::s3s_fs())?;
    Some(S3Server::start(&bin, BUCKET))
}

/// `etcdsnap ARGS` against `server` (through `proxy` if given), its index cache in `cache`, with
/// `retries` and a 1 s read timeout. The store's own retry of a broken body is bounded by its
/// retry timeout counted from the first request: short here, as it is long past when a
/// multi-gigabyte command meets a broken connection (the case these tests stand for).
fn cmd(
    server: &S3Server,
    proxy: Option<&CutProxy>,
    cache: &Path,
    retries: u32,
    args: &[&str],
) -> Command {
    let mut c = Command::new(BIN);
    server.configure(&mut c);
    if let Some(p) = proxy {
        c.env("AWS_ENDPOINT", p.endpoint());
    }
    c.env("ETCDSNAP_CACHE_DIR", cache)
        .env("ETCDSNAP_RETRIES", retries.to_string())
        .env("ETCDSNAP_RETRY_TIMEOUT", "200ms")
        .env("ETCDSNAP_READ_TIMEOUT", "1s")
        .args(args);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits until `done` holds (at most a minute).
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A repository holding k8s-v35.db, its index cached in `cache` (so that what a command reads
/// later is mostly packs), and the snapshot's ID.
fn pushed(server: &S3Server, cache: &Path) -> String {
    let k8s = fixtures::snapshot("k8s-v35.db");
    let url = repo_url();
    let o = cmd(server, None, cache, 3, &["backup", "init", &url])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cmd(
        server,
        None,
        cache,
        3,
        &["backup", "push", &url, s(&k8s), "-w", "json"],
    )
    .output()
    .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    j["id"].as_str().expect("id").to_string()
}

/// Runs `args` through `proxy`, which breaks as `link` says half way through the bytes the
/// same command reads on a good connection (`clean`, measured before), and is repaired after
/// `hold`: [`Link::Cut`] is set up again, [`Link::Stalled`] is abandoned (the stalled
/// connection never recovers; new ones pass).
fn broken_once(
    run: impl FnOnce() -> Output + Send,
    proxy: &CutProxy,
    clean: u64,
    link: Link,
    hold: Duration,
) -> Output {
    proxy.set_after(clean / 2, link);
    std::thread::scope(|sc| {
        let h = sc.spawn(run);
        wait_for("the trip", || proxy.trips() == 1 || h.is_finished());
        std::thread::sleep(hold);
        match link {
            Link::Stalled => proxy.abandon(),
            _ => proxy.set(Link::Up),
        }
        h.join().expect("command thread")
    })
}

/// Runs the command `args(i)` gives through a cut (i = 0) and through a stall that never
/// recovers (i = 1), each tripped mid-pack and held 2.5 s: each must succeed after exactly one
/// trip. Their outputs.
fn through_each_break(
    server: &S3Server,
    cache: &Path,
    clean: u64,
    args: impl Fn(usize) -> Vec<String>,
) -> Vec<(Link, Output)> {
    [Link::Cut, Link::Stalled]
        .into_iter()
        .enumerate()
        .map(|(i, link)| {
            let a = args(i);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let proxy = CutProxy::start(support::http::parse_loopback_url(&server.endpoint()));
            let run = || {
                cmd(server, Some(&proxy), cache, 6, &a)
                    .output()
                    .expect("run")
            };
            let o = broken_once(run, &proxy, clean, link, Duration::from_millis(2500));
            assert!(o.status.success(), "{link:?}: {}", stderr(&o));
            assert_eq!(proxy.trips(), 1, "{link:?}");
            (link, o)
        })
        .collect()
}

/// Bytes `args` reads through a proxy on a good connection.
fn clean_bytes(server: &S3Server, cache: &Path, args: &[&str]) -> u64 {
    let proxy = CutProxy::start(support::http::parse_loopback_url(&server.endpoint()));
    let o = cmd(server, Some(&proxy), cache, 3, args)
        .output()
        .expect("run");
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    // Well above what comes before the packs (listings, config, the chunk list).
    assert!(proxy.forwarded() > 1 << 20, "{}", proxy.forwarded());
    proxy.forwarded()
}

/// `backup cat` gives the file pushed, byte for byte, through a cut held longer than the
/// store's own retries last and through a stall that never recovers.
#[test]
fn cat_goes_on_after_a_cut_or_a_stall_mid_pack() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let id = pushed(&server, &cache);
    let want = fixtures::read_snapshot("k8s-v35.db");
    let url = repo_url();
    let args = ["backup", "cat", url.as_str(), &id[..8]];
    let clean = clean_bytes(&server, &cache, &args);

    let args = |_| args.iter().map(|a| a.to_string()).collect();
    for (link, o) in through_each_break(&server, &cache, clean, args) {
        assert!(o.stdout == want, "{link:?}: cat is the file, byte for byte");
    }
}

/// `backup restore` through the same cut and stall writes what `snapshot restore` of the file
/// writes.
#[test]
fn restore_goes_on_after_a_cut_or_a_stall_mid_pack() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let id = pushed(&server, &cache);
    let url = repo_url();
    let flags = super::backup_s3::ONE_MEMBER;
    let want_dir = work.path().join("want");
    std::fs::create_dir(&want_dir).expect("mkdir");
    let mut args = vec!["snapshot", "restore"];
    let k8s = fixtures::snapshot("k8s-v35.db");
    let want_member = want_dir.join("m1.etcd");
    args.extend([s(&k8s), "--data-dir", s(&want_member)]);
    args.extend(flags);
    ok(&args);
    let want = files::contents(&want_dir);

    let restore_args = |dir: &Path| -> Vec<String> {
        std::fs::create_dir(dir).expect("mkdir");
        let mut a: Vec<String> = ["backup", "restore", &url, &id[..8], "--data-dir"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.push(s(&dir.join("m1.etcd")).to_string());
        a.extend(flags.iter().map(|x| x.to_string()));
        a
    };
    let first = work.path().join("clean");
    let a = restore_args(&first);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let clean = clean_bytes(&server, &cache, &a);
    assert_eq!(files::contents(&first), want);

    let broken = |i: usize| work.path().join(format!("broken-{i}"));
    for (i, (link, _)) in through_each_break(&server, &cache, clean, |i| restore_args(&broken(i)))
        .into_iter()
        .enumerate()
    {
        let dir = broken(i);
        let got = files::contents(&dir);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (k, v) in &got {
            assert!(v == &want[k], "{link:?}: {k} differs");
        }
    }
}

/// With no retries the same cut fails: one line naming the pack object and the byte it
/// stopped at, and nothing on standard output that could pass for the snapshot.
#[test]
fn without_retries_a_cut_mid_pack_fails_naming_the_pack_and_the_byte() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let id = pushed(&server, &cache);
    let url = repo_url();
    let args = ["backup", "cat", url.as_str(), &id[..8]];
    let clean = clean_bytes(&server, &cache, &args);
    let proxy = CutProxy::start(support::http::parse_loopback_url(&server.endpoint()));
    let o = broken_once(
        || {
            cmd(&server, Some(&proxy), &cache, 0, &args)
                .output()
                .expect("run")
        },
        &proxy,
        clean,
        Link::Cut,
        Duration::from_millis(1000),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("Error: snapshot {id}: read {url}/packs/")),
        "{err}"
    );
    assert!(err.contains("broke off at byte "), "{err}");
    assert!(err.contains("no retries allowed"), "{err}");
    // The byte named is inside the range named.
    let range = err
        .split("the read of bytes ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("a range");
    let (a, b) = range.split_once("..").expect("a..b");
    let at: u64 = err
        .split("broke off at byte ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a byte");
    let (a, b): (u64, u64) = (a.parse().expect("start"), b.parse().expect("end"));
    assert!(a <= at && at < b, "{err}");
}

/// `backup cat REPO ID -o FILE` SIGKILLed while it writes, at several points: FILE holds what it
/// held before or the whole snapshot, never a part.
#[test]
fn cat_to_a_file_killed_at_any_point_leaves_the_old_file_or_the_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let k8s = fixtures::snapshot("k8s-v35.db");
    let want = std::fs::read(&k8s).expect("read");
    ok(&["backup", "init", s(&repo)]);
    let pushed: serde_json::Value =
        serde_json::from_str(&ok(&["backup", "push", s(&repo), s(&k8s), "-w", "json"]))
            .expect("json");
    let id = pushed["id"].as_str().expect("id").to_string();
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let file = out_dir.join("snap.db");
    let part = out_dir.join("snap.db.part");
    let old = b"the snapshot of last week".to_vec();

    // Killed once the temporary copy beside FILE (FILE.part) holds `at` bytes (0: as soon as it exists;
    // past the end: once the command is gone or FILE changed).
    let mut partial_kills = 0;
    for at in [0u64, 1, 64 << 10, 1 << 20, 4 << 20, 8 << 20, u64::MAX] {
        // What a killed run left beside FILE (FILE.part, which the next run truncates) is
        // removed, so that the next kill is timed by the next run's copy.
        let _ = std::fs::remove_file(&part);
        std::fs::write(&file, &old).expect("write old");
        let mut child = Command::new(BIN)
            .args(["backup", "cat", s(&repo), &id[..8], "-o", s(&file)])
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "cat did not end");
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            let len = std::fs::metadata(&part).ok().map(|m| m.len());
            if len.is_some_and(|n| n >= at) {
                child.kill().expect("SIGKILL");
                if len.is_some_and(|n| n > 0 && n < want.len() as u64) {
                    partial_kills += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.wait();
        let now = std::fs::read(&file).expect("FILE is never removed");
        assert!(
            now == old || now == want,
            "killed at {at}: FILE holds {} bytes, neither the old file nor the snapshot",
            now.len()
        );
        // Nothing else is left beside FILE (the temporary directory of old is gone).
        let left: Vec<_> = std::fs::read_dir(&out_dir)
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "snap.db" && n != "snap.db.part")
            .collect();
        assert!(
            left.is_empty(),
            "killed at {at}: left beside FILE: {left:?}"
        );
    }
    assert!(
        partial_kills >= 2,
        "only {partial_kills} kills found the copy part-written"
    );
    // Run to the end (over a killed run's FILE.part), it publishes the whole snapshot and
    // leaves no part file.
    std::fs::write(&part, b"a killed run's bytes").expect("write part");
    ok(&["backup", "cat", s(&repo), &id[..8], "-o", s(&file)]);
    assert!(std::fs::read(&file).expect("read") == want);
    assert!(!part.exists(), "FILE.part left after a whole run");
}
