//! The agent's Prometheus metrics (text exposition format 0.0.4) and
//! `/healthz`, served by a minimal HTTP/1.1 listener on the agent's
//! runtime: one request per connection, `GET` only, bounded reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head read (a scraper's request is a few hundred
/// bytes).
const MAX_REQUEST: usize = 8 << 10;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the agent has done, as the metrics report it.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub last_full_success: Option<SystemTime>,
    pub last_full_seconds: f64,
    pub last_full_bytes: u64,
    pub last_full_revision: i64,
    pub last_delta_success: Option<SystemTime>,
    pub last_delta_seconds: f64,
    pub last_delta_bytes: u64,
    pub segments_stored: u64,
    pub events_recorded: u64,
    /// Bytes of received changes not stored yet.
    pub buffered_bytes: u64,
    /// Times the changes held were dropped (the limit exceeded).
    pub buffer_overflows: u64,
    /// Full snapshots the retention rules forgot.
    pub snapshots_forgotten: u64,
    /// Change segments the retention rules deleted.
    pub segments_deleted: u64,
    /// The highest revision the cluster was seen at.
    pub cluster_revision: i64,
    /// The highest revision whose events the watch delivered.
    pub received_revision: i64,
    /// The highest revision the repository holds.
    pub stored_revision: i64,
    /// When the repository last held everything the cluster had.
    pub caught_up_at: Option<SystemTime>,
    /// Monotonic time of the last successful delta or watch response.
    pub last_progress: Option<Instant>,
    pub errors: BTreeMap<&'static str, u64>,
}

/// Shared between the recorder and the listener.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics(pub Arc<Mutex<State>>);

fn unix(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    /// Runs `f` on the state (a poisoned lock is taken over: the state
    /// is plain numbers).
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &'static str) {
        self.with(|s| *s.errors.entry(kind).or_insert(0) += 1);
    }

    /// Marks a watch response or a successful delta now.
    pub fn progress(&self) {
        self.with(|s| s.last_progress = Some(Instant::now()));
    }

    /// Whether the last progress is younger than `limit`.
    pub fn healthy(&self, limit: Duration) -> bool {
        self.with(|s| s.last_progress.is_some_and(|t| t.elapsed() < limit))
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.with(|s| {
            let mut out = String::new();
            let mut gauge = |name: &str, help: &str, kind: &str, v: f64| {
                let _ = writeln!(out, "# HELP etcdsnap_agent_{name} {help}");
                let _ = writeln!(out, "# TYPE etcdsnap_agent_{name} {kind}");
                let _ = writeln!(out, "etcdsnap_agent_{name} {v}");
            };
            gauge(
                "last_full_success_timestamp_seconds",
                "Unix time of the last full snapshot stored (0: none yet).",
                "gauge",
                unix(s.last_full_success),
            );
            gauge(
                "last_full_duration_seconds",
                "How long the last full snapshot took (save and push).",
                "gauge",
                s.last_full_seconds,
            );
            gauge(
                "last_full_bytes",
                "Size of the last full snapshot.",
                "gauge",
                s.last_full_bytes as f64,
            );
            gauge(
                "last_full_revision",
                "Revision of the last full snapshot.",
                "gauge",
                s.last_full_revision as f64,
            );
            gauge(
                "last_delta_success_timestamp_seconds",
                "Unix time of the last successful delta (a segment stored, or nothing new to store).",
                "gauge",
                unix(s.last_delta_success),
            );
            gauge(
                "last_delta_duration_seconds",
                "How long the last delta took (lease queries and the store).",
                "gauge",
                s.last_delta_seconds,
            );
            gauge(
                "last_delta_bytes",
                "Keys and values in the last segment stored, in bytes.",
                "gauge",
                s.last_delta_bytes as f64,
            );
            gauge(
                "segments_stored_total",
                "Change segments stored.",
                "counter",
                s.segments_stored as f64,
            );
            gauge(
                "events_recorded_total",
                "Key events received from the watch.",
                "counter",
                s.events_recorded as f64,
            );
            gauge(
                "buffered_bytes",
                "Bytes of received changes held, not stored yet.",
                "gauge",
                s.buffered_bytes as f64,
            );
            gauge(
                "buffer_overflows_total",
                "Times the changes held exceeded --max-buffer-bytes while the repository refused segments and were dropped (a gap; a new full snapshot follows).",
                "counter",
                s.buffer_overflows as f64,
            );
            gauge(
                "snapshots_forgotten_total",
                "Full snapshots the retention rules (--keep-*) forgot.",
                "counter",
                s.snapshots_forgotten as f64,
            );
            gauge(
                "segments_deleted_total",
                "Change segments deleted with the full snapshots they were recorded on.",
                "counter",
                s.segments_deleted as f64,
            );
            gauge(
                "cluster_revision",
                "The highest revision the cluster was seen at (by the revision probe, the watch or a seal).",
                "gauge",
                s.cluster_revision as f64,
            );
            gauge(
                "recorded_revision",
                "The highest revision the repository holds (full snapshot or segment).",
                "gauge",
                s.stored_revision as f64,
            );
            gauge(
                "revision_lag",
                "Revisions the cluster is ahead of the newest revision the agent holds (received from its watch: stored, or held to be stored at the next seal; recorded_revision is what the repository holds). The cluster's revision is probed every --delta-every (at most 2 s) on a connection of its own, so a stalled watch shows here; a failed probe leaves the gauge as it was and counts an error of kind probe.",
                "gauge",
                (s.cluster_revision - s.received_revision).max(0) as f64,
            );
            let rpo = s
                .caught_up_at
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(-1.0, |d| d.as_secs_f64());
            gauge(
                "recovery_point_seconds",
                "Seconds since the repository last held everything the cluster had (-1: never).",
                "gauge",
                rpo,
            );
            let _ = writeln!(
                out,
                "# HELP etcdsnap_agent_errors_total Errors, by kind (connect, rpc, repository, full, watch, retention, overflow, probe)."
            );
            let _ = writeln!(out, "# TYPE etcdsnap_agent_errors_total counter");
            for (kind, n) in &s.errors {
                let _ = writeln!(out, "etcdsnap_agent_errors_total{{kind=\"{kind}\"}} {n}");
            }
            out
        })
    }
}

/// Binds `addr` (before the agent starts, so a taken port fails at once).
pub(crate) async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics` and `/healthz` until the runtime ends.
pub(crate) async fn serve(listener: TcpListener, metrics: Metrics, unhealthy_after: Duration) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let m = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(conn, &m, unhealthy_after)).await;
        });
    }
}

/// Reads one request head and answers it.
async fn answer(
    mut conn: TcpStream,
    m: &Metrics,
    unhealthy_after: Duration,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.len() > MAX_REQUEST {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = m.render();
            respond(
                &mut conn,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
            .await
        }
        ("GET", "/healthz") => {
            if m.healthy(unhealthy_after) {
                respond(&mut conn, "200 OK", "text/plain", "ok\n").await
            } else {
                let body = format!(
                    "unhealthy: no successful delta or watch progress for {}s\n",
                    unhealthy_after.as_secs()
                );
                respond(&mut conn, "503 Service Unavailable", "text/plain", &body).await
            }
        }
        ("GET", _) => respond(&mut conn, "404 Not Found", "text/plain", "not found\n").await,
        _ => respond(&mut conn, "405 Method Not Allowed", "text/plain", "").await,
    }
}

async fn respond(
    conn: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}
