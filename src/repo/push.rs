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
//! snapshot's record under `known/` (see `held.rs`), then the index (in
//! one transaction: one per pack rewrote most of a large index's pages
//! each time). Every object is published whole by the backend, and the
//! manifest only after everything it refers to, so a push killed at any
//! moment leaves at worst some unreferenced packs (taken into the index by
//! the next command, removed by the next prune).
//!
//! What a push holds does not grow with the snapshot beyond a few bytes a
//! chunk: the chunk IDs go to a temporary file (read back to write the
//! list), so do the packs' entries (read back into the index), and what
//! stays is the note of each new chunk taken (`Fresh`, 10-20 bytes a chunk)
//! while chunking, then the list's encoding (32 bytes a chunk) to store
//! it; also, for a push into a repository that has chunks, their sorted
//! IDs (32 bytes each) while chunking and the base list's IDs (32 bytes a
//! chunk of it) while the list is made.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
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
use crate::etcd::TargetVersion;
use crate::etcd::version::TargetChoice;
use crate::mvcc::Store;
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

/// A full chunk list: its ID and its chunk IDs.
type FullList = ([u8; 32], Vec<[u8; 32]>);

/// What the packs written by a push hold.
#[derive(Default)]
struct Written {
    packs: usize,
    new_chunks: u64,
    pack_bytes: u64,
    /// Their names, sizes and entries, for the index (`index::spill_pack`).
    entries: Option<std::fs::File>,
}

/// What a push cut and stored: the ID of each of the `chunks` chunks in
/// order (32 bytes each, in a temporary file rather than memory: 62 MB for
/// an 8 GB snapshot), and the packs written (their entries in another).
struct Stored {
    ids: std::fs::File,
    chunks: u64,
    written: Written,
}

/// The chunks a push has stored, so that each is stored once: by the first
/// 4 bytes of its ID, where the whole ID is in the snapshot's list of IDs
/// (the push's temporary file of them), 8 bytes an entry (10-20 bytes a
/// chunk with the table's slack) where a set of whole IDs took about 50.
/// The ID whose prefix another one has (a few hundred of 2,000,000 in an
/// 8 GB snapshot, or one whose position does not fit) is kept whole.
#[derive(Default)]
struct Fresh {
    first: HashMap<u32, u32>,
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
        let prefix = id.first_chunk::<4>().copied().unwrap_or_default();
        match self.first.entry(u32::from_le_bytes(prefix)) {
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

/// The revision an etcd started on the snapshot is at, as etcd (the
/// release the file's storage version names) decides it on start-up: the
/// `key` bucket's newest entry (what `snapshot status` reports), 1 for a
/// store that never changed (etcd's first change is revision 2), raised
/// to a compaction that removed the newest entries. A recorded chain
/// follows it from the next revision, and a restore of the snapshot
/// answers at it. 0 if the database cannot be read as a store.
fn revision_of(file: &SnapshotFile, db: Db<'_>) -> i64 {
    let storage = file.storage_version().ok().flatten();
    let rules = TargetChoice::Auto
        .resolve(storage.as_deref())
        .unwrap_or(TargetVersion::V3_5);
    Store::from_db(db).map_or(0, |s| s.with_rules(rules).revisions().current)
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
        let revision = revision_of(file, db);
        let csize = chunk_size(page_size);
        let len = file.len();
        let body_len = file.body_len();

        // What the repository has: chunk IDs, and the list of the newest
        // snapshot (whose full list a delta is written against; read once
        // the chunks are stored, so that its IDs and the repository's are
        // not held at the same time).
        let (known, known_lists, newest) = {
            let (ix, _) = self.index(Open::Checked)?;
            let known = ix.chunk_ids()?;
            let known_lists = ix.list_ids()?;
            let snaps = ix.snapshots()?;
            let newest = snaps
                .iter()
                .max_by_key(|(id, m)| (m.time_ns, *id))
                .map(|(_, m)| m.list);
            (known, known_lists, newest)
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
        let stored = self.store_chunks(file, csize, &known, opts.compression_level)?;
        drop(known);
        // What was checked must be what was cut.
        if let Some(e) = file.changed() {
            return Err(e.into());
        }

        let chunks = stored.chunks;
        let base = match newest {
            Some(list) => self.full_list_of(&list)?,
            None => None,
        };
        let (list_plain, delta_list) = ChunkList::encode_file(
            &stored.ids,
            chunks,
            base.as_ref().map(|(id, ids)| (id, ids.as_slice())),
        )
        .map_err(RepoError::io("read", std::env::temp_dir()))?;
        drop(base);
        drop(stored.ids);
        let list_id = self.crypto.id(&list_plain);
        // An identical list (the same snapshot again) is stored once.
        let list_bytes = if known_lists.contains(&list_id) {
            0
        } else {
            let list_stored = self.crypto.seal_ref(&list_plain, keys::LISTS.as_bytes())?;
            let list_key = keys::list(&list_id);
            self.backend
                .write(&list_key, &list_stored)
                .map_err(RepoError::io("write", self.path_of(&list_key)))?;
            list_stored.len() as u64
        };

        let pack_bytes = stored.written.pack_bytes;
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

        let ix = super::index::Index::open(&self.backend.index_dir(), Open::Fast, &self.crypto)?;
        ix.apply(&Update {
            packs_file: stored.written.entries,
            lists: vec![(list_id, list_plain)],
            snapshots: vec![(id, plain)],
            ..Update::default()
        })?;
        Ok(PushSummary {
            info: SnapshotInfo::from_manifest(id, &manifest),
            chunks,
            new_chunks: stored.written.new_chunks,
            packs: stored.written.packs,
            delta_list,
        })
    }

    /// The full list a delta against snapshot list `list` would refer to
    /// (itself, or its base), with its IDs; `None` when it is not indexed.
    fn full_list_of(&self, list: &[u8; 32]) -> Result<Option<FullList>> {
        let ix = super::index::Index::open(&self.backend.index_dir(), Open::Fast, &self.crypto)?;
        Ok(match ix.list(list)? {
            Some(ChunkList::Full(ids)) => Some((*list, ids)),
            Some(ChunkList::Delta { base, .. }) => match ix.list(&base)? {
                Some(ChunkList::Full(ids)) => Some((base, ids)),
                _ => None,
            },
            None => None,
        })
    }

    /// Cuts the file into chunks and stores the ones not in `known` in
    /// packs. Returns every chunk's ID and the packs' entries, each in a
    /// temporary file (for the list and the index), and what was written.
    ///
    /// A bounded pipeline: worker threads each read a block of the file,
    /// hash its chunks and compress the ones not in `known`; this thread
    /// takes the blocks back in file order, drops chunks already taken,
    /// and fills packs, which another thread finishes (names) and
    /// publishes in order while the next one fills. At most `2 x workers`
    /// blocks are in flight, and two packs. What stays per chunk is only
    /// the note that a new one was taken (`Fresh`).
    fn store_chunks(
        &self,
        file: &SnapshotFile,
        csize: u32,
        known: &[[u8; 32]],
        level: i32,
    ) -> Result<Stored> {
        let len = file.len();
        let csize = csize as usize;
        let block = ((JOB_BLOCK / csize).max(1) * csize) as u64;
        let nblocks = len.div_ceil(block);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let inflight = (workers * 2) as u64;
        let tmp = std::env::temp_dir();
        let mut ids = tempfile::tempfile().map_err(RepoError::io("create", &tmp))?;
        let mut chunks = 0u64;
        let (job_tx, job_rx) = sync_channel::<u64>(workers * 2);
        let job_rx = Mutex::new(job_rx);
        let written = std::thread::scope(|s| -> Result<Written> {
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
            // Packs are finished and written on their own thread,
            // in the order they are filled; the channel has no room, so at
            // most one pack waits while another is written. Each is
            // written to a temporary file as it fills (a piece of 1 MiB
            // held at a time, not the whole 33 MB pack) and stored from
            // there (a local repository renames it into place).
            let (pack_tx, pack_rx) = sync_channel::<PackBuilder>(0);
            let tmp = &tmp;
            let publisher = s.spawn(move || -> Result<Written> {
                let mut w = Written::default();
                let spill = tempfile::tempfile().map_err(RepoError::io("create", tmp))?;
                let mut spill = std::io::BufWriter::with_capacity(1 << 20, spill);
                for p in pack_rx {
                    let (name, size, entries) = self.publish(p.finish(&self.crypto)?)?;
                    w.packs += 1;
                    w.new_chunks += entries.len() as u64;
                    w.pack_bytes += size;
                    super::index::spill_pack(&mut spill, &name, size, &entries)
                        .map_err(RepoError::io("write", tmp))?;
                }
                w.entries = Some(
                    spill
                        .into_inner()
                        .map_err(|e| RepoError::io("write", tmp)(e.into_error()))?,
                );
                Ok(w)
            });
            let collected = (|| -> Result<()> {
                let mut fresh = Fresh::default();
                let mut pack = PackBuilder::spooled(self.tmp_file("pack")?);
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
                        let before = usize::try_from(chunks).unwrap_or(usize::MAX);
                        // An ID of an earlier block is read back from the
                        // file (only for a chunk whose ID prefix was seen
                        // before: mostly a repeated chunk).
                        let at = |p: usize| match p.checked_sub(before) {
                            None => {
                                let mut id = [0u8; 32];
                                ids.read_exact_at(&mut id, p as u64 * 32).ok().map(|()| id)
                            }
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
                            if !pack.is_full() {
                                continue;
                            }
                            let next = PackBuilder::spooled(self.tmp_file("pack")?);
                            if pack_tx.send(std::mem::replace(&mut pack, next)).is_err() {
                                return Ok(()); // the publisher failed: its error
                            }
                        }
                        ids.write_all(b.ids.as_flattened())
                            .map_err(RepoError::io("write", tmp))?;
                        chunks += b.ids.len() as u64;
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
            let written = publisher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            collected?;
            written
        })?;
        Ok(Stored {
            ids,
            chunks,
            written,
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
        coder.new_block();
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
        let len = p.len();
        match &p.file {
            Some((part, _)) => self.backend.write_file(&key, part.part()),
            None => self.backend.write(&key, &p.bytes),
        }
        .map_err(RepoError::io("write", self.path_of(&key)))?;
        // A spooled pack's file (if the backend did not move it) is
        // removed as `p` drops.
        Ok((p.name, len, p.entries))
    }

    /// A new temporary file for an object made a piece at a time (a
    /// spooled pack, a sealed segment), to be stored with
    /// `Backend::write_file`: in `tmp/` beside the index (a local
    /// repository's own `tmp/`, so that it can be renamed into place);
    /// named `KIND.PID.N.tmp`, so a killed command's file is removed as
    /// stale, and removed when dropped unpublished.
    pub(crate) fn tmp_file(&self, kind: &str) -> Result<crate::atomic_file::PartFile> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = self.backend.index_dir().join("tmp");
        std::fs::create_dir_all(&dir).map_err(RepoError::io("mkdir", &dir))?;
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{kind}.{}.{n}.tmp", std::process::id()));
        crate::atomic_file::PartFile::create_new_at(&path, &path)
            .map_err(|f| RepoError::io(f.op, f.path)(f.source))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_stores_each_chunk_once_even_when_prefixes_collide() {
        // IDs 0 and 1 share their first 4 bytes; 2 is ID 0 again, 3 is ID
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
