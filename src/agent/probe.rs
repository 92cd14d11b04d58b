//! The revision probe: the cluster's revision, asked every few seconds
//! on a connection of its own, for the `revision_lag` gauge; and whether
//! the cluster compacted above what the recorder knows, which makes the
//! recorder seal at once.
//!
//! Why a connection and a thread of its own. The recorder sees the
//! cluster's revision in its watch's response headers and its seals'
//! answers, all on the connection it follows. When that connection stalls
//! with the stream still open (a proxy that stops forwarding, while it
//! answers keepalive pings itself), the headers stop with the events, and
//! a gauge fed only by them froze at its last value: the lag was
//! under-reported exactly while it grew. A probe on the recorder's
//! connection would stall with it. So the probe dials its own connection
//! (the same endpoints, TLS and credentials as the watch), starting with
//! the member that answered it last and trying the others in turn when
//! that one fails, and runs on a thread with its own single-threaded
//! runtime: the recorder's repository writes and full snapshots (which
//! block their thread) never hold it up, and it never holds them.
//!
//! What it asks: a linearizable count of one key at the compaction
//! revision the recorder knows ([`Client::revision`]); the answer's header
//! is the cluster's revision. A refusal as compacted means the cluster
//! ran a compaction the recorder has not recorded: the recorder is woken
//! to seal at once, so that the compaction is recorded as seen at the
//! cluster's revision within one probe interval of when it ran (not at
//! the next `--delta-every`), and restores to the revisions written
//! meanwhile carry it.
//!
//! A failed probe leaves the gauge at its last value and counts an error
//! of kind `probe`; the first failure after a success is logged.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::client::Client;
use super::error::AgentError;
use super::event::AgentEvent;
use super::metrics::Metrics;
use super::options::AgentOptions;

/// The longest time between two probes (shorter when `delta_every` is).
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How often a probe waiting or in flight looks at the stop flags.
const STOP_POLL: Duration = Duration::from_millis(100);

/// How often the probe asks: every `delta_every`, at most [`PROBE_EVERY`].
pub(crate) fn interval(delta_every: Duration) -> Duration {
    delta_every.min(PROBE_EVERY)
}

/// What the recorder and the probe share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set once the recorder has returned: the probe ends.
    pub done: AtomicBool,
    /// The highest compaction revision the recorder knows; the probe
    /// asks whether the cluster compacted above it.
    pub known_compaction: AtomicI64,
    /// Woken when the probe found a compaction above `known_compaction`
    /// (a permit is kept while the recorder is busy).
    pub compacted: Notify,
}

/// Runs the probe until the agent stops (`opts.stop`) or the recorder
/// returns (`shared.done`).
pub(crate) fn run(
    opts: &AgentOptions,
    metrics: &Metrics,
    log: &(dyn Fn(&AgentEvent) + Sync),
    shared: &Shared,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            metrics.error("probe");
            log(&AgentEvent::Error {
                kind: "probe",
                message: format!("cannot start the revision probe's runtime: {e}"),
            });
            return;
        }
    };
    let mut probe = Probe {
        opts,
        metrics,
        log,
        shared,
        member: 0,
        client: None,
        failing: false,
    };
    rt.block_on(probe.run());
    // Not waiting for a name lookup still under way in the blocking pool:
    // the agent's exit waits for this thread.
    rt.shutdown_background();
}

struct Probe<'a> {
    opts: &'a AgentOptions,
    metrics: &'a Metrics,
    log: &'a (dyn Fn(&AgentEvent) + Sync),
    shared: &'a Shared,
    /// Index in the endpoints of the member asked first.
    member: usize,
    /// The connection to the member that answered last.
    client: Option<Client>,
    /// Whether the last call failed (only the first failure in a row is
    /// logged; every one is counted).
    failing: bool,
}

/// Returns once the agent stops or the recorder has returned.
async fn stopped(opts: &AgentOptions, shared: &Shared) {
    while !shared.done.load(Ordering::SeqCst) && opts.stop.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(STOP_POLL).await;
    }
}

impl Probe<'_> {
    async fn run(&mut self) {
        let (opts, shared) = (self.opts, self.shared);
        let every = interval(opts.delta_every);
        loop {
            let next = tokio::time::Instant::now() + every;
            tokio::select! {
                () = self.round() => {}
                () = stopped(opts, shared) => return,
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = stopped(opts, shared) => return,
            }
        }
    }

    /// Asks the members in turn, from the one that answered last, until
    /// one answers.
    async fn round(&mut self) {
        let eps = &self.opts.save.endpoints;
        for i in 0..eps.len() {
            let idx = (self.member + i) % eps.len();
            let Some(ep) = eps.get(idx) else { continue };
            match self.ask(ep).await {
                Ok((revision, compacted)) => {
                    self.member = idx;
                    self.failing = false;
                    self.metrics
                        .with(|s| s.cluster_revision = s.cluster_revision.max(revision));
                    if compacted {
                        self.shared.compacted.notify_one();
                    }
                    return;
                }
                Err(e) => {
                    self.metrics.error("probe");
                    if !self.failing {
                        (self.log)(&AgentEvent::Error {
                            kind: "probe",
                            message: format!("revision probe: {e}"),
                        });
                    }
                    self.failing = true;
                }
            }
        }
    }

    /// The cluster's revision from `ep` and whether it compacted above
    /// what the recorder knows, on the connection kept (a new one when
    /// the last answer came from another member or the call failed).
    async fn ask(&mut self, ep: &str) -> Result<(i64, bool), AgentError> {
        let c = match self.client.take() {
            Some(c) if c.endpoint == ep => c,
            _ => Client::connect(ep, &self.opts.save).await?,
        };
        let known = self.shared.known_compaction.load(Ordering::SeqCst);
        let answer = c.revision(known).await?;
        self.client = Some(c);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_asks_every_delta_or_every_two_seconds() {
        assert_eq!(
            interval(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
        assert_eq!(interval(Duration::from_secs(10)), PROBE_EVERY);
    }
}
