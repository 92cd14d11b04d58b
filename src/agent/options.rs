//! How the agent runs: the cluster (save's options), the schedule, the
//! metrics listener and the stop flag.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::error::AgentError;
use crate::save::SaveOptions;

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
    /// A segment is sealed and stored this often. Default 10 s.
    pub delta_every: Duration,
    /// `/healthz` answers 503 when no delta succeeded and no watch
    /// response came for this long. Default 60 s.
    pub unhealthy_after: Duration,
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
            delta_every: Duration::from_secs(10),
            unhealthy_after: Duration::from_secs(60),
            metrics_addr: None,
            stop: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A full snapshot is taken when the newest is this old.
    pub fn with_full_every(mut self, every: Duration) -> Self {
        self.full_every = every;
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

    pub(crate) fn check(&self) -> Result<(), AgentError> {
        if self.save.endpoints.is_empty() {
            return Err(AgentError::Options("no endpoint given".into()));
        }
        for e in &self.save.endpoints {
            crate::save::options::Endpoint::parse(e)?;
        }
        if self.delta_every.is_zero() || self.full_every.is_zero() {
            return Err(AgentError::ZeroInterval);
        }
        Ok(())
    }
}
