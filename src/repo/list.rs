//! Chunk lists: the ordered chunk IDs that make up one snapshot file.
//!
//! A 1.4 GB snapshot has 350,000 chunks, so its full list is 11 MB: stored
//! with every hourly snapshot that would cost more than the pages that
//! changed. Consecutive snapshots share most pages *at the same positions*
//! (bbolt rewrites pages in place of freed ones and grows at the end), so a
//! list is stored either in full or as a delta against a full list: runs
//! copied from the base plus the IDs that differ. Deltas only ever refer to
//! full lists (one level), and a new full list is written when a delta
//! would be more than a quarter of one.
//!
//! ```text
//! "ESNLIST1" kind u8 count u64
//!   kind 0 (full):  count x id[32]
//!   kind 1 (delta): base[32] ops u32, then per op
//!                   tag 0 (copy): start u64 len u64    (base[start..start+len],
//!                                                       start = the position)
//!                   tag 1 (new):  n u32, n x id[32]
//! ```
//!
//! Lists are named by the hash of their encoding and stored as objects
//! under `lists/`.

use super::codec::{Dec, DecResult, Enc};

/// Leading magic of a list.
pub(crate) const LIST_MAGIC: &[u8; 8] = b"ESNLIST1";
/// Most chunks a list may have: 2^26 chunks of 4 KiB are 256 GiB, far past
/// etcd's largest database; it bounds the work a damaged list can ask for.
pub(crate) const MAX_CHUNKS: u64 = 1 << 26;

const KIND_FULL: u8 = 0;
const KIND_DELTA: u8 = 1;
const TAG_COPY: u8 = 0;
const TAG_NEW: u8 = 1;

/// One step of a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `base[start..start + len]`.
    Copy { start: u64, len: u64 },
    /// These IDs.
    New(Vec<[u8; 32]>),
}

/// A decoded list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkList {
    /// Every ID, in order.
    Full(Vec<[u8; 32]>),
    /// Changes against the full list `base`.
    Delta {
        base: [u8; 32],
        count: u64,
        ops: Vec<Op>,
    },
}

fn op_len(op: &Op) -> u64 {
    match op {
        Op::Copy { len, .. } => *len,
        Op::New(ids) => ids.len() as u64,
    }
}

impl ChunkList {
    /// Number of chunks.
    pub(crate) fn count(&self) -> u64 {
        match self {
            ChunkList::Full(ids) => ids.len() as u64,
            ChunkList::Delta { count, .. } => *count,
        }
    }

    /// The full list this one needs, if it is a delta.
    pub(crate) fn base(&self) -> Option<[u8; 32]> {
        match self {
            ChunkList::Full(_) => None,
            ChunkList::Delta { base, .. } => Some(*base),
        }
    }

    /// The canonical encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::with_capacity(self.encoded_len());
        e.bytes(LIST_MAGIC);
        match self {
            ChunkList::Full(ids) => {
                e.u8(KIND_FULL).u64(ids.len() as u64);
                for id in ids {
                    e.bytes(id);
                }
            }
            ChunkList::Delta { base, count, ops } => {
                e.u8(KIND_DELTA)
                    .u64(*count)
                    .bytes(base)
                    .u32(ops.len() as u32);
                for op in ops {
                    match op {
                        Op::Copy { start, len } => {
                            e.u8(TAG_COPY).u64(*start).u64(*len);
                        }
                        Op::New(ids) => {
                            e.u8(TAG_NEW).u32(ids.len() as u32);
                            for id in ids {
                                e.bytes(id);
                            }
                        }
                    }
                }
            }
        }
        e.finish()
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        let head = LIST_MAGIC.len() + 1 + 8;
        match self {
            ChunkList::Full(ids) => head + 32 * ids.len(),
            ChunkList::Delta { ops, .. } => {
                head + 32
                    + 4
                    + ops
                        .iter()
                        .map(|op| match op {
                            Op::Copy { .. } => 17,
                            Op::New(ids) => 5 + 32 * ids.len(),
                        })
                        .sum::<usize>()
            }
        }
    }

    /// Decodes a list. Allocation is bounded by the input's length; the
    /// op lengths must add up to the count.
    pub(crate) fn decode(b: &[u8]) -> DecResult<ChunkList> {
        let mut d = Dec::new(b);
        d.magic(LIST_MAGIC, "list magic")?;
        let kind = d.u8("list kind")?;
        let count = d.u64("chunk count")?;
        if count > MAX_CHUNKS {
            return d.err(format!("{count} chunks is more than {MAX_CHUNKS}"));
        }
        let list = match kind {
            KIND_FULL => {
                if (d.remaining() as u64) / 32 < count {
                    return d.err(format!("{count} IDs do not fit {} bytes", d.remaining()));
                }
                let mut ids = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    ids.push(d.array("chunk id")?);
                }
                ChunkList::Full(ids)
            }
            KIND_DELTA => {
                let base = d.array("base list")?;
                let nops = d.u32("op count")?;
                // Each op takes at least 5 bytes.
                if (d.remaining() / 5) < nops as usize {
                    return d.err(format!("{nops} ops do not fit {} bytes", d.remaining()));
                }
                let mut ops = Vec::with_capacity(nops as usize);
                let mut total = 0u64;
                for _ in 0..nops {
                    let op = match d.u8("op tag")? {
                        TAG_COPY => {
                            let start = d.u64("copy start")?;
                            // Copies keep positions, so a list resolves to
                            // at most its base plus its own new IDs.
                            if start != total {
                                return d.err(format!("copy from {start} at position {total}"));
                            }
                            Op::Copy {
                                start,
                                len: d.u64("copy length")?,
                            }
                        }
                        TAG_NEW => {
                            let n = d.u32("new count")?;
                            if d.remaining() / 32 < n as usize {
                                return d.err(format!("{n} IDs do not fit"));
                            }
                            let mut ids = Vec::with_capacity(n as usize);
                            for _ in 0..n {
                                ids.push(d.array("chunk id")?);
                            }
                            Op::New(ids)
                        }
                        t => return d.err(format!("unknown op tag {t}")),
                    };
                    total = match total.checked_add(op_len(&op)) {
                        Some(t) if t <= count => t,
                        _ => return d.err("ops add up to more than the count"),
                    };
                    ops.push(op);
                }
                if total != count {
                    return d.err(format!("ops add up to {total}, not {count}"));
                }
                ChunkList::Delta { base, count, ops }
            }
            k => return d.err(format!("unknown list kind {k}")),
        };
        d.finish("list")?;
        Ok(list)
    }

    /// Every ID in order, given the base's IDs for a delta. Fails if a copy
    /// reaches past the base.
    pub(crate) fn resolve(&self, base: Option<&[[u8; 32]]>) -> Result<Vec<[u8; 32]>, String> {
        let mut out = Vec::new();
        self.for_each(base, |id| out.push(*id))?;
        Ok(out)
    }

    /// Every ID in order, as [`ChunkList::resolve`], taking a full list's
    /// IDs rather than copying them (a restore of an 8 GB snapshot holds
    /// 2,000,000 of them).
    pub(crate) fn into_ids(self, base: Option<&[[u8; 32]]>) -> Result<Vec<[u8; 32]>, String> {
        match self {
            ChunkList::Full(ids) => Ok(ids),
            delta => delta.resolve(base),
        }
    }

    /// Calls `f` with every ID in order (without building the list).
    pub(crate) fn for_each(
        &self,
        base: Option<&[[u8; 32]]>,
        mut f: impl FnMut(&[u8; 32]),
    ) -> Result<(), String> {
        match self {
            ChunkList::Full(ids) => ids.iter().for_each(f),
            ChunkList::Delta { ops, .. } => {
                let base = base.ok_or("a delta list needs its base")?;
                for op in ops {
                    match op {
                        Op::Copy { start, len } => {
                            let run = usize::try_from(*start)
                                .ok()
                                .zip(usize::try_from(*len).ok())
                                .and_then(|(s, l)| base.get(s..s.checked_add(l)?))
                                .ok_or_else(|| {
                                    format!(
                                        "copy of {len} IDs from {start} runs past the base's {}",
                                        base.len()
                                    )
                                })?;
                            run.iter().for_each(&mut f);
                        }
                        Op::New(ids) => ids.iter().for_each(&mut f),
                    }
                }
            }
        }
        Ok(())
    }

    /// The list for `ids`: a delta against `base` (named `base_id`) when
    /// that is at most a quarter of the full list, else the full list.
    /// Positions are compared one for one, as bbolt keeps pages in place.
    #[cfg(test)]
    pub(crate) fn build(ids: Vec<[u8; 32]>, base: Option<(&[u8; 32], &[[u8; 32]])>) -> ChunkList {
        if let Some((base_id, base)) = base {
            let mut d = DeltaBuilder::new(base, ids.len() as u64);
            if ids.iter().all(|id| d.push(id)) && d.fits() {
                return d.finish(base_id);
            }
        }
        ChunkList::Full(ids)
    }

    /// The encoding of [`build`](Self::build)'s list of the `count` IDs in
    /// `ids` (a file of 32 bytes an ID, in order), without holding them:
    /// only the encoding is held whole (and a delta's steps while they stay
    /// within a quarter of a full list). Whether it is a delta, too.
    pub(crate) fn encode_file(
        ids: &std::fs::File,
        count: u64,
        base: Option<(&[u8; 32], &[[u8; 32]])>,
    ) -> std::io::Result<(Vec<u8>, bool)> {
        if let Some((base_id, base)) = base {
            let mut d = DeltaBuilder::new(base, count);
            if each_id(ids, count, |id| d.push(id))? && d.fits() {
                return Ok((d.finish(base_id).encode(), true));
            }
        }
        let head = LIST_MAGIC.len() + 1 + 8;
        let full_len = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(32)?.checked_add(head))
            .ok_or_else(|| std::io::Error::other(format!("{count} chunks do not fit memory")))?;
        let mut e = Enc::with_capacity(full_len);
        e.bytes(LIST_MAGIC).u8(KIND_FULL).u64(count);
        let mut out = e.finish();
        out.resize(full_len, 0);
        if let Some(body) = out.get_mut(head..) {
            std::os::unix::fs::FileExt::read_exact_at(ids, body, 0)?;
        }
        Ok((out, false))
    }
}

/// IDs read at a time by [`each_id`].
const READ_IDS: usize = 4096;

/// Shows `f` the `count` IDs of the file `ids` in order, until it says
/// stop; whether it saw them all.
fn each_id(
    ids: &std::fs::File,
    count: u64,
    mut f: impl FnMut(&[u8; 32]) -> bool,
) -> std::io::Result<bool> {
    let mut buf = vec![[0u8; 32]; READ_IDS];
    let mut at = 0u64;
    while at < count {
        let n = usize::try_from(count - at).map_or(READ_IDS, |n| n.min(READ_IDS));
        let got = buf.get_mut(..n).unwrap_or_default();
        std::os::unix::fs::FileExt::read_exact_at(ids, got.as_flattened_mut(), at * 32)?;
        if !got.iter().all(&mut f) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// A delta built one ID at a time, keeping count of its encoded length
/// so that one that will not be stored (longer than a quarter of the
/// full list) is given up as soon as it is.
struct DeltaBuilder<'b> {
    base: &'b [[u8; 32]],
    count: u64,
    ops: Vec<Op>,
    pos: usize,
    len: usize,
    limit: usize,
}

impl<'b> DeltaBuilder<'b> {
    fn new(base: &'b [[u8; 32]], count: u64) -> DeltaBuilder<'b> {
        let head = LIST_MAGIC.len() + 1 + 8;
        let full_len = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(32)?.checked_add(head))
            .unwrap_or(usize::MAX);
        DeltaBuilder {
            base,
            count,
            ops: Vec::new(),
            pos: 0,
            len: head + 32 + 4,
            limit: full_len / 4,
        }
    }

    /// Takes the next ID; whether the delta is still short enough.
    fn push(&mut self, id: &[u8; 32]) -> bool {
        let same = self.base.get(self.pos) == Some(id);
        match (self.ops.last_mut(), same) {
            (Some(Op::Copy { len, .. }), true) => *len += 1,
            (Some(Op::New(new)), false) => {
                new.push(*id);
                self.len += 32;
            }
            (_, true) => {
                self.ops.push(Op::Copy {
                    start: self.pos as u64,
                    len: 1,
                });
                self.len += 17;
            }
            (_, false) => {
                self.ops.push(Op::New(vec![*id]));
                self.len += 5 + 32;
            }
        }
        self.pos += 1;
        self.fits()
    }

    /// Whether the delta is at most a quarter of the full list.
    fn fits(&self) -> bool {
        self.len <= self.limit
    }

    fn finish(self, base: &[u8; 32]) -> ChunkList {
        ChunkList::Delta {
            base: *base,
            count: self.count,
            ops: self.ops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(seeds: &[u8]) -> Vec<[u8; 32]> {
        seeds.iter().map(|&s| [s; 32]).collect()
    }

    #[test]
    fn delta_against_base_resolves_to_the_list() {
        let base = ids(&(0..64).collect::<Vec<u8>>());
        let mut next = base.clone();
        next[3] = [99; 32];
        next.push([100; 32]);
        let l = ChunkList::build(next.clone(), Some((&[7; 32], &base)));
        assert!(matches!(l, ChunkList::Delta { .. }), "{l:?}");
        let enc = l.encode();
        assert_eq!(enc.len(), l.encoded_len());
        let back = ChunkList::decode(&enc).expect("decode");
        assert_eq!(back, l);
        assert_eq!(back.resolve(Some(&base)), Ok(next));
        assert!(back.resolve(None).is_err());
        assert!(back.resolve(Some(&base[..4])).is_err());
    }

    #[test]
    fn a_mostly_new_list_is_stored_full() {
        let base = ids(&[1, 2, 3, 4]);
        let l = ChunkList::build(ids(&[5, 6, 7, 4]), Some((&[7; 32], &base)));
        assert!(matches!(l, ChunkList::Full(_)));
        assert_eq!(ChunkList::decode(&l.encode()), Ok(l));
    }

    /// The list as the push built it before it streamed the IDs: every
    /// step first, then the choice (the same snapshot must still get the
    /// same list, and so the same ID).
    fn reference(ids: &[[u8; 32]], base: Option<(&[u8; 32], &[[u8; 32]])>) -> Vec<u8> {
        let full = ChunkList::Full(ids.to_vec());
        let Some((base_id, base)) = base else {
            return full.encode();
        };
        let mut ops: Vec<Op> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let same = base.get(i) == Some(id);
            match (ops.last_mut(), same) {
                (Some(Op::Copy { len, .. }), true) => *len += 1,
                (Some(Op::New(new)), false) => new.push(*id),
                (_, true) => ops.push(Op::Copy {
                    start: i as u64,
                    len: 1,
                }),
                (_, false) => ops.push(Op::New(vec![*id])),
            }
        }
        let delta = ChunkList::Delta {
            base: *base_id,
            count: ids.len() as u64,
            ops,
        };
        if delta.encoded_len() * 4 <= full.encoded_len() {
            delta.encode()
        } else {
            full.encode()
        }
    }

    /// Read from a file of IDs (more than one read's worth), the list is
    /// byte for byte the one built in memory, on both sides of the point
    /// where a delta stops being worth it, and with no base.
    #[test]
    fn a_list_encoded_from_a_file_is_the_one_built_in_memory() {
        use std::io::Write;
        let n = READ_IDS * 2 + 100;
        let id = |i: usize, salt: u8| {
            let mut b = [salt; 32];
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            b
        };
        let base: Vec<[u8; 32]> = (0..n).map(|i| id(i, 0)).collect();
        let mut deltas = 0;
        // Every `every`-th ID changed, and a longer or shorter list.
        for every in [1, 2, 3, 5, 7, 8, 9, 10, 50, 1000, usize::MAX] {
            for len in [0, 1, n - 7, n, n + 5] {
                let ids: Vec<[u8; 32]> = (0..len)
                    .map(|i| {
                        if every != usize::MAX && i % every == 0 {
                            id(i, 1)
                        } else {
                            id(i, 0)
                        }
                    })
                    .collect();
                let mut f = tempfile::tempfile().unwrap();
                f.write_all(ids.as_flattened()).unwrap();
                for b in [None, Some((&[7u8; 32], base.as_slice()))] {
                    let want = reference(&ids, b);
                    let (got, delta) = ChunkList::encode_file(&f, ids.len() as u64, b).unwrap();
                    assert_eq!(got, want, "every {every}, {len} IDs, base {}", b.is_some());
                    assert_eq!(delta, got.get(8) == Some(&KIND_DELTA));
                    assert_eq!(ChunkList::build(ids.clone(), b).encode(), want);
                    deltas += usize::from(delta);
                }
            }
        }
        assert!(
            deltas > 5 && deltas < 40,
            "{deltas} deltas: both kinds were built"
        );
    }
}
