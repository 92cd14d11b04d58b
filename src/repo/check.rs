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
                "{source} (the index cannot be rebuilt from this pack; `check --read-data` verifies its chunks)"
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

/// The packs as their trailers describe them.
#[derive(Default)]
struct Stored {
    /// Every copy of every chunk: pack and entry.
    copies: HashMap<[u8; 32], Vec<([u8; 32], PackEntry)>>,
    /// Packs whose trailer could not be read, or whose bytes do not match
    /// their name.
    bad_packs: HashSet<[u8; 32]>,
    /// Chunk copies found damaged by `read_data`.
    bad_copies: HashSet<([u8; 32], [u8; 32])>,
    /// Pack sizes.
    sizes: BTreeMap<[u8; 32], u64>,
    /// Chunk copies per pack (what the pack's trailer lists).
    entries: HashMap<[u8; 32], usize>,
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
        let locs: Option<HashMap<[u8; 32], Loc>> = match index.as_ref().map(|ix| ix.locations()) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                r.problems.push(CheckProblem::repo(e));
                None
            }
            None => None,
        };
        let stored = self.check_packs(opts, locs.as_ref(), &mut r)?;
        let (lists, manifests) = self.check_objects(&mut r)?;

        // The index against the objects.
        if let (Some(ix), Some(locs)) = (&index, &locs)
            && let Err(e) = self.compare_index(ix, locs, &stored, &lists, &manifests, &mut r)
        {
            r.problems.push(CheckProblem::repo(e));
        }

        // Every snapshot's chunks.
        let mut used: HashSet<[u8; 32]> = HashSet::new();
        for (id, m) in &manifests {
            r.snapshots += 1;
            let sid = SnapshotId(*id);
            let ids = match resolve(&lists, &m.list) {
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
                used.insert(*c);
                let ok = match &locs {
                    // With an index, the copy it points to must be there
                    // and sound (a restore reads it through the index, so
                    // a damaged trailer alone does not stop one).
                    Some(locs) => locs.get(c).is_some_and(|l| {
                        // Within the pack as long as it is now: a
                        // truncated pack's trailer is gone, and this is
                        // what still says which chunks went with it.
                        let end = l.offset.checked_add(u64::from(l.stored_len));
                        stored
                            .sizes
                            .get(&l.pack)
                            .is_some_and(|size| end.is_some_and(|e| e <= *size))
                            && !stored.bad_copies.contains(&(l.pack, *c))
                            && (stored.bad_packs.contains(&l.pack)
                                || stored
                                    .copies
                                    .get(c)
                                    .is_some_and(|v| v.iter().any(|(p, e)| Loc::of(p, e) == *l)))
                    }),
                    None => stored.copies.get(c).is_some_and(|v| {
                        v.iter().any(|(p, _)| {
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
        r.chunks = stored.copies.len();
        // One pass over the copies, not one per pack.
        let used_packs: HashSet<&[u8; 32]> = stored
            .copies
            .iter()
            .filter(|(c, _)| used.contains(*c))
            .flat_map(|(_, v)| v.iter().map(|(q, _)| q))
            .collect();
        let unused: Vec<&[u8; 32]> = stored
            .sizes
            .keys()
            .filter(|p| !stored.bad_packs.contains(*p) && !used_packs.contains(p))
            .collect();
        if !unused.is_empty() {
            r.notes.push(format!(
                "{} pack(s) hold no chunk any snapshot uses (left by an interrupted push or forget; `backup prune` removes them)",
                unused.len()
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
        locs: Option<&HashMap<[u8; 32], Loc>>,
        r: &mut CheckReport,
    ) -> Result<Stored> {
        let mut s = Stored::default();
        // The chunks the index places in each pack.
        let mut by_pack: HashMap<[u8; 32], Vec<([u8; 32], Loc)>> = HashMap::new();
        for (c, l) in locs.into_iter().flatten() {
            by_pack.entry(l.pack).or_default().push((*c, *l));
        }
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
                let bytes = match self.backend.read(&key, MAX_PACK) {
                    Ok(b) => b,
                    Err(e) => {
                        r.problems.push(CheckProblem::PackRead {
                            pack: name,
                            source: Arc::new(e),
                        });
                        s.bad_packs.insert(name);
                        continue;
                    }
                };
                r.bytes_read += bytes.len() as u64;
                let hash_ok = blake3::hash(&bytes).as_bytes() == &name;
                if !hash_ok {
                    r.problems.push(CheckProblem::PackHash { pack: name });
                }
                match pack::decode_pack(&self.crypto, &bytes, &what) {
                    Ok(entries) => {
                        for e in &entries {
                            let blob = pack::blob(&bytes, e).unwrap_or_default();
                            let res = coder.decode(
                                &self.crypto,
                                blob,
                                e.codec,
                                e.raw_len,
                                &e.id,
                                &mut out,
                            );
                            if let Err(err) = res {
                                r.problems.push(CheckProblem::ChunkDamaged {
                                    pack: name,
                                    offset: e.offset,
                                    source: Arc::new(err),
                                });
                                s.bad_copies.insert((name, e.id));
                            }
                        }
                        entries
                    }
                    Err(e) => {
                        r.problems.push(CheckProblem::PackTrailer {
                            source: Arc::new(e),
                            read_data: true,
                        });
                        s.bad_packs.insert(name);
                        // Verify what the index places in it instead.
                        for (c, l) in by_pack.get(&name).into_iter().flatten() {
                            let e = PackEntry {
                                id: *c,
                                offset: l.offset,
                                stored_len: l.stored_len,
                                raw_len: l.raw_len,
                                codec: l.codec,
                            };
                            let blob = pack::blob(&bytes, &e).unwrap_or_default();
                            if let Err(err) =
                                coder.decode(&self.crypto, blob, l.codec, l.raw_len, c, &mut out)
                            {
                                r.problems.push(CheckProblem::ChunkDamaged {
                                    pack: name,
                                    offset: l.offset,
                                    source: Arc::new(err),
                                });
                                s.bad_copies.insert((name, *c));
                            }
                        }
                        continue;
                    }
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
            for e in entries {
                s.copies.entry(e.id).or_default().push((name, e));
                *s.entries.entry(name).or_default() += 1;
            }
        }
        Ok(s)
    }

    /// Reads every list and manifest object, checking names and encodings.
    #[allow(clippy::type_complexity)]
    fn check_objects(
        &self,
        r: &mut CheckReport,
    ) -> Result<(
        BTreeMap<[u8; 32], (Vec<u8>, ChunkList)>,
        BTreeMap<[u8; 32], Manifest>,
    )> {
        let mut lists = BTreeMap::new();
        let mut manifests = BTreeMap::new();
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
                // read_object decoded it already; decode again to keep it.
                if prefix == keys::LISTS {
                    if let Ok(l) = ChunkList::decode(&plain) {
                        lists.insert(id, (plain, l));
                    }
                } else if let Ok(m) = Manifest::decode(&plain) {
                    manifests.insert(id, m);
                }
            }
        }
        Ok((lists, manifests))
    }

    /// Compares the index with the objects; returns its chunk locations.
    fn compare_index(
        &self,
        ix: &index::Index,
        locs: &HashMap<[u8; 32], Loc>,
        stored: &Stored,
        lists: &BTreeMap<[u8; 32], (Vec<u8>, ChunkList)>,
        manifests: &BTreeMap<[u8; 32], Manifest>,
        r: &mut CheckReport,
    ) -> Result<()> {
        let packs = ix.packs()?;
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
        for (c, l) in locs {
            let found = stored
                .copies
                .get(c)
                .is_some_and(|v| v.iter().any(|(p, e)| Loc::of(p, e) == *l));
            if !found && !stored.bad_packs.contains(&l.pack) {
                r.problems.push(CheckProblem::IndexChunkMisplaced {
                    chunk: *c,
                    pack: l.pack,
                    offset: l.offset,
                });
            }
        }
        for c in stored.copies.keys() {
            if !locs.contains_key(c) {
                r.problems.push(CheckProblem::ChunkNotIndexed { chunk: *c });
            }
        }
        let ix_lists: BTreeMap<[u8; 32], Vec<u8>> = ix.list_bytes()?.into_iter().collect();
        let ix_snaps: BTreeMap<[u8; 32], Vec<u8>> = ix.snapshot_bytes()?.into_iter().collect();
        for (id, (plain, _)) in lists {
            if ix_lists.get(id) != Some(plain) {
                r.problems
                    .push(CheckProblem::IndexListDiffers { list: *id });
            }
        }
        for (id, m) in manifests {
            if ix_snaps.get(id) != Some(&m.encode()) {
                r.problems.push(CheckProblem::IndexSnapshotDiffers {
                    snapshot: SnapshotId(*id),
                });
                r.affected.push(SnapshotId(*id));
            }
        }
        let objects: BTreeSet<&[u8; 32]> = lists.keys().chain(manifests.keys()).collect();
        for id in ix_lists.keys().chain(ix_snaps.keys()) {
            if !objects.contains(id) {
                r.problems
                    .push(CheckProblem::IndexedObjectMissing { id: *id });
            }
        }
        Ok(())
    }
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

/// A list's IDs from the checked list objects.
fn resolve(
    lists: &BTreeMap<[u8; 32], (Vec<u8>, ChunkList)>,
    id: &[u8; 32],
) -> std::result::Result<Vec<[u8; 32]>, String> {
    let (_, list) = lists
        .get(id)
        .ok_or_else(|| format!("list {} is missing or damaged", hex(id)))?;
    let base = match list.base() {
        Some(b) => match lists.get(&b) {
            Some((_, ChunkList::Full(ids))) => Some(ids.as_slice()),
            Some(_) => return Err(format!("base list {} is a delta", hex(&b))),
            None => return Err(format!("base list {} is missing or damaged", hex(&b))),
        },
        None => None,
    };
    list.resolve(base)
        .map_err(|e| format!("list {}: {e}", hex(id)))
}
