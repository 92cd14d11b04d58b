//! The save itself:
//!
//! 1. Options are checked (one endpoint, readable TLS files) before any
//!    connection or file is made.
//! 2. A current-thread tokio runtime, living only inside this call,
//!    connects (retrying within the dial timeout), authenticates and opens
//!    the `Snapshot` stream.
//! 3. Only when the server has answered is the sink created; the body
//!    goes through a bounded channel to a writer thread that hashes it
//!    and writes it, while the runtime keeps receiving. The stream's shape
//!    (`remaining_bytes` counting down to 0, then one 32-byte digest, then
//!    the end) is checked, and the digest compared with the bytes.
//! 4. The digest is appended as the trailer (the file etcdctl writes);
//!    the file is verified (bbolt structure, etcd checks) while it is
//!    fsynced, and published only if both succeed.
//!
//! Any failure, or the interrupt flag, drops the sink, which removes what
//! it wrote.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};

use super::client;
use super::error::SaveError;
use super::options::SaveOptions;
use super::proto::SnapshotResponse;
use crate::etcd::Status;
use crate::progress::{Phase, Progress};
use crate::sink::{FileSink, SinkError, SnapshotSink};
use crate::snapshot::{Snapshot, SnapshotFile, VerifyOptions};

/// Chunks (32 KiB each from etcd) buffered between the network and the
/// writer thread: enough to ride out a slow write, bounded for memory.
const CHANNEL_CHUNKS: usize = 64;
/// Chunks the writer gathers into one `writev` (512 KiB from etcd): one
/// system call per 32 KiB cost a sixth of a 1.4 GB save's time.
const WRITE_BATCH: usize = 16;
/// Bytes received between progress reports.
const REPORT_EVERY: u64 = 1 << 20;
/// How often the interrupt flag is looked at.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// What a successful save wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SaveSummary {
    /// The endpoint it came from.
    pub endpoint: String,
    /// Where it is now (the file path).
    pub location: String,
    /// Bytes saved: the database and the 32-byte SHA-256 trailer.
    pub size: u64,
    /// The SHA-256 of the database (the trailer), checked against the
    /// bytes received.
    pub sha256: [u8; 32],
    /// The storage version the server announced (etcd 3.6+), if any.
    pub server_version: Option<String>,
    /// The cluster ID from the response header, when the server sent one.
    pub cluster_id: Option<u64>,
    /// The member ID from the response header, when the server sent one.
    pub member_id: Option<u64>,
    /// The status of the saved file (hash, revision, keys, size) by the
    /// options' target rules.
    pub status: Status,
}

/// Takes a snapshot from the one endpoint of `opts` into `opts.path`
/// (`FILE.part` first, renamed when complete and verified). `progress`
/// hears [`Phase::Receive`] reports with the bytes received and the
/// total the server announced.
///
/// Blocks the calling thread until the snapshot is kept or refused. From
/// async code it works in either runtime flavour (it then runs on a thread
/// of its own and waits for it), but holds up the worker that calls it:
/// prefer [`tokio::task::spawn_blocking`] there (see
/// [blocking calls and async code](crate#blocking-calls-and-async-code)).
///
/// ```no_run
/// use etcdsnap::{SaveOptions, save};
///
/// let mut opts = SaveOptions::new("backup.db");
/// opts.endpoints = vec!["https://127.0.0.1:2379".into()];
/// opts.tls.ca_file = Some("ca.pem".into());
/// opts.tls.cert_file = Some("client.pem".into());
/// opts.tls.key_file = Some("client-key.pem".into());
/// let summary = save(&opts, &|_| {})?;
/// println!("revision {}", summary.status.revision);
/// # Ok::<(), etcdsnap::SaveError>(())
/// ```
pub fn save(
    opts: &SaveOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SaveSummary, SaveError> {
    // `{time}` becomes the UTC time of the save; a URL or a compressed
    // name goes through its location (upload, compression).
    let (path, location) = crate::location::destination(&opts.path, &opts.location)?;
    let mut opts = opts.clone();
    opts.path = path;
    match location {
        None => {
            let target = opts.path.clone();
            save_to(
                &opts,
                &move || FileSink::create(&target).map(|s| Box::new(s) as Box<dyn SnapshotSink>),
                progress,
            )
        }
        Some(loc) => save_to(
            &opts,
            &move || {
                crate::location::LocationSink::create(&loc)
                    .map(|s| Box::new(s) as Box<dyn SnapshotSink>)
            },
            progress,
        ),
    }
}

/// [`save`] into any [`SnapshotSink`]: `make_sink` is called once the
/// server has started sending, and the sink is published only when the
/// snapshot is complete and verified. `opts.path` is then only used in
/// messages. Blocks the calling thread as [`save`] does.
pub fn save_to(
    opts: &SaveOptions,
    make_sink: &(dyn Fn() -> Result<Box<dyn SnapshotSink>, SinkError> + Sync),
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SaveSummary, SaveError> {
    // The save runs its own runtime, which cannot be started on a thread
    // that already drives one (an embedder's async code calling this
    // synchronous API): there it runs on a thread of its own. So that
    // runtime is always dropped (at the end of `save_here`) on a thread
    // that runs no async code, where dropping one may block. What the
    // sink holds of an object store only refers to the crate's I/O
    // runtime, which is never dropped, so the location dropped on the
    // caller's thread afterwards drops no runtime there.
    crate::location::store::off_runtime(|| save_here(opts, make_sink, progress))
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn save_here(
    opts: &SaveOptions,
    make_sink: &(dyn Fn() -> Result<Box<dyn SnapshotSink>, SinkError> + Sync),
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SaveSummary, SaveError> {
    let ep = opts.endpoint()?;
    // Unreadable certificate files are bad arguments, found before any
    // connection is tried (as etcdctl does).
    let tls = client::tls_setup(&ep, opts)?;
    let rt = runtime()?;
    let deadline = opts.command_timeout.map(|t| Instant::now() + t);
    let (stream, conn) = rt.block_on(guard(opts, &ep.text, deadline, async {
        let conn = client::connect(&ep, opts, tls).await?;
        let token = match &opts.credentials {
            Some(c) => Some(client::authenticate(conn.channel.clone(), &ep, c).await?),
            None => None,
        };
        let stream = client::snapshot(conn.channel.clone(), &ep, token.as_deref()).await?;
        Ok((stream, conn))
    }))?;
    // A stream that breaks because the connection was closed on our side
    // while open was closed by the keepalive: say so, in etcdctl's words.
    let dropped_open = Arc::clone(&conn.dropped_open);
    let stream = stream.map(move |item| {
        item.map_err(|s| {
            if dropped_open.load(Ordering::SeqCst) {
                tonic::Status::unavailable(client::KEEPALIVE_FAILED)
            } else {
                s
            }
        })
    });
    let saved = receive_into(&rt, opts, &ep.text, deadline, stream, make_sink, progress);
    // The channel lives as long as the stream: with the last handle gone,
    // hyper takes the connection for idle and stops its keepalive pings,
    // and a stream stalled with the connection open was never noticed.
    drop(conn);
    saved
}

fn runtime() -> Result<tokio::runtime::Runtime, SaveError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SaveError::Runtime)
}

/// Runs `fut` unless the interrupt flag is raised or the command timeout
/// passes first.
async fn guard<T>(
    opts: &SaveOptions,
    endpoint: &str,
    deadline: Option<Instant>,
    fut: impl Future<Output = Result<T, SaveError>>,
) -> Result<T, SaveError> {
    let interrupted = async {
        match &opts.interrupt {
            Some(flag) => watch(flag).await,
            None => std::future::pending().await,
        }
    };
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = fut => r,
        signal = interrupted => Err(SaveError::Interrupted {
            endpoint: endpoint.to_string(),
            signal,
            removed: String::new(),
        }),
        () = expired => Err(SaveError::CommandTimeout {
            endpoint: endpoint.to_string(),
            timeout: opts.command_timeout.unwrap_or_default(),
        }),
    }
}

async fn watch(flag: &AtomicUsize) -> usize {
    loop {
        let v = flag.load(Ordering::SeqCst);
        if v != 0 {
            return v;
        }
        tokio::time::sleep(INTERRUPT_POLL).await;
    }
}

fn interrupted(opts: &SaveOptions, endpoint: &str) -> Result<(), SaveError> {
    match opts.interrupt.as_ref().map(|f| f.load(Ordering::SeqCst)) {
        Some(v) if v != 0 => Err(SaveError::Interrupted {
            endpoint: endpoint.to_string(),
            signal: v,
            removed: String::new(),
        }),
        _ => Ok(()),
    }
}

/// What the stream said besides the body.
struct Received {
    digest: [u8; 32],
    total: u64,
    version: String,
    cluster_id: Option<u64>,
    member_id: Option<u64>,
}

/// Receives the stream into a new sink, checks it, publishes it.
pub(crate) fn receive_into<S>(
    rt: &tokio::runtime::Runtime,
    opts: &SaveOptions,
    endpoint: &str,
    deadline: Option<Instant>,
    mut stream: S,
    make_sink: &dyn Fn() -> Result<Box<dyn SnapshotSink>, SinkError>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SaveSummary, SaveError>
where
    S: Stream<Item = Result<SnapshotResponse, tonic::Status>> + Unpin,
{
    let write_err = |e: SinkError| SaveError::Write {
        endpoint: endpoint.to_string(),
        op: e.op,
        path: e.path,
        source: e.source,
    };
    // Nothing is created until the server has answered.
    let first = rt.block_on(guard(
        opts,
        endpoint,
        deadline,
        next(&mut stream, endpoint, opts.stall_timeout, 0, None),
    ))?;
    let Some(first) = first else {
        return Err(stream_err(
            endpoint,
            "the server closed the stream without sending anything",
        ));
    };
    let mut sink = make_sink().map_err(write_err)?;
    let filled = fill(
        rt,
        opts,
        endpoint,
        deadline,
        &mut stream,
        first,
        sink.as_mut(),
        progress,
    );
    let (received, status) = match filled {
        Ok(done) => done,
        // Said in the message: a signal's cleanup is reported.
        Err(SaveError::Interrupted {
            endpoint, signal, ..
        }) => {
            return Err(SaveError::Interrupted {
                endpoint,
                signal,
                removed: sink.discard(),
            });
        }
        Err(e) => return Err(e),
    };
    let location = sink.publish().map_err(write_err)?;
    Ok(SaveSummary {
        endpoint: endpoint.to_string(),
        location,
        size: received.total.saturating_add(32),
        sha256: received.digest,
        server_version: Some(received.version).filter(|v| !v.is_empty()),
        cluster_id: received.cluster_id,
        member_id: received.member_id,
        status,
    })
}

/// Receives the body into `sink`, checks the digest, appends it, and
/// verifies and syncs the staged file: everything but publishing.
#[allow(clippy::too_many_arguments)] // the parts of one save, passed down once
fn fill<S>(
    rt: &tokio::runtime::Runtime,
    opts: &SaveOptions,
    endpoint: &str,
    deadline: Option<Instant>,
    stream: &mut S,
    first: SnapshotResponse,
    sink: &mut dyn SnapshotSink,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Received, Status), SaveError>
where
    S: Stream<Item = Result<SnapshotResponse, tonic::Status>> + Unpin,
{
    let write_err = |e: SinkError| SaveError::Write {
        endpoint: endpoint.to_string(),
        op: e.op,
        path: e.path,
        source: e.source,
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let (received, written) = std::thread::scope(|s| {
        let sink_ref: &mut dyn SnapshotSink = &mut *sink;
        let writer = s.spawn(move || -> Result<([u8; 32], u64), SinkError> {
            let mut h = Sha256::new();
            let mut n = 0u64;
            let mut batch: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH);
            loop {
                let more = match rx.blocking_recv() {
                    Some(chunk) => {
                        batch.push(chunk);
                        true
                    }
                    None => false,
                };
                if batch.len() >= WRITE_BATCH || (!more && !batch.is_empty()) {
                    for c in &batch {
                        h.update(c);
                        n = n.saturating_add(c.len() as u64);
                    }
                    sink_ref.write_chunks(&batch)?;
                    batch.clear();
                }
                if !more {
                    return Ok((h.finalize().into(), n));
                }
            }
        });
        let received = rt.block_on(guard(
            opts,
            endpoint,
            deadline,
            receive(stream, first, tx, endpoint, opts.stall_timeout, progress),
        ));
        (received, writer.join())
    });
    let (computed, written) = match written {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Err(write_err(e)),
        Err(_) => return Err(stream_err(endpoint, "the writer thread panicked")),
    };
    let received = received?;
    // receive() ends only with done == total, and the writer wrote every
    // chunk it was sent before it saw the channel close; checked all the
    // same (a file shorter than the stream must never be called saved).
    if written != received.total {
        return Err(stream_err(
            endpoint,
            &format!("wrote {written} bytes of the {} received", received.total),
        ));
    }
    if computed != received.digest {
        return Err(stream_err(
            endpoint,
            &format!(
                "sha256 mismatch: the server's digest is {}, the bytes received hash to {}",
                crate::snapshot::hash::hex(&received.digest),
                crate::snapshot::hash::hex(&computed)
            ),
        ));
    }
    interrupted(opts, endpoint)?;
    sink.write(&received.digest).map_err(write_err)?;

    let staged = sink.staged_path().map(Path::to_path_buf);
    let (checked, synced) = std::thread::scope(|s| {
        let check = staged
            .as_deref()
            .map(|p| s.spawn(move || check_file(p, opts, received.digest)));
        let synced = sink.sync();
        (check.map(|h| h.join()), synced)
    });
    synced.map_err(write_err)?;
    let status = match checked {
        Some(Ok(Ok(status))) => status,
        Some(Ok(Err(unsound))) => return Err(unsound.into_error(endpoint)),
        Some(Err(_)) => return Err(stream_err(endpoint, "the check thread panicked")),
        None => {
            return Err(stream_err(
                endpoint,
                "this destination keeps no local copy to verify",
            ));
        }
    };
    interrupted(opts, endpoint)?;
    Ok((received, status))
}

/// Verify's checks on the staged file. `digest` is the body's SHA-256,
/// computed as the bytes arrived, so the trailer just written is checked
/// against it without reading the body again.
fn check_file(path: &Path, opts: &SaveOptions, digest: [u8; 32]) -> Result<Status, Unsound> {
    let file = SnapshotFile::open(path).map_err(Unsound::Unchecked)?;
    // Without a trailer (a body whose length is no multiple of 512) the
    // whole file is the body, and `digest` is not its hash.
    let trailed = file.trailer().is_some();
    let file = if trailed {
        file.with_body_digest(digest)
    } else {
        file
    };
    let report = Snapshot::from_file(file).verify(&VerifyOptions {
        skip_hash_check: !trailed,
        target: opts.target,
        ..VerifyOptions::default()
    });
    let problems = report.problems();
    match report.status {
        Some(s) if problems.is_empty() => Ok(s),
        _ if problems.is_empty() => Err(Unsound::NoStatus(report.status_error)),
        _ => Err(Unsound::Corrupt(problems)),
    }
}

/// Why the staged copy is not saved, before the endpoint is known to
/// the error (the check runs on its own thread).
enum Unsound {
    Unchecked(crate::snapshot::SnapshotError),
    NoStatus(Option<crate::etcd::StatusError>),
    Corrupt(Vec<crate::snapshot::VerifyProblem>),
}

impl Unsound {
    fn into_error(self, endpoint: &str) -> SaveError {
        let endpoint = endpoint.to_string();
        match self {
            Unsound::Unchecked(source) => SaveError::Unchecked { endpoint, source },
            Unsound::NoStatus(source) => SaveError::NoStatus { endpoint, source },
            Unsound::Corrupt(problems) => SaveError::Corrupt { endpoint, problems },
        }
    }
}

fn stream_err(endpoint: &str, cause: &str) -> SaveError {
    SaveError::Stream {
        endpoint: endpoint.to_string(),
        cause: cause.to_string(),
    }
}

/// The next message; a gRPC error becomes [`SaveError::Rpc`] saying how
/// far the stream had come, and nothing for `stall` [`SaveError::Stalled`].
async fn next<S>(
    stream: &mut S,
    endpoint: &str,
    stall: Duration,
    done: u64,
    total: Option<u64>,
) -> Result<Option<SnapshotResponse>, SaveError>
where
    S: Stream<Item = Result<SnapshotResponse, tonic::Status>> + Unpin,
{
    let item = tokio::time::timeout(stall, stream.next())
        .await
        .map_err(|_| SaveError::Stalled {
            endpoint: endpoint.to_string(),
            received: done,
            total,
            idle: stall,
        })?;
    match item {
        None => Ok(None),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(s)) => {
            let cause = match total {
                None => client::refused(&s),
                Some(t) => format!(
                    "the snapshot stream broke off after {done} of {t} bytes: {}",
                    client::status_text(&s)
                ),
            };
            Err(SaveError::Rpc {
                endpoint: endpoint.to_string(),
                code: format!("{:?}", s.code()),
                cause,
                source: Some(Box::new(s)),
            })
        }
    }
}

/// The body: chunks until `remaining_bytes` reaches 0, each sent to the
/// writer; then the digest message; then the end of the stream.
async fn receive<S>(
    stream: &mut S,
    first: SnapshotResponse,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    endpoint: &str,
    stall: Duration,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Received, SaveError>
where
    S: Stream<Item = Result<SnapshotResponse, tonic::Status>> + Unpin,
{
    let total = first
        .remaining_bytes
        .saturating_add(first.blob.len() as u64);
    let version = first.version.clone();
    let cluster_id = first.header.as_ref().map(|h| h.cluster_id);
    let member_id = first.header.as_ref().map(|h| h.member_id);
    let mut done = 0u64;
    let mut reported = 0u64;
    let mut msg = first;
    loop {
        done = done.saturating_add(msg.blob.len() as u64);
        let expected = total.checked_sub(done).ok_or_else(|| {
            stream_err(endpoint, &format!("more than the {total} bytes announced"))
        })?;
        if msg.remaining_bytes != expected {
            return Err(stream_err(
                endpoint,
                &format!(
                    "remaining_bytes {} after {done} of {total} bytes (expected {expected})",
                    msg.remaining_bytes
                ),
            ));
        }
        let last = msg.remaining_bytes == 0;
        if !msg.blob.is_empty() && tx.send(msg.blob).await.is_err() {
            // The writer stopped: its error is the one reported.
            return Err(stream_err(endpoint, "the writer stopped"));
        }
        if done - reported >= REPORT_EVERY || last {
            reported = done;
            progress(Progress {
                phase: Phase::Receive,
                done,
                total,
            });
        }
        if last {
            break;
        }
        msg = next(stream, endpoint, stall, done, Some(total))
            .await?
            .ok_or_else(|| {
                stream_err(
                    endpoint,
                    &format!("the stream ended after {done} of {total} bytes"),
                )
            })?;
    }
    drop(tx);
    let digest_msg = next(stream, endpoint, stall, done, Some(total))
        .await?
        .ok_or_else(|| stream_err(endpoint, "the stream ended without the SHA-256 digest"))?;
    let digest: [u8; 32] = digest_msg.blob.as_ref().try_into().map_err(|_| {
        stream_err(
            endpoint,
            &format!(
                "the digest message has {} bytes, not 32",
                digest_msg.blob.len()
            ),
        )
    })?;
    if next(stream, endpoint, stall, done, Some(total))
        .await?
        .is_some()
    {
        return Err(stream_err(
            endpoint,
            "more messages after the SHA-256 digest",
        ));
    }
    Ok(Received {
        digest,
        total,
        version,
        cluster_id,
        member_id,
    })
}

#[cfg(test)]
mod tests {
    //! The receiving path, fed with streams shaped as etcd's server shapes
    //! them (32 KiB chunks, `remaining_bytes` counting down, then the
    //! digest), built from snapshots real etcd 3.5/3.6/3.7 saved. The
    //! transport is covered by tests/save*.rs against real servers.

    use super::*;
    use crate::atomic_file::part_path;

    const CHUNK: usize = 32 * 1024;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/snapshots/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    /// The messages a server sends for `file` (db + trailer).
    fn messages(file: &[u8], version: &str) -> Vec<SnapshotResponse> {
        let (body, digest) = file.split_at(file.len() - 32);
        let total = body.len();
        let mut out = Vec::new();
        let mut sent = 0;
        for chunk in body.chunks(CHUNK) {
            sent += chunk.len();
            out.push(SnapshotResponse {
                header: (sent == chunk.len()).then_some(super::super::proto::ResponseHeader {
                    cluster_id: 7,
                    member_id: 9,
                    revision: 4,
                    raft_term: 2,
                }),
                remaining_bytes: (total - sent) as u64,
                blob: Bytes::copy_from_slice(chunk),
                version: version.into(),
            });
        }
        out.push(SnapshotResponse {
            header: None,
            remaining_bytes: 0,
            blob: Bytes::copy_from_slice(digest),
            version: version.into(),
        });
        out
    }

    fn run(
        msgs: Vec<Result<SnapshotResponse, tonic::Status>>,
        target: &Path,
    ) -> Result<SaveSummary, SaveError> {
        let opts = SaveOptions::new(target);
        let rt = runtime().expect("runtime");
        let t = target.to_path_buf();
        receive_into(
            &rt,
            &opts,
            "http://127.0.0.1:2379",
            None,
            tokio_stream::iter(msgs),
            &move || FileSink::create(&t).map(|s| Box::new(s) as Box<dyn SnapshotSink>),
            &|_| {},
        )
    }

    fn ok(m: Vec<SnapshotResponse>) -> Vec<Result<SnapshotResponse, tonic::Status>> {
        m.into_iter().map(Ok).collect()
    }

    fn recorded(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/testdata/save/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("recorded output")
    }

    /// etcd 3.6.14 and 3.7.1 send the storage version in field 4; etcdctl
    /// then prints `Server version V` (recorded in testdata/save/).
    #[test]
    fn v36_and_v37_streams_print_what_etcdctl_printed() {
        for (tag, version) in [("v36", "3.6.0"), ("v37", "3.7.0")] {
            let file = fixture(&format!("small-{tag}.db"));
            let dir = tempfile::tempdir().expect("tempdir");
            let target = dir.path().join("snap.db");
            let s = run(ok(messages(&file, version)), &target).expect("saved");
            assert_eq!(std::fs::read(&target).expect("saved file"), file);
            assert_eq!(s.server_version.as_deref(), Some(version));
            assert_eq!((s.cluster_id, s.member_id), (Some(7), Some(9)));
            assert_eq!(s.size, file.len() as u64);
            // etcdctl left exactly one file, named as given.
            let files = recorded(&format!("{tag}-ok.files.txt"));
            assert!(files.starts_with("snap.db ") && files.lines().count() == 1);
            // etcdctl ran in the directory and was given `snap.db`; it
            // printed the version the summary holds (the binary renders
            // the summary so, src/cli/format/save.rs).
            assert_eq!(
                recorded(&format!("{tag}-ok.stdout.txt")),
                format!("Snapshot saved at snap.db\nServer version {version}\n")
            );
        }
    }

    #[test]
    fn v35_stream_prints_no_version() {
        let file = fixture("small-v35.db");
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        let s = run(ok(messages(&file, "")), &target).expect("saved");
        assert_eq!(s.server_version, None);
        assert_eq!(s.status.revision, 4);
        // No version: etcdctl printed only where it saved.
        assert_eq!(recorded("v35-ok.stdout.txt"), "Snapshot saved at snap.db\n");
    }

    /// Every broken stream is refused and leaves neither FILE nor
    /// FILE.part; an existing FILE is kept.
    #[test]
    fn broken_streams_leave_nothing() {
        let file = fixture("k8s-v35.db");
        let good = messages(&file, "");
        let n = good.len();
        let mut cases: Vec<(&str, Vec<Result<SnapshotResponse, tonic::Status>>)> = Vec::new();
        // The digest does not match the bytes.
        let mut m = good.clone();
        let mut d = m[n - 1].blob.to_vec();
        d[0] ^= 1;
        m[n - 1].blob = d.into();
        cases.push(("sha256 mismatch", ok(m)));
        // A body byte flipped in transit (the digest is the server's).
        let mut m = good.clone();
        let mut b = m[3].blob.to_vec();
        b[100] ^= 0x40;
        m[3].blob = b.into();
        cases.push(("sha256 mismatch", ok(m)));
        // Cut before the end, and before the digest.
        cases.push(("ended after", ok(good[..n / 2].to_vec())));
        cases.push(("without the SHA-256 digest", ok(good[..n - 1].to_vec())));
        // A chunk missing: remaining_bytes does not count down.
        let mut m = good.clone();
        m.remove(5);
        cases.push(("remaining_bytes", ok(m)));
        // Something after the digest.
        let mut m = good.clone();
        m.push(good[0].clone());
        cases.push(("after the SHA-256 digest", ok(m)));
        // A short digest.
        let mut m = good.clone();
        m[n - 1].blob = Bytes::from_static(b"short");
        cases.push(("not 32", ok(m)));
        // The server fails mid-stream.
        let mut m = ok(good[..n / 3].to_vec());
        m.push(Err(tonic::Status::unavailable("transport is closing")));
        cases.push(("broke off after", m));
        // The server refuses at once.
        cases.push((
            "snapshot refused: etcdserver: permission denied",
            vec![Err(tonic::Status::permission_denied(
                "etcdserver: permission denied",
            ))],
        ));
        for (want, msgs) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let target = dir.path().join("snap.db");
            std::fs::write(&target, b"older backup").expect("old");
            let e = run(msgs, &target).expect_err(want);
            let text = e.to_string();
            assert!(text.contains(want), "{want}: {text}");
            assert!(text.starts_with("http://127.0.0.1:2379: "), "{text}");
            assert!(!part_path(&target).exists(), "{want}: .part left");
            assert_eq!(std::fs::read(&target).expect("old"), b"older backup");
            // The server's refusal stays reachable as a gRPC status.
            if want.contains("permission denied") {
                let status = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<tonic::Status>())
                    .expect("the status is the source");
                assert_eq!(status.code(), tonic::Code::PermissionDenied, "{e:?}");
            }
        }
    }

    /// A stream whose digest matches but whose content is not a sound
    /// database (a server bug or a corrupt member db) is refused by the
    /// structural check before it is published.
    #[test]
    fn unsound_database_is_not_kept() {
        let mut file = fixture("small-v35.db");
        let body_len = file.len() - 32;
        // Scribble over the page id of every page but the metas.
        for page in 2..body_len / 4096 {
            for b in &mut file[page * 4096..page * 4096 + 8] {
                *b = 0xff;
            }
        }
        let digest: [u8; 32] = Sha256::digest(&file[..body_len]).into();
        file[body_len..].copy_from_slice(&digest);
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        let e = run(ok(messages(&file, "")), &target).expect_err("unsound");
        // The problems stay typed: an embedder can tell a structural
        // problem from a hash mismatch without parsing text.
        let SaveError::Corrupt { problems, .. } = &e else {
            panic!("not Corrupt: {e}");
        };
        assert!(
            problems.iter().all(|p| matches!(
                p,
                crate::snapshot::VerifyProblem::Structure(_)
                    | crate::snapshot::VerifyProblem::MoreStructure(_)
                    | crate::snapshot::VerifyProblem::NotBbolt(_)
            )),
            "{problems:?}"
        );
        let joined: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(e.to_string().ends_with(&joined.join("; ")), "{e}");
        assert!(e.to_string().contains("not sound"), "{e}");
        assert!(!target.exists() && !part_path(&target).exists());
    }

    /// A stream that stops delivering with the connection open fails after
    /// the stall timeout, saying how far it came, and leaves nothing.
    #[test]
    fn a_stalled_stream_fails_and_leaves_nothing() {
        let file = fixture("k8s-v35.db");
        let good = messages(&file, "");
        let total: usize = good[..good.len() - 1].iter().map(|m| m.blob.len()).sum();
        for keep in [0usize, 1, 5] {
            let dir = tempfile::tempdir().expect("tempdir");
            let target = dir.path().join("snap.db");
            let mut opts = SaveOptions::new(&target);
            opts.stall_timeout = Duration::from_millis(200);
            let rt = runtime().expect("runtime");
            let t = target.clone();
            let msgs = tokio_stream::iter(ok(good[..keep].to_vec())).chain(tokio_stream::pending());
            let e = receive_into(
                &rt,
                &opts,
                "e",
                None,
                msgs,
                &move || FileSink::create(&t).map(|s| Box::new(s) as Box<dyn SnapshotSink>),
                &|_| {},
            )
            .expect_err("stalled");
            let got: usize = good[..keep].iter().map(|m| m.blob.len()).sum();
            let want = if keep == 0 {
                "e: the snapshot stream stalled: nothing arrived for 200ms after 0 of ? bytes"
                    .to_string()
            } else {
                format!(
                    "e: the snapshot stream stalled: nothing arrived for 200ms after {got} of {total} bytes"
                )
            };
            assert_eq!(e.to_string(), want);
            assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn interrupt_flag_stops_and_cleans_up() {
        let file = fixture("small-v35.db");
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        let mut opts = SaveOptions::new(&target);
        // Raised once the sink exists: raised before, it races the first
        // message (select! picks either), and nothing would be staged.
        let flag = std::sync::Arc::new(AtomicUsize::new(0));
        opts.interrupt = Some(flag.clone());
        let rt = runtime().expect("runtime");
        let t = target.clone();
        let e = receive_into(
            &rt,
            &opts,
            "e",
            None,
            tokio_stream::iter(ok(messages(&file, ""))),
            &move || {
                let sink = FileSink::create(&t)?;
                flag.store(15, Ordering::SeqCst);
                Ok(Box::new(sink) as Box<dyn SnapshotSink>)
            },
            &|_| {},
        )
        .expect_err("interrupted");
        assert!(
            matches!(e, SaveError::Interrupted { signal: 15, .. }),
            "{e}"
        );
        // The message says what went.
        let removed = format!("(removed {})", part_path(&target).display());
        assert!(e.to_string().ends_with(&removed), "{e}");
        assert!(!target.exists() && !part_path(&target).exists());
    }
}
