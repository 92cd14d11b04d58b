//! Progress reports for long work (verify, restore, save), so that the CLI's
//! progress bar and an embedder's own display read the same events.

/// What a long operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Hashing the snapshot (bytes of the body).
    Hash,
    /// Copying the body into the data dirs (bytes of all copies).
    Copy,
    /// Writing WAL and `.snap` files and publishing the dirs (steps).
    Finish,
    /// Receiving a snapshot from a server (bytes of the body; the total is
    /// what the server announced in its first message).
    Receive,
    /// Reading a snapshot from its location (bytes as stored, compressed
    /// for a compressed one, of the stored length).
    Read,
}

/// A progress report: `done` of `total` bytes (or steps) in `phase`.
///
/// Reports of one phase arrive in order with `done` growing; several phases
/// may be reported in turn from different threads (a restore hashes and
/// copies at once), so a callback must be `Sync`.
///
/// ```
/// use etcdsnap::{Phase, Progress};
/// let show = |p: Progress| {
///     if p.phase == Phase::Hash {
///         eprint!("\rhashing {}/{}", p.done, p.total);
///     }
/// };
/// # let _ = &show;
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Work done.
    pub done: u64,
    /// Work in all.
    pub total: u64,
}

impl Progress {
    /// A report of `done` of `total` in `phase`.
    pub fn new(phase: Phase, done: u64, total: u64) -> Progress {
        Progress { phase, done, total }
    }
}
