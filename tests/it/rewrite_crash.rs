//! `snapshot defrag` and `snapshot compact` killed (SIGKILL) at every
//! point of their write: after each write to the destination, after the
//! completed store and after publishing (`ETCDSNAP_TEST_REWRITE_CRASH_AFTER`,
//! see src/rewrite/mod.rs), and at seeded random times. OUT must then be
//! absent (or the file it replaced, untouched) or the complete, verified
//! new file: never a partial one. A local `OUT.part` may be left behind (as
//! a killed `snapshot save` leaves one; the next run truncates it), and
//! nothing else. For an `s3://` OUT, the bucket holds no object, or the
//! old one, or the complete new one: a killed upload is never completed.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::s3::S3Server;
use support::{cli, fixtures, tools};

const HOOK: &str = "ETCDSNAP_TEST_REWRITE_CRASH_AFTER";
const BUCKET: &str = "rewrites";

/// The commands under test: (name, extra arguments).
const COMMANDS: [(&str, &[&str]); 2] = [("defrag", &[]), ("compact", &[])];

fn command(which: &str, extra: &[&str], input: &Path, out: &str) -> Command {
    let mut c = Command::new(cli::BIN);
    c.args(["snapshot", which, cli::s(input), out]).args(extra);
    c
}

/// Runs `c` to its end; whether it was killed by SIGKILL (else it must
/// have succeeded).
fn run_to_end(mut c: Command, what: &str) -> bool {
    let out = support::cmd::run(&mut c, Duration::from_secs(120));
    if out.signal() == Some(libc::SIGKILL) {
        return true;
    }
    out.expect_success(what);
    false
}

/// What the run leaves in `dir` besides OUT and OUT.part: nothing.
fn assert_only_out_and_part(dir: &Path, name: &str) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let n = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            n == name || n == format!("{name}.part"),
            "stray file {n} beside {name}"
        );
    }
}

/// OUT holds `old` (or is absent when `old` is None), or exactly `new`,
/// which then verifies.
fn assert_old_or_new(got: Option<Vec<u8>>, old: Option<&[u8]>, new: &[u8], what: &str) {
    match got {
        None => assert!(old.is_none(), "{what}: the old OUT vanished"),
        Some(b) if b == new => {}
        Some(b) => assert!(
            Some(&b[..]) == old,
            "{what}: OUT is neither the old file nor the new one ({} bytes; new is {})",
            b.len(),
            new.len()
        ),
    }
}

#[test]
fn killed_after_every_write_leaves_the_old_out_or_the_new_one() {
    let input = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    for (which, extra) in COMMANDS {
        // The file an uninterrupted run writes (the layout is
        // deterministic: every run writes these bytes).
        let reference = dir.path().join(format!("{which}-reference.db"));
        cli::ok(&["snapshot", which, cli::s(&input), cli::s(&reference)]);
        let new = std::fs::read(&reference).expect("read reference");
        let verify = cli::ok(&["snapshot", "verify", cli::s(&reference)]);
        assert!(verify.starts_with("OK"), "{verify}");

        let mut killed_at = Vec::new();
        for n in 1.. {
            let work = tempfile::tempdir().expect("tmp");
            let out = work.path().join("out.db");
            // Every other run replaces an existing OUT.
            let old = (n % 2 == 0).then(|| b"the previous snapshot".to_vec());
            if let Some(o) = &old {
                std::fs::write(&out, o).expect("old out");
            }
            let mut c = command(which, extra, &input, cli::s(&out));
            c.env(HOOK, n.to_string());
            let killed = run_to_end(c, which);
            let what = format!("{which} killed after write {n}");
            assert_old_or_new(std::fs::read(&out).ok(), old.as_deref(), &new, &what);
            assert_only_out_and_part(work.path(), "out.db");
            if !killed {
                assert_eq!(std::fs::read(&out).ok(), Some(new.clone()), "{what}");
                break;
            }
            killed_at.push(n);
            // A new run over what the killed one left succeeds.
            cli::ok(&["snapshot", which, cli::s(&input), cli::s(&out)]);
            assert_eq!(std::fs::read(&out).expect("out"), new, "{what}, rerun");
            assert!(!work.path().join("out.db.part").exists(), "{what}, rerun");
            assert!(n < 1000, "the hook never let {which} finish");
        }
        // Several writes of the body, then the store and the publishing:
        // the last kill lands after the rename, so OUT is the new file.
        assert!(killed_at.len() >= 4, "{which}: killed at {killed_at:?}");
    }
}

/// A small xorshift, seeded: the same kill times on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn killed_at_random_times_leaves_the_old_out_or_the_new_one() {
    let input = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = Rng(0x5eed_2026_1206);
    for (which, extra) in COMMANDS {
        let reference = dir.path().join(format!("{which}-reference.db"));
        let start = Instant::now();
        cli::ok(&["snapshot", which, cli::s(&input), cli::s(&reference)]);
        let full = start.elapsed().as_micros().max(1000) as u64;
        let new = std::fs::read(&reference).expect("read reference");
        for round in 0..12 {
            let work = tempfile::tempdir().expect("tmp");
            let out = work.path().join("out.db");
            let old = (round % 3 == 0).then(|| b"older".to_vec());
            if let Some(o) = &old {
                std::fs::write(&out, o).expect("old out");
            }
            let mut child = command(which, extra, &input, cli::s(&out))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(Duration::from_micros(rng.below(full + full / 4)));
            // By its pid: the child we started.
            let _ = child.kill();
            let status = child.wait().expect("wait");
            let what = format!("{which} killed at round {round} ({status:?})");
            assert_old_or_new(std::fs::read(&out).ok(), old.as_deref(), &new, &what);
            assert_only_out_and_part(work.path(), "out.db");
        }
    }
}

#[test]
fn killed_uploads_publish_no_partial_object() {
    let Some(bin) = tools::require(tools::s3s_fs()) else {
        return;
    };
    let s3 = S3Server::start(&bin, BUCKET);
    let input = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    for (which, extra) in COMMANDS {
        let reference = dir.path().join(format!("{which}-reference.db"));
        cli::ok(&["snapshot", which, cli::s(&input), cli::s(&reference)]);
        let new = std::fs::read(&reference).expect("read reference");
        let mut kills = 0;
        for n in 1.. {
            let key = format!("{which}/{n}.db");
            let url = format!("s3://{BUCKET}/{key}");
            let old = (n % 2 == 0).then(|| b"an older object".to_vec());
            let file = s3.object_file(BUCKET, &key);
            if let Some(o) = &old {
                std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                std::fs::write(&file, o).expect("old object");
            }
            let mut c = command(which, extra, &input, &url);
            s3.configure(&mut c);
            c.env(HOOK, n.to_string());
            let killed = run_to_end(c, which);
            let what = format!("{which} to {url} killed after write {n}");
            assert_old_or_new(std::fs::read(&file).ok(), old.as_deref(), &new, &what);
            // Nothing else appears in the bucket under that name.
            let others: Vec<String> = s3
                .objects(BUCKET)
                .into_iter()
                .filter(|o| o.starts_with(&format!("{which}/{n}.")) && *o != key)
                .collect();
            assert!(others.is_empty(), "{what}: {others:?}");
            if !killed {
                assert_eq!(std::fs::read(&file).ok(), Some(new.clone()), "{what}");
                break;
            }
            kills += 1;
            assert!(n < 1000, "the hook never let {which} finish");
        }
        assert!(kills >= 4, "{which}: {kills} kills");
    }
}
