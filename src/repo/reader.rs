//! Reconstructing a stored snapshot: `backup cat` and `backup restore`.
//!
//! A background thread reads the chunks in order (consecutive chunks of one
//! pack in one read), opens, decompresses and verifies each against its ID,
//! and hands blocks of bytes to the caller through a bounded channel, so
//! decoding and writing overlap and memory stays at a few blocks. Any
//! damage stops the stream with an error naming the chunk and pack.
//! `cat` checks the SHA-256 of the whole file against the manifest (the
//! bytes are already out, so a mismatch is an error at the end); a restore
//! checks the body's SHA-256 before anything is published.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

use super::backend::keys;
use super::chunk::Coder;
use super::codec::hex;
use super::error::{RepoError, Result};
use super::index::Loc;
use super::manifest::Manifest;
use super::repository::{Repository, SnapshotInfo};
use crate::progress::Progress;
use crate::restore::{RestoreOptions, RestoreSummary, SnapshotReader, restore_from_reader};

/// Bytes per block handed to the consumer.
const BLOCK: usize = 4 << 20;
/// Blocks in flight.
const DEPTH: usize = 4;
/// Longest single read from a pack.
const MAX_RUN: u64 = 16 << 20;

/// Everything needed to reconstruct one snapshot, gathered from the index
/// (which is closed again before the bytes flow).
pub(crate) struct Plan {
    pub id: [u8; 32],
    pub manifest: Manifest,
    pub ids: Vec<[u8; 32]>,
    pub locs: HashMap<[u8; 32], Loc>,
}

/// A `Read` over blocks arriving from the decoding thread.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.cur = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let avail = self.cur.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

fn damaged(e: RepoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Repository {
    /// Looks a snapshot up and gathers its chunk list and locations.
    pub(crate) fn plan(&self, prefix: &str) -> Result<Plan> {
        let (ix, _) = self.index()?;
        let (id, manifest) = Repository::find_in(&ix.snapshots()?, prefix)?;
        let ids = ix.resolve(&manifest.list)?;
        if ids.len() as u64 != manifest.chunk_count {
            return Err(RepoError::damaged(
                format!("list {}", hex(&manifest.list)),
                format!(
                    "{} chunks, the manifest says {}",
                    ids.len(),
                    manifest.chunk_count
                ),
            ));
        }
        let wanted: HashSet<[u8; 32]> = ids.iter().copied().collect();
        let locs = ix.locations(Some(&wanted))?;
        if let Some(missing) = ids.iter().find(|c| !locs.contains_key(*c)) {
            return Err(RepoError::MissingChunk {
                chunk: hex(missing),
            });
        }
        Ok(Plan {
            id,
            manifest,
            ids,
            locs,
        })
    }

    /// Decodes every chunk of `plan` in order into blocks sent on `tx`.
    fn produce(&self, plan: &Plan, tx: &SyncSender<io::Result<Vec<u8>>>) -> Result<()> {
        let m = &plan.manifest;
        let mut coder = Coder::new(3);
        let mut block = Vec::with_capacity(BLOCK);
        let mut chunk = Vec::new();
        let mut produced = 0u64;
        let mut i = 0usize;
        while i < plan.ids.len() {
            // A run: following chunks stored back to back in one pack.
            let first =
                plan.locs
                    .get(&plan.ids[i])
                    .copied()
                    .ok_or_else(|| RepoError::MissingChunk {
                        chunk: hex(&plan.ids[i]),
                    })?;
            let mut end = first.offset.saturating_add(u64::from(first.stored_len));
            let mut j = i + 1;
            while let Some(l) = plan.ids.get(j).and_then(|c| plan.locs.get(c)) {
                if l.pack != first.pack || l.offset != end || end - first.offset >= MAX_RUN {
                    break;
                }
                end = end.saturating_add(u64::from(l.stored_len));
                j += 1;
            }
            let key = keys::pack(&first.pack);
            let run = self
                .backend
                .read_at(&key, first.offset, (end - first.offset) as usize)
                .map_err(RepoError::io("read", self.path_of(&key)))?;
            for id in plan.ids.get(i..j).unwrap_or_default() {
                let l = plan
                    .locs
                    .get(id)
                    .copied()
                    .ok_or_else(|| RepoError::MissingChunk { chunk: hex(id) })?;
                let start = (l.offset - first.offset) as usize;
                let stored = run
                    .get(start..start + l.stored_len as usize)
                    .unwrap_or_default();
                coder
                    .decode(&self.crypto, stored, l.codec, l.raw_len, id, &mut chunk)
                    .map_err(|e| {
                        RepoError::damaged(
                            format!("pack {}", hex(&l.pack)),
                            format!("at offset {}: {e}", l.offset),
                        )
                    })?;
                // Every chunk is chunk_size long except the last.
                produced += chunk.len() as u64;
                let last = produced >= m.size;
                if (!last && chunk.len() as u64 != u64::from(m.chunk_size)) || produced > m.size {
                    return Err(RepoError::damaged(
                        format!("snapshot {}", hex(&plan.id)),
                        "its chunks do not add up to its size",
                    ));
                }
                block.extend_from_slice(&chunk);
                if block.len() >= BLOCK {
                    let full = std::mem::replace(&mut block, Vec::with_capacity(BLOCK));
                    if tx.send(Ok(full)).is_err() {
                        return Ok(()); // the consumer stopped
                    }
                }
            }
            i = j;
        }
        if produced != m.size {
            return Err(RepoError::damaged(
                format!("snapshot {}", hex(&plan.id)),
                "its chunks do not add up to its size",
            ));
        }
        if !block.is_empty() {
            let _ = tx.send(Ok(block));
        }
        Ok(())
    }

    /// Runs `consume` on a reader of the snapshot's bytes while a thread
    /// decodes them.
    pub(crate) fn with_stream<T>(
        &self,
        plan: &Plan,
        consume: impl FnOnce(&mut dyn Read) -> T,
    ) -> T {
        std::thread::scope(|s| {
            let (tx, rx) = sync_channel(DEPTH);
            s.spawn(move || {
                if let Err(e) = self.produce(plan, &tx) {
                    let _ = tx.send(Err(damaged(e)));
                }
            });
            let mut r = ChannelReader {
                rx,
                cur: Vec::new(),
                pos: 0,
                done: false,
            };
            consume(&mut r)
            // `r` is dropped here, so a producer blocked on a full channel
            // sees the consumer gone and stops.
        })
    }

    /// Writes the exact bytes of snapshot `prefix` to `out` and checks
    /// them against the SHA-256 recorded at push time. On a mismatch or any
    /// damage an error is returned (some bytes may already be written).
    pub fn cat(&self, prefix: &str, out: &mut dyn Write) -> Result<SnapshotInfo> {
        let _lock = self.lock(false)?;
        let plan = self.plan(prefix)?;
        let info = SnapshotInfo::from_manifest(plan.id, &plan.manifest);
        let computed = self.with_stream(&plan, |r| -> Result<[u8; 32]> {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(RepoError::damaged(
                            format!("snapshot {}", info.id),
                            e.to_string(),
                        ));
                    }
                };
                let b = buf.get(..n).unwrap_or_default();
                h.update(b);
                out.write_all(b)
                    .map_err(RepoError::io("write", "standard output"))?;
            }
            out.flush()
                .map_err(RepoError::io("write", "standard output"))?;
            Ok(h.finalize().into())
        })?;
        if computed != plan.manifest.sha256_file {
            return Err(RepoError::Reconstruction {
                id: info.id.to_string(),
                recorded: hex(&plan.manifest.sha256_file),
                computed: hex(&computed),
            });
        }
        Ok(info)
    }

    /// Restores snapshot `prefix` as [`crate::restore()`] restores a file
    /// (`opts.snapshot` is not read): the reconstructed bytes stream into
    /// the first member's staged db, and the body must have the SHA-256
    /// recorded at push time before anything is published.
    pub fn restore(
        &self,
        prefix: &str,
        opts: &RestoreOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<RestoreSummary> {
        let _lock = self.lock(false)?;
        let plan = self.plan(prefix)?;
        let name = format!("{} snapshot {}", self.location(), hex(&plan.id));
        let summary = self.with_stream(&plan, |r| {
            let mut source = SnapshotReader::new(r, name);
            source.len = Some(plan.manifest.size);
            source.body_sha256 = Some(plan.manifest.sha256_body);
            restore_from_reader(opts, source, progress)
        })?;
        Ok(summary)
    }
}
