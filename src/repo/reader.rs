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
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use sha2::{Digest, Sha256};

use super::backend::keys;
use super::chunk::Coder;
use super::codec::hex;
use super::error::{RepoError, Result};
use super::index::{Loc, Open};
use super::manifest::Manifest;
use super::repository::{Repository, SnapshotInfo};
use crate::progress::Progress;
use crate::restore::{RestoreOptions, RestoreSummary, SnapshotReader, restore_from_reader};

/// Bytes per block handed to the consumer.
const BLOCK: usize = 4 << 20;
/// Blocks in flight.
const DEPTH: usize = 2;
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

/// A `BufRead` over blocks arriving from the decoding thread; used blocks
/// go back to it for reuse.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    back: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    let mut used = std::mem::replace(&mut self.cur, block);
                    used.clear();
                    let _ = self.back.send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => self.done = true,
            }
        }
        Ok(self.cur.get(self.pos..).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.cur.len());
    }
}

/// Maps a pack file read-only, holding a shared lock on it (see
/// `crate::mmap` for why that is sound).
fn map_pack(path: &std::path::Path) -> io::Result<([u8; 32], crate::mmap::Mapped, std::fs::File)> {
    let f = std::fs::File::open(path)?;
    f.lock_shared()?;
    let len = f.metadata()?.len();
    let m = crate::mmap::Mapped::new(&f, len)?;
    m.advise(memmap2::Advice::Sequential);
    Ok(([0; 32], m, f))
}

fn damaged(e: RepoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Repository {
    /// Looks a snapshot up and gathers its chunk list and locations.
    pub(crate) fn plan(&self, prefix: &str) -> Result<Plan> {
        let (ix, _) = self.index(Open::Checked)?;
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

    /// Decodes every chunk of `plan` in order into blocks sent on `tx`,
    /// reusing the blocks that come back on `back`.
    fn produce(
        &self,
        plan: &Plan,
        tx: &SyncSender<io::Result<Vec<u8>>>,
        back: &Receiver<Vec<u8>>,
    ) -> Result<()> {
        let m = &plan.manifest;
        let fresh = |back: &Receiver<Vec<u8>>| {
            back.try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BLOCK + m.chunk_size as usize))
        };
        let mut coder = Coder::new(3);
        let mut block = fresh(back);
        let mut run: Vec<u8> = Vec::new();
        // The pack being read, mapped when the backend keeps packs as
        // local files (no copy into a buffer), else read run by run.
        let mut mapped: Option<([u8; 32], crate::mmap::Mapped, std::fs::File)> = None;
        let mut produced = 0u64;
        let mut i = 0usize;
        let at = |k: usize| -> Result<([u8; 32], Loc)> {
            let id = plan.ids.get(k).copied().unwrap_or_default();
            let l = plan
                .locs
                .get(&id)
                .copied()
                .ok_or_else(|| RepoError::MissingChunk { chunk: hex(&id) })?;
            Ok((id, l))
        };
        while i < plan.ids.len() {
            // A run: following chunks stored back to back in one pack.
            let (_, first) = at(i)?;
            let mut end = first.offset.saturating_add(u64::from(first.stored_len));
            let mut j = i + 1;
            while let Some(l) = plan.ids.get(j).and_then(|c| plan.locs.get(c)) {
                if l.pack != first.pack || l.offset != end || end - first.offset >= MAX_RUN {
                    break;
                }
                end = end.saturating_add(u64::from(l.stored_len));
                j += 1;
            }
            let len = usize::try_from(end - first.offset).unwrap_or(usize::MAX);
            let key = keys::pack(&first.pack);
            if mapped.as_ref().is_none_or(|(p, _, _)| *p != first.pack) {
                mapped = None;
                if let Some(path) = self.backend.local_path(&key) {
                    mapped = Some(map_pack(&path).map_err(RepoError::io("map", &path))?);
                    mapped = mapped.map(|(_, m, f)| (first.pack, m, f));
                }
            }
            let run: &[u8] = match &mapped {
                Some((_, m, _)) => {
                    let off = usize::try_from(first.offset).unwrap_or(usize::MAX);
                    m.bytes().get(off..off.saturating_add(len)).ok_or_else(|| {
                        RepoError::damaged(
                            format!("pack {}", hex(&first.pack)),
                            format!("{len} bytes at {off} are past its end"),
                        )
                    })?
                }
                None => {
                    if run.len() < len {
                        run.resize(len, 0);
                    }
                    let buf = run.get_mut(..len).unwrap_or_default();
                    self.backend
                        .read_at(&key, first.offset, buf)
                        .map_err(|e| RepoError::io("read", self.path_of(&key))(e))?;
                    run.get(..len).unwrap_or_default()
                }
            };
            for k in i..j {
                let (id, l) = at(k)?;
                let start = (l.offset - first.offset) as usize;
                let stored = run
                    .get(start..start + l.stored_len as usize)
                    .unwrap_or_default();
                let before = block.len();
                coder
                    .decode_append(&self.crypto, stored, l.codec, l.raw_len, &id, &mut block)
                    .map_err(|e| {
                        RepoError::damaged(
                            format!("pack {}", hex(&l.pack)),
                            format!("at offset {}: {e}", l.offset),
                        )
                    })?;
                // Every chunk is chunk_size long except the last.
                let n = (block.len() - before) as u64;
                produced += n;
                let last = produced >= m.size;
                if (!last && n != u64::from(m.chunk_size)) || produced > m.size {
                    return Err(RepoError::damaged(
                        format!("snapshot {}", hex(&plan.id)),
                        "its chunks do not add up to its size",
                    ));
                }
                if block.len() >= BLOCK {
                    let full = std::mem::replace(&mut block, fresh(back));
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
        consume: impl FnOnce(&mut dyn BufRead) -> T,
    ) -> T {
        std::thread::scope(|s| {
            let (tx, rx) = sync_channel(DEPTH);
            let (back_tx, back_rx) = channel();
            s.spawn(move || {
                if let Err(e) = self.produce(plan, &tx, &back_rx) {
                    let _ = tx.send(Err(damaged(e)));
                }
            });
            let mut r = ChannelReader {
                rx,
                back: back_tx,
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
            loop {
                let b = match r.fill_buf() {
                    Ok([]) => break,
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(RepoError::damaged(
                            format!("snapshot {}", info.id),
                            e.to_string(),
                        ));
                    }
                };
                h.update(b);
                out.write_all(b)
                    .map_err(RepoError::io("write", "standard output"))?;
                let n = b.len();
                r.consume(n);
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
