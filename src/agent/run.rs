//! The recorder: full snapshots on a schedule, one watch between them,
//! a sealed segment every `delta_every`, failover, gaps, resume and stop.
//!
//! Chains. Every full snapshot starts a chain: segments recorded on it,
//! the first from its revision + 1, each next one from the previous
//! `last + 1`. A scheduled full snapshot taken at revision B does not
//! cut the watch: the old chain goes on until it holds B exactly, then
//! the new chain takes every revision above B, so that every revision
//! can be restored from one chain or the other. Only a watch that fell
//! behind a compaction (or a restart that finds the cluster compacted
//! past the repository) ends a chain early: the gap is logged and a new
//! full snapshot is taken at once.
//!
//! What is complete. etcd sends a watch's events in revision order, whole
//! revisions per response (its batches end at revision boundaries and we
//! ask for no fragments), so every revision up to the newest event
//! received is complete. Over the whole key space every revision has
//! events (etcd bumps the revision only for key changes), so a quiet
//! cluster is at the newest revision received; progress notifications
//! (sent only for a synced watcher, after its pending events) advance it
//! too. The response header's revision is not used as complete: for a
//! watcher catching up it is the store's revision while events are still
//! to come. (A `WatchProgressRequest` is not sent either: etcd 3.5.1
//! answers it on another queue, possibly before pending events.)

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::block_in_place;

use super::client::{Client, Watch, call_error};
use super::error::AgentError;
use super::event::AgentEvent;
use super::metrics::{self, Metrics};
use super::options::AgentOptions;
use super::probe;
use crate::etcd::change::{
    ChangeSegment, CompactionRecord, EventKind, KeyEvent, LeaseRecord, RevisionChanges, chain_range,
};
use crate::repo::{PushOptions, RepoError, Repository, SnapshotId, SnapshotInfo};
use crate::save::SaveError;

/// Pause before trying the members again when none answered.
const RETRY: Duration = Duration::from_secs(1);
/// How often the stop flag is looked at.
const STOP_POLL: Duration = Duration::from_millis(100);
/// A full snapshot that failed is tried again after this long (or
/// `delta_every`, if longer).
const FULL_RETRY: Duration = Duration::from_secs(10);

/// Runs the agent on `repo` until `opts.stop` becomes non-zero: then it
/// seals and stores what it holds and returns `Ok`. `log` hears every
/// event (one line each in the command's log).
///
/// Errors along the way (a member down, a store failing) are logged and
/// retried; only a repository that cannot be read at start, or a
/// metrics address that cannot be bound, end it with an error.
pub fn run(
    repo: &Repository,
    opts: &AgentOptions,
    log: &(dyn Fn(&AgentEvent) + Sync),
) -> Result<(), AgentError> {
    opts.check()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("etcdsnap-agent")
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    let metrics = Metrics::default();
    let shared = probe::Shared::default();
    let recorded = std::thread::scope(|scope| {
        // The revision probe on a thread and a connection of its own (see
        // `probe.rs`); without it (no thread to be had) the gauges follow
        // the recorder's connection alone.
        let prober = std::thread::Builder::new()
            .name("etcdsnap-probe".into())
            .spawn_scoped(scope, || probe::run(opts, &metrics, log, &shared));
        if let Err(e) = &prober {
            metrics.error("probe");
            log(&AgentEvent::Error {
                kind: "probe",
                message: format!("cannot start the revision probe: {e}"),
            });
        }
        // The probe is told to end however the recorder ends (a panic
        // too: the scope would otherwise wait for the probe for ever).
        let done_guard = DoneOnDrop(&shared.done);
        let recorded = rt.block_on(async {
            if let Some(addr) = &opts.metrics_addr {
                let listener = metrics::bind(addr)
                    .await
                    .map_err(|source| AgentError::Metrics {
                        addr: addr.clone(),
                        source,
                    })?;
                tokio::spawn(metrics::serve(
                    listener,
                    metrics.clone(),
                    opts.unhealthy_after,
                ));
            }
            let mut agent = Agent {
                repo,
                opts,
                log,
                metrics: metrics.clone(),
                shared: &shared,
                chain: None,
                next: None,
                known_compaction: 0,
                compactions: Vec::new(),
                ttl: HashMap::new(),
                member: 0,
                following: String::new(),
                full_not_before: Instant::now(),
                token_retries: 0,
            };
            agent.main().await
        });
        drop(done_guard);
        if let Ok(p) = prober {
            // It ends within its stop poll; a panic in it is not the
            // recorder's outcome.
            let _ = p.join();
        }
        recorded
    });
    recorded?;
    // The listener's tasks are dropped with the runtime, without
    // waiting for a scraper's connection.
    rt.shutdown_background();
    Ok(())
}

/// The segments recorded on one full snapshot.
#[derive(Debug)]
struct Chain {
    base: SnapshotId,
    base_time: SystemTime,
    /// The last revision the repository holds on this chain.
    stored_last: i64,
    /// The last revision whose events were received.
    received_last: i64,
    /// Received, not stored yet.
    pending: Vec<RevisionChanges>,
    /// About the memory `pending` holds (see [`held_bytes`]).
    pending_bytes: u64,
    /// The leases alive at the end of the last segment stored (or seen
    /// at the first seal), to tell whether a quiet period changed them.
    stored_leases: Option<BTreeSet<i64>>,
    /// Segments an earlier run stored whose compaction records have not
    /// been read (see [`Agent::already_recorded`]).
    records_unread: bool,
}

impl Chain {
    fn new(info: &SnapshotInfo, last: i64) -> Chain {
        Chain {
            base: info.id,
            base_time: info.time,
            stored_last: last,
            received_last: last,
            pending: Vec::new(),
            pending_bytes: 0,
            stored_leases: None,
            records_unread: false,
        }
    }
}

/// What one held event costs in memory, about: its key and value and
/// the record around them.
fn held_bytes(e: &KeyEvent) -> u64 {
    (e.kv.key.len() + e.kv.value.len() + std::mem::size_of::<KeyEvent>()) as u64
}

/// Why a watch stopped being read.
enum End {
    /// A signal: seal, store, return.
    Stop(usize),
    /// The stream or a call broke: follow another member.
    Broken(AgentError),
    /// The watch fell behind this compaction revision.
    Compacted(i64),
    /// The new chain needs revisions the old watch has passed (a full
    /// snapshot from a member behind the one watched): watch again.
    Rewatch,
    /// The changes held passed the limit and were dropped: the chain
    /// ended; a new full snapshot is due.
    Overflowed,
}

struct Agent<'a> {
    repo: &'a Repository,
    opts: &'a AgentOptions,
    log: &'a (dyn Fn(&AgentEvent) + Sync),
    metrics: Metrics,
    /// What the revision probe and the recorder share.
    shared: &'a probe::Shared,
    chain: Option<Chain>,
    /// A full snapshot taken while a chain was recorded: the chain ends
    /// at its revision, a new one starts above it.
    next: Option<SnapshotInfo>,
    /// The highest compaction revision known.
    known_compaction: i64,
    /// Compactions learnt of and not stored yet.
    compactions: Vec<CompactionRecord>,
    /// Granted TTLs by lease ID.
    ttl: HashMap<i64, i64>,
    /// Index in the endpoints of the member to try first.
    member: usize,
    /// The member followed (empty before the first connection).
    following: String,
    /// No full snapshot attempt before this.
    full_not_before: Instant,
    /// Refused tokens in a row (a second one in a row is a failure).
    token_retries: u32,
}

impl Agent<'_> {
    fn emit(&self, e: AgentEvent) {
        if let AgentEvent::Error { kind, .. } = &e {
            self.metrics.error(kind);
        }
        (self.log)(&e);
    }

    fn error(&self, kind: &'static str, e: &dyn std::fmt::Display) {
        self.emit(AgentEvent::Error {
            kind,
            message: e.to_string(),
        });
    }

    fn stopping(&self) -> Option<usize> {
        match self.opts.stop.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Sleeps `d`, or less when a stop is asked for.
    async fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && self.stopping().is_none() {
            tokio::time::sleep(STOP_POLL.min(until.saturating_duration_since(Instant::now())))
                .await;
        }
    }

    async fn main(&mut self) -> Result<(), AgentError> {
        self.resume()?;
        let mut client: Option<Client> = None;
        loop {
            if let Some(sig) = self.stopping() {
                self.stop(client.as_ref(), sig).await;
                return Ok(());
            }
            let c = match client.take() {
                Some(c) => c,
                None => match self.connect().await {
                    Some(c) => c,
                    None => {
                        self.pause(RETRY).await;
                        continue;
                    }
                },
            };
            if self.chain.is_none() {
                if let Some(n) = self.next.take() {
                    self.start_chain(&n);
                } else {
                    match self.take_full(&c).await {
                        Ok(info) => {
                            self.start_chain(&info);
                            self.retain();
                        }
                        Err(()) => {
                            client = Some(c);
                            self.pause(self.full_retry()).await;
                            continue;
                        }
                    }
                }
            }
            // Saturating: the revisions come from stored names and manifests.
            let from = self
                .chain
                .as_ref()
                .map_or(0, |ch| ch.received_last)
                .saturating_add(1);
            let watch = match c.watch(from).await {
                Ok(w) => w,
                Err(e) if self.token_refused(&e) => continue,
                Err(e) => {
                    self.error("watch", &e);
                    self.next_member();
                    self.pause(RETRY).await;
                    continue;
                }
            };
            match self.record(&c, watch).await {
                End::Stop(sig) => {
                    self.stop(Some(&c), sig).await;
                    return Ok(());
                }
                End::Broken(e) if self.token_refused(&e) => {}
                End::Broken(e) => {
                    self.error("watch", &e);
                    self.next_member();
                }
                End::Compacted(r) => {
                    self.gap(&c, r).await;
                    client = Some(c);
                }
                End::Rewatch | End::Overflowed => client = Some(c),
            }
        }
    }

    /// Whether `e` is the member refusing the auth token: then the
    /// agent connects to the same member again (which authenticates
    /// anew) and watches on from where it was, as etcd's clients retry
    /// with a fresh token; an info line, not an error. A member that
    /// refuses the fresh token too is left like any failing member.
    fn token_refused(&mut self, e: &AgentError) -> bool {
        let AgentError::TokenRefused { endpoint, .. } = e else {
            self.token_retries = 0;
            return false;
        };
        self.token_retries += 1;
        if self.token_retries > 1 {
            self.token_retries = 0;
            return false;
        }
        self.emit(AgentEvent::Reauthenticating {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        });
        true
    }

    /// Starts the chain on full snapshot `base`. The agent holds every
    /// revision up to it: the lag counts from there until the watch
    /// delivers more (a quiet cluster delivers nothing).
    fn start_chain(&mut self, base: &SnapshotInfo) {
        self.chain = Some(Chain::new(base, base.revision));
        self.metrics
            .with(|s| s.received_revision = s.received_revision.max(base.revision));
    }

    /// Notes that the cluster compacted at `r` (or above): the probe
    /// asks from there too.
    fn know_compaction(&mut self, r: i64) {
        self.known_compaction = self.known_compaction.max(r);
        self.shared
            .known_compaction
            .store(self.known_compaction, std::sync::atomic::Ordering::SeqCst);
    }

    fn full_retry(&self) -> Duration {
        FULL_RETRY.max(self.opts.delta_every)
    }

    fn next_member(&mut self) {
        let n = self.opts.save.endpoints.len().max(1);
        self.member = (self.member + 1) % n;
    }

    /// The repository's newest full snapshot and its last segment.
    ///
    /// Also when that snapshot is `full_every` old: the chain goes on
    /// from its last segment, and the first seal finds a full snapshot
    /// due, which the chain then reaches as a scheduled one. Starting a
    /// new chain on a fresh snapshot instead would leave the revisions
    /// between the last segment stored before a crash and the new
    /// snapshot in no chain, with no gap logged (the watch could still
    /// deliver them); when the cluster has compacted them away, the
    /// watch says so and the gap is logged.
    fn resume(&mut self) -> Result<(), AgentError> {
        let snaps = block_in_place(|| self.repo.snapshots())?;
        let Some(newest) = snaps.iter().max_by_key(|s| (s.time, s.revision)) else {
            return Ok(());
        };
        let segments = block_in_place(|| self.repo.changes(&newest.id))?;
        // A chain an earlier build recorded on a store that never
        // changed may end at revision 0 (see `chain_range`).
        let last = segments.last().map_or(newest.revision, |s| {
            chain_range(newest.revision, s.first, s.last).1
        });
        let mut chain = Chain::new(newest, last);
        // The first compaction found is looked up in these segments
        // first: the cluster's newest one may be recorded there already.
        chain.records_unread = !segments.is_empty();
        self.chain = Some(chain);
        self.metrics.with(|s| {
            s.stored_revision = last;
            s.received_revision = last;
            s.last_full_revision = newest.revision;
            s.last_full_success = Some(newest.time);
            s.last_full_bytes = newest.size;
        });
        self.emit(AgentEvent::Resumed {
            base: newest.id.short(),
            revision: last,
        });
        Ok(())
    }

    /// The newest compaction the stored segments of the chain on `base`
    /// record. A chain records compactions in increasing order (each one
    /// above the last known), so the segments are read from the newest
    /// back to the first one that records any: with compactions every
    /// few minutes that is a few segments; a chain that recorded none is
    /// read whole, once.
    fn recorded_compaction(&self, base: &SnapshotId) -> Result<Option<i64>, RepoError> {
        let segments = self.repo.changes(base)?;
        for info in segments.iter().rev() {
            let seg = self.repo.read_changes(base, info)?;
            if let Some(r) = seg.compactions.iter().map(|c| c.revision).max() {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Whether the chain already records compaction `r` (or a later
    /// one), and which: only segments an earlier run stored can (the
    /// agent was restarted, and knew of no compaction at start), and
    /// they are read once, the first time a compaction is found. Without
    /// this, the first seal after a restart finds the cluster's newest
    /// compaction above 0 and records it a second time. A failed read is
    /// logged and the compaction recorded (again, perhaps: a restore
    /// applies the newest one either way).
    fn already_recorded(&mut self, r: i64) -> Option<i64> {
        let ch = self.chain.as_mut()?;
        if !std::mem::take(&mut ch.records_unread) {
            return None;
        }
        let base = ch.base;
        match block_in_place(|| self.recorded_compaction(&base)) {
            Ok(Some(rec)) if rec >= r => Some(rec),
            Ok(_) => None,
            Err(e) => {
                self.error("repository", &e);
                None
            }
        }
    }

    /// A connection to the first member that answers, from the current
    /// one on.
    async fn connect(&mut self) -> Option<Client> {
        let eps = &self.opts.save.endpoints;
        for i in 0..eps.len() {
            let idx = (self.member + i) % eps.len();
            let Some(ep) = eps.get(idx) else { continue };
            match Client::connect(ep, &self.opts.save).await {
                Ok(c) => {
                    self.member = idx;
                    if self.following != *ep {
                        let from = std::mem::replace(&mut self.following, ep.clone());
                        self.emit(AgentEvent::Failover {
                            from,
                            to: ep.clone(),
                        });
                    }
                    return Some(c);
                }
                Err(e) => self.error("connect", &e),
            }
            if self.stopping().is_some() {
                return None;
            }
        }
        None
    }

    /// Takes a full snapshot into the repository from the member `c`
    /// follows, or the others in turn.
    async fn take_full(&mut self, c: &Client) -> Result<SnapshotInfo, ()> {
        // A compaction known before the snapshot is in it: only later
        // ones are recorded.
        match c.compaction_above(self.known_compaction).await {
            Ok(Some((r, _))) => self.know_compaction(r),
            Ok(None) => {}
            Err(e) => self.error("rpc", &e),
        }
        let eps = self.opts.save.endpoints.clone();
        let first = eps.iter().position(|e| *e == c.endpoint).unwrap_or(0);
        for i in 0..eps.len() {
            let Some(ep) = eps.get((first + i) % eps.len()) else {
                continue;
            };
            let so = self
                .opts
                .save
                .clone()
                .with_endpoints([ep])
                .with_interrupt(self.opts.stop.clone());
            let started = Instant::now();
            let pushed = block_in_place(|| {
                self.repo
                    .push_from_endpoint(&so, &PushOptions::default(), &|_| {})
            });
            // What the save and the push freed goes back to the kernel
            // (see `release_free_heap`), whatever the outcome.
            crate::mmap::release_free_heap();
            match pushed {
                Ok(s) => {
                    let seconds = started.elapsed().as_secs_f64();
                    let info = s.info;
                    self.metrics.with(|m| {
                        m.last_full_success = Some(SystemTime::now());
                        m.last_full_seconds = seconds;
                        m.last_full_bytes = info.size;
                        m.last_full_revision = info.revision;
                        m.cluster_revision = m.cluster_revision.max(info.revision);
                        if m.stored_revision <= info.revision {
                            m.stored_revision = info.revision;
                            m.caught_up_at = Some(SystemTime::now());
                        }
                    });
                    self.metrics.progress();
                    self.emit(AgentEvent::FullSnapshot {
                        id: info.id.short(),
                        revision: info.revision,
                        bytes: info.size,
                        new_bytes: info.new_bytes,
                        seconds,
                        endpoint: ep.clone(),
                    });
                    return Ok(info);
                }
                Err(RepoError::Save(SaveError::Interrupted { .. })) => return Err(()),
                Err(e) => self.error("full", &e),
            }
            if self.stopping().is_some() {
                break;
            }
        }
        self.full_not_before = Instant::now() + self.full_retry();
        Err(())
    }

    /// Whether the chain's full snapshot is `full_every` old.
    fn full_due(&self) -> bool {
        let Some(ch) = &self.chain else { return false };
        self.next.is_none()
            && Instant::now() >= self.full_not_before
            && self.opts.full_due(ch.base_time, SystemTime::now())
    }

    /// Reads the watch until it ends, sealing every `delta_every`.
    async fn record(&mut self, c: &Client, mut watch: Watch) -> End {
        let start = tokio::time::Instant::now();
        let mut tick =
            tokio::time::interval_at(start + self.opts.delta_every, self.opts.delta_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop_poll = tokio::time::interval(STOP_POLL);
        let shared = self.shared;
        loop {
            tokio::select! {
                m = watch.stream.message() => match m {
                    Ok(Some(resp)) => {
                        if let Some(end) = self.on_response(c, resp).await {
                            return end;
                        }
                    }
                    Ok(None) => {
                        return End::Broken(AgentError::Rpc {
                            endpoint: c.endpoint.clone(),
                            call: "Watch".into(),
                            cause: "the watch stream ended".into(),
                        });
                    }
                    Err(s) => return End::Broken(call_error(&c.endpoint, "Watch", &s)),
                },
                _ = tick.tick() => {
                    if let Err(e) = self.seal(c).await {
                        return End::Broken(e);
                    }
                    self.token_retries = 0;
                    if self.full_due() {
                        if let Ok(info) = self.take_full(c).await {
                            self.next = Some(info);
                        }
                        if let Some(end) = self.maybe_switch(c).await {
                            return end;
                        }
                    }
                }
                () = shared.compacted.notified() => {
                    // The probe found a compaction: recorded now, as seen
                    // at the cluster's revision now, so that a restore to
                    // a revision written after it carries it (waiting for
                    // the tick would date it up to `delta_every` later).
                    if let Err(e) = self.seal(c).await {
                        return End::Broken(e);
                    }
                }
                _ = stop_poll.tick() => {
                    if let Some(sig) = self.stopping() {
                        return End::Stop(sig);
                    }
                }
            }
        }
    }

    async fn on_response(&mut self, c: &Client, resp: super::proto::WatchResponse) -> Option<End> {
        let header_rev = resp.header.as_ref().map_or(0, |h| h.revision);
        self.metrics
            .with(|s| s.cluster_revision = s.cluster_revision.max(header_rev));
        if resp.compact_revision != 0 {
            return Some(End::Compacted(resp.compact_revision));
        }
        if resp.canceled {
            return Some(End::Broken(AgentError::Rpc {
                endpoint: c.endpoint.clone(),
                call: "Watch".into(),
                cause: format!("watch canceled: {}", resp.cancel_reason),
            }));
        }
        self.metrics.progress();
        if resp.created {
            return None;
        }
        if resp.events.is_empty() {
            // A progress notification: sent only once the watcher has
            // delivered every event up to the header's revision.
            let cap = self.next.as_ref().map_or(i64::MAX, |n| n.revision);
            if let Some(ch) = self.chain.as_mut() {
                ch.received_last = ch.received_last.max(header_rev.min(cap));
                let r = ch.received_last;
                self.metrics.with(|s| s.received_revision = r);
            }
            return self.maybe_switch(c).await;
        }
        let now = SystemTime::now();
        let n = resp.events.len();
        // Revisions come whole in one response: those at or below what
        // was held before it are already recorded (a watch resumed on
        // another member).
        let mut held = self.chain.as_ref().map_or(0, |ch| ch.received_last);
        for ev in resp.events {
            let Some(kv) = ev.kv else { continue };
            let r = kv.mod_revision;
            if self.next.as_ref().is_some_and(|n| r > n.revision) {
                if let Some(end) = self.switch(c).await {
                    return Some(end);
                }
                held = self.chain.as_ref().map_or(0, |ch| ch.received_last);
            }
            let ch = self.chain.as_mut()?;
            if r <= held {
                continue;
            }
            let kind = if ev.r#type == 1 {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            let event = KeyEvent { kind, kv };
            ch.pending_bytes = ch.pending_bytes.saturating_add(held_bytes(&event));
            match ch.pending.last_mut() {
                Some(last) if last.revision == r => last.events.push(event),
                _ => ch.pending.push(RevisionChanges {
                    revision: r,
                    events: vec![event],
                    observed: now,
                }),
            }
            ch.received_last = r;
        }
        let (r, held) = self
            .chain
            .as_ref()
            .map_or((0, 0), |ch| (ch.received_last, ch.pending_bytes));
        self.metrics.with(|s| {
            s.events_recorded += n as u64;
            s.received_revision = r;
            s.buffered_bytes = held;
        });
        if held > self.opts.max_buffer_bytes {
            return self.overflow(c).await;
        }
        self.maybe_switch(c).await
    }

    /// More is held than `max_buffer_bytes`: stored now if the repository
    /// takes it; else dropped, and the chain ends there (a new full
    /// snapshot is taken when the repository accepts one), so that
    /// memory stays bounded however long the repository refuses.
    async fn overflow(&mut self, c: &Client) -> Option<End> {
        if let Err(e) = self.seal(c).await {
            return Some(End::Broken(e));
        }
        let ch = self.chain.as_ref()?;
        if ch.pending_bytes <= self.opts.max_buffer_bytes {
            return self.maybe_switch(c).await;
        }
        let (base, last, bytes) = (ch.base.short(), ch.stored_last, ch.pending_bytes);
        self.chain = None;
        // Compactions learnt are recorded again by the next chain's
        // segments (the probe finds them above its base).
        self.compactions.clear();
        self.metrics.with(|s| {
            s.buffer_overflows += 1;
            s.buffered_bytes = 0;
        });
        self.metrics.error("overflow");
        self.emit(AgentEvent::Overflow {
            base,
            last,
            bytes,
            limit: self.opts.max_buffer_bytes,
        });
        Some(End::Overflowed)
    }

    /// Switches to the next chain once the old one holds its revision.
    async fn maybe_switch(&mut self, c: &Client) -> Option<End> {
        let (Some(n), Some(ch)) = (&self.next, &self.chain) else {
            return None;
        };
        if ch.received_last >= n.revision {
            return self.switch(c).await;
        }
        None
    }

    /// Ends the chain (sealing and storing what it holds) and starts the
    /// one on the newer full snapshot.
    async fn switch(&mut self, c: &Client) -> Option<End> {
        let n = self.next.take()?;
        if let Err(e) = self.seal(c).await {
            self.next = Some(n);
            return Some(End::Broken(e));
        }
        let mut rewatch = false;
        if let Some(ch) = &self.chain {
            if !ch.pending.is_empty() || ch.stored_last < n.revision {
                // Not all stored (the store failed), or a watch that
                // never reached the new snapshot's revision.
                self.emit(AgentEvent::Gap {
                    base: ch.base.short(),
                    last: ch.stored_last,
                    compacted: 0,
                });
            }
            rewatch = ch.received_last > n.revision;
        }
        self.compactions.retain(|k| k.seen_at_revision > n.revision);
        self.start_chain(&n);
        self.retain();
        rewatch.then_some(End::Rewatch)
    }

    /// Applies the retention rules once a full snapshot started a chain
    /// (the old chain, if any, is finished: nothing is put on it again).
    /// The chain being recorded is protected whatever the rules say; a
    /// failure is logged and the rules run again after the next full
    /// snapshot.
    fn retain(&self) {
        if self.opts.keep.is_empty() {
            return;
        }
        let protect: Vec<SnapshotId> = self
            .chain
            .iter()
            .map(|c| c.base)
            .chain(self.next.iter().map(|n| n.id))
            .collect();
        match block_in_place(|| self.repo.retain(self.opts.keep, &protect)) {
            Ok(r) if r.removed.is_empty() && r.deltas_deleted == 0 => {}
            Ok(r) => {
                self.metrics.with(|s| {
                    s.snapshots_forgotten += r.removed.len() as u64;
                    s.segments_deleted += r.deltas_deleted as u64;
                });
                self.emit(AgentEvent::Retention {
                    forgotten: r.removed.iter().map(|i| i.id.short()).collect(),
                    kept: r.kept.len(),
                    segments_deleted: r.deltas_deleted,
                });
            }
            Err(e) => self.error("retention", &e),
        }
    }

    /// The watch fell behind compaction `r`: store what is held, end the
    /// chain; the main loop takes a new full snapshot (or moves to the
    /// one already taken).
    async fn gap(&mut self, c: &Client, r: i64) {
        if let Err(e) = self.seal(c).await {
            self.error("rpc", &e);
        }
        self.know_compaction(r);
        if let Some(ch) = self.chain.take() {
            self.emit(AgentEvent::Gap {
                base: ch.base.short(),
                last: ch.stored_last,
                compacted: r,
            });
        }
        self.compactions.clear();
    }

    /// On a signal: seal and store what is held.
    async fn stop(&mut self, c: Option<&Client>, sig: usize) {
        if let Some(c) = c
            && let Err(e) = self.seal(c).await
        {
            self.error("rpc", &e);
        }
        let last = self.chain.as_ref().map_or(0, |ch| ch.stored_last);
        self.emit(AgentEvent::Stopped {
            signal: crate::cleanup::signal_name(sig),
            last,
        });
    }

    /// Seals a segment from what the chain holds and stores it. `Err`
    /// only for the member's failure (the caller follows another); a
    /// store that fails is logged and tried again at the next seal.
    async fn seal(&mut self, c: &Client) -> Result<(), AgentError> {
        let sealed = self.seal_once(c).await;
        for _ in 0..c.take_reauthentications() {
            self.emit(AgentEvent::Reauthenticating {
                endpoint: c.endpoint.clone(),
                message: "the auth token was refused".into(),
            });
        }
        sealed
    }

    async fn seal_once(&mut self, c: &Client) -> Result<(), AgentError> {
        let started = Instant::now();
        if self.chain.is_none() {
            return Ok(());
        }
        // The probe first: the lease list's header revision, taken
        // after it, is then at or above the cluster's revision when the
        // compaction ran (etcd's compacted watch answer carries none).
        let compacted = c.compaction_above(self.known_compaction).await?;
        let (alive, cluster_rev) = c.leases().await?;
        self.metrics
            .with(|s| s.cluster_revision = s.cluster_revision.max(cluster_rev));
        if let Some((r, _)) = compacted
            && let Some(rec) = self.already_recorded(r)
        {
            self.know_compaction(rec);
        } else if let Some((r, seen)) = compacted {
            let seen = seen.max(cluster_rev);
            self.know_compaction(r);
            let rec = CompactionRecord {
                revision: r,
                seen_at_revision: seen,
            };
            self.compactions.push(rec);
            self.emit(AgentEvent::Compaction {
                revision: r,
                seen_at_revision: seen,
            });
        }
        let alive_set: BTreeSet<i64> = alive.iter().copied().collect();
        let mut leases: Vec<LeaseRecord> = Vec::with_capacity(alive.len());
        for id in &alive {
            let (ttl, still) = match self.ttl.get(id) {
                Some(t) => (*t, true),
                None => {
                    let (t, still) = c.granted_ttl(*id).await?;
                    if still {
                        self.ttl.insert(*id, t);
                    }
                    (t, still)
                }
            };
            leases.push(LeaseRecord {
                id: *id,
                ttl,
                alive_at_end: still,
            });
        }
        let Some(ch) = self.chain.as_ref() else {
            return Ok(());
        };
        let attached: BTreeSet<i64> = ch
            .pending
            .iter()
            .flat_map(|r| r.events.iter())
            .filter(|e| e.kind == EventKind::Put && e.kv.lease != 0)
            .map(|e| e.kv.lease)
            .filter(|l| !alive_set.contains(l))
            .collect();
        for id in attached {
            let ttl = match self.ttl.get(&id) {
                Some(t) => *t,
                None => c.granted_ttl(id).await?.0,
            };
            leases.push(LeaseRecord {
                id,
                ttl,
                alive_at_end: false,
            });
        }
        leases.sort_by_key(|l| l.id);
        self.ttl.retain(|id, _| alive_set.contains(id));

        let Some(ch) = self.chain.as_mut() else {
            return Ok(());
        };
        let last = ch.received_last;
        let compactions: Vec<CompactionRecord> = self
            .compactions
            .iter()
            .filter(|k| k.seen_at_revision <= last)
            .copied()
            .collect();
        let leases_changed = ch.stored_leases.as_ref().is_some_and(|s| *s != alive_set);
        if ch.stored_leases.is_none() {
            ch.stored_leases = Some(alive_set.clone());
        }
        let caught_up = last >= cluster_rev;
        if ch.pending.is_empty() && compactions.is_empty() && !leases_changed {
            // Nothing new: the repository already holds it all.
            let stored = ch.stored_last;
            self.metrics.with(|s| {
                s.last_delta_success = Some(SystemTime::now());
                s.last_delta_seconds = started.elapsed().as_secs_f64();
                if caught_up {
                    s.caught_up_at = Some(SystemTime::now());
                }
                s.stored_revision = s.stored_revision.max(stored);
            });
            self.metrics.progress();
            return Ok(());
        }
        // The changes held move into the segment (a copy of them doubled
        // the agent's memory at every seal) and back if it is not stored.
        let mut segment = ChangeSegment {
            first: ch.stored_last.saturating_add(1),
            last,
            revisions: std::mem::take(&mut ch.pending),
            leases,
            compactions,
            sealed: SystemTime::now(),
        };
        let base = ch.base;
        let stored = block_in_place(|| self.repo.put_changes(&base, &segment));
        let Some(ch) = self.chain.as_mut() else {
            return Ok(());
        };
        if let Err(e) = stored {
            ch.pending = segment.revisions;
            self.error("repository", &e);
            return Ok(());
        }
        ch.pending_bytes = 0;
        ch.stored_last = last;
        ch.stored_leases = Some(alive_set);
        self.compactions.retain(|k| k.seen_at_revision > last);
        let events: usize = segment.revisions.iter().map(|r| r.events.len()).sum();
        let bytes: u64 = segment
            .revisions
            .iter()
            .flat_map(|r| r.events.iter())
            .map(|e| (e.kv.key.len() + e.kv.value.len()) as u64)
            .sum();
        let revisions = segment.revisions.len();
        drop(std::mem::take(&mut segment.revisions));
        // The segment's events and encoding were the largest blocks
        // since the last seal.
        crate::mmap::release_free_heap();
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.with(|s| {
            s.last_delta_success = Some(SystemTime::now());
            s.last_delta_seconds = seconds;
            s.last_delta_bytes = bytes;
            s.segments_stored += 1;
            s.buffered_bytes = 0;
            s.stored_revision = last;
            if caught_up {
                s.caught_up_at = Some(segment.sealed);
            }
        });
        self.metrics.progress();
        self.emit(AgentEvent::Segment {
            base: base.short(),
            first: segment.first,
            last: segment.last,
            revisions,
            events,
            leases: segment.leases.len(),
            compactions: segment.compactions.len(),
            seconds,
        });
        Ok(())
    }
}

/// Sets the flag when dropped.
struct DoneOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
