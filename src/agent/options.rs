//! How the agent runs: the cluster (save's options), the schedule, the
//! metrics listener and the stop flag.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, SystemTime};

use super::error::AgentError;
use super::schedule::CronSchedule;
use crate::location::RetentionPolicy;
use crate::save::SaveOptions;

/// [`AgentOptions::max_buffer_bytes`]' default: 256 MiB.
pub const DEFAULT_MAX_BUFFER: u64 = 256 << 20;

/// The agent's settings: [`AgentOptions::new`], then its `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentOptions {
    /// The cluster: every member in `endpoints` (followed in turn when
    /// one fails), TLS, credentials, dial and keepalive timeouts; the
    /// command timeout bounds each lease query (5 s when not given).
    pub save: SaveOptions,
    /// A full snapshot is taken when the newest is this old (and at
    /// start when there is none younger). Default 1 h.
    pub full_every: Duration,
    /// When set, full snapshots follow this cron expression (UTC)
    /// instead of [`full_every`](Self::full_every): one is taken when a
    /// time it names has passed since the newest (and at start when one
    /// has passed since the repository's newest).
    pub full_cron: Option<CronSchedule>,
    /// A segment is sealed and stored this often. Default 10 s.
    pub delta_every: Duration,
    /// `/healthz` answers 503 when no delta succeeded and no watch
    /// response came for this long. Default 60 s.
    pub unhealthy_after: Duration,
    /// After each full snapshot that starts a chain, the snapshots these
    /// rules do not keep are forgotten and their recorded changes deleted
    /// (`backup forget`'s `--keep-*` rules; the chain being recorded is
    /// always kept; chunks stay until `backup prune`). Default: none, keep
    /// everything.
    pub keep: RetentionPolicy,
    /// The most bytes of received changes held while the repository
    /// refuses segments: beyond it they are dropped, the gap is logged
    /// and a new full snapshot is taken once the repository accepts
    /// writes again. Default 256 MiB.
    pub max_buffer_bytes: u64,
    /// `HOST:PORT` to serve `/metrics` and `/healthz` on.
    pub metrics_addr: Option<String>,
    /// Set to a signal's number to stop: the agent seals and stores what
    /// it holds and returns. A full snapshot being taken is abandoned.
    pub stop: Arc<AtomicUsize>,
}

impl AgentOptions {
    /// Defaults: full snapshots every hour, segments every 10 s,
    /// unhealthy after 60 s, no metrics listener.
    pub fn new(save: SaveOptions) -> AgentOptions {
        AgentOptions {
            save,
            full_every: Duration::from_secs(3600),
            full_cron: None,
            delta_every: Duration::from_secs(10),
            unhealthy_after: Duration::from_secs(60),
            keep: RetentionPolicy::default(),
            max_buffer_bytes: DEFAULT_MAX_BUFFER,
            metrics_addr: None,
            stop: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A full snapshot is taken when the newest is this old.
    pub fn with_full_every(mut self, every: Duration) -> Self {
        self.full_every = every;
        self
    }

    /// Full snapshots follow this cron expression (UTC) instead of
    /// [`full_every`](Self::full_every).
    pub fn with_full_cron(mut self, cron: CronSchedule) -> Self {
        self.full_cron = Some(cron);
        self
    }

    /// The retention rules applied after each full snapshot that starts a
    /// chain.
    pub fn with_keep(mut self, keep: RetentionPolicy) -> Self {
        self.keep = keep;
        self
    }

    /// The most bytes of received changes held while the repository
    /// refuses segments.
    pub fn with_max_buffer_bytes(mut self, bytes: u64) -> Self {
        self.max_buffer_bytes = bytes;
        self
    }

    /// A segment is sealed and stored this often.
    pub fn with_delta_every(mut self, every: Duration) -> Self {
        self.delta_every = every;
        self
    }

    /// `/healthz` answers 503 after this long without progress.
    pub fn with_unhealthy_after(mut self, after: Duration) -> Self {
        self.unhealthy_after = after;
        self
    }

    /// `HOST:PORT` to serve `/metrics` and `/healthz` on.
    pub fn with_metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// The flag that stops the agent when set to a signal's number.
    pub fn with_stop(mut self, stop: Arc<AtomicUsize>) -> Self {
        self.stop = stop;
        self
    }

    /// Whether a full snapshot taken at `base` is due for renewal at
    /// `now`: `full_cron` names a time after `base` and not after `now`,
    /// or `base` is `full_every` old.
    pub(crate) fn full_due(&self, base: SystemTime, now: SystemTime) -> bool {
        match &self.full_cron {
            Some(c) => c.next_after(base).is_some_and(|t| t <= now),
            None => now.duration_since(base).unwrap_or_default() >= self.full_every,
        }
    }

    pub(crate) fn check(&self) -> Result<(), AgentError> {
        if self.save.endpoints.is_empty() {
            return Err(AgentError::Options("no endpoint given".into()));
        }
        for e in &self.save.endpoints {
            crate::save::options::Endpoint::parse(e)?;
        }
        if self.max_buffer_bytes == 0 {
            return Err(AgentError::Options(
                "--max-buffer-bytes must be positive".into(),
            ));
        }
        if let Some(c) = &self.full_cron
            && c.next_after(SystemTime::now()).is_none()
        {
            return Err(AgentError::Options(format!(
                "--full-every {c:?}: the cron expression names no time in the next eight years",
                c = c.as_str()
            )));
        }
        if self.delta_every.is_zero() || self.full_every.is_zero() {
            return Err(AgentError::ZeroInterval);
        }
        Ok(())
    }
}
