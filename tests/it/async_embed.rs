//! etcdsnap embedded in async code, against etcd 3.5.1 and an S3-compatible server (s3s-fs on
//! loopback): examples/async_embed.rs, under `#[tokio::main]` of either flavour, saves from the
//! live etcd to `s3://`, reads that snapshot back, pushes it to an `s3://` repository and drops
//! everything inside the runtime; and a location writer abandoned inside a runtime leaves no
//! object and no pending upload. A location used to own the tokio runtime of its store's client
//! and drop it with the last reference, which tokio refuses on a thread that runs async code
//! ("Cannot drop a runtime in a context where blocking is not allowed"): both tests panicked.
//!
//! The example's code is compiled into this test (`#[path]`) and run in a process of its own,
//! this test binary again with `ASYNC_EMBED_FLAVOR` set: the repository reads its store's
//! settings only from `AWS_*` variables, which a test must not set in its own multi-threaded
//! process.

use crate::support;

#[path = "../../examples/async_embed.rs"]
#[allow(dead_code)]
mod example;

use std::process::Command;
use std::time::{Duration, Instant};

use etcdsnap::{Location, LocationOptions};
use support::s3::S3Server;
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{self, EtcdVersion};
use support::{cmd, oracles, require_tool};

const BUCKET: &str = "backups";
/// Set in the child process: the runtime flavour to run the example in.
const FLAVOR: &str = "ASYNC_EMBED_FLAVOR";
/// Set in the child process: the etcd endpoint and the `s3://` prefix.
const ENDPOINT: &str = "ASYNC_EMBED_ENDPOINT";
const TO: &str = "ASYNC_EMBED_TO";
const THIS_TEST: &str = "async_embed::example_runs_inside_both_runtime_flavours";
/// A hang (a wait on a runtime that nothing drives) fails instead of stalling the suite.
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);
/// S3's smallest part, so that a little more than it starts an upload's first part.
const PART: usize = 5 << 20;

#[test]
fn example_runs_inside_both_runtime_flavours() {
    if let Ok(flavor) = std::env::var(FLAVOR) {
        return run_example(&flavor);
    }
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let s3bin = require_tool!(tools::s3s_fs());
    require_tool!(tools::etcdutl35());
    let etcd = SnapshotMaker::new(&bins).start();
    let mut l = Loader::new(etcd.endpoint());
    for i in 0..200 {
        l.put(format!("/registry/pods/p{i:03}").as_bytes(), &[b'x'; 512]);
    }
    let revision = l.flush();
    let s3 = S3Server::start(&s3bin, BUCKET);
    let dir = tempfile::tempdir().expect("tempdir");
    for flavor in ["current", "multi"] {
        let mut c = Command::new(std::env::current_exe().expect("the test binary"));
        c.args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"]);
        s3.configure(&mut c);
        c.env(FLAVOR, flavor)
            .env(ENDPOINT, etcd.endpoint())
            .env(TO, format!("s3://{BUCKET}/{flavor}"))
            .env("ETCDSNAP_CACHE_DIR", dir.path().join("cache"))
            .env("TMPDIR", dir.path())
            // The panic message, not a backtrace, in the tail of stderr shown on failure.
            .env("RUST_BACKTRACE", "0");
        let out = cmd::run(&mut c, CHILD_TIMEOUT);
        assert!(
            out.success() && !out.stderr.contains("panicked"),
            "{flavor}:\n{out}"
        );
        // The child ran the test (the filter matched), and the example's steps printed.
        assert!(out.stdout.contains("1 passed"), "{flavor}:\n{out}");
        assert!(
            out.stdout.contains("the repository holds 1 snapshots"),
            "{flavor}:\n{out}"
        );

        // What the save stored is the snapshot etcdutl reads at the cluster's revision.
        let object = s3.object_file(BUCKET, &format!("{flavor}/snap.db"));
        let status = oracles::status_json(&oracles::run_etcdutl_status(&object, "json"));
        assert_eq!(status["revision"].as_i64(), Some(revision), "{flavor}");
        // The repository's lock went with the push; no upload was left half done.
        let objects = s3.objects(BUCKET);
        let repo = format!("{flavor}/repo/");
        assert!(
            objects.iter().any(|o| *o == format!("{repo}config")),
            "{objects:?}"
        );
        assert!(
            !objects
                .iter()
                .any(|o| o.starts_with(&format!("{repo}locks/"))),
            "{objects:?}"
        );
        assert_eq!(s3.pending_uploads(), Vec::<String>::new(), "{flavor}");
    }
}

/// The child: the example's `#[tokio::main]` function of `flavor`; every step must agree on
/// the revision, and returning at all means nothing panicked when it was dropped.
fn run_example(flavor: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let p = example::Params {
        endpoint: var(ENDPOINT),
        to: var(TO),
    };
    let done = match flavor {
        "current" => example::in_current_thread(&p),
        "multi" => example::in_multi_thread(&p),
        other => panic!("unknown flavour {other}"),
    }
    .unwrap_or_else(|e| panic!("{flavor}: {e}"));
    assert_eq!(done.saved, format!("{}/snap.db", p.to));
    assert!(done.saved_revision > 1, "{done:?}");
    assert_eq!(done.read_revision, done.saved_revision, "{done:?}");
    assert_eq!(done.pushed_revision, done.saved_revision, "{done:?}");
    assert_eq!(done.listed, 1, "{done:?}");
}

/// A writer dropped before it published, inside a runtime of either flavour, with the location
/// it came from: nothing appears under the key, and the multipart upload it started is aborted
/// (in the background: the drop does not wait for the server).
#[test]
fn abandoned_upload_dropped_inside_a_runtime() {
    let s3bin = require_tool!(tools::s3s_fs());
    let s3 = S3Server::start(&s3bin, BUCKET);
    let mut opts = LocationOptions::default().with_part_size(PART);
    for (k, v) in s3.env() {
        opts = opts.with_config(k, v);
    }
    let data = vec![7u8; PART + 1];
    for multi in [false, true] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .expect("runtime");
        let key = format!("abandoned-{multi}.db");
        rt.block_on(async {
            let loc = Location::parse_with(&format!("s3://{BUCKET}/{key}"), &opts).expect("parse");
            let mut w = loc.create().expect("start the upload");
            // More than a part: one goes to the server, the rest waits in the buffer.
            w.write_all(&data).expect("write");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !s3.pending_uploads().iter().any(|n| n.contains(".part-")) {
                assert!(Instant::now() < deadline, "no part reached the server");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(w);
            drop(loc);
            tokio::task::yield_now().await;
        });
        drop(rt);
        // The abort is the I/O runtime's to finish; the server says when it has.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s3.pending_uploads().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the upload was never aborted: {:?}",
                s3.pending_uploads()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !s3.objects(BUCKET).contains(&key),
            "{:?}",
            s3.objects(BUCKET)
        );
    }
}
