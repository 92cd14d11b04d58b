//! Reconstructing a stored snapshot: `backup cat` and `backup restore`.
//!
//! [`Chunks`] reads the chunks in order (a local pack mapped, a remote one
//! in windows of up to 16 MiB), opens, decompresses and verifies each
//! against its ID, straight into the reader's buffer. A restore reads it on
//! its own thread while two others write and hash; `cat` runs it on a
//! background thread that hands blocks to the writer through a bounded
//! channel. Either way memory stays at a few blocks, and any damage stops
//! the stream with an error naming the chunk and pack.
//! `cat` checks the SHA-256 of the whole file against the manifest (the
//! bytes are already out, so a mismatch is an error at the end); a restore
//! checks the body's SHA-256 before anything is published.

use std::io::{self, BufRead, Read, Write};
#[cfg(test)]
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use sha2::{Digest, Sha256};

use super::backend::keys;
use super::chunk::Coder;
use super::codec::hex;
use super::error::{RepoError, Result};
use super::index::{Loc, Open};
use super::manifest::Manifest;
use super::pack::PackEntry;
use super::repository::{Repository, SnapshotInfo};
use crate::progress::Progress;
use crate::restore::{RestoreError, RestoreOptions, RestoreSummary, SnapshotReader, restore};
use crate::snapshot::stream::read_full;

/// Bytes per block handed to the consumer of [`Repository::with_stream`].
const BLOCK: usize = 4 << 20;
/// Blocks in flight.
const DEPTH: usize = 2;
/// Longest single read from a pack that is not a local file.
const MAX_RUN: u64 = 16 << 20;

/// Everything needed to reconstruct one snapshot, gathered from the index
/// (which is closed again before the bytes flow): its manifest and chunk
/// IDs (32 bytes a chunk, what its list holds). Where each chunk is stored
/// is not part of it: a [`Locator`] finds that as the bytes flow, a window
/// at a time, so that memory does not grow with the snapshot.
pub(crate) struct Plan {
    pub id: [u8; 32],
    pub manifest: Manifest,
    pub ids: Vec<[u8; 32]>,
}

/// Bytes read from a mapped pack between releases of its pages.
const RELEASE_EVERY: u64 = 4 << 20;

/// Chunks located ahead of the decoder: what a remote window looks over,
/// and how often the index is opened (once a window at most).
const LOCATE_AHEAD: usize = 16384;
/// Entries past a pack cursor searched for the next chunk: a snapshot
/// after some churn skips the old versions of the pages that changed.
const CURSOR_REACH: usize = 8;
/// Pack cursors kept: the packs the snapshot is currently reading from.
const CURSORS: usize = 4;

/// Finds where each chunk of a plan is stored, in order, in bounded memory.
///
/// Consecutive chunks of a snapshot are mostly stored one after the other
/// in the same pack (a push stores new chunks in file order, and a later
/// snapshot keeps most of its pages where they were), so the next chunk
/// is looked for right after the previous ones in the trailers of the
/// packs it is being read from. Only a chunk found there by no cursor is
/// looked up in the index (opened for a moment per window, as every
/// command takes its turn with it), and its pack's trailer read. A first
/// push costs one lookup per pack, not one per chunk. Whatever is found is
/// verified anyway: every chunk is checked against its ID when decoded.
pub(crate) struct Locator<'a> {
    repo: &'a Repository,
    ids: &'a [[u8; 32]],
    /// The next position to locate.
    next: usize,
    /// Decoded trailers of the packs the cursors are in (a pack of 32 MiB
    /// of 4 KiB chunks has 8,192 entries).
    trailers: Vec<([u8; 32], std::sync::Arc<Vec<PackEntry>>)>,
    /// Where the next chunk may be: a pack and the trailer entry after
    /// the last one used there; most recent first.
    cursors: Vec<([u8; 32], usize)>,
    /// Packs whose trailer could not be read.
    unreadable: std::collections::HashSet<[u8; 32]>,
    /// The index, when the caller holds it open (a check does).
    index: Option<&'a super::index::Index>,
    /// Lookups made in the index (for tests).
    pub(crate) lookups: u64,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(
        repo: &'a Repository,
        ids: &'a [[u8; 32]],
        index: Option<&'a super::index::Index>,
    ) -> Locator<'a> {
        Locator {
            repo,
            ids,
            next: 0,
            trailers: Vec::new(),
            cursors: Vec::new(),
            unreadable: std::collections::HashSet::new(),
            index,
            lookups: 0,
        }
    }

    fn trailer(&self, pack: &[u8; 32]) -> Option<std::sync::Arc<Vec<PackEntry>>> {
        self.trailers
            .iter()
            .rev()
            .find(|(p, _)| p == pack)
            .map(|(_, t)| t.clone())
    }

    /// The location of `id` after one of the cursors, moving that cursor.
    fn predict(&mut self, id: &[u8; 32]) -> Option<Loc> {
        for c in 0..self.cursors.len() {
            let (pack, pos) = *self.cursors.get(c)?;
            let Some(t) = self.trailer(&pack) else {
                continue;
            };
            let Some(rest) = t.get(pos..) else {
                continue;
            };
            if let Some(k) = rest.iter().take(CURSOR_REACH).position(|e| &e.id == id) {
                let e = rest.get(k)?;
                let loc = Loc::of(&pack, e);
                self.cursors.remove(c);
                self.cursors.insert(0, (pack, pos + k + 1));
                return Some(loc);
            }
        }
        None
    }

    /// Reads the trailer of `pack` unless it is kept, and puts a cursor
    /// after the entry of `loc`.
    fn follow(&mut self, ix: &super::index::Lookup<'_>, loc: &Loc) -> Result<()> {
        let t = match self.trailer(&loc.pack) {
            Some(t) => t,
            None => {
                let Some(size) = ix.pack_size(&loc.pack)? else {
                    return Ok(()); // found by the decoder, if at all
                };
                if self.unreadable.contains(&loc.pack) {
                    return Ok(());
                }
                // A trailer that cannot be read (damaged) leaves the index
                // to say where that pack's chunks are, one lookup each:
                // the chunks themselves may be intact.
                let Ok(t) =
                    self.repo
                        .trailers
                        .get(&*self.repo.backend, &self.repo.crypto, &loc.pack, size)
                else {
                    self.unreadable.insert(loc.pack);
                    return Ok(());
                };
                self.trailers.push((loc.pack, t.clone()));
                t
            }
        };
        // Entries are in offset order (`decode_trailer` checks it).
        let i = t.partition_point(|e| e.offset < loc.offset);
        if t.get(i).is_some_and(|e| e.offset == loc.offset) {
            self.cursors.retain(|(p, _)| *p != loc.pack);
            self.cursors.insert(0, (loc.pack, i + 1));
            self.cursors.truncate(CURSORS);
        }
        // Only the trailers of the packs being read are kept.
        let cursors = &self.cursors;
        self.trailers
            .retain(|(p, _)| cursors.iter().any(|(c, _)| c == p));
        Ok(())
    }

    /// Locates up to `n` more chunks, in order, appending them to `out`.
    pub(crate) fn fill(
        &mut self,
        out: &mut std::collections::VecDeque<Loc>,
        n: usize,
    ) -> Result<()> {
        let end = self.next.saturating_add(n).min(self.ids.len());
        // Without the index as long as the cursors find every chunk.
        while self.next < end {
            let id = self.ids.get(self.next).copied().unwrap_or_default();
            let Some(loc) = self.predict(&id) else {
                break;
            };
            out.push_back(loc);
            self.next += 1;
        }
        if self.next >= end {
            return Ok(());
        }
        let opened;
        let ix = match self.index {
            Some(ix) => ix,
            None => {
                opened = super::index::Index::open(
                    &self.repo.backend.index_dir(),
                    Open::Fast,
                    &self.repo.crypto,
                )?;
                &opened
            }
        };
        let lookup = ix.lookup()?;
        while self.next < end {
            let id = self.ids.get(self.next).copied().unwrap_or_default();
            let loc = match self.predict(&id) {
                Some(l) => l,
                None => {
                    self.lookups += 1;
                    let loc = lookup
                        .location(&id)?
                        .ok_or_else(|| RepoError::MissingChunk { chunk: hex(&id) })?;
                    self.follow(&lookup, &loc)?;
                    loc
                }
            };
            out.push_back(loc);
            self.next += 1;
        }
        Ok(())
    }
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
                    // Sent back full length: the producer overwrites it
                    // without zeroing it again.
                    let used = std::mem::replace(&mut self.cur, block);
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
fn map_pack(path: &std::path::Path) -> io::Result<(crate::mmap::Mapped, std::fs::File)> {
    let f = std::fs::File::open(path)?;
    f.lock_shared()?;
    let len = f.metadata()?.len();
    let m = crate::mmap::Mapped::new(&f, len)?;
    m.advise(memmap2::Advice::Sequential);
    Ok((m, f))
}

fn damaged(e: RepoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The pack bytes a [`Chunks`] reads from.
enum Held {
    None,
    /// A whole pack that is a local file, mapped (the file holds the
    /// shared lock that keeps the mapping sound).
    Mapped {
        pack: [u8; 32],
        map: crate::mmap::Mapped,
        _file: std::fs::File,
    },
    /// Windows of packs that are not local files, each read in one
    /// request, most recent last.
    Windows(Vec<Window>),
}

/// Bytes of a remote pack from `base`, read in one request.
struct Window {
    pack: [u8; 32],
    base: u64,
    buf: Vec<u8>,
}

impl Window {
    fn get(&self, l: &Loc) -> Option<&[u8]> {
        if l.pack != self.pack {
            return None;
        }
        let off = usize::try_from(l.offset.checked_sub(self.base)?).ok()?;
        self.buf.get(off..off.checked_add(l.stored_len as usize)?)
    }
}

/// Windows of remote packs kept at once: a snapshot after some churn
/// interleaves chunks of its base's packs with a few newer ones.
const WINDOWS: usize = 3;
/// Stored bytes a window may read past that nobody asked for, to go on
/// over chunks that changed since (their new versions are in other packs).
const MAX_GAP: u64 = 256 << 10;
/// Chunks of the plan a window looks ahead over.
const LOOK_AHEAD: usize = 16384;

/// The bytes of a planned snapshot, decoded chunk by chunk on the reading
/// thread, straight into the caller's buffer wherever a whole chunk fits
/// (a restore reads 1 MiB at a time: no chunk is copied twice). Every
/// chunk is verified against its ID, and the sizes against the manifest.
pub(crate) struct Chunks<'a> {
    repo: &'a Repository,
    plan: &'a Plan,
    locator: Locator<'a>,
    /// Locations of the chunks from `next` on, as far as located.
    ahead: std::collections::VecDeque<Loc>,
    coder: Coder,
    held: Held,
    /// The next chunk to decode.
    next: usize,
    /// Bytes read from the mapped pack since its pages were last released.
    mapped_read: u64,
    /// Bytes decoded so far.
    produced: u64,
    /// A chunk decoded for a read too small to hold it, and how much of it
    /// was handed out.
    spill: Vec<u8>,
    spilled: usize,
    /// Whether every chunk is hashed against its ID; otherwise only those
    /// holding a byte of the last 32 (see [`Chunks::vouched`]).
    verify_each: bool,
}

impl<'a> Chunks<'a> {
    pub(crate) fn new(
        repo: &'a Repository,
        plan: &'a Plan,
        index: Option<&'a super::index::Index>,
    ) -> Chunks<'a> {
        Chunks {
            repo,
            plan,
            locator: Locator::new(repo, &plan.ids, index),
            ahead: std::collections::VecDeque::new(),
            mapped_read: 0,
            coder: Coder::new(3),
            held: Held::None,
            next: 0,
            produced: 0,
            spill: Vec::new(),
            spilled: 0,
            verify_each: true,
        }
    }

    /// A reader whose consumer checks the SHA-256 of the body recorded at
    /// push time (a restore always does): the chunks are not hashed
    /// against their IDs as they pass (BLAKE3 of every chunk cost a
    /// restore an eighth of its CPU), except those holding a byte of the
    /// last 32, which may be etcd's trailer (not part of the body). The
    /// consumer runs [`Repository::first_damage`] when the digest does
    /// not match, so the error still names the damaged chunk and pack.
    /// Decryption still authenticates each chunk, and every length is
    /// still checked.
    pub(crate) fn vouched(repo: &'a Repository, plan: &'a Plan) -> Chunks<'a> {
        Chunks {
            verify_each: false,
            ..Chunks::new(repo, plan, None)
        }
    }

    fn short(&self) -> RepoError {
        RepoError::damaged(
            format!("snapshot {}", hex(&self.plan.id)),
            "its chunks do not add up to its size",
        )
    }

    /// Makes the stored bytes of chunk `k` available in `self.held`.
    fn load(&mut self, l: &Loc) -> Result<()> {
        match &self.held {
            Held::Mapped { pack, .. } if *pack == l.pack => return Ok(()),
            Held::Windows(w) if w.iter().any(|w| w.get(l).is_some()) => return Ok(()),
            _ => {}
        }
        // Named only here: formatting it for every chunk was 1.3% of a
        // restore's CPU, on its reading thread.
        let key = keys::pack(&l.pack);
        if let Some(path) = self.repo.backend.local_path(&key) {
            self.held = Held::None;
            let (map, file) = map_pack(&path).map_err(RepoError::io("map", &path))?;
            self.held = Held::Mapped {
                pack: l.pack,
                map,
                _file: file,
            };
            return Ok(());
        }
        // A window: this chunk and the following chunks of the same pack
        // stored after it, over small gaps (chunks of the pack the
        // snapshot no longer uses) and past chunks of other packs, so that
        // a snapshot with 1% of its pages changed costs about one request
        // per 16 MiB, not one per change.
        if self.ahead.len() < LOCATE_AHEAD {
            let want = LOCATE_AHEAD - self.ahead.len();
            self.locator.fill(&mut self.ahead, want)?;
        }
        let mut end = l.offset.saturating_add(u64::from(l.stored_len));
        // `ahead` starts with this chunk's own location.
        for n in self.ahead.iter().skip(1).take(LOOK_AHEAD) {
            if n.pack != l.pack {
                continue;
            }
            let n_end = n.offset.saturating_add(u64::from(n.stored_len));
            if n.offset < end || n.offset - end > MAX_GAP || n_end - l.offset > MAX_RUN {
                if n.offset >= l.offset && n_end <= end {
                    continue; // already inside (a chunk used twice)
                }
                break;
            }
            end = n_end;
        }
        let len = usize::try_from(end - l.offset).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; len];
        self.repo
            .backend
            .read_at(&key, l.offset, &mut buf)
            .map_err(|e| RepoError::io("read", self.repo.path_of(&key))(e))?;
        let w = Window {
            pack: l.pack,
            base: l.offset,
            buf,
        };
        match &mut self.held {
            Held::Windows(ws) => {
                if ws.len() >= WINDOWS {
                    ws.remove(0);
                }
                ws.push(w);
            }
            held => *held = Held::Windows(vec![w]),
        }
        Ok(())
    }

    /// Decodes the next chunk into `out`, which is its raw length.
    fn decode_next(&mut self, l: &Loc, out: &mut [u8]) -> Result<()> {
        let k = self.next;
        self.load(l)?;
        let stored = match &self.held {
            Held::Mapped { map, .. } => usize::try_from(l.offset).ok().and_then(|off| {
                map.bytes()
                    .get(off..off.checked_add(l.stored_len as usize)?)
            }),
            Held::Windows(ws) => ws.iter().rev().find_map(|w| w.get(l)),
            Held::None => None,
        }
        .ok_or_else(|| {
            RepoError::damaged(
                format!("pack {}", hex(&l.pack)),
                format!("{} bytes at {} are past its end", l.stored_len, l.offset),
            )
        })?;
        let id = self.plan.ids.get(k).copied().unwrap_or_default();
        let tail = self.plan.manifest.size.saturating_sub(32);
        let verify = self.verify_each || self.produced.saturating_add(out.len() as u64) > tail;
        self.coder
            .decode_to(&self.repo.crypto, stored, l.codec, &id, out, verify)
            .map_err(|e| {
                RepoError::damaged(
                    format!("pack {}", hex(&l.pack)),
                    format!("at offset {}: {e}", l.offset),
                )
            })?;
        if let Held::Mapped { map, .. } = &self.held {
            // Pages of a mapped pack that were read count towards the
            // resident set until they are released: a 32 MiB pack would
            // otherwise be a 32 MiB step in memory.
            self.mapped_read += u64::from(l.stored_len);
            if self.mapped_read >= RELEASE_EVERY {
                map.release();
                self.mapped_read = 0;
            }
        }
        self.next += 1;
        self.ahead.pop_front();
        self.produced += out.len() as u64;
        Ok(())
    }

    /// The next chunk's location and length, checked against the
    /// manifest (every chunk is chunk_size long except the last); `None`
    /// at the end.
    fn peek(&mut self) -> Result<Option<(Loc, usize)>> {
        if self.ahead.is_empty() {
            self.locator.fill(&mut self.ahead, LOCATE_AHEAD)?;
        }
        let m = &self.plan.manifest;
        let Some(l) = self.ahead.front().copied() else {
            return if self.produced == m.size {
                Ok(None)
            } else {
                Err(self.short())
            };
        };
        // A damaged index must not size a read or a buffer beyond what a
        // chunk can take.
        if let Some(why) = super::chunk::bad_lengths(l.stored_len, l.raw_len) {
            return Err(RepoError::damaged(
                format!("pack {}", hex(&l.pack)),
                format!("chunk at offset {}: {why}", l.offset),
            ));
        }
        let last = self.next + 1 == self.plan.ids.len();
        let after = self.produced.saturating_add(u64::from(l.raw_len));
        if (!last && l.raw_len != m.chunk_size) || after > m.size {
            return Err(self.short());
        }
        Ok(Some((l, l.raw_len as usize)))
    }

    fn read_chunks(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        if self.spilled < self.spill.len() {
            let rest = self.spill.get(self.spilled..).unwrap_or_default();
            n = rest.len().min(out.len());
            if let (Some(d), Some(s)) = (out.get_mut(..n), rest.get(..n)) {
                d.copy_from_slice(s);
            }
            self.spilled += n;
            return Ok(n);
        }
        while let Some((l, len)) = self.peek()? {
            match out.get_mut(n..n + len) {
                Some(dst) => {
                    self.decode_next(&l, dst)?;
                    n += len;
                }
                None if n == 0 => {
                    let mut spill = std::mem::take(&mut self.spill);
                    spill.resize(len, 0);
                    let r = self.decode_next(&l, &mut spill);
                    if r.is_err() {
                        // Nothing of a chunk that failed is ever handed out,
                        // even to a caller that reads again after the error.
                        spill.clear();
                    }
                    self.spill = spill;
                    self.spilled = 0;
                    r?;
                    return self.read_chunks(out);
                }
                None => break,
            }
        }
        Ok(n)
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        self.read_chunks(out).map_err(damaged)
    }
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
        Ok(Plan { id, manifest, ids })
    }

    /// Decodes every chunk of `plan` in order into blocks sent on `tx`,
    /// reusing the blocks that come back on `back`.
    fn produce(
        &self,
        plan: &Plan,
        index: Option<&super::index::Index>,
        tx: &SyncSender<io::Result<Vec<u8>>>,
        back: &Receiver<Vec<u8>>,
    ) -> io::Result<()> {
        let mut chunks = Chunks::new(self, plan, index);
        // No block larger than the snapshot: once one 4 MiB block has been
        // freed, glibc serves the next from its heap and zeroes all of it,
        // which cost a 45 kB snapshot's `cat` more than its reading. (The
        // size is the manifest's; were it wrong, blocks would only be
        // smaller or capped.)
        let len = usize::try_from(plan.manifest.size).map_or(BLOCK, |s| s.clamp(1, BLOCK));
        loop {
            // A new block is allocated zeroed (calloc: fresh pages from the
            // kernel, no byte-by-byte fill); a returned one only grows back
            // from the last block's shorter length.
            let mut block = back.try_recv().unwrap_or_else(|_| vec![0u8; len]);
            block.resize(len, 0);
            let n = read_full(&mut chunks, &mut block)?;
            if n == 0 {
                return Ok(());
            }
            block.truncate(n);
            if tx.send(Ok(block)).is_err() {
                return Ok(()); // the consumer stopped
            }
        }
    }

    /// Runs `consume` on a reader of the snapshot's bytes while a thread
    /// decodes them. `index` is the index when the caller holds it open
    /// (otherwise it is opened for moments as chunks are located).
    pub(crate) fn with_stream<T>(
        &self,
        plan: &Plan,
        index: Option<&super::index::Index>,
        consume: impl FnOnce(&mut dyn BufRead) -> T,
    ) -> T {
        std::thread::scope(|s| {
            let (tx, rx) = sync_channel(DEPTH);
            let (back_tx, back_rx) = channel();
            s.spawn(move || {
                if let Err(e) = self.produce(plan, index, &tx, &back_rx) {
                    let _ = tx.send(Err(e));
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
        let computed = self.with_stream(&plan, None, |r| -> Result<[u8; 32]> {
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
                    .map_err(RepoError::io("write", "the output"))?;
                let n = b.len();
                r.consume(n);
            }
            out.flush().map_err(RepoError::io("write", "the output"))?;
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

    /// Calls `f` with snapshot `prefix`'s bytes as a restore source (named
    /// `REPO snapshot ID`, with the body's SHA-256 recorded at push time,
    /// which the restore always checks), under a shared lock.
    ///
    /// The chunks are not hashed one by one as they pass
    /// ([`Chunks::vouched`]): when the restore fails on the body's digest,
    /// the trailer's, or a chunk that cannot be decoded, the chunks it read
    /// are read again, each checked against its ID, and the first damaged
    /// one is the error, as when every chunk was checked on the way (the
    /// staged db of a failed restore is discarded either way).
    pub(super) fn with_snapshot_reader<T>(
        &self,
        prefix: &str,
        f: impl FnOnce(SnapshotReader<'_>) -> std::result::Result<T, RestoreError>,
    ) -> Result<std::result::Result<T, RestoreError>> {
        let _lock = self.lock(false)?;
        let plan = self.plan(prefix)?;
        let name = format!("{} snapshot {}", self.location(), hex(&plan.id));
        // Decoded on the caller's thread as it reads (a restore's writing
        // and hashing run on two others): a restore's 1 MiB requests
        // bypass the small buffer, so chunks land in its buffers directly.
        let mut r = io::BufReader::with_capacity(64 << 10, Chunks::vouched(self, &plan));
        let source = SnapshotReader::new(&mut r, name.clone())
            .with_len(plan.manifest.size)
            .with_body_sha256(plan.manifest.sha256_body);
        let got = f(source);
        // Chunks decoded and handed out without their check.
        let passed = r.get_ref().next;
        drop(r);
        let upto = match &got {
            // Those before the one that failed (it was checked).
            Err(RestoreError::Read { .. }) => passed,
            Err(RestoreError::SourceHashMismatch { .. } | RestoreError::HashMismatch { .. }) => {
                plan.ids.len()
            }
            _ => return Ok(got),
        };
        Ok(match self.first_damage(&plan, upto) {
            Some(e) => Err(RestoreError::Read {
                name,
                source: damaged(e),
            }),
            None => got,
        })
    }

    /// The first error reading the first `upto` chunks of `plan` with
    /// every chunk checked against its ID (what a reader of
    /// [`Chunks::vouched`] reports when the digest it was checked against
    /// does not match).
    fn first_damage(&self, plan: &Plan, upto: usize) -> Option<RepoError> {
        let mut chunks = Chunks::new(self, plan, None);
        let mut buf = Vec::new();
        while chunks.next < upto {
            let (l, len) = match chunks.peek() {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(e) => return Some(e),
            };
            buf.resize(len, 0);
            if let Err(e) = chunks.decode_next(&l, &mut buf) {
                return Some(e);
            }
        }
        None
    }

    /// Restores snapshot `prefix` as [`crate::restore()`] restores a file:
    /// the reconstructed bytes stream into
    /// the first member's staged db, and the body must have the SHA-256
    /// recorded at push time before anything is published.
    pub fn restore(
        &self,
        prefix: &str,
        opts: &RestoreOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<RestoreSummary> {
        Ok(self.with_snapshot_reader(prefix, |source| restore(source, opts, progress))??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::backend::{Backend, LockGuard};
    use crate::repo::local::LocalBackend;
    use crate::repo::push::PushOptions;
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A local directory read as object storage is (no file to map: ranged
    /// reads), counting the reads.
    #[derive(Debug)]
    struct Ranged(LocalBackend, std::sync::Arc<AtomicUsize>);

    impl Backend for Ranged {
        fn location(&self) -> String {
            self.0.location()
        }
        fn read(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
            self.0.read(key, max)
        }
        fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.read_at(key, offset, buf)
        }
        fn write(&self, key: &str, data: &[u8]) -> io::Result<()> {
            self.0.write(key, data)
        }
        fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
            self.0.list(prefix)
        }
        fn remove(&self, key: &str) -> io::Result<()> {
            self.0.remove(key)
        }
        fn index_dir(&self) -> std::path::PathBuf {
            self.0.index_dir()
        }
        fn lock(&self, exclusive: bool, wait: bool) -> io::Result<Box<dyn LockGuard>> {
            self.0.lock(exclusive, wait)
        }
    }

    /// A repository read through ranged reads (counted) holding the k8s
    /// fixture and, pushed after it, the fixture with every 50th page
    /// changed (a byte past the page header, the trailer made again): the
    /// repository, the read counter, the two snapshots' IDs and the changed
    /// file's bytes.
    fn changed_pair(
        root: &Path,
    ) -> (
        Repository,
        std::sync::Arc<AtomicUsize>,
        [String; 2],
        Vec<u8>,
    ) {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/snapshots/k8s-v35.db");
        let old = std::fs::read(src).expect("fixture");
        Repository::init_dir(root, None).expect("init");
        let reads = std::sync::Arc::new(AtomicUsize::new(0));
        let repo = Repository::open(
            Box::new(Ranged(LocalBackend::new(root), reads.clone())),
            None,
        )
        .expect("open");
        let first = repo
            .push(Path::new(src), &PushOptions::default())
            .expect("push");
        let mut new = old.clone();
        let body = new.len() - 32;
        let mut page = 8 * 4096;
        while page + 4096 <= body {
            new[page + 100] ^= 0x5a;
            page += 50 * 4096;
        }
        let digest = Sha256::digest(&new[..body]);
        new[body..].copy_from_slice(&digest);
        let changed = root.with_file_name("changed.db");
        std::fs::write(&changed, &new).expect("write");
        // Scrambled records are no sound database (push refuses them);
        // only where the chunks lie matters here.
        let pushed = repo
            .push_unverified(&changed, &PushOptions::default())
            .expect("push");
        let ids = [first.info.id.to_string(), pushed.info.id.to_string()];
        (repo, reads, ids, new)
    }

    /// A snapshot with a few pages changed since the one before, read from
    /// packs through ranged reads: its chunks interleave the old pack and a
    /// new one, and windows over the old pack read past the changed ones.
    #[test]
    fn ranged_reads_span_changed_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (repo, reads, [_, id], new) = changed_pair(&dir.path().join("repo"));
        let plan = repo.plan(&id).expect("plan");
        let mut ahead = std::collections::VecDeque::new();
        Locator::new(&repo, &plan.ids, None)
            .fill(&mut ahead, usize::MAX)
            .expect("locate");
        let packs: std::collections::HashSet<[u8; 32]> = ahead.iter().map(|l| l.pack).collect();
        assert!(packs.len() >= 2, "chunks from the old pack and a new one");
        reads.store(0, Ordering::Relaxed);
        let mut got = Vec::new();
        Chunks::new(&repo, &plan, None)
            .read_to_end(&mut got)
            .expect("read");
        assert!(got == new, "the changed snapshot, byte for byte");
        let n = reads.load(Ordering::Relaxed);
        assert!(n <= 8, "{n} ranged reads for {} chunks", plan.ids.len());
    }

    /// The second snapshot read in one command finds the trailer of the pack
    /// it shares with the first kept: two reads fewer than a fresh
    /// repository makes (a footer and a trailer), the same bytes.
    #[test]
    fn a_shared_pack_trailer_is_read_once_per_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let (repo, reads, [first, second], new) = changed_pair(&root);
        let read = |repo: &Repository, id: &str| {
            let plan = repo.plan(id).expect("plan");
            reads.store(0, Ordering::Relaxed);
            let mut got = Vec::new();
            Chunks::new(repo, &plan, None)
                .read_to_end(&mut got)
                .expect("read");
            (got, reads.load(Ordering::Relaxed))
        };
        let cold_repo = Repository::open(
            Box::new(Ranged(LocalBackend::new(&root), reads.clone())),
            None,
        )
        .expect("open");
        let (_, cold) = read(&cold_repo, &second);
        read(&repo, &first);
        let (got, warm) = read(&repo, &second);
        assert!(got == new, "the changed snapshot, byte for byte");
        assert_eq!(
            warm + 2,
            cold,
            "reads of the second snapshot, warm and cold"
        );
    }

    /// A raw chunk with a byte flipped passes a reader that does not hash
    /// each chunk (only the body's digest finds it), while the chunks that
    /// hold the last 32 bytes are hashed as they pass; a restore names the
    /// damaged chunk as a chunk-by-chunk check does, in its second pass.
    #[test]
    fn a_vouched_reader_leaves_the_damage_to_the_digest_and_the_second_pass() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/snapshots/k8s-v35.db");
        let want = std::fs::read(src).expect("fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let repo = Repository::init_dir(&root, None).expect("init");
        let pushed = repo
            .push(Path::new(src), &PushOptions::default())
            .expect("push");
        let id = pushed.info.id.to_string();
        let plan = repo.plan(&id).expect("plan");
        let mut locs = std::collections::VecDeque::new();
        Locator::new(&repo, &plan.ids, None)
            .fill(&mut locs, usize::MAX)
            .expect("locate");
        let n = locs.len();
        let flip = |l: &Loc| {
            let path = root.join(keys::pack(&l.pack));
            let mut b = std::fs::read(&path).expect("read");
            b[(l.offset + u64::from(l.stored_len) / 2) as usize] ^= 0xff;
            std::fs::write(&path, b).expect("write");
        };
        let (k, l) = locs
            .iter()
            .enumerate()
            .filter(|(k, l)| l.codec == super::super::chunk::CODEC_RAW && *k + 8 < n)
            .nth(3)
            .expect("incompressible pages");
        flip(l);
        let mut got = Vec::new();
        Chunks::vouched(&repo, &plan)
            .read_to_end(&mut got)
            .expect("no chunk hashed");
        assert!(got.len() == want.len() && got != want);
        let precise = Chunks::new(&repo, &plan, None)
            .read_to_end(&mut Vec::new())
            .expect_err("each chunk hashed")
            .to_string();
        let chunk = format!(
            "chunk {}: content does not match its hash",
            hex(&plan.ids[k])
        );
        assert!(precise.ends_with(&chunk), "{precise}");
        assert_eq!(repo.first_damage(&plan, k).map(|e| e.to_string()), None);
        assert_eq!(
            repo.first_damage(&plan, n).map(|e| e.to_string()),
            Some(precise.clone())
        );
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        let opts = RestoreOptions::default().with_data_dir(out.join("m.etcd"));
        let err = repo.restore(&id, &opts, &|_| {}).expect_err("damaged");
        assert_eq!(
            err.to_string(),
            format!(
                "read {} snapshot {}: {precise}",
                root.display(),
                hex(&plan.id)
            )
        );
        assert!(std::fs::read_dir(&out).expect("ls").next().is_none());

        // The last chunk holds etcd's trailer, which the body's digest
        // does not cover: it is hashed as it passes.
        flip(&locs[k]); // undone
        let last = locs[n - 1];
        flip(&last);
        let err = Chunks::vouched(&repo, &plan)
            .read_to_end(&mut Vec::new())
            .expect_err("the trailer's chunk is hashed")
            .to_string();
        assert!(err.contains(&hex(&plan.ids[n - 1])), "{err}");
    }

    /// Reads of any size give the exact bytes: whole chunks land in the
    /// caller's buffer, and a read smaller than a chunk is served from a
    /// spill buffer across calls.
    #[test]
    fn chunks_read_exactly_whatever_the_read_size() {
        let src = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/snapshots/small-v35.db"
        );
        let want = std::fs::read(src).expect("fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_dir(dir.path().join("repo"), None).expect("init");
        let pushed = repo
            .push(Path::new(src), &PushOptions::default())
            .expect("push");
        let plan = repo.plan(&pushed.info.id.to_string()).expect("plan");
        assert!(plan.ids.len() > 3, "a few chunks at least");
        for size in [1, 100, 4095, 4096, 4097, 3 * 4096 + 5, 1 << 20] {
            let mut r = Chunks::new(&repo, &plan, None);
            let mut got = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = r.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == want, "read size {size}");
        }
    }
}
