//! Read-only memory maps: the only module with `unsafe` code.
//!
//! Mapping a file is unsafe in Rust because the bytes behind the returned
//! slice can change, or vanish (SIGBUS), if another process writes or
//! truncates the file while it is mapped. We map read-only (`PROT_READ`,
//! `MAP_SHARED`), never write through the map, and the callers take a
//! shared `flock` on the file, which excludes a running etcd (it holds an
//! exclusive one on its db) and any Go bbolt writer. A process that ignores
//! advisory locks and truncates a snapshot under us can still crash the
//! reader; that is the price of zero-copy reads and is documented.
//!
//! Backup repository packs are mapped the same way: they are immutable by
//! design (written under a temporary name, renamed into place, never
//! written again), readers hold a shared lock on the pack file, and prune
//! only ever unlinks a pack, which leaves an existing mapping intact.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// A read-only map of a whole file (empty files are not mapped).
#[derive(Debug)]
pub(crate) struct Mapped {
    map: Option<Mmap>,
}

impl Mapped {
    /// Maps `file`, which must not be modified while the map lives (see the
    /// module docs).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapped> {
        if len == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: read-only shared mapping of a file we hold a shared flock
        // on; see the module documentation for the remaining assumption.
        let map = unsafe { Mmap::map(file)? };
        Ok(Mapped { map: Some(map) })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Hints the kernel about the access pattern; failures are harmless.
    pub(crate) fn advise(&self, advice: Advice) {
        if let Some(m) = &self.map {
            let _ = m.advise(advice);
        }
    }

    /// Drops the process's page table entries for the whole map, so that
    /// pages already read stop counting towards the resident set. The data
    /// stays in the page cache and is faulted back in on the next access.
    pub(crate) fn release(&self) {
        if let Some(m) = &self.map {
            // SAFETY: MADV_DONTNEED on a read-only MAP_SHARED file mapping
            // only discards page table entries; later reads fault the same
            // file contents back in, so no slice into the map is
            // invalidated or changed.
            let _ = unsafe { m.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
    }
}
