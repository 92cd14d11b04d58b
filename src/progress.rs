//! Progress reports of long operations (restore, save), for progress
//! displays. The library only calls a `&(dyn Fn(Progress) + Sync)` it is
//! given; drawing is the caller's business.

/// What a long operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Hashing the snapshot (bytes of the body).
    Hash,
    /// Copying the body into the data dirs (bytes of all copies).
    Copy,
    /// Writing WAL and `.snap` files and publishing the dirs.
    Finish,
    /// Receiving a snapshot from a server (bytes of the body; the total is
    /// what the server announced in its first message).
    Receive,
}

/// A progress report: `done` of `total` bytes (or steps) in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Work done.
    pub done: u64,
    /// Work in all.
    pub total: u64,
}
