//! `backup check`: is everything there, sound, and does the index agree?
//!
//! * the index opens (redb verifies every page checksum) and agrees with
//!   the objects: every indexed chunk is where its pack's trailer says,
//!   every stored chunk is indexed, and the index's copies of lists and
//!   manifests are byte for byte the objects;
//! * every pack's footer and trailer are sound (with `read_data`: every
//!   pack hashes to its name and every chunk decodes and hashes to its ID);
//! * every list and manifest hashes to its name and decodes, and every
//!   chunk a snapshot needs is available: in the pack the index names, and
//!   within that pack's length (a truncated pack is found without reading
//!   data);
//! * every snapshot the repository recorded as pushed still has its
//!   manifest, unless a forget removed it (see `held.rs`);
//! * with `read_data`, every snapshot is reassembled (streamed into an
//!   unnamed temporary file, so memory stays bounded whatever its size)
//!   and must pass `snapshot verify`'s structural and etcd-level checks, as
//!   a push requires.
//!
//! Each problem is a line; the snapshots that cannot be restored as the
//! repository stands are named.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::backend::keys;
use super::chunk::Coder;
use super::codec::hex;
use super::error::{RepoError, Result};
use super::held;
use super::index::{self, Loc, Open, read_object, read_pack_entries};
use super::list::ChunkList;
use super::manifest::Manifest;
use super::pack::{self, PackEntry};
use super::reader::Plan;
use super::repository::{Repository, SnapshotId};
use crate::etcd::version::TargetChoice;
use crate::snapshot::stream::{StreamError, stream_into};
use crate::snapshot::{SnapshotFile, VerifyProblem};

/// Largest pack read whole (by `check --read-data` and by prune's repacking).
pub(crate) const MAX_PACK: u64 = 1 << 30;

/// What to check.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Read every pack in full: hash it, and decode and verify every chunk.
    pub read_data: bool,
}

impl CheckOptions {
    /// Read every pack in full: hash it, and decode and verify every chunk.
    pub fn with_read_data(mut self, read: bool) -> Self {
        self.read_data = read;
        self
    }
}

/// One problem a check found. Its `Display` is the line `backup check`
/// prints after `error: `.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CheckProblem {
    /// A repository error met while checking: the index would not open or
    /// read, or a list or manifest object would not read or decode.
    Repo(Arc<RepoError>),
    /// The repository recorded a snapshot's push (under `known/`) and no
    /// forget removed it, but its manifest is gone.
    ManifestMissing {
        /// The snapshot.
        snapshot: SnapshotId,
    },
    /// A snapshot's chunk list is missing or damaged, or is a delta whose
    /// base list is.
    List {
        /// The snapshot.
        snapshot: SnapshotId,
        /// What is wrong with the list.
        reason: String,
    },
    /// A snapshot's list holds another number of chunks than its manifest
    /// records.
    ChunkCount {
        /// The snapshot.
        snapshot: SnapshotId,
        /// Chunks in the list.
        listed: usize,
        /// Chunks the manifest records.
        recorded: u64,
    },
    /// Chunks a snapshot needs are missing or damaged.
    MissingChunks {
        /// The snapshot.
        snapshot: SnapshotId,
        /// How many.
        count: usize,
        /// The first one (in list order).
        first: [u8; 32],
    },
    /// The reassembled snapshot fails `snapshot verify`'s checks
    /// (`read_data`).
    Unsound {
        /// The snapshot.
        snapshot: SnapshotId,
        /// What verify found.
        problem: VerifyProblem,
    },
    /// The reassembled snapshot's body is not the one the manifest records
    /// (`read_data`).
    BodyDigest {
        /// The snapshot.
        snapshot: SnapshotId,
        /// SHA-256 of the reassembled body.
        found: [u8; 32],
        /// SHA-256 the manifest records.
        recorded: [u8; 32],
    },
    /// Reassembling a snapshot failed (`read_data`).
    Reassembly {
        /// The snapshot.
        snapshot: SnapshotId,
        /// Why.
        source: Arc<RepoError>,
    },
    /// Reading a snapshot's chunks back failed (`read_data`).
    ReassemblyRead {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// A pack is longer than a pack can be (`read_data`).
    PackTooLong {
        /// The pack.
        pack: [u8; 32],
        /// Its length.
        size: u64,
    },
    /// A pack could not be read (`read_data`).
    PackRead {
        /// The pack.
        pack: [u8; 32],
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// A pack's bytes do not hash to its name (`read_data`).
    PackHash {
        /// The pack.
        pack: [u8; 32],
    },
    /// A pack's trailer (the list of its chunks) is damaged, so the index
    /// cannot be rebuilt from the pack.
    PackTrailer {
        /// Why (it names the pack).
        source: Arc<RepoError>,
        /// Whether the pack's chunks were read and verified
        /// (`read_data`).
        read_data: bool,
    },
    /// A chunk copy in a pack does not decode (`read_data`).
    ChunkDamaged {
        /// The pack.
        pack: [u8; 32],
        /// The copy's offset in the pack.
        offset: u64,
        /// Why.
        source: Arc<RepoError>,
    },
    /// The index lists a pack the repository does not hold.
    IndexPackMissing {
        /// The pack.
        pack: [u8; 32],
    },
    /// The index records another length for a pack.
    IndexPackSize {
        /// The pack.
        pack: [u8; 32],
        /// Its length.
        size: u64,
        /// The length the index records.
        indexed: u64,
    },
    /// The index records another number of chunks for a pack.
    IndexPackCount {
        /// The pack.
        pack: [u8; 32],
        /// Chunks its trailer lists.
        chunks: usize,
        /// Chunks the index records.
        indexed: u32,
    },
    /// A chunk is not where the index places it.
    IndexChunkMisplaced {
        /// The chunk.
        chunk: [u8; 32],
        /// The pack the index names.
        pack: [u8; 32],
        /// The offset the index names.
        offset: u64,
    },
    /// A chunk is stored but the index does not list it.
    ChunkNotIndexed {
        /// The chunk.
        chunk: [u8; 32],
    },
    /// The index's copy of a list differs from the list object.
    IndexListDiffers {
        /// The list.
        list: [u8; 32],
    },
    /// The index's copy of a manifest differs from the manifest object.
    IndexSnapshotDiffers {
        /// The snapshot.
        snapshot: SnapshotId,
    },
    /// The index holds a list or manifest whose object is missing or
    /// damaged.
    IndexedObjectMissing {
        /// The list or snapshot ID.
        id: [u8; 32],
    },
    /// A segment of a snapshot's recorded changes does not read.
    Delta {
        /// The snapshot.
        snapshot: SnapshotId,
        /// Why (it names the segment).
        source: Arc<RepoError>,
    },
    /// No segment covers some revisions after a snapshot's.
    DeltaGap {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The first revision not covered.
        from: i64,
        /// The last revision not covered.
        to: i64,
    },
    /// A segment overlaps an earlier one.
    DeltaOverlap {
        /// The snapshot.
        snapshot: SnapshotId,
        /// The segment (its key in the repository).
        segment: String,
    },
}

impl std::fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckProblem::Repo(e) => write!(f, "{e}"),
            CheckProblem::ManifestMissing { snapshot } => {
                write!(f, "snapshot {snapshot}: {}", held::MISSING)
            }
            CheckProblem::List { snapshot, reason } => write!(f, "snapshot {snapshot}: {reason}"),
            CheckProblem::ChunkCount {
                snapshot,
                listed,
                recorded,
            } => write!(
                f,
                "snapshot {snapshot}: its list has {listed} chunks, the manifest says {recorded}"
            ),
            CheckProblem::MissingChunks {
                snapshot,
                count,
                first,
            } => write!(
                f,
                "snapshot {snapshot}: {count} of its chunks are missing or damaged (first: {})",
                hex(first)
            ),
            CheckProblem::Unsound { snapshot, problem } => {
                write!(f, "snapshot {snapshot}: {problem}")
            }
            CheckProblem::BodyDigest {
                snapshot,
                found,
                recorded,
            } => write!(
                f,
                "snapshot {snapshot}: the reassembled bbolt image has SHA-256 {}, the manifest records {}",
                hex(found),
                hex(recorded)
            ),
            CheckProblem::Reassembly { snapshot, source } => {
                write!(f, "snapshot {snapshot}: {source}")
            }
            CheckProblem::ReassemblyRead { snapshot, source } => {
                write!(f, "snapshot {snapshot}: {source}")
            }
            CheckProblem::PackTooLong { pack, size } => {
                write!(f, "pack {}: {size} bytes is too long", hex(pack))
            }
            CheckProblem::PackRead { pack, source } => {
                write!(f, "pack {}: read: {source}", hex(pack))
            }
            CheckProblem::PackHash { pack } => write!(
                f,
                "pack {}: content does not match its name (damaged)",
                hex(pack)
            ),
            CheckProblem::PackTrailer {
                source,
                read_data: true,
            } => write!(f, "{source} (the index cannot be rebuilt from this pack)"),
            CheckProblem::PackTrailer {
                source,
                read_data: false,
            } => write!(
                f,
                "{source} (the index cannot be rebuilt from this pack; its chunks were not read)"
            ),
            CheckProblem::ChunkDamaged {
                pack,
                offset,
                source,
            } => write!(f, "pack {}: at offset {offset}: {source}", hex(pack)),
            CheckProblem::IndexPackMissing { pack } => {
                write!(f, "index: pack {} is not in the repository", hex(pack))
            }
            CheckProblem::IndexPackSize {
                pack,
                size,
                indexed,
            } => write!(
                f,
                "index: pack {} has {size} bytes, the index says {indexed}",
                hex(pack)
            ),
            CheckProblem::IndexPackCount {
                pack,
                chunks,
                indexed,
            } => write!(
                f,
                "index: pack {} holds {chunks} chunks, the index says {indexed}",
                hex(pack)
            ),
            CheckProblem::IndexChunkMisplaced {
                chunk,
                pack,
                offset,
            } => write!(
                f,
                "index: chunk {} is not where the index says (pack {} offset {offset})",
                hex(chunk),
                hex(pack)
            ),
            CheckProblem::ChunkNotIndexed { chunk } => {
                write!(f, "index: chunk {} is stored but not indexed", hex(chunk))
            }
            CheckProblem::IndexListDiffers { list } => {
                write!(f, "index: list {} differs from the object", hex(list))
            }
            CheckProblem::IndexSnapshotDiffers { snapshot } => {
                write!(f, "index: snapshot {snapshot} differs from the object")
            }
            CheckProblem::IndexedObjectMissing { id } => write!(
                f,
                "index: {} is indexed but its object is missing or damaged",
                hex(id)
            ),
            CheckProblem::Delta { snapshot, source } => {
                write!(f, "snapshot {snapshot}: delta {source}")
            }
            CheckProblem::DeltaGap { snapshot, from, to } => write!(
                f,
                "snapshot {snapshot}: its recorded changes have a hole: no segment covers revisions {from}..={to}"
            ),
            CheckProblem::DeltaOverlap { snapshot, segment } => write!(
                f,
                "snapshot {snapshot}: delta {segment} overlaps an earlier segment"
            ),
        }
    }
}

impl CheckProblem {
    fn repo(e: RepoError) -> CheckProblem {
        CheckProblem::Repo(Arc::new(e))
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// The problems, most fundamental first, each once.
    pub problems: Vec<CheckProblem>,
    /// Snapshots that cannot be restored as the repository stands.
    pub affected: Vec<SnapshotId>,
    /// Things worth knowing that are not damage (e.g. packs no snapshot
    /// uses, left by an interrupted push: prune removes them).
    pub notes: Vec<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs checked.
    pub packs: usize,
    /// Distinct chunks stored.
    pub chunks: usize,
    /// Bytes read from packs.
    pub bytes_read: u64,
    /// Segments of recorded changes checked (see [`Repository::changes`]).
    pub deltas: usize,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Bytes of a pack `read_data` reads at a time: it hashes them and decodes
/// the chunks they hold as they pass, never holding a whole pack.
const PACK_WINDOW: u64 = 4 << 20;

/// The packs as their trailers describe them, held against the index. What
/// is kept is per pack, or per damaged, duplicated or unindexed chunk, not
/// per stored chunk: the index is walked again rather than copied (a
/// repository of 8 GB snapshots has millions of chunks).
#[derive(Default)]
struct Stored {
    /// Packs whose trailer could not be read, or whose bytes do not match
    /// their name.
    bad_packs: HashSet<[u8; 32]>,
    /// Chunk copies found damaged by `read_data`.
    bad_copies: HashSet<([u8; 32], [u8; 32])>,
    /// Pack sizes.
    sizes: BTreeMap<[u8; 32], u64>,
    /// Chunk copies per pack (what the pack's trailer lists).
    entries: HashMap<[u8; 32], usize>,
    /// The copies that are not the one the index points to (a chunk
    /// stored twice, one not indexed, or every copy when there are no
    /// locations to compare with): chunk -> packs.
    extra: HashMap<[u8; 32], Vec<[u8; 32]>>,
    /// How many of the index's locations a pack trailer matched.
    matched: usize,
    /// The packs whose trailer matched fewer of the index's locations than
    /// point into them: the chunks it did match.
    partial: HashMap<[u8; 32], HashSet<[u8; 32]>>,
    /// "stored but not indexed" problems, in the order found.
    unindexed: Vec<CheckProblem>,
}

/// The index's chunk locations, looked up one at a time.
struct Locs<'a> {
    ix: &'a index::Index,
    lookup: index::Lookup<'a>,
    /// How many of the index's locations point into each pack.
    per_pack: HashMap<[u8; 32], u64>,
    /// The chunks whose indexed copy is not where the index says, in a pack
    /// not otherwise damaged (filled by `compare_index`).
    unmatched: HashSet<[u8; 32]>,
}

impl<'a> Locs<'a> {
    fn open(ix: &'a index::Index) -> Result<Locs<'a>> {
        let mut per_pack: HashMap<[u8; 32], u64> = HashMap::new();
        ix.for_each_location(|_, l| {
            *per_pack.entry(l.pack).or_default() += 1;
            Ok(())
        })?;
        Ok(Locs {
            ix,
            lookup: ix.lookup()?,
            per_pack,
            unmatched: HashSet::new(),
        })
    }

    /// Whether the copy the index names for `c` was found where it says.
    fn matched(&self, c: &[u8; 32], l: &Loc, stored: &Stored) -> bool {
        stored.sizes.contains_key(&l.pack)
            && !stored.bad_packs.contains(&l.pack)
            && !self.unmatched.contains(c)
    }

    /// The index's locations in one pack, as trailer entries.
    fn entries_in(&self, pack: &[u8; 32]) -> Result<Vec<PackEntry>> {
        let mut out = Vec::new();
        self.ix.for_each_location(|c, l| {
            if l.pack == *pack {
                out.push(PackEntry {
                    id: *c,
                    offset: l.offset,
                    stored_len: l.stored_len,
                    raw_len: l.raw_len,
                    codec: l.codec,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl Repository {
    /// Checks the repository; see the module documentation.
    pub fn check(&self, opts: &CheckOptions) -> Result<CheckReport> {
        let _lock = self.lock(false)?;
        let mut r = CheckReport::default();
        let index = match self.index(Open::Checked) {
            // What the sync could not take in is found again below.
            Ok((ix, _)) => Some(ix),
            Err(e) => {
                r.problems.push(CheckProblem::repo(e));
                None
            }
        };
        let mut locs = match index.as_ref().map(Locs::open) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                r.problems.push(CheckProblem::repo(e));
                None
            }
            None => None,
        };
        let stored = self.check_packs(opts, locs.as_ref(), &mut r)?;
        let (lists, manifests, list_diffs) =
            self.check_objects(locs.as_ref().map(|l| l.ix), &mut r)?;

        // The index against the objects.
        if let Some(locs) = &mut locs
            && let Err(e) = compare_index(locs, &stored, list_diffs, &lists, &manifests, &mut r)
        {
            r.problems.push(CheckProblem::repo(e));
        }

        // Every snapshot's chunks, and the packs that hold them.
        let mut used_packs: HashSet<[u8; 32]> = HashSet::new();
        let mut base = None;
        for (id, m) in &manifests {
            r.snapshots += 1;
            let sid = SnapshotId(*id);
            let ids = match self.list_ids(&lists, &m.list, &mut base) {
                Ok(ids) if ids.len() as u64 == m.chunk_count => ids,
                Ok(ids) => {
                    r.problems.push(CheckProblem::ChunkCount {
                        snapshot: sid,
                        listed: ids.len(),
                        recorded: m.chunk_count,
                    });
                    r.affected.push(sid);
                    continue;
                }
                Err(e) => {
                    r.problems.push(CheckProblem::List {
                        snapshot: sid,
                        reason: e,
                    });
                    r.affected.push(sid);
                    continue;
                }
            };
            let mut bad = 0usize;
            let mut first_bad = None;
            for c in &ids {
                let extra = stored.extra.get(c);
                used_packs.extend(extra.into_iter().flatten().copied());
                let ok = match &locs {
                    // With an index, the copy it points to must be there
                    // and sound (a restore reads it through the index, so
                    // a damaged trailer alone does not stop one).
                    Some(locs) => {
                        let l = locs.lookup.location(c)?;
                        if let Some(l) = &l
                            && locs.matched(c, l, &stored)
                        {
                            used_packs.insert(l.pack);
                        }
                        l.is_some_and(|l| {
                            // Within the pack as long as it is now: a
                            // truncated pack's trailer is gone, and this
                            // is what still says which chunks went with it.
                            let end = l.offset.checked_add(u64::from(l.stored_len));
                            stored
                                .sizes
                                .get(&l.pack)
                                .is_some_and(|size| end.is_some_and(|e| e <= *size))
                                && !stored.bad_copies.contains(&(l.pack, *c))
                                && (stored.bad_packs.contains(&l.pack)
                                    || !locs.unmatched.contains(c))
                        })
                    }
                    None => extra.is_some_and(|v| {
                        v.iter().any(|p| {
                            !stored.bad_packs.contains(p) && !stored.bad_copies.contains(&(*p, *c))
                        })
                    }),
                };
                if !ok {
                    bad += 1;
                    first_bad.get_or_insert(*c);
                }
            }
            if let Some(c) = first_bad {
                r.problems.push(CheckProblem::MissingChunks {
                    snapshot: sid,
                    count: bad,
                    first: c,
                });
                r.affected.push(sid);
            } else if index.is_none() {
                // Data intact, but restores are refused until the index
                // is rebuilt.
                r.affected.push(sid);
            } else if let (true, Some(_)) = (opts.read_data, &locs) {
                let plan = Plan {
                    id: *id,
                    manifest: m.clone(),
                    ids,
                };
                let problems = self.verify_reassembled(&plan, index.as_ref());
                if !problems.is_empty() {
                    r.problems.extend(problems);
                    r.affected.push(sid);
                }
            }
        }
        drop(base);
        // Distinct chunks: the indexed copies found, and the chunks only
        // other copies hold.
        r.chunks = stored.matched;
        for c in stored.extra.keys() {
            let counted = match &locs {
                Some(locs) => locs
                    .lookup
                    .location(c)?
                    .is_some_and(|l| locs.matched(c, &l, &stored)),
                None => false,
            };
            if !counted {
                r.chunks += 1;
            }
        }
        let unused = stored
            .sizes
            .keys()
            .filter(|p| !stored.bad_packs.contains(*p) && !used_packs.contains(*p))
            .count();
        if unused > 0 {
            r.notes.push(format!(
                "{unused} pack(s) hold no chunk any snapshot uses (left by an interrupted push or forget; `backup prune` removes them)"
            ));
        }
        self.check_deltas(&manifests, &mut r)?;
        r.affected.sort();
        r.affected.dedup();
        let mut seen = HashSet::new();
        r.problems.retain(|p| seen.insert(p.to_string()));
        Ok(r)
    }

    fn check_packs(
        &self,
        opts: &CheckOptions,
        locs: Option<&Locs<'_>>,
        r: &mut CheckReport,
    ) -> Result<Stored> {
        let mut s = Stored::default();
        let listed = self
            .backend
            .list(keys::PACKS)
            .map_err(super::error::RepoError::io(
                "list",
                self.path_of(keys::PACKS),
            ))?;
        let mut coder = Coder::new(3);
        let mut out = Vec::new();
        for (key, size) in listed {
            let Some(name) = keys::parse(keys::PACKS, &key) else {
                r.notes.push(format!("{key}: not a pack name, ignored"));
                continue;
            };
            r.packs += 1;
            s.sizes.insert(name, size);
            let what = format!("pack {}", hex(&name));
            let entries = if opts.read_data {
                if size > MAX_PACK {
                    r.problems
                        .push(CheckProblem::PackTooLong { pack: name, size });
                    s.bad_packs.insert(name);
                    continue;
                }
                let trailer = self.pack_trailer(&key, &name, size, &what);
                // Verify what the index places in it when its trailer
                // cannot say.
                let placed = match (&trailer, locs) {
                    (Err(_), Some(locs)) => locs.entries_in(&name)?,
                    _ => Vec::new(),
                };
                let mut damaged = Vec::new();
                let scanned = self.scan_pack(
                    &key,
                    size,
                    trailer.as_deref().unwrap_or(&placed),
                    &mut coder,
                    &mut out,
                    |e, err| {
                        damaged.push((
                            CheckProblem::ChunkDamaged {
                                pack: name,
                                offset: e.offset,
                                source: Arc::new(err),
                            },
                            e.id,
                        ));
                    },
                );
                let hash = match scanned {
                    Ok(h) => h,
                    Err(e) => {
                        r.problems.push(CheckProblem::PackRead {
                            pack: name,
                            source: Arc::new(e),
                        });
                        s.bad_packs.insert(name);
                        continue;
                    }
                };
                r.bytes_read += size;
                if hash != name {
                    r.problems.push(CheckProblem::PackHash { pack: name });
                }
                let entries = match trailer {
                    Ok(entries) => Some(entries),
                    Err(e) => {
                        r.problems.push(CheckProblem::PackTrailer {
                            source: Arc::new(e),
                            read_data: true,
                        });
                        s.bad_packs.insert(name);
                        None
                    }
                };
                for (problem, c) in damaged {
                    r.problems.push(problem);
                    s.bad_copies.insert((name, c));
                }
                match entries {
                    Some(e) => e,
                    None => continue,
                }
            } else {
                match read_pack_entries(self.backend.as_ref(), &self.crypto, &name, size) {
                    Ok(e) => e,
                    Err(e) => {
                        r.problems.push(CheckProblem::PackTrailer {
                            source: Arc::new(e),
                            read_data: false,
                        });
                        s.bad_packs.insert(name);
                        continue;
                    }
                }
            };
            let entries = Arc::new(entries);
            if opts.read_data {
                // Read once here for every snapshot the reassembly reads.
                self.trailers.keep(&name, entries.clone());
            }
            let mut matched = HashSet::new();
            for e in entries.iter() {
                let indexed = match locs {
                    Some(locs) => locs.lookup.location(&e.id)?,
                    None => None,
                };
                match indexed {
                    Some(l) if l == Loc::of(&name, e) => {
                        matched.insert(e.id);
                        continue;
                    }
                    Some(_) => {}
                    None if locs.is_some() => s
                        .unindexed
                        .push(CheckProblem::ChunkNotIndexed { chunk: e.id }),
                    None => {}
                }
                s.extra.entry(e.id).or_default().push(name);
            }
            if !entries.is_empty() {
                *s.entries.entry(name).or_default() += entries.len();
            }
            s.matched += matched.len();
            let pointing = locs.and_then(|l| l.per_pack.get(&name)).copied();
            if pointing.is_some_and(|n| n > matched.len() as u64) {
                s.partial.insert(name, matched);
            }
        }
        Ok(s)
    }

    /// A pack's trailer entries, read as `read_data` reads a pack: it must
    /// start with the pack magic too.
    fn pack_trailer(
        &self,
        key: &str,
        name: &[u8; 32],
        size: u64,
        what: &str,
    ) -> Result<Vec<PackEntry>> {
        let mut magic = [0u8; pack::PACK_MAGIC.len()];
        let starts = size >= magic.len() as u64
            && self.backend.read_at(key, 0, &mut magic).is_ok()
            && &magic == pack::PACK_MAGIC;
        if !starts {
            return Err(RepoError::damaged(what.to_string(), "bad pack magic"));
        }
        read_pack_entries(self.backend.as_ref(), &self.crypto, name, size)
    }

    /// Reads pack `key` of `size` bytes whole, a window at a time: hashes
    /// it, and decodes the blob of each of `entries` as it passes (a blob
    /// outside the pack decodes as nothing), showing each failure to
    /// `damaged`. Memory: a window and the longest blob, not the pack.
    fn scan_pack(
        &self,
        key: &str,
        size: u64,
        entries: &[PackEntry],
        coder: &mut Coder,
        out: &mut Vec<u8>,
        mut damaged: impl FnMut(&PackEntry, RepoError),
    ) -> std::io::Result<[u8; 32]> {
        let mut order: Vec<&PackEntry> = entries.iter().collect();
        order.sort_by_key(|e| e.offset);
        let mut next = order.into_iter().peekable();
        let mut hasher = blake3::Hasher::new();
        let mut buf = Vec::new();
        // Pack offsets of the first byte held and of the end of what was read.
        let mut held = 0u64;
        let mut read = 0u64;
        loop {
            // Decode every blob held whole.
            while let Some(e) = next.peek() {
                let end = e
                    .offset
                    .checked_add(u64::from(e.stored_len))
                    .filter(|end| *end <= size);
                let blob = match end {
                    Some(end) if end > read => break,
                    Some(end) => usize::try_from(e.offset.saturating_sub(held))
                        .ok()
                        .zip(usize::try_from(end.saturating_sub(held)).ok())
                        .and_then(|(a, b)| buf.get(a..b))
                        .unwrap_or_default(),
                    None => &[],
                };
                if let Err(err) = coder.decode(&self.crypto, blob, e.codec, e.raw_len, &e.id, out) {
                    damaged(e, err);
                }
                next.next();
            }
            if read >= size {
                return Ok(*hasher.finalize().as_bytes());
            }
            // Keep only from the next blob on.
            let keep = next.peek().map_or(read, |e| e.offset.clamp(held, read));
            let drop = usize::try_from(keep - held)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            buf.drain(..drop);
            held = keep;
            let n = (size - read).min(PACK_WINDOW);
            let old = buf.len();
            // At most PACK_WINDOW, which fits a usize.
            buf.resize(old + n as usize, 0);
            let fresh = buf.get_mut(old..).unwrap_or_default();
            self.backend.read_at(key, read, fresh)?;
            hasher.update(fresh);
            read += n;
        }
    }

    /// Reads every list and manifest object, checking names and encodings,
    /// and compares each list with the index's copy (`compare`). Returns
    /// the sound lists (ID -> object size), the manifests, and the lists
    /// the index holds differently.
    #[allow(clippy::type_complexity)]
    fn check_objects(
        &self,
        compare: Option<&index::Index>,
        r: &mut CheckReport,
    ) -> Result<(
        BTreeMap<[u8; 32], u64>,
        BTreeMap<[u8; 32], Manifest>,
        Vec<CheckProblem>,
    )> {
        let mut lists = BTreeMap::new();
        let mut manifests = BTreeMap::new();
        let mut diffs = Vec::new();
        for prefix in [keys::LISTS, keys::SNAPSHOTS] {
            let io = RepoError::io("list", self.path_of(prefix));
            let listed = if prefix == keys::SNAPSHOTS {
                let held = held::list(self.backend.as_ref()).map_err(io)?;
                for id in &held.missing {
                    r.snapshots += 1;
                    r.problems.push(CheckProblem::ManifestMissing {
                        snapshot: SnapshotId(*id),
                    });
                    r.affected.push(SnapshotId(*id));
                }
                if !held.unrecorded.is_empty() {
                    r.notes.push(format!(
                        "{} snapshot(s) have no record under known/ (pushed by an older etcdsnap, or a push stopped after its manifest), so their loss would go unnoticed; `backup prune` records them",
                        held.unrecorded.len()
                    ));
                }
                if !held.unfinished.is_empty() {
                    r.notes.push(format!(
                        "{} forgotten snapshot(s) not removed yet (an interrupted forget; `backup prune` finishes it)",
                        held.unfinished.len()
                    ));
                }
                let present = held.present.iter().map(|(id, n)| (keys::snapshot(id), *n));
                present
                    .chain(held.strays.into_iter().map(|k| (k, 0)))
                    .collect()
            } else {
                self.backend.list(prefix).map_err(io)?
            };
            for (key, size) in listed {
                let Some(id) = keys::parse(prefix, &key) else {
                    r.notes.push(format!("{key}: not an object name, ignored"));
                    continue;
                };
                let plain =
                    match read_object(self.backend.as_ref(), &self.crypto, prefix, &id, size) {
                        Ok(p) => p,
                        Err(e) => {
                            r.problems.push(CheckProblem::repo(e));
                            if prefix == keys::SNAPSHOTS {
                                r.affected.push(SnapshotId(id));
                            }
                            continue;
                        }
                    };
                // read_object decoded it already. A list is read again
                // when its snapshots are checked rather than held (32
                // bytes a chunk, for every list of the repository).
                if prefix == keys::LISTS {
                    lists.insert(id, size);
                    match compare.map(|ix| ix.list_plain(&id)) {
                        Some(Ok(Some(p))) if p == plain => {}
                        Some(Ok(_)) => {
                            diffs.push(CheckProblem::IndexListDiffers { list: id });
                        }
                        Some(Err(e)) => diffs.push(CheckProblem::repo(e)),
                        None => {}
                    }
                } else if let Ok(m) = Manifest::decode(&plain) {
                    manifests.insert(id, m);
                }
            }
        }
        Ok((lists, manifests, diffs))
    }

    /// A snapshot's chunk IDs, its list read again from its object; the
    /// base of the last delta is kept in `base` (the snapshots of a chain
    /// share it).
    fn list_ids(
        &self,
        lists: &BTreeMap<[u8; 32], u64>,
        id: &[u8; 32],
        base: &mut Option<([u8; 32], Vec<[u8; 32]>)>,
    ) -> std::result::Result<Vec<[u8; 32]>, String> {
        let list = self
            .read_list(lists, id)
            .ok_or_else(|| format!("list {} is missing or damaged", hex(id)))?;
        let base_ids = match list.base() {
            Some(b) => {
                if base.as_ref().is_none_or(|(k, _)| *k != b) {
                    *base = None;
                    match self.read_list(lists, &b) {
                        Some(ChunkList::Full(ids)) => *base = Some((b, ids)),
                        Some(_) => return Err(format!("base list {} is a delta", hex(&b))),
                        None => return Err(format!("base list {} is missing or damaged", hex(&b))),
                    }
                }
                base.as_ref().map(|(_, ids)| ids.as_slice())
            }
            None => None,
        };
        list.into_ids(base_ids)
            .map_err(|e| format!("list {}: {e}", hex(id)))
    }

    /// A sound list object, decoded.
    fn read_list(&self, lists: &BTreeMap<[u8; 32], u64>, id: &[u8; 32]) -> Option<ChunkList> {
        let size = *lists.get(id)?;
        let plain = read_object(self.backend.as_ref(), &self.crypto, keys::LISTS, id, size).ok()?;
        ChunkList::decode(&plain).ok()
    }
}

/// Compares the index with the objects, and finds the indexed copies that
/// are not where the index says (`locs.unmatched`).
fn compare_index(
    locs: &mut Locs<'_>,
    stored: &Stored,
    list_diffs: Vec<CheckProblem>,
    lists: &BTreeMap<[u8; 32], u64>,
    manifests: &BTreeMap<[u8; 32], Manifest>,
    r: &mut CheckReport,
) -> Result<()> {
    // First, as the snapshots' check needs it whatever else fails: the
    // index is walked again only when a pack matched fewer locations than
    // point into it, or is gone.
    let suspect = |p: &[u8; 32]| {
        !stored.bad_packs.contains(p)
            && (!stored.sizes.contains_key(p) || stored.partial.contains_key(p))
    };
    let mut not_found = Vec::new();
    if locs.per_pack.keys().any(suspect) {
        let unmatched = &mut locs.unmatched;
        locs.ix.for_each_location(|c, l| {
            if suspect(&l.pack) && !stored.partial.get(&l.pack).is_some_and(|m| m.contains(c)) {
                unmatched.insert(*c);
                not_found.push(CheckProblem::IndexChunkMisplaced {
                    chunk: *c,
                    pack: l.pack,
                    offset: l.offset,
                });
            }
            Ok(())
        })?;
    }
    let packs = locs.ix.packs()?;
    for (p, (size, count)) in &packs {
        match stored.sizes.get(p) {
            None => r.problems.push(CheckProblem::IndexPackMissing { pack: *p }),
            Some(s) if s != size => r.problems.push(CheckProblem::IndexPackSize {
                pack: *p,
                size: *s,
                indexed: *size,
            }),
            Some(_) => {
                let n = stored.entries.get(p).copied().unwrap_or(0);
                if !stored.bad_packs.contains(p) && n != *count as usize {
                    r.problems.push(CheckProblem::IndexPackCount {
                        pack: *p,
                        chunks: n,
                        indexed: *count,
                    });
                }
            }
        }
    }
    r.problems.extend(not_found);
    r.problems.extend(stored.unindexed.iter().cloned());
    r.problems.extend(list_diffs);
    for (id, m) in manifests {
        if locs.ix.snapshot_plain(id)? != Some(m.encode()) {
            r.problems.push(CheckProblem::IndexSnapshotDiffers {
                snapshot: SnapshotId(*id),
            });
            r.affected.push(SnapshotId(*id));
        }
    }
    let objects: BTreeSet<&[u8; 32]> = lists.keys().chain(manifests.keys()).collect();
    for id in locs.ix.object_ids()? {
        if !objects.contains(&id) {
            r.problems.push(CheckProblem::IndexedObjectMissing { id });
        }
    }
    Ok(())
}

impl Repository {
    /// Reassembles a snapshot into an unnamed temporary file and runs
    /// verify's checks on it, as a push does; the problems found.
    fn verify_reassembled(
        &self,
        plan: &Plan,
        index: Option<&super::index::Index>,
    ) -> Vec<CheckProblem> {
        let snapshot = SnapshotId(plan.id);
        let one = |e: RepoError| {
            vec![CheckProblem::Reassembly {
                snapshot,
                source: Arc::new(e),
            }]
        };
        let dir = self.backend.index_dir().join("tmp");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return one(RepoError::io("mkdir", &dir)(e));
        }
        let tmp = match tempfile::tempfile_in(&dir) {
            Ok(t) => t,
            Err(e) => return one(RepoError::io("create", &dir)(e)),
        };
        let streamed = match self.with_stream(plan, index, |r| stream_into(r, &tmp, false, &|_| {}))
        {
            Ok(s) => s,
            Err(StreamError::Read(e)) => {
                return vec![CheckProblem::ReassemblyRead {
                    snapshot,
                    source: Arc::new(e),
                }];
            }
            Err(StreamError::Write(e) | StreamError::Sync(e)) => {
                return one(RepoError::io("write", dir.join("(temporary file)"))(e));
            }
        };
        if streamed.body_digest != plan.manifest.sha256_body {
            return vec![CheckProblem::BodyDigest {
                snapshot,
                found: streamed.body_digest,
                recorded: plan.manifest.sha256_body,
            }];
        }
        let name = format!("snapshot {}", hex(&plan.id));
        let file = match SnapshotFile::from_file(tmp, name) {
            Ok(f) => f,
            Err(e) => return one(e.into()),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        match super::push::verify_file(&file, TargetChoice::Auto, threads) {
            Ok(()) => Vec::new(),
            Err(RepoError::Unsound { problems, .. }) => problems
                .into_iter()
                .map(|problem| CheckProblem::Unsound { snapshot, problem })
                .collect(),
            Err(e) => one(e),
        }
    }
}
