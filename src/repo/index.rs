//! The redb index: where each chunk is, which packs exist, and a copy of
//! every chunk list and manifest. It is a cache of what the objects say:
//! [`Index::sync`] brings it up to date with the objects (packs, lists and
//! manifests written by interrupted or concurrent pushes, objects removed
//! by prune), and [`Index::rebuild`] makes it again from the objects alone.
//!
//! Tables (keys are 32-byte IDs, values the encodings below):
//!
//! ```text
//! chunks     chunk id -> pack[32] offset u64 stored_len u32 raw_len u32 codec u8
//! packs      pack name -> size u64 count u32
//! lists      list id -> the list's encoding (sealed as its object is)
//! snapshots  snapshot id -> the manifest's encoding (sealed likewise)
//! ```
//!
//! Every command opens the file with redb's integrity check (every page
//! checksum verified; redb may panic on a damaged file it trusts). The one
//! exception is the second open of a push, which writes its packs, list and
//! manifest into the index it checked when it started; a panic inside redb
//! is caught and reported as damage all the same. Everything read from the
//! index is verified again anyway (lists and manifests against their IDs,
//! chunks against theirs). The file is used under an `flock` on
//! `index.lock` held only while it is open, so concurrent commands take
//! turns for moments, not for a push.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::backend::{Backend, keys};
use super::codec::{Dec, DecodeError, Enc, hex};
use super::crypto::Crypto;
use super::error::{RepoError, Result};
use super::list::ChunkList;
use super::manifest::Manifest;
use super::pack::{self, FOOTER_LEN, PackEntry};

const CHUNKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("chunks");
const PACKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("packs");
const LISTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("lists");
const SNAPSHOTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("snapshots");

/// The index file's name.
pub(crate) const INDEX_FILE: &str = "index.redb";
/// How thoroughly to open the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Open {
    /// Create it if missing (init, rebuild), with the integrity check.
    Create,
    /// Verify every page first (check, prune).
    Checked,
    /// Trust the file (a push's second open, moments after its first,
    /// checked one).
    Fast,
}

/// Runs `f`, turning a panic inside redb (possible on a file damaged
/// outside redb when opened without the integrity check) into an error.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(RepoError::Index {
            path: path.to_path_buf(),
            reason: "redb could not read the file (damaged)".into(),
        })
    })
}

/// Memory redb may use for its page cache.
const CACHE_BYTES: usize = 8 << 20;
/// Largest list or manifest object read whole (a full list of
/// `MAX_CHUNKS` IDs).
pub(crate) const MAX_OBJECT: u64 = (super::list::MAX_CHUNKS * 32) + 4096;

/// Where a chunk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub pack: [u8; 32],
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: u8,
}

impl Loc {
    pub(crate) fn of(pack: &[u8; 32], e: &PackEntry) -> Loc {
        Loc {
            pack: *pack,
            offset: e.offset,
            stored_len: e.stored_len,
            raw_len: e.raw_len,
            codec: e.codec,
        }
    }

    pub(crate) fn encode(&self) -> [u8; 49] {
        let mut e = Enc::with_capacity(49);
        e.bytes(&self.pack)
            .u64(self.offset)
            .u32(self.stored_len)
            .u32(self.raw_len)
            .u8(self.codec);
        let mut out = [0u8; 49];
        out.copy_from_slice(&e.finish());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> std::result::Result<Loc, DecodeError> {
        let mut d = Dec::new(b);
        let l = Loc {
            pack: d.array("pack")?,
            offset: d.u64("offset")?,
            stored_len: d.u32("stored length")?,
            raw_len: d.u32("raw length")?,
            codec: d.u8("codec")?,
        };
        d.finish("chunk location")?;
        Ok(l)
    }
}

/// Changes to write in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Update {
    /// Packs to add: name, size, entries. A chunk already indexed keeps
    /// its location unless `repoint` is set.
    pub packs: Vec<([u8; 32], u64, Vec<PackEntry>)>,
    /// More packs to add, read from a file [`spill_pack`] wrote them to
    /// (a push's: not held in memory, ~50 bytes a chunk).
    pub packs_file: Option<File>,
    /// Point chunks of added packs at them even if indexed elsewhere.
    pub repoint: bool,
    /// Lists and manifests to add (plaintext; sealed when stored).
    pub lists: Vec<([u8; 32], Vec<u8>)>,
    pub snapshots: Vec<([u8; 32], Vec<u8>)>,
    pub remove_packs: Vec<[u8; 32]>,
    pub remove_chunks: Vec<[u8; 32]>,
    pub remove_lists: Vec<[u8; 32]>,
    pub remove_snapshots: Vec<[u8; 32]>,
}

/// Length of a pack's header in a file of [`spill_pack`].
const SPILL_HEAD: usize = 32 + 8 + 4;

/// Appends a pack's name, size and entries to `out`, to be added to the
/// index later from the file (`Update::packs_file`).
pub(crate) fn spill_pack(
    out: &mut impl std::io::Write,
    name: &[u8; 32],
    size: u64,
    entries: &[PackEntry],
) -> std::io::Result<()> {
    let mut e = Enc::with_capacity(SPILL_HEAD + entries.len() * pack::ENTRY_LEN);
    e.bytes(name).u64(size).u32(entries.len() as u32);
    for entry in entries {
        entry.encode_into(&mut e);
    }
    out.write_all(&e.finish())
}

/// Reads back what [`spill_pack`] wrote to `f`, in one pass from its
/// start, showing each pack to `pack` and each of its entries to `chunk`.
fn read_spilled(
    f: &File,
    pack: &mut impl FnMut(&[u8; 32], u64, u32) -> Result<()>,
    chunk: &mut impl FnMut(&[u8; 32], &PackEntry) -> Result<()>,
) -> Result<()> {
    use std::io::{BufRead, Read, Seek};
    let tmp = std::env::temp_dir();
    let io = |e| RepoError::io("read", &tmp)(e);
    let bad = |e: DecodeError| io(std::io::Error::other(e.to_string()));
    let mut f = f;
    f.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    while !r.fill_buf().map_err(io)?.is_empty() {
        let mut head = [0u8; SPILL_HEAD];
        r.read_exact(&mut head).map_err(io)?;
        let mut d = Dec::new(&head);
        let name = d.array::<32>("pack").map_err(bad)?;
        let size = d.u64("size").map_err(bad)?;
        let count = d.u32("count").map_err(bad)?;
        pack(&name, size, count)?;
        let mut buf = [0u8; pack::ENTRY_LEN];
        for _ in 0..count {
            r.read_exact(&mut buf).map_err(io)?;
            let e = PackEntry::decode_from(&mut Dec::new(&buf)).map_err(bad)?;
            chunk(&name, &e)?;
        }
    }
    Ok(())
}

/// What a sync found that it could not take in.
#[derive(Debug, Default, Clone)]
pub(crate) struct SyncReport {
    /// Objects that could not be read or decoded, with the reason.
    pub damaged: Vec<(String, String)>,
}

/// An open index.
pub(crate) struct Index {
    db: redb::Database,
    path: PathBuf,
    /// Lists and manifests are kept sealed as their objects are, so an
    /// encrypted repository's index holds no plaintext either.
    crypto: Crypto,
    _lock: File,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

fn lock_index(dir: &Path) -> Result<File> {
    let path = dir.join("index.lock");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(RepoError::io("open", &path))?;
    f.lock().map_err(RepoError::io("lock", &path))?;
    Ok(f)
}

impl Index {
    /// Opens (creating if `create`) the index in `dir`, verifying every
    /// page. A damaged file is an [`RepoError::Index`] error.
    pub(crate) fn open(dir: &Path, mode: Open, crypto: &Crypto) -> Result<Index> {
        let create = mode == Open::Create;
        let lock = lock_index(dir)?;
        let path = dir.join(INDEX_FILE);
        let err = |reason: String| RepoError::Index {
            path: path.clone(),
            reason,
        };
        if !create && !path.exists() {
            return Err(err("missing".into()));
        }
        let mut b = redb::Builder::new();
        b.set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(mode != Open::Fast);
        let db = guarded(&path, || b.create(&path).map_err(|e| err(e.to_string())))?;
        let ix = Index {
            db,
            path,
            crypto: crypto.clone(),
            _lock: lock,
        };
        if create {
            let tx = ix.db.begin_write().map_err(ix.e())?;
            for t in [CHUNKS, PACKS, LISTS, SNAPSHOTS] {
                tx.open_table(t).map_err(ix.e())?;
            }
            tx.commit().map_err(ix.e())?;
        }
        Ok(ix)
    }

    /// Removes the index file (for a rebuild).
    pub(crate) fn remove(dir: &Path) -> Result<()> {
        let _lock = lock_index(dir)?;
        let path = dir.join(INDEX_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::io("remove", path)(e)),
        }
    }

    fn e<E: Into<redb::Error>>(&self) -> impl Fn(E) -> RepoError + '_ {
        move |e| RepoError::Index {
            path: self.path.clone(),
            reason: e.into().to_string(),
        }
    }

    fn bad(&self, what: &str, id: &[u8; 32], e: impl std::fmt::Display) -> RepoError {
        RepoError::Index {
            path: self.path.clone(),
            reason: format!("{what} {}: {e}", hex(id)),
        }
    }

    /// Every key of a table.
    fn keys(&self, t: TableDefinition<[u8; 32], &[u8]>) -> Result<Vec<[u8; 32]>> {
        guarded(&self.path, || self.keys_unguarded(t))
    }

    fn keys_unguarded(&self, t: TableDefinition<[u8; 32], &[u8]>) -> Result<Vec<[u8; 32]>> {
        let tx = self.db.begin_read().map_err(self.e())?;
        let table = tx.open_table(t).map_err(self.e())?;
        let mut out = Vec::new();
        for r in table.iter().map_err(self.e())? {
            let (k, _) = r.map_err(self.e())?;
            out.push(k.value());
        }
        Ok(out)
    }

    /// Every entry of a table, decoded by `f`.
    fn entries<T>(
        &self,
        t: TableDefinition<[u8; 32], &[u8]>,
        f: impl FnMut(&[u8; 32], &[u8]) -> Result<Option<T>>,
    ) -> Result<Vec<([u8; 32], T)>> {
        guarded(&self.path, || self.entries_unguarded(t, f))
    }

    fn entries_unguarded<T>(
        &self,
        t: TableDefinition<[u8; 32], &[u8]>,
        mut f: impl FnMut(&[u8; 32], &[u8]) -> Result<Option<T>>,
    ) -> Result<Vec<([u8; 32], T)>> {
        let mut out = Vec::new();
        self.scan_unguarded(t, |k, v| {
            if let Some(x) = f(k, v)? {
                out.push((*k, x));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Shows every entry of a table to `f`, in key order, holding none.
    fn scan_unguarded(
        &self,
        t: TableDefinition<[u8; 32], &[u8]>,
        mut f: impl FnMut(&[u8; 32], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let tx = self.db.begin_read().map_err(self.e())?;
        let table = tx.open_table(t).map_err(self.e())?;
        for r in table.iter().map_err(self.e())? {
            let (k, v) = r.map_err(self.e())?;
            f(&k.value(), v.value())?;
        }
        Ok(())
    }

    /// The IDs of every indexed chunk, sorted (for a binary search: 32
    /// bytes an ID, a third of what a hash set of them takes).
    pub(crate) fn chunk_ids(&self) -> Result<Vec<[u8; 32]>> {
        let mut ids = self.keys(CHUNKS)?;
        // redb iterates in key order already.
        if !ids.is_sorted() {
            ids.sort_unstable();
        }
        Ok(ids)
    }

    /// The IDs of every indexed list.
    pub(crate) fn list_ids(&self) -> Result<HashSet<[u8; 32]>> {
        Ok(self.keys(LISTS)?.into_iter().collect())
    }

    /// Every chunk location.
    pub(crate) fn locations(&self) -> Result<HashMap<[u8; 32], Loc>> {
        let v = self.entries(CHUNKS, |k, v| {
            Loc::decode(v)
                .map(Some)
                .map_err(|e| self.bad("chunk", k, e))
        })?;
        Ok(v.into_iter().collect())
    }

    /// Shows every chunk location to `f`, in chunk ID order, holding none
    /// of them (a check of a large repository walks them more than once
    /// rather than keep a table of them all).
    pub(crate) fn for_each_location(
        &self,
        mut f: impl FnMut(&[u8; 32], Loc) -> Result<()>,
    ) -> Result<()> {
        guarded(&self.path, || {
            self.scan_unguarded(CHUNKS, |k, v| {
                f(k, Loc::decode(v).map_err(|e| self.bad("chunk", k, e))?)
            })
        })
    }

    /// The IDs of every indexed list and manifest.
    pub(crate) fn object_ids(&self) -> Result<Vec<[u8; 32]>> {
        let mut ids = self.keys(LISTS)?;
        ids.extend(self.keys(SNAPSHOTS)?);
        Ok(ids)
    }

    /// The encoding of one manifest, if indexed (for checks).
    pub(crate) fn snapshot_plain(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        self.plain(SNAPSHOTS, "snapshot", keys::SNAPSHOTS, id)
    }

    /// The encoding of one list, if indexed (for checks).
    pub(crate) fn list_plain(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        self.plain(LISTS, "list", keys::LISTS, id)
    }

    fn plain(
        &self,
        t: TableDefinition<[u8; 32], &[u8]>,
        what: &str,
        prefix: &str,
        id: &[u8; 32],
    ) -> Result<Option<Vec<u8>>> {
        guarded(&self.path, || {
            let tx = self.db.begin_read().map_err(self.e())?;
            let table = tx.open_table(t).map_err(self.e())?;
            let Some(v) = table.get(id).map_err(self.e())? else {
                return Ok(None);
            };
            self.unseal(what, prefix, id, v.value()).map(Some)
        })
    }

    /// A read transaction for point lookups of chunks and packs (a restore
    /// looks up the few chunks its pack trailers do not predict).
    pub(crate) fn lookup(&self) -> Result<Lookup<'_>> {
        guarded(&self.path, || {
            let tx = self.db.begin_read().map_err(self.e())?;
            Ok(Lookup {
                ix: self,
                chunks: tx.open_table(CHUNKS).map_err(self.e())?,
                packs: tx.open_table(PACKS).map_err(self.e())?,
            })
        })
    }

    /// Every pack: name -> (size, chunk count).
    pub(crate) fn packs(&self) -> Result<BTreeMap<[u8; 32], (u64, u32)>> {
        let v = self.entries(PACKS, |k, v| {
            let mut d = Dec::new(v);
            let r = (|| Ok((d.u64("size")?, d.u32("count")?, d.finish("pack")?)))();
            r.map(|(s, c, ())| Some((s, c)))
                .map_err(|e: DecodeError| self.bad("pack", k, e))
        })?;
        Ok(v.into_iter().collect())
    }

    /// Opens a sealed list or manifest value.
    fn unseal(&self, what: &str, prefix: &str, k: &[u8; 32], v: &[u8]) -> Result<Vec<u8>> {
        Ok(self.unseal_in_place(what, prefix, k, v)?.into_owned())
    }

    /// As `unseal`, borrowing `v` when it is not encrypted (a list is
    /// decoded from it without a copy of its bytes).
    fn unseal_in_place<'v>(
        &self,
        what: &str,
        prefix: &str,
        k: &[u8; 32],
        v: &'v [u8],
    ) -> Result<std::borrow::Cow<'v, [u8]>> {
        let name = || format!("index {what} {}", hex(k));
        self.crypto
            .open(v, prefix.as_bytes(), &name)
            .map_err(|e| self.bad(what, k, e))
    }

    /// Every manifest, decoded.
    pub(crate) fn snapshots(&self) -> Result<Vec<([u8; 32], Manifest)>> {
        self.entries(SNAPSHOTS, |k, v| {
            let plain = self.unseal("snapshot", keys::SNAPSHOTS, k, v)?;
            if &self.crypto.id(&plain) != k {
                return Err(self.bad("snapshot", k, "does not match its ID"));
            }
            Manifest::decode(&plain)
                .map(Some)
                .map_err(|e| self.bad("snapshot", k, e))
        })
    }

    /// A list, decoded and checked against its ID.
    pub(crate) fn list(&self, id: &[u8; 32]) -> Result<Option<ChunkList>> {
        guarded(&self.path, || self.list_unguarded(id))
    }

    fn list_unguarded(&self, id: &[u8; 32]) -> Result<Option<ChunkList>> {
        let tx = self.db.begin_read().map_err(self.e())?;
        let table = tx.open_table(LISTS).map_err(self.e())?;
        let Some(v) = table.get(id).map_err(self.e())? else {
            return Ok(None);
        };
        let plain = self.unseal_in_place("list", keys::LISTS, id, v.value())?;
        if &self.crypto.id(&plain) != id {
            return Err(self.bad("list", id, "does not match its ID"));
        }
        ChunkList::decode(&plain)
            .map(Some)
            .map_err(|e| self.bad("list", id, e))
    }

    /// The IDs of the list a snapshot needs, resolved against its base.
    pub(crate) fn resolve(&self, list_id: &[u8; 32]) -> Result<Vec<[u8; 32]>> {
        let missing = |id: &[u8; 32]| RepoError::damaged(format!("list {}", hex(id)), "missing");
        let list = self.list(list_id)?.ok_or_else(|| missing(list_id))?;
        let base = match list.base() {
            Some(b) => match self.list(&b)?.ok_or_else(|| missing(&b))? {
                ChunkList::Full(ids) => Some(ids),
                ChunkList::Delta { .. } => {
                    return Err(RepoError::damaged(
                        format!("list {}", hex(&b)),
                        "the base of a delta is itself a delta",
                    ));
                }
            },
            None => None,
        };
        list.into_ids(base.as_deref())
            .map_err(|e| RepoError::damaged(format!("list {}", hex(list_id)), e))
    }

    /// Rewrites the file without the space earlier transactions freed
    /// (redb grows its file in large steps and never shrinks it).
    pub(crate) fn compact(&mut self) -> Result<()> {
        let path = self.path.clone();
        guarded(&path, || {
            self.db.compact().map(|_| ()).map_err(|e| RepoError::Index {
                path: self.path.clone(),
                reason: e.to_string(),
            })
        })
    }

    /// Applies `u` in one durable transaction.
    pub(crate) fn apply(&self, u: &Update) -> Result<()> {
        guarded(&self.path, || self.apply_unguarded(u))
    }

    fn apply_unguarded(&self, u: &Update) -> Result<()> {
        let tx = self.db.begin_write().map_err(self.e())?;
        {
            let mut chunks = tx.open_table(CHUNKS).map_err(self.e())?;
            let mut packs = tx.open_table(PACKS).map_err(self.e())?;
            let mut lists = tx.open_table(LISTS).map_err(self.e())?;
            let mut snaps = tx.open_table(SNAPSHOTS).map_err(self.e())?;
            for id in &u.remove_chunks {
                chunks.remove(id).map_err(self.e())?;
            }
            for p in &u.remove_packs {
                packs.remove(p).map_err(self.e())?;
            }
            for l in &u.remove_lists {
                lists.remove(l).map_err(self.e())?;
            }
            for s in &u.remove_snapshots {
                snaps.remove(s).map_err(self.e())?;
            }
            let mut add_pack = |name: &[u8; 32], size: u64, count: u32| -> Result<()> {
                let mut v = Enc::with_capacity(12);
                v.u64(size).u32(count);
                packs
                    .insert(name, v.finish().as_slice())
                    .map_err(self.e())?;
                Ok(())
            };
            let mut add_chunk = |name: &[u8; 32], e: &PackEntry| -> Result<()> {
                let present = !u.repoint && chunks.get(&e.id).map_err(self.e())?.is_some();
                if !present {
                    chunks
                        .insert(&e.id, Loc::of(name, e).encode().as_slice())
                        .map_err(self.e())?;
                }
                Ok(())
            };
            for (name, size, entries) in &u.packs {
                add_pack(name, *size, entries.len() as u32)?;
                for e in entries {
                    add_chunk(name, e)?;
                }
            }
            if let Some(f) = &u.packs_file {
                read_spilled(f, &mut add_pack, &mut add_chunk)?;
            }
            for (id, plain) in &u.lists {
                let sealed = self.crypto.seal_ref(plain, keys::LISTS.as_bytes())?;
                lists.insert(id, &*sealed).map_err(self.e())?;
            }
            for (id, plain) in &u.snapshots {
                let sealed = self
                    .crypto
                    .seal(plain.clone(), keys::SNAPSHOTS.as_bytes())?;
                snaps.insert(id, sealed.as_slice()).map_err(self.e())?;
            }
        }
        tx.commit().map_err(self.e())?;
        super::backend::crash_point();
        Ok(())
    }

    /// What to drop for the packs in `gone` (no longer in the store): the
    /// chunk entries that point into them, and the indexed packs that hold
    /// a copy of a chunk dropped (more chunks than point at them).
    fn drop_gone(
        &self,
        gone: &HashSet<[u8; 32]>,
        indexed: &BTreeMap<[u8; 32], (u64, u32)>,
        update: &mut Update,
    ) -> Result<HashSet<[u8; 32]>> {
        if gone.is_empty() {
            return Ok(HashSet::new());
        }
        let mut pointing: HashMap<[u8; 32], u64> = HashMap::new();
        for (id, l) in self.locations()? {
            if gone.contains(&l.pack) {
                update.remove_chunks.push(id);
            } else {
                *pointing.entry(l.pack).or_default() += 1;
            }
        }
        update.remove_packs.extend(gone.iter().copied());
        if update.remove_chunks.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(indexed
            .iter()
            .filter(|(p, (_, count))| {
                !gone.contains(*p) && pointing.get(*p).copied().unwrap_or(0) < u64::from(*count)
            })
            .map(|(p, _)| *p)
            .collect())
    }

    /// Brings the index up to date with the objects in `backend`.
    pub(crate) fn sync(&self, backend: &dyn Backend, crypto: &Crypto) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let io = |op, key: &str| RepoError::io(op, PathBuf::from(backend.location()).join(key));

        // Packs.
        let listed = backend.list(keys::PACKS).map_err(io("list", keys::PACKS))?;
        let in_store: BTreeMap<[u8; 32], u64> = listed
            .iter()
            .filter_map(|(k, size)| Some((keys::parse(keys::PACKS, k)?, *size)))
            .collect();
        let indexed = self.packs()?;
        let gone: HashSet<[u8; 32]> = indexed
            .keys()
            .filter(|p| !in_store.contains_key(*p))
            .copied()
            .collect();
        // A chunk whose pack is gone (a prune elsewhere moved it: this
        // index is then another machine's cache) may have another copy in
        // a pack indexed here without it, typically the very pack that
        // prune wrote: those packs' trailers are read again so that their
        // chunks are indexed, instead of being missing here. One
        // transaction drops and adds, so that a crash in between cannot
        // leave the chunks dropped and the packs that hold them indexed.
        let mut update = Update::default();
        let again = self.drop_gone(&gone, &indexed, &mut update)?;
        for (name, size) in &in_store {
            if indexed.contains_key(name) && !again.contains(name) {
                continue;
            }
            match read_pack_entries(backend, crypto, name, *size) {
                Ok(entries) => update.packs.push((*name, *size, entries)),
                Err(e) => report.damaged.push((keys::pack(name), e.to_string())),
            }
        }

        // Lists and manifests.
        for (prefix, table) in [(keys::LISTS, LISTS), (keys::SNAPSHOTS, SNAPSHOTS)] {
            let in_store: BTreeMap<[u8; 32], u64> = if prefix == keys::SNAPSHOTS {
                // Forgotten snapshots are gone; missing ones are reported.
                let held = super::held::list(backend).map_err(io("list", prefix))?;
                for id in &held.missing {
                    let what = keys::snapshot(id);
                    report.damaged.push((what, super::held::MISSING.into()));
                }
                held.present
            } else {
                let listed = backend.list(prefix).map_err(io("list", prefix))?;
                listed
                    .iter()
                    .filter_map(|(k, size)| Some((keys::parse(prefix, k)?, *size)))
                    .collect()
            };
            let indexed: HashSet<[u8; 32]> = self.keys(table)?.into_iter().collect();
            for id in indexed.iter().filter(|id| !in_store.contains_key(*id)) {
                if prefix == keys::LISTS {
                    update.remove_lists.push(*id);
                } else {
                    update.remove_snapshots.push(*id);
                }
            }
            for (id, size) in in_store.iter().filter(|(id, _)| !indexed.contains(*id)) {
                let key = format!("{prefix}{}", hex(id));
                match read_object(backend, crypto, prefix, id, *size) {
                    Ok(plain) if prefix == keys::LISTS => update.lists.push((*id, plain)),
                    Ok(plain) => update.snapshots.push((*id, plain)),
                    Err(e) => report.damaged.push((key, e.to_string())),
                }
            }
        }
        if !update.packs.is_empty()
            || !update.remove_packs.is_empty()
            || !update.lists.is_empty()
            || !update.snapshots.is_empty()
            || !update.remove_lists.is_empty()
            || !update.remove_snapshots.is_empty()
        {
            self.apply(&update)?;
        }
        Ok(report)
    }
}

/// Point lookups in one read transaction of an [`Index`].
pub(crate) struct Lookup<'a> {
    ix: &'a Index,
    chunks: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    packs: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
}

impl Lookup<'_> {
    /// Where one chunk is stored, if it is indexed.
    pub(crate) fn location(&self, id: &[u8; 32]) -> Result<Option<Loc>> {
        let ix = self.ix;
        guarded(&ix.path, || {
            let Some(v) = self.chunks.get(id).map_err(ix.e())? else {
                return Ok(None);
            };
            Loc::decode(v.value())
                .map(Some)
                .map_err(|e| ix.bad("chunk", id, e))
        })
    }

    /// The size of one indexed pack.
    pub(crate) fn pack_size(&self, name: &[u8; 32]) -> Result<Option<u64>> {
        let ix = self.ix;
        guarded(&ix.path, || {
            let Some(v) = self.packs.get(name).map_err(ix.e())? else {
                return Ok(None);
            };
            Dec::new(v.value())
                .u64("size")
                .map(Some)
                .map_err(|e| ix.bad("pack", name, e))
        })
    }
}

/// Reads and decodes a pack's trailer (footer, then trailer).
pub(crate) fn read_pack_entries(
    backend: &dyn Backend,
    crypto: &Crypto,
    name: &[u8; 32],
    size: u64,
) -> Result<Vec<PackEntry>> {
    let key = keys::pack(name);
    let what = format!("pack {}", hex(name));
    let path = || PathBuf::from(backend.location()).join(&key);
    if size < FOOTER_LEN as u64 {
        return Err(RepoError::damaged(what, "too short for a pack"));
    }
    let mut footer_bytes = [0u8; FOOTER_LEN];
    backend
        .read_at(&key, size - FOOTER_LEN as u64, &mut footer_bytes)
        .map_err(|e| RepoError::io("read", path())(e))?;
    let footer = pack::parse_footer(&footer_bytes, size, &what)?;
    // parse_footer checked that the trailer lies inside the pack.
    let mut trailer = vec![0u8; footer.trailer_len as usize];
    backend
        .read_at(&key, footer.trailer_start, &mut trailer)
        .map_err(|e| RepoError::io("read", path())(e))?;
    pack::decode_trailer(crypto, &footer, &trailer, &what)
}

/// Reads a list or manifest object, opens it, checks that it hashes to its
/// name and decodes; returns the plaintext.
pub(crate) fn read_object(
    backend: &dyn Backend,
    crypto: &Crypto,
    prefix: &str,
    id: &[u8; 32],
    size: u64,
) -> Result<Vec<u8>> {
    let key = format!("{prefix}{}", hex(id));
    let what = key.clone();
    if size > MAX_OBJECT {
        return Err(RepoError::damaged(
            what,
            format!("{size} bytes is too long"),
        ));
    }
    let stored = backend
        .read(&key, MAX_OBJECT)
        .map_err(|e| RepoError::io("read", PathBuf::from(backend.location()).join(&key))(e))?;
    let name = || what.clone();
    let plain = crypto.open(&stored, prefix.as_bytes(), &name)?.into_owned();
    if &crypto.id(&plain) != id {
        return Err(RepoError::damaged(what, "content does not match its name"));
    }
    let decoded = if prefix == keys::LISTS {
        ChunkList::decode(&plain).map(|_| ())
    } else {
        Manifest::decode(&plain).map(|_| ())
    };
    decoded.map_err(|e| RepoError::damaged(what, e.to_string()))?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs spilled to a file go into the index as packs given in memory
    /// do: each pack with its size and count, each chunk at its first
    /// location (a chunk in two packs keeps the one indexed first).
    #[test]
    fn spilled_packs_are_indexed_as_packs_in_memory() {
        let entry = |id: u8, offset: u64| PackEntry {
            id: [id; 32],
            offset,
            stored_len: 100 + u32::from(id),
            raw_len: 4096,
            codec: u8::from(id.is_multiple_of(2)),
        };
        let packs = vec![
            (
                [1u8; 32],
                1000u64,
                vec![entry(1, 8), entry(2, 108), entry(3, 208)],
            ),
            ([2u8; 32], 2000u64, vec![entry(4, 8), entry(2, 300)]),
            ([3u8; 32], 60u64, Vec::new()),
        ];
        let mut file = tempfile::tempfile().expect("tempfile");
        for (name, size, entries) in &packs {
            spill_pack(&mut file, name, *size, entries).expect("spill");
        }
        let crypto = Crypto::plain();
        let mut got = Vec::new();
        for (i, update) in [
            Update {
                packs: packs.clone(),
                ..Update::default()
            },
            Update {
                packs_file: Some(file),
                ..Update::default()
            },
        ]
        .into_iter()
        .enumerate()
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let ix = Index::open(dir.path(), Open::Create, &crypto).expect("index");
            ix.apply(&update).expect("apply");
            let mut locs: Vec<_> = ix.locations().expect("locations").into_iter().collect();
            locs.sort_by_key(|(id, _)| *id);
            got.push((ix.packs().expect("packs"), locs));
            assert_eq!(got[i].0.len(), 3);
            assert_eq!(got[i].1.len(), 4);
        }
        assert_eq!(got[0], got[1]);
        let (indexed, locs) = &got[1];
        assert_eq!(indexed.get(&[2; 32]), Some(&(2000, 2)));
        assert_eq!(locs[1].1, Loc::of(&[1; 32], &entry(2, 108)));
    }
}
