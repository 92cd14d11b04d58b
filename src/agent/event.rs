//! What the agent reports, one event per line of its log.

use serde_json::json;

/// Something the agent did or ran into.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AgentEvent {
    /// The agent started on a repository's newest full snapshot and its
    /// stored segments, continuing after `revision`.
    Resumed {
        /// The full snapshot's ID.
        base: String,
        /// The last revision the repository holds for it.
        revision: i64,
    },
    /// A full snapshot was taken and stored: a new chain starts.
    FullSnapshot {
        /// Its ID.
        id: String,
        /// Its revision.
        revision: i64,
        /// Its size.
        bytes: u64,
        /// Bytes the push added to the repository.
        new_bytes: u64,
        /// Save and push, in seconds.
        seconds: f64,
        /// The member it came from.
        endpoint: String,
    },
    /// A change segment was stored.
    Segment {
        /// The full snapshot it is recorded on.
        base: String,
        /// First revision covered.
        first: i64,
        /// Last revision covered.
        last: i64,
        /// Revisions with key events.
        revisions: usize,
        /// Key events.
        events: usize,
        /// Lease records.
        leases: usize,
        /// Compaction records.
        compactions: usize,
        /// Lease queries and the store, in seconds.
        seconds: f64,
    },
    /// The cluster ran a compaction.
    Compaction {
        /// The compaction revision.
        revision: i64,
        /// The cluster's revision when the agent learnt of it.
        seen_at_revision: i64,
    },
    /// The agent now follows another member.
    Failover {
        /// The member it left (empty at start).
        from: String,
        /// The member it follows.
        to: String,
    },
    /// Revisions the agent could not record: the chain on `base` ends at
    /// `last`, and restores between it and the next full snapshot are
    /// impossible.
    Gap {
        /// The full snapshot whose chain ends.
        base: String,
        /// The last revision recorded on it.
        last: i64,
        /// Why (the watch fell behind compaction `compacted`, or the
        /// restart found it so).
        compacted: i64,
    },
    /// The changes held exceeded [`AgentOptions::max_buffer_bytes`]
    /// while the repository refused segments: they were dropped, the
    /// chain on `base` ends at `last`, and a new full snapshot is taken
    /// as soon as the repository accepts one.
    ///
    /// [`AgentOptions::max_buffer_bytes`]: super::AgentOptions::max_buffer_bytes
    Overflow {
        /// The full snapshot whose chain ends.
        base: String,
        /// The last revision stored on it.
        last: i64,
        /// The bytes held when they were dropped.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The member refused the auth token (it expired): the agent
    /// authenticates again on the same member and watches on from where
    /// it was.
    Reauthenticating {
        /// The member.
        endpoint: String,
        /// What it answered.
        message: String,
    },
    /// The retention rules (`--keep-*`) forgot full snapshots and
    /// deleted their recorded changes.
    Retention {
        /// The snapshots forgotten (short IDs).
        forgotten: Vec<String>,
        /// Snapshots still listed.
        kept: usize,
        /// Change segments deleted (of these snapshots, or left by an
        /// earlier run that was interrupted).
        segments_deleted: usize,
    },
    /// A step failed; the agent carries on.
    Error {
        /// The error counter's label.
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A signal stopped the agent after it stored what it held.
    Stopped {
        /// The signal's name.
        signal: String,
        /// The last revision stored.
        last: i64,
    },
}

impl AgentEvent {
    /// The event's name (`segment`, `full`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            AgentEvent::Resumed { .. } => "resumed",
            AgentEvent::FullSnapshot { .. } => "full",
            AgentEvent::Segment { .. } => "segment",
            AgentEvent::Compaction { .. } => "compaction",
            AgentEvent::Failover { .. } => "failover",
            AgentEvent::Gap { .. } => "gap",
            AgentEvent::Overflow { .. } => "overflow",
            AgentEvent::Retention { .. } => "retention",
            AgentEvent::Reauthenticating { .. } => "reauthenticating",
            AgentEvent::Error { .. } => "error",
            AgentEvent::Stopped { .. } => "stopped",
        }
    }

    /// The event as one JSON object (`{"event": "segment", ...}`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = match self {
            AgentEvent::Resumed { base, revision } => json!({"base": base, "revision": revision}),
            AgentEvent::FullSnapshot {
                id,
                revision,
                bytes,
                new_bytes,
                seconds,
                endpoint,
            } => json!({"id": id, "revision": revision, "bytes": bytes, "newBytes": new_bytes,
                        "seconds": seconds, "endpoint": endpoint}),
            AgentEvent::Segment {
                base,
                first,
                last,
                revisions,
                events,
                leases,
                compactions,
                seconds,
            } => json!({"base": base, "first": first, "last": last, "revisions": revisions,
                        "events": events, "leases": leases, "compactions": compactions,
                        "seconds": seconds}),
            AgentEvent::Compaction {
                revision,
                seen_at_revision,
            } => json!({"revision": revision, "seenAtRevision": seen_at_revision}),
            AgentEvent::Failover { from, to } => json!({"from": from, "to": to}),
            AgentEvent::Gap {
                base,
                last,
                compacted,
            } => json!({"base": base, "last": last, "compacted": compacted}),
            AgentEvent::Overflow {
                base,
                last,
                bytes,
                limit,
            } => json!({"base": base, "last": last, "bytes": bytes, "limit": limit}),
            AgentEvent::Retention {
                forgotten,
                kept,
                segments_deleted,
            } => json!({"forgotten": forgotten, "kept": kept, "segmentsDeleted": segments_deleted}),
            AgentEvent::Reauthenticating { endpoint, message } => {
                json!({"endpoint": endpoint, "message": message})
            }
            AgentEvent::Error { kind, message } => json!({"kind": kind, "message": message}),
            AgentEvent::Stopped { signal, last } => json!({"signal": signal, "last": last}),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), json!(self.name()));
        }
        v
    }
}

impl std::fmt::Display for AgentEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentEvent::Resumed { base, revision } => write!(
                f,
                "resumed on full snapshot {base}: recording from revision {}",
                revision.saturating_add(1)
            ),
            AgentEvent::FullSnapshot {
                id,
                revision,
                bytes,
                new_bytes,
                seconds,
                endpoint,
            } => write!(
                f,
                "full snapshot {id} stored: revision {revision}, {bytes} bytes ({new_bytes} new), {seconds:.1}s, from {endpoint}"
            ),
            AgentEvent::Segment {
                base,
                first,
                last,
                revisions,
                events,
                leases,
                compactions,
                seconds,
            } => write!(
                f,
                "segment stored on {base}: revisions {first}..{last} ({revisions} with {events} events, {leases} leases, {compactions} compactions), {seconds:.3}s"
            ),
            AgentEvent::Compaction {
                revision,
                seen_at_revision,
            } => write!(
                f,
                "compaction at revision {revision} seen at revision {seen_at_revision}"
            ),
            AgentEvent::Failover { from, to } if from.is_empty() => write!(f, "following {to}"),
            AgentEvent::Failover { from, to } => write!(f, "failover: {from} -> {to}"),
            AgentEvent::Gap {
                base,
                last,
                compacted,
            } => write!(
                f,
                "gap: the chain on {base} ends at revision {last} (the cluster compacted at {compacted}); taking a new full snapshot"
            ),
            AgentEvent::Overflow {
                base,
                last,
                bytes,
                limit,
            } => write!(
                f,
                "buffer overflow: {bytes} bytes of changes held (limit {limit}) while the repository refuses segments; dropped: the chain on {base} ends at revision {last}; a new full snapshot is taken once the repository accepts it"
            ),
            AgentEvent::Retention {
                forgotten,
                kept,
                segments_deleted,
            } => write!(
                f,
                "retention: forgot {} full snapshots [{}] and deleted {segments_deleted} change segments; {kept} snapshots kept",
                forgotten.len(),
                forgotten.join(" ")
            ),
            AgentEvent::Reauthenticating { endpoint, message } => write!(
                f,
                "auth token refused by {endpoint} ({message}): authenticating again"
            ),
            AgentEvent::Error { kind, message } => write!(f, "error ({kind}): {message}"),
            AgentEvent::Stopped { signal, last } => {
                write!(f, "stopped by {signal}: stored through revision {last}")
            }
        }
    }
}
