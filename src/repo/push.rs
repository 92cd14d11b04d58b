//! `backup push`: store a snapshot file, keeping only the chunks the
//! repository does not have yet.
//!
//! First the file is checked as `snapshot save` checks a file before it
//! keeps it: one thread computes its SHA-256 (the whole file, and the body
//! for etcd's trailer check) while the others run `snapshot verify`'s
//! structural and etcd-level checks, by the rules of the release its
//! storage version names. A file verify refuses is refused, with verify's
//! problems, before anything is stored. Then the file is cut into
//! page-aligned chunks, each hashed, and the new ones compressed into packs
//! that are published as they fill. Then the chunk list (a delta against
//! the newest full list when that is small), then the manifest, then the
//! snapshot's record under `known/` (see `held.rs`), then the index. Every
//! object is published whole by the backend, and the manifest only after
//! everything it refers to, so a push killed at any moment leaves at worst
//! some unreferenced packs (taken into the index by the next command,
//! removed by the next prune).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{channel, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use super::backend::keys;
use super::chunk::{Coder, chunk_size};
use super::codec::hex;
use super::error::{RepoError, Result};
use super::index::{Open, Update};
use super::list::ChunkList;
use super::manifest::Manifest;
use super::pack::{Pack, PackBuilder};
use super::repository::{Repository, SnapshotInfo};
use crate::bolt::Db;
use crate::etcd::revision::Revision;
use crate::etcd::version::TargetChoice;
use crate::progress::{Phase, Progress};
use crate::snapshot::{SnapshotFile, VerifyOptions};

/// Bytes of the file a chunking thread reads, hashes and compresses at a
/// time.
const JOB_BLOCK: usize = 2 << 20;

/// A pack as written: its name, size and entries.
pub(crate) type Published = ([u8; 32], u64, Vec<super::pack::PackEntry>);

/// One block of the file, cut: the ID of each chunk, and the chunks
/// encoded for storing (position in `ids`, stored bytes, raw length,
/// codec).
struct Block {
    seq: u64,
    ids: Vec<[u8; 32]>,
    stored: Vec<(usize, Vec<u8>, u32, u8)>,
}

/// The chunks a push has stored, so that each is stored once: by the first
/// 8 bytes of its ID, where the whole ID is in the snapshot's list of IDs
/// (which the push holds anyway), about 20 bytes a chunk where a set of
/// whole IDs took about 50. The rare ID whose prefix another one has (or
/// whose position does not fit) is kept whole.
#[derive(Default)]
struct Fresh {
    first: HashMap<u64, u32>,
    whole: HashSet<[u8; 32]>,
}

impl Fresh {
    /// Remembers `id`, at position `pos` of the snapshot's IDs (`at` gives
    /// the ID at an earlier position); whether it was new.
    fn insert(
        &mut self,
        id: &[u8; 32],
        pos: usize,
        at: impl Fn(usize) -> Option<[u8; 32]>,
    ) -> bool {
        let prefix = id.first_chunk::<8>().copied().unwrap_or_default();
        match self.first.entry(u64::from_le_bytes(prefix)) {
            Entry::Occupied(o) => at(*o.get() as usize) != Some(*id) && self.whole.insert(*id),
            Entry::Vacant(v) => match u32::try_from(pos) {
                Ok(p) => {
                    v.insert(p);
                    true
                }
                Err(_) => self.whole.insert(*id),
            },
        }
    }
}

/// How to push.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// Store a file without a valid SHA-256 trailer (a raw `member/snap/db`
    /// copy, or a snapshot whose trailer does not match).
    pub skip_hash_check: bool,
    /// zstd level for new chunks (1-19; 3 is zstd's default).
    pub compression_level: i32,
    /// What to record as the source (default: the path).
    pub source: Option<String>,
    /// When the snapshot was taken (default: now). Retention rules go by
    /// this time; set it when importing older snapshot files.
    pub time: Option<SystemTime>,
    /// Whose rules verify's etcd-level checks follow (default: the release
    /// the snapshot's storage version names, as `snapshot verify` does).
    pub target: TargetChoice,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            skip_hash_check: false,
            compression_level: 3,
            source: None,
            time: None,
            target: TargetChoice::Auto,
        }
    }
}

impl PushOptions {
    /// Store a file without a valid SHA-256 trailer.
    pub fn with_skip_hash_check(mut self, skip: bool) -> Self {
        self.skip_hash_check = skip;
        self
    }

    /// zstd level for new chunks (1-19).
    pub fn with_compression_level(mut self, level: i32) -> Self {
        self.compression_level = level;
        self
    }

    /// What to record as the source (default: the path).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// When the snapshot was taken (default: now).
    pub fn with_time(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Whose rules verify's etcd-level checks follow.
    pub fn with_target(mut self, target: impl Into<TargetChoice>) -> Self {
        self.target = target.into();
        self
    }
}

/// What a push stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushSummary {
    /// The new snapshot.
    pub info: SnapshotInfo,
    /// Chunks in the snapshot.
    pub chunks: u64,
    /// Chunks that were not in the repository yet.
    pub new_chunks: u64,
    /// Packs written.
    pub packs: usize,
    /// Whether the chunk list was stored as a delta.
    pub delta_list: bool,
}

/// The newest revision in the `key` bucket (what `snapshot status` reports),
/// or 0 if the database has none.
fn revision_of(db: Db<'_>) -> i64 {
    let Ok(Some(keyb)) = db.root().bucket(b"key") else {
        return 0;
    };
    match keyb.cursor().last() {
        Ok(Some(e)) => Revision::main_of(e.key).unwrap_or(0),
        _ => 0,
    }
}

/// `snapshot verify`'s structural and etcd-level checks on a file about
/// to be stored (its trailer is the push's own check), by the rules of
/// `target`; verify's problems if it finds any. `threads` walk the tree.
pub(crate) fn verify_file(file: &SnapshotFile, target: TargetChoice, threads: usize) -> Result<()> {
    let path = || file.path().to_path_buf();
    // A meta bucket that cannot be read is left to the walk, which says
    // what is wrong with it; read as 3.5's meanwhile (as `verify` does).
    let storage = if target.is_auto() {
        file.storage_version().ok().flatten()
    } else {
        None
    };
    let target = target
        .resolve(storage.as_deref())
        .map_err(|source| RepoError::TargetVersion {
            path: path(),
            source,
        })?;
    let opts = VerifyOptions::default()
        .with_skip_hash_check(true)
        .with_target(target)
        .with_threads(threads);
    let problems = crate::snapshot::verify::verify(file, &opts, &|_| {}).problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RepoError::Unsound {
            path: path(),
            problems,
        })
    }
}

/// SHA-256 of the body and of the whole file, in one read.
fn hash_file(
    file: &std::fs::File,
    body_len: u64,
    len: u64,
    progress: &(dyn Fn(Progress) + Sync),
) -> std::io::Result<([u8; 32], [u8; 32])> {
    crate::snapshot::hash::sha256_split(file, body_len, len, &|done| {
        progress(Progress::new(Phase::Hash, done, len));
    })
}

impl Repository {
    /// Stores the snapshot at `path`. See [`push_with_progress`](Self::push_with_progress).
    pub fn push(&self, path: &Path, opts: &PushOptions) -> Result<PushSummary> {
        self.push_with_progress(path, opts, &|_| {})
    }

    /// Stores the snapshot at `path`: its SHA-256 trailer must match
    /// (unless `skip_hash_check`) and it must pass `snapshot verify`'s
    /// structural and etcd-level checks by the rules of `opts.target`
    /// ([`RepoError::Unsound`] otherwise, and nothing is stored).
    /// `progress` hears how much has been hashed.
    pub fn push_with_progress(
        &self,
        path: &Path,
        opts: &PushOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<PushSummary> {
        let _lock = self.lock(false)?;
        let file = SnapshotFile::open(path)?;
        self.push_file(&file, opts, progress, true)
    }

    /// [`push`](Self::push) without verify's checks (see
    /// `internal::repo::push_unverified`).
    pub(crate) fn push_unverified(&self, path: &Path, opts: &PushOptions) -> Result<PushSummary> {
        let _lock = self.lock(false)?;
        let file = SnapshotFile::open(path)?;
        self.push_file(&file, opts, &|_| {}, false)
    }

    /// Stores the snapshot at a location (`s3://...`, `gs://...`,
    /// `az://...`, a `.zst` or `.gz` file, or a plain path): read once,
    /// decompressed and checked into a temporary file, then pushed as a
    /// file. The source recorded is the location.
    pub fn push_location(
        &self,
        location: &crate::location::Location,
        opts: &PushOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<PushSummary> {
        let _lock = self.lock(false)?;
        let snap = location.open_snapshot(progress)?;
        self.push_file(snap.file(), opts, progress, true)
    }

    fn push_file(
        &self,
        file: &SnapshotFile,
        opts: &PushOptions,
        progress: &(dyn Fn(Progress) + Sync),
        verify: bool,
    ) -> Result<PushSummary> {
        let path = file.path();
        let trailer = file.trailer();
        if trailer.is_none() && !opts.skip_hash_check {
            return Err(RepoError::MissingHash(path.to_path_buf()));
        }
        let db = file.db()?;
        let page_size = db.page_size();
        let revision = revision_of(db);
        let csize = chunk_size(page_size);
        let len = file.len();
        let body_len = file.body_len();

        // What the repository has: chunk IDs, and the newest full list to
        // write a delta against.
        let (known, known_lists, base) = {
            let (ix, _) = self.index(Open::Checked)?;
            let known = ix.chunk_ids()?;
            let known_lists = ix.list_ids()?;
            let snaps = ix.snapshots()?;
            let newest = snaps.iter().max_by_key(|(id, m)| (m.time_ns, *id));
            let base = match newest {
                Some((_, m)) => match ix.list(&m.list)? {
                    Some(ChunkList::Full(ids)) => Some((m.list, ids)),
                    Some(ChunkList::Delta { base, .. }) => match ix.list(&base)? {
                        Some(ChunkList::Full(ids)) => Some((base, ids)),
                        _ => None,
                    },
                    None => None,
                },
                None => None,
            };
            (known, known_lists, base)
        };

        // Both checks before anything is stored: a refused file leaves
        // nothing behind.
        let (hashes, verified) = std::thread::scope(|s| {
            let hasher = s.spawn(|| hash_file(file.file(), body_len, len, progress));
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let verified = if verify {
                verify_file(file, opts.target, threads.saturating_sub(1).max(1))
            } else {
                Ok(())
            };
            let hashes = hasher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (hashes, verified)
        });
        let (sha256_body, sha256_file) = hashes.map_err(RepoError::io("read", path))?;
        if let Some(t) = trailer
            && t != sha256_body
            && !opts.skip_hash_check
        {
            return Err(RepoError::TrailerMismatch {
                path: path.to_path_buf(),
                stored: hex(&t),
                computed: hex(&sha256_body),
            });
        }
        verified?;
        let (ids, packs) = self.store_chunks(file, csize, &known, opts.compression_level)?;
        drop(known);
        // What was checked must be what was cut.
        if let Some(e) = file.changed() {
            return Err(e.into());
        }

        let chunks = ids.len() as u64;
        let list = ChunkList::build(ids, base.as_ref().map(|(id, ids)| (id, ids.as_slice())));
        let delta_list = matches!(list, ChunkList::Delta { .. });
        let list_plain = list.encode();
        drop(list);
        let list_id = self.crypto.id(&list_plain);
        // An identical list (the same snapshot again) is stored once.
        let list_bytes = if known_lists.contains(&list_id) {
            0
        } else {
            let list_stored = self
                .crypto
                .seal(list_plain.clone(), keys::LISTS.as_bytes())?;
            let list_key = keys::list(&list_id);
            self.backend
                .write(&list_key, &list_stored)
                .map_err(RepoError::io("write", self.path_of(&list_key)))?;
            list_stored.len() as u64
        };

        let pack_bytes: u64 = packs.iter().map(|p| p.1).sum();
        let time_ns = match opts
            .time
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
        {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        };
        let manifest = Manifest {
            time_ns,
            revision,
            size: len,
            page_size,
            chunk_size: csize,
            chunk_count: chunks,
            list: list_id,
            sha256_file,
            sha256_body,
            has_trailer: trailer.is_some(),
            new_bytes: pack_bytes + list_bytes,
            source: opts
                .source
                .clone()
                .unwrap_or_else(|| path.display().to_string()),
        };
        let plain = manifest.encode();
        let id = self.crypto.id(&plain);
        let key = keys::snapshot(&id);
        let sealed = self
            .crypto
            .seal(plain.clone(), keys::SNAPSHOTS.as_bytes())?;
        self.backend
            .write(&key, &sealed)
            .map_err(RepoError::io("write", self.path_of(&key)))?;
        self.record_push(&id)?;

        let new_chunks = packs.iter().map(|p| p.2.len() as u64).sum();
        let npacks = packs.len();
        let ix = super::index::Index::open(&self.backend.index_dir(), Open::Fast, &self.crypto)?;
        ix.apply(&Update {
            packs,
            lists: vec![(list_id, list_plain)],
            snapshots: vec![(id, plain)],
            ..Update::default()
        })?;
        Ok(PushSummary {
            info: SnapshotInfo::from_manifest(id, &manifest),
            chunks,
            new_chunks,
            packs: npacks,
            delta_list,
        })
    }

    /// Cuts the file into chunks, stores the ones not in `known` in packs,
    /// and returns every chunk's ID and the packs written.
    ///
    /// A bounded pipeline: worker threads each read a block of the file,
    /// hash its chunks and compress the ones not in `known`; this thread
    /// takes the blocks back in file order, drops chunks already taken,
    /// and fills packs, which another thread finishes (names) and
    /// publishes in order while the next one fills. At most
    /// `2 x workers` blocks are in flight, and two packs.
    #[allow(clippy::type_complexity)]
    fn store_chunks(
        &self,
        file: &SnapshotFile,
        csize: u32,
        known: &[[u8; 32]],
        level: i32,
    ) -> Result<(Vec<[u8; 32]>, Vec<Published>)> {
        let len = file.len();
        let csize = csize as usize;
        let block = ((JOB_BLOCK / csize).max(1) * csize) as u64;
        let nblocks = len.div_ceil(block);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let inflight = (workers * 2) as u64;
        let mut ids = Vec::with_capacity(usize::try_from(len / csize as u64 + 1).unwrap_or(0));
        let (job_tx, job_rx) = sync_channel::<u64>(workers * 2);
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|s| -> Result<(Vec<[u8; 32]>, Vec<Published>)> {
            let (done_tx, done_rx) = channel::<Result<Block>>();
            for _ in 0..workers {
                let done_tx = done_tx.clone();
                let job_rx = &job_rx;
                s.spawn(move || {
                    let mut coder = Coder::new(level);
                    let mut buf = Vec::new();
                    loop {
                        let seq = match job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(seq) => seq,
                            Err(_) => return,
                        };
                        let r =
                            self.cut_block(file, seq, block, csize, known, &mut coder, &mut buf);
                        if done_tx.send(r).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            // Packs are finished and written on their own thread, in the
            // order they are filled; the channel has no room, so at most
            // one pack waits while another is written.
            let (pack_tx, pack_rx) = sync_channel::<PackBuilder>(0);
            let publisher = s.spawn(move || -> Result<Vec<Published>> {
                let mut packs = Vec::new();
                for p in pack_rx {
                    packs.push(self.publish(p.finish(&self.crypto)?)?);
                }
                Ok(packs)
            });
            let collected = (|| -> Result<()> {
                let mut fresh = Fresh::default();
                let mut pack = PackBuilder::new();
                let mut sent = 0u64;
                let mut next = 0u64;
                let mut pending: BTreeMap<u64, Block> = BTreeMap::new();
                while next < nblocks {
                    while sent < nblocks && sent < next + inflight {
                        if job_tx.send(sent).is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    let Ok(done) = done_rx.recv() else {
                        break; // the workers are gone: reported below
                    };
                    let done = done?;
                    pending.insert(done.seq, done);
                    while let Some(b) = pending.remove(&next) {
                        let before = ids.len();
                        let at = |p: usize| match p.checked_sub(before) {
                            None => ids.get(p).copied(),
                            Some(q) => b.ids.get(q).copied(),
                        };
                        for (i, stored, raw_len, codec) in b.stored {
                            let Some(id) = b.ids.get(i).copied() else {
                                continue;
                            };
                            if !fresh.insert(&id, before + i, at) {
                                continue;
                            }
                            pack.add(id, &stored, raw_len, codec);
                            if pack.is_full() && pack_tx.send(std::mem::take(&mut pack)).is_err() {
                                return Ok(()); // the publisher failed: its error
                            }
                        }
                        ids.extend_from_slice(&b.ids);
                        next += 1;
                    }
                }
                if next < nblocks {
                    return Err(RepoError::io("read", file.path())(std::io::Error::other(
                        "a chunking thread stopped",
                    )));
                }
                if !pack.is_empty() {
                    let _ = pack_tx.send(pack);
                }
                Ok(())
            })();
            drop(job_tx);
            drop(pack_tx);
            let packs = publisher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            collected?;
            Ok((std::mem::take(&mut ids), packs?))
        })
    }

    /// Reads block `seq` of the file, hashes its chunks and encodes the
    /// ones not in `known`.
    #[allow(clippy::too_many_arguments)]
    fn cut_block(
        &self,
        file: &SnapshotFile,
        seq: u64,
        block: u64,
        csize: usize,
        known: &[[u8; 32]],
        coder: &mut Coder,
        buf: &mut Vec<u8>,
    ) -> Result<Block> {
        let off = seq.saturating_mul(block);
        let want = usize::try_from(file.len().saturating_sub(off).min(block)).unwrap_or(0);
        buf.resize(want, 0);
        file.file()
            .read_exact_at(buf, off)
            .map_err(RepoError::io("read", file.path()))?;
        let mut b = Block {
            seq,
            ids: Vec::with_capacity(want.div_ceil(csize)),
            stored: Vec::new(),
        };
        for (i, piece) in buf.chunks(csize).enumerate() {
            let id = self.crypto.id(piece);
            b.ids.push(id);
            // A chunk repeated in the file is encoded each time; the
            // collector stores it once.
            if known.binary_search(&id).is_ok() {
                continue;
            }
            let (stored, codec) = coder.encode(&self.crypto, piece, &id)?;
            b.stored.push((i, stored, piece.len() as u32, codec));
        }
        Ok(b)
    }

    /// Writes a pack; returns its name, size and entries.
    pub(crate) fn publish(&self, p: Pack) -> Result<Published> {
        let key = keys::pack(&p.name);
        self.backend
            .write(&key, &p.bytes)
            .map_err(RepoError::io("write", self.path_of(&key)))?;
        Ok((p.name, p.bytes.len() as u64, p.entries))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_stores_each_chunk_once_even_when_prefixes_collide() {
        // IDs 0 and 1 share their first 8 bytes; 2 is ID 0 again, 3 is ID
        // 1 again, 4 is a third ID with the same prefix, 5 is ID 4 again.
        let id = |tail: u8| {
            let mut b = [7u8; 32];
            b[31] = tail;
            b
        };
        let ids = [id(1), id(2), id(1), id(2), id(3), id(3)];
        let mut fresh = Fresh::default();
        let stored: Vec<bool> = (0..ids.len())
            .map(|p| fresh.insert(&ids[p], p, |q| ids.get(q).copied()))
            .collect();
        assert_eq!(stored, [true, true, false, false, true, false]);
        // A position that does not fit is kept whole, and still once.
        let big = usize::MAX;
        let mut other = [9u8; 32];
        assert!(fresh.insert(&other, big, |_| None));
        assert!(!fresh.insert(&other, big, |_| None));
        other[0] = 8;
        assert!(fresh.insert(&other, 7, |_| None));
    }
}
