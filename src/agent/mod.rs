//! Continuous backup: `etcdsnap agent`, a service that keeps a
//! repository's full snapshots and, between them, every change.
//!
//! [`run`] takes a full snapshot into the [`Repository`](crate::repo::Repository)
//! at start and every [`AgentOptions::full_every`], and follows the
//! cluster with one watch over the whole key space from the newest full
//! snapshot's revision + 1. Every [`AgentOptions::delta_every`] it seals
//! what it received into a [`ChangeSegment`](crate::etcd::change::ChangeSegment)
//! (the key events of a contiguous revision range, the leases alive at
//! its end and those its puts attached keys to, the compactions it
//! learnt of) and stores it with `put_changes`. It follows another
//! member when one fails, resumes after a crash where the repository
//! says it stopped, and serves Prometheus metrics and `/healthz`. A
//! revision probe on a thread and a connection of its own (`probe.rs`)
//! feeds the `revision_lag` gauge while the watch's connection stalls,
//! and wakes the recorder to seal at once when the cluster compacts.
//!
//! See `run.rs` for why no revision is missed or recorded twice.

mod client;
mod error;
mod event;
mod metrics;
mod options;
mod probe;
mod proto;
mod run;
mod schedule;

pub use error::AgentError;
pub use event::AgentEvent;
pub use options::{AgentOptions, DEFAULT_MAX_BUFFER};
pub use run::run;
pub use schedule::CronSchedule;
