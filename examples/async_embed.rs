//! etcdsnap embedded in async code: under `#[tokio::main]`, in the runtime
//! flavour asked for, it saves a snapshot from a live etcd to object
//! storage, reads that snapshot back, pushes it to a backup repository in
//! the same bucket, and drops everything inside the runtime.
//!
//! ```sh
//! AWS_ENDPOINT=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
//! AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
//!   cargo run --example async_embed -- --flavor current \
//!     --endpoint http://127.0.0.1:2379 --to s3://backups/etcd
//! ```
//!
//! It writes `PREFIX/snap.db` and a repository under `PREFIX/repo` (made
//! on the first run), and prints one line per step. The store is
//! configured from the usual `AWS_*` (`GOOGLE_*`, `AZURE_*`) variables; the
//! repository's index cache goes to `$ETCDSNAP_CACHE_DIR` if set.
//!
//! Every etcdsnap call blocks the thread that makes it. From async code
//! that is safe in either flavour: no call panics or deadlocks there, and
//! what the calls return may be dropped there (the runtime the object
//! store client needs is etcdsnap's own, never dropped). But a call holds
//! up the worker that makes it, so a program whose workers have other
//! tasks should hand the calls to `tokio::task::spawn_blocking`, as the
//! last step does. The steps before it call straight from the async
//! function, to show that this works too. tests/it/async_embed.rs runs this
//! code in both flavours against etcd 3.5.1 and s3s-fs.

use std::process::ExitCode;

use etcdsnap::repo::{PushOptions, RepoError, Repository};
use etcdsnap::{Location, SaveOptions, TargetVersion, VerifyOptions};

/// Boxed errors, sendable out of `spawn_blocking`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the program is told.
#[derive(Debug, Clone)]
pub struct Params {
    /// The etcd client URL to save from.
    pub endpoint: String,
    /// Where to keep things: `s3://bucket/prefix` (or any location).
    pub to: String,
}

/// What each step found, for the caller to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Where the save put the snapshot.
    pub saved: String,
    /// Its revision, as the save's own check found it.
    pub saved_revision: i64,
    /// Its revision, read back from object storage.
    pub read_revision: i64,
    /// The revision of the snapshot the repository now holds.
    pub pushed_revision: i64,
    /// Snapshots in the repository, listed from a blocking task.
    pub listed: usize,
}

/// The four steps, straight from async code.
pub async fn embed(p: &Params) -> Result<Done, Error> {
    let base = p.to.trim_end_matches('/');

    // 1. Save from the live etcd straight into object storage.
    let opts = SaveOptions::new(format!("{base}/snap.db")).with_endpoints([&p.endpoint]);
    let saved = etcdsnap::save(&opts, &|_| {})?;
    println!(
        "saved {} at revision {}",
        saved.location, saved.status.revision
    );
    drop(opts);

    // 2. Read it back: downloaded once into a temporary file, verified.
    let loc = Location::parse(&saved.location)?;
    let snap = loc.open_snapshot(&|_| {})?;
    let report = snap.verify(&VerifyOptions::default());
    if !report.is_ok() {
        let problems: Vec<String> = report.problems().iter().map(|p| p.to_string()).collect();
        return Err(format!("{} does not verify: {}", loc.as_str(), problems.join("; ")).into());
    }
    let read = snap.status(TargetVersion::V3_5)?;
    println!("read {} at revision {}", loc.as_str(), read.revision);
    drop(snap);

    // 3. A backup repository beside it: made on the first run.
    let repo_url = format!("{base}/repo");
    let repo = match Repository::open_at(&repo_url, None) {
        Ok(r) => r,
        Err(RepoError::NotARepository(_)) => Repository::init_at(&repo_url, None)?,
        Err(e) => return Err(e.into()),
    };
    let pushed = repo.push_location(&loc, &PushOptions::default(), &|_| {})?;
    println!(
        "pushed {} at revision {} to {}",
        pushed.info.id.short(),
        pushed.info.revision,
        repo.location()
    );
    // Dropped here, on a worker of the runtime: the location was the last
    // owner of its store's client.
    drop(repo);
    drop(loc);

    // 4. The way to call etcdsnap from a busy runtime: on a blocking
    // thread, leaving the worker to its other tasks.
    let listed = tokio::task::spawn_blocking(move || -> Result<usize, Error> {
        Ok(Repository::open_at(&repo_url, None)?.snapshots()?.len())
    })
    .await??;
    println!("the repository holds {listed} snapshots");

    // The runtime is still at work after all those drops.
    tokio::task::yield_now().await;
    Ok(Done {
        saved: saved.location,
        saved_revision: saved.status.revision,
        read_revision: read.revision,
        pushed_revision: pushed.info.revision,
        listed,
    })
}

/// [`embed`] under a current-thread runtime: the one thread that runs
/// the async code is the one every call blocks.
#[tokio::main(flavor = "current_thread")]
pub async fn in_current_thread(p: &Params) -> Result<Done, Error> {
    embed(p).await
}

/// [`embed`] under a multi-thread runtime.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub async fn in_multi_thread(p: &Params) -> Result<Done, Error> {
    embed(p).await
}

fn main() -> ExitCode {
    let usage = "usage: async_embed --flavor current|multi --endpoint URL --to s3://BUCKET/PREFIX";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut flavor, mut endpoint, mut to) = (None, None, None);
    for pair in args.chunks(2) {
        match pair {
            [k, v] if k == "--flavor" => flavor = Some(v.clone()),
            [k, v] if k == "--endpoint" => endpoint = Some(v.clone()),
            [k, v] if k == "--to" => to = Some(v.clone()),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(flavor), Some(endpoint), Some(to)) = (flavor, endpoint, to) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let p = Params { endpoint, to };
    let done = match flavor.as_str() {
        "current" => in_current_thread(&p),
        "multi" => in_multi_thread(&p),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
