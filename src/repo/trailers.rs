//! Pack trailers read during one command, shared by every snapshot it
//! reassembles. A snapshot's reader finds where its chunks are from the
//! trailers of the packs it reads ([`super::reader::Locator`]); a `check
//! --read-data` reassembles every listed snapshot, and snapshots of one
//! cluster share most packs, so without this each of them read the same
//! trailers again: two requests a pack and snapshot in object storage, most
//! of such a check's requests in a repository of small snapshots.
//!
//! Packs are named by their contents and never rewritten, so a trailer read
//! once stays true for the command's life; a pack removed meanwhile fails
//! where its chunks are read. Bounded: the oldest trailers are dropped past
//! [`MAX_ENTRIES`] entries in all. Failures are not kept (each caller reports
//! its own).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::backend::Backend;
use super::crypto::Crypto;
use super::error::Result;
use super::index::read_pack_entries;
use super::pack::PackEntry;

/// Entries kept in all (~56 bytes each): 32 full packs of 4 KiB chunks.
const MAX_ENTRIES: usize = 1 << 18;

/// The trailers read so far.
#[derive(Debug, Default)]
pub(crate) struct Trailers {
    kept: Mutex<Kept>,
}

/// The trailers by pack, the packs oldest first, and their entries in all.
#[derive(Debug, Default)]
struct Kept {
    by_pack: HashMap<[u8; 32], Arc<Vec<PackEntry>>>,
    order: VecDeque<[u8; 32]>,
    entries: usize,
}

impl Trailers {
    /// The entries of `pack` (`size` bytes), read unless kept.
    pub(crate) fn get(
        &self,
        backend: &dyn Backend,
        crypto: &Crypto,
        pack: &[u8; 32],
        size: u64,
    ) -> Result<Arc<Vec<PackEntry>>> {
        // A poisoned lock only means another thread panicked mid-update of
        // a cache: go on without it.
        let kept = self
            .kept
            .lock()
            .ok()
            .and_then(|k| k.by_pack.get(pack).cloned());
        if let Some(t) = kept {
            return Ok(t);
        }
        let t = Arc::new(read_pack_entries(backend, crypto, pack, size)?);
        self.keep(pack, t.clone());
        Ok(t)
    }

    /// Keeps `entries` as `pack`'s trailer (read by the caller), dropping
    /// the oldest past the bound.
    pub(crate) fn keep(&self, pack: &[u8; 32], entries: Arc<Vec<PackEntry>>) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if entries.len() > MAX_ENTRIES || kept.by_pack.contains_key(pack) {
            return;
        }
        kept.entries += entries.len();
        kept.by_pack.insert(*pack, entries);
        kept.order.push_back(*pack);
        while kept.entries > MAX_ENTRIES {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            if let Some(t) = kept.by_pack.remove(&oldest) {
                kept.entries -= t.len();
            }
        }
    }
}
