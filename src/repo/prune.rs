//! `backup forget` and `backup prune`: remove snapshots (by ID or by the
//! retention rules) and, for prune, the chunks no remaining snapshot uses.
//!
//! Garbage collection holds the repository lock exclusively. Packs whose
//! chunks are all still used stay as they are; packs with no used chunk
//! are deleted; the used chunks of the others are verified and copied
//! (as stored, not recompressed) into new packs, which are published and
//! indexed before any old pack is deleted, so an interrupted prune leaves
//! only extra copies behind.
//!
//! # Crash points
//!
//! The rule: a snapshot is listed (its manifest exists) only while every
//! chunk its list names is in a pack in the store, and nothing deletes a
//! pack a chunk location of the index points at. What each command does,
//! in order, each step durable before the next (objects fsynced and
//! renamed, removals' directories fsynced, index transactions committed),
//! and what a SIGKILL after each step leaves:
//!
//! * push: new packs; the list; the manifest; one index transaction.
//!   Killed before the manifest: packs and a list nothing names, which the
//!   next command's sync indexes (a later push may use their chunks) and
//!   the next prune deletes. After it: the snapshot, complete, which the
//!   next sync indexes.
//! * forget: the manifests, one by one; one index transaction. Killed in
//!   between: some snapshots gone, the others still whole (their data was
//!   never touched); the sync drops the removed ones from the index.
//! * prune: the manifests as forget; new packs with the used chunks of
//!   partly used packs; one index transaction (new packs in, chunks
//!   pointed at them, dead chunks, old packs and dead lists out); the old
//!   packs, one by one; the dead lists. Killed before the transaction: new
//!   packs that duplicate chunks indexed elsewhere. The next sync indexes
//!   them with no chunk pointing at them, so the next prune finds them
//!   unused and marks them for deletion; its own copy of the same chunks
//!   then has the same bytes, hence the same name. That is why the packs
//!   to delete are taken from the state after the transaction: nothing
//!   just written and nothing a chunk location points at is deleted (the
//!   repository of issue 19 lost 10,325 chunks of a kept snapshot that
//!   way). Killed after the transaction, among the deletions: old packs
//!   and lists the index no longer has; the next sync takes them in again
//!   with only chunks no snapshot uses (dead, or copies of chunks indexed
//!   in the new packs), and the next prune deletes them. Last, the
//!   segments of recorded changes (`deltas.rs`) of every snapshot that is
//!   neither present nor missing, one by one: by then the forgotten
//!   snapshots are gone from the listing (their `forgotten/` records were
//!   written first), so a kill among these deletions leaves segments of
//!   no listed snapshot, which the next prune deletes; a listed
//!   snapshot's segments are never touched.
//! * put_changes: one object, written once under its own name (the same
//!   segment again is a no-op): killed before it, the segment is not
//!   there; after, it is, whole.
//! * In object storage a write is one PUT and a removal one DELETE, the
//!   same steps; the lock a killed command leaves stays until it is stale
//!   (30 minutes) or `backup unlock` removes it. The index there is a
//!   cache per machine: a machine whose cache still points chunks at a
//!   pack another machine's prune deleted drops those entries and reads
//!   again the trailers of the packs that hold other copies (see
//!   `Index::sync`), in the same transaction.
//!
//! tests/backup_crash.rs stops push, forget and prune after each durable
//! step in turn (`ETCDSNAP_TEST_CRASH_AFTER`, see `backend.rs`), kills
//! random sequences of them at random moments, locally and in s3s-fs, and
//! after each step reads every listed snapshot back byte for byte.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use super::backend::keys;
use super::chunk::Coder;
use super::codec::hex;
use super::deltas::from_ns;
use super::error::{RepoError, Result};
use super::index::{Index, Loc, Open, Update};
use super::list::ChunkList;
use super::pack::{self, PackBuilder};
use super::repository::{Repository, SnapshotId, SnapshotInfo};
use crate::location::{KeepReason, RetentionPolicy};

/// What to remove.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Keep what these rules keep and remove the other snapshots (the
    /// retention rule `snapshot prune` uses; the newest snapshot is always
    /// kept).
    pub keep: RetentionPolicy,
    /// Remove these snapshots (ID prefixes).
    pub ids: Vec<String>,
    /// Only say what would be done.
    pub dry_run: bool,
}

impl PruneOptions {
    /// Keep what these rules keep and remove the other snapshots.
    pub fn with_keep(mut self, keep: RetentionPolicy) -> Self {
        self.keep = keep;
        self
    }

    /// Remove these snapshots (ID prefixes).
    pub fn with_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Only say what would be done.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What was (or, in a dry run, would be) removed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PruneReport {
    /// Snapshots kept, with the rules that keep each (empty when removal
    /// was by ID or there was none).
    pub kept: Vec<(SnapshotInfo, Vec<KeepReason>)>,
    /// Snapshots removed.
    pub removed: Vec<SnapshotInfo>,
    /// Packs deleted.
    pub packs_deleted: usize,
    /// Packs written with the still-used chunks of partly used packs.
    pub packs_written: usize,
    /// Chunks removed.
    pub chunks_removed: usize,
    /// Bytes of packs and lists deleted, less the bytes of new packs.
    pub bytes_freed: u64,
    /// Snapshots whose manifest was missing (see [`CheckReport`]), forgotten
    /// by their ID.
    ///
    /// [`CheckReport`]: super::CheckReport
    pub missing_removed: Vec<SnapshotId>,
    /// Segments of recorded changes deleted with the snapshots they were
    /// recorded on (see [`Repository::changes`]).
    pub deltas_deleted: usize,
}

impl Repository {
    /// Decides which snapshots go; removes their manifests unless dry.
    fn forget_locked(&self, ix: &Index, opts: &PruneOptions) -> Result<PruneReport> {
        if opts.keep.is_empty() == opts.ids.is_empty() {
            return Err(RepoError::PruneSelection);
        }
        let snaps = ix.snapshots()?;
        let mut report = PruneReport::default();
        let mut gone: HashSet<[u8; 32]> = HashSet::new();
        let reasons: Vec<Vec<KeepReason>> = if opts.ids.is_empty() {
            let times: Vec<SystemTime> = snaps
                .iter()
                .map(|(_, m)| from_ns(m.time_ns).unwrap_or(UNIX_EPOCH))
                .collect();
            let mut r = opts.keep.apply(&times);
            // Whatever the rules say, the newest snapshot stays (every
            // snapshot was verified when it was pushed).
            let newest = (0..snaps.len()).max_by_key(|&i| {
                (
                    snaps.get(i).map(|(_, m)| m.time_ns),
                    snaps.get(i).map(|(id, _)| *id),
                )
            });
            if let Some(keep) = newest.and_then(|i| r.get_mut(i))
                && keep.is_empty()
            {
                keep.push(KeepReason::NewestSound);
            }
            r
        } else {
            for p in &opts.ids {
                match Repository::find_in(&snaps, p) {
                    Ok((id, _)) => {
                        gone.insert(id);
                    }
                    // A snapshot whose manifest is missing can be forgotten
                    // too (accepting the loss), by its full ID.
                    Err(RepoError::NoSuchSnapshot(_)) => {
                        report.missing_removed.push(self.find_missing(p)?)
                    }
                    Err(e) => return Err(e),
                }
            }
            snaps
                .iter()
                .map(|(id, _)| {
                    if gone.contains(id) {
                        vec![]
                    } else {
                        vec![KeepReason::Last]
                    }
                })
                .collect()
        };
        let mut removed = Vec::new();
        for ((id, m), why) in snaps.iter().zip(reasons) {
            let info = SnapshotInfo::from_manifest(*id, m);
            if why.is_empty() {
                removed.push(*id);
                report.removed.push(info);
            } else {
                let why = if opts.ids.is_empty() { why } else { vec![] };
                report.kept.push((info, why));
            }
        }
        report.kept.sort_by_key(|(i, _)| i.time);
        report.removed.sort_by_key(|i| i.time);
        if !opts.dry_run && !report.missing_removed.is_empty() {
            let lost: Vec<[u8; 32]> = report.missing_removed.iter().map(|i| i.0).collect();
            self.retire(&lost)?;
        }
        if !opts.dry_run && !removed.is_empty() {
            // Objects first: a crash in between leaves index entries that
            // the next sync drops.
            self.retire(&removed)?;
            ix.apply(&Update {
                remove_snapshots: removed,
                ..Update::default()
            })?;
        }
        Ok(report)
    }

    /// Removes snapshots by ID or by rules; their chunks stay until a
    /// prune.
    pub fn forget(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let _lock = self.lock(false)?;
        let (ix, _) = self.index(Open::Checked)?;
        self.forget_locked(&ix, opts)
    }

    /// Continuous backup's retention (`etcdsnap agent --keep-*`): forgets
    /// what the rules `keep` do not keep, decided as `forget` with these
    /// rules decides (the newest snapshot always stays), except the
    /// snapshots in `protect` (a chain still being recorded), then deletes
    /// the recorded changes of every snapshot no longer listed. Chunks
    /// stay until a prune.
    ///
    /// Crash safety is `forget`'s and `prune`'s: the manifests go first,
    /// then the index, then the segments of snapshots that are neither
    /// listed nor missing, one by one, so a kill at any step leaves every
    /// listed snapshot with its whole chain, and at worst segments of a
    /// forgotten one, which the next call (or prune) deletes.
    pub fn retain(&self, keep: RetentionPolicy, protect: &[SnapshotId]) -> Result<PruneReport> {
        let _lock = self.lock(true)?;
        let (ix, _) = self.index(Open::Checked)?;
        let decide = PruneOptions {
            keep,
            ids: Vec::new(),
            dry_run: true,
        };
        let mut report = self.forget_locked(&ix, &decide)?;
        let (stay, go): (Vec<SnapshotInfo>, Vec<SnapshotInfo>) =
            std::mem::take(&mut report.removed)
                .into_iter()
                .partition(|i| protect.contains(&i.id));
        report
            .kept
            .extend(stay.into_iter().map(|i| (i, Vec::new())));
        report.kept.sort_by_key(|(i, _)| i.time);
        report.removed = go;
        let gone: Vec<[u8; 32]> = report.removed.iter().map(|i| i.id.0).collect();
        if !gone.is_empty() {
            // Objects first, as forget: a crash in between leaves index
            // entries that the next sync drops.
            self.retire(&gone)?;
            ix.apply(&Update {
                remove_snapshots: gone.clone(),
                ..Update::default()
            })?;
        }
        let gone: HashSet<[u8; 32]> = gone.into_iter().collect();
        report.deltas_deleted = self.prune_deltas(false, &gone)?.0;
        Ok(report)
    }

    /// Removes snapshots (if IDs or rules are given) and then every chunk,
    /// list and pack no remaining snapshot uses.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let _lock = self.lock(true)?;
        let (mut ix, sync) = self.index(Open::Checked)?;
        if let Some((obj, why)) = sync
            .damaged
            .iter()
            .find(|(k, _)| !k.starts_with(keys::PACKS))
        {
            return Err(RepoError::damaged(
                obj.clone(),
                format!("{why}; prune needs every list and manifest sound (see `backup check`)"),
            ));
        }
        let mut report = if opts.keep.is_empty() && opts.ids.is_empty() {
            let mut kept: Vec<(SnapshotInfo, Vec<KeepReason>)> = ix
                .snapshots()?
                .iter()
                .map(|(id, m)| (SnapshotInfo::from_manifest(*id, m), vec![]))
                .collect();
            kept.sort_by_key(|(i, _)| i.time);
            PruneReport {
                kept,
                ..PruneReport::default()
            }
        } else {
            self.forget_locked(&ix, opts)?
        };
        let gone: HashSet<[u8; 32]> = report.removed.iter().map(|i| i.id.0).collect();

        // What the remaining snapshots use.
        let mut live_lists: HashSet<[u8; 32]> = HashSet::new();
        let mut live: HashSet<[u8; 32]> = HashSet::new();
        for (id, m) in ix.snapshots()? {
            if gone.contains(&id) {
                continue;
            }
            live_lists.insert(m.list);
            if let Some(b) = ix.list(&m.list)?.and_then(|l: ChunkList| l.base()) {
                live_lists.insert(b);
            }
            live.extend(ix.resolve(&m.list)?);
        }
        let locs = ix.locations()?;
        if let Some(c) = live.iter().find(|c| !locs.contains_key(*c)) {
            return Err(RepoError::MissingChunk { chunk: hex(c) });
        }
        let packs = ix.packs()?;
        let mut used: HashMap<[u8; 32], Vec<([u8; 32], Loc)>> = HashMap::new();
        for (c, l) in &locs {
            if live.contains(c) {
                used.entry(l.pack).or_default().push((*c, *l));
            }
        }
        let dead_chunks: Vec<[u8; 32]> = locs
            .keys()
            .filter(|c| !live.contains(*c))
            .copied()
            .collect();
        let mut delete: Vec<[u8; 32]> = Vec::new();
        let mut repack: BTreeMap<[u8; 32], Vec<([u8; 32], Loc)>> = BTreeMap::new();
        for (p, (size, count)) in &packs {
            match used.remove(p) {
                None => {
                    delete.push(*p);
                    report.bytes_freed = report.bytes_freed.saturating_add(*size);
                }
                Some(u) if u.len() == *count as usize => {}
                Some(mut u) => {
                    u.sort_by_key(|(_, l)| l.offset);
                    repack.insert(*p, u);
                    report.bytes_freed = report.bytes_freed.saturating_add(*size);
                }
            }
        }
        let mut dead_lists: Vec<[u8; 32]> = ix
            .list_ids()?
            .into_iter()
            .filter(|id| !live_lists.contains(id))
            .collect();
        dead_lists.sort_unstable();
        report.chunks_removed = dead_chunks.len();
        report.packs_deleted = delete.len() + repack.len();
        if opts.dry_run {
            // What would go: the removed snapshots' segments and those of
            // snapshots already forgotten.
            report.deltas_deleted = self.prune_deltas(true, &gone)?.0;
            return Ok(report);
        }
        // What forgets left (their records, an interrupted one's
        // manifest), and records for snapshots that have none.
        self.settle_records()?;

        // Copy the used chunks of partly used packs into new packs.
        let mut new_packs = Vec::new();
        let mut builder = PackBuilder::new();
        let mut coder = Coder::new(3);
        let mut scratch = Vec::new();
        for (p, chunks) in &repack {
            let key = keys::pack(p);
            let bytes = self
                .backend
                .read(&key, super::check::MAX_PACK)
                .map_err(RepoError::io("read", self.path_of(&key)))?;
            let what = format!("pack {}", hex(p));
            for (c, l) in chunks {
                let e = pack::PackEntry {
                    id: *c,
                    offset: l.offset,
                    stored_len: l.stored_len,
                    raw_len: l.raw_len,
                    codec: l.codec,
                };
                let blob = pack::blob(&bytes, &e)
                    .ok_or_else(|| RepoError::damaged(what.clone(), "chunk past the end"))?;
                coder.decode(&self.crypto, blob, l.codec, l.raw_len, c, &mut scratch)?;
                builder.add(*c, blob, l.raw_len, l.codec);
                if builder.is_full() {
                    let full = std::mem::take(&mut builder);
                    new_packs.push(self.publish(full.finish(&self.crypto)?)?);
                }
            }
        }
        if !builder.is_empty() {
            new_packs.push(self.publish(builder.finish(&self.crypto)?)?);
        }
        report.packs_written = new_packs.len();
        let written: u64 = new_packs.iter().map(|p| p.1).sum();
        report.bytes_freed = report.bytes_freed.saturating_sub(written);
        // Packs are named by the hash of their bytes, so a pack just
        // written may carry the name of one marked for deletion (the same
        // chunks a killed prune already copied into it, indexed since with
        // no chunk pointing at it): whatever was just written stays.
        let fresh: HashSet<[u8; 32]> = new_packs.iter().map(|p| p.0).collect();
        let mut old: Vec<[u8; 32]> = delete;
        old.extend(repack.keys().copied());
        old.retain(|p| !fresh.contains(p));
        ix.apply(&Update {
            packs: new_packs,
            repoint: true,
            remove_chunks: dead_chunks,
            remove_packs: old.clone(),
            remove_lists: dead_lists.clone(),
            ..Update::default()
        })?;
        // And from the state the index is in now: no pack any chunk
        // location points at is deleted, and every chunk a remaining
        // snapshot uses is located in a pack that stays.
        let after = ix.locations()?;
        let pointed: HashSet<[u8; 32]> = after.values().map(|l| l.pack).collect();
        old.retain(|p| !pointed.contains(p));
        let doomed: HashSet<[u8; 32]> = old.iter().copied().collect();
        if let Some(c) = live
            .iter()
            .find(|c| after.get(*c).is_none_or(|l| doomed.contains(&l.pack)))
        {
            return Err(RepoError::MissingChunk { chunk: hex(c) });
        }
        report.packs_deleted = old.len();
        report.bytes_freed = old
            .iter()
            .filter_map(|p| packs.get(p).map(|(size, _)| *size))
            .sum::<u64>()
            .saturating_sub(written);
        for p in &old {
            let key = keys::pack(p);
            self.backend
                .remove(&key)
                .map_err(RepoError::io("remove", self.path_of(&key)))?;
        }
        // Give the index back the space the removals freed.
        ix.compact()?;
        let list_sizes: HashMap<String, u64> = self
            .backend
            .list(keys::LISTS)
            .map_err(RepoError::io("list", self.path_of(keys::LISTS)))?
            .into_iter()
            .collect();
        for l in &dead_lists {
            let key = keys::list(l);
            report.bytes_freed += list_sizes.get(&key).copied().unwrap_or(0);
            self.backend
                .remove(&key)
                .map_err(RepoError::io("remove", self.path_of(&key)))?;
        }
        // Last, the segments of snapshots that are gone from the listing.
        let (n, bytes) = self.prune_deltas(false, &HashSet::new())?;
        report.deltas_deleted = n;
        report.bytes_freed = report.bytes_freed.saturating_add(bytes);
        Ok(report)
    }
}
