//! A corpus of corrupted etcd snapshots, made by byte manipulation of the real fixtures.
//!
//! This file has its own minimal reading of the bbolt format (meta pages, page headers, leaf
//! and branch elements, inline buckets) and deliberately does not use the crate under test:
//! it is an independent view of the format. See `testdata/corrupt/README.md` for the list of
//! variants and what etcdutl 3.5.1 does with each.
//!
//! Every [`Variant`] says which layer of a verifier must reject it ([`Expect`]) and what a
//! structural check of its bbolt body alone (hash check skipped) must conclude ([`Body`]).
//! Where the structural layer is the target, the meta checksums and the SHA-256 trailer are
//! recomputed ([`repair_meta_checksums`], [`repair_trailer`]) so that nothing earlier trips.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::cmd::Outcome;
use super::fixtures;

/// Length of the SHA-256 trailer `etcdctl snapshot save` appends.
pub const TRAILER: usize = 32;
/// bbolt magic (meta offset 0).
pub const MAGIC: u32 = 0xED0C_DAED;

const PAGE_HEADER: usize = 16;
const ELEM: usize = 16;
const META_MAGIC: usize = 16;
const META_VERSION: usize = 20;
const META_PAGE_SIZE: usize = 24;
const META_ROOT: usize = 32;
const META_PGID: usize = 56;
const META_TXID: usize = 64;
const META_CHECKSUM: usize = 72;
const FLAG_BRANCH: u16 = 0x01;
const FLAG_LEAF: u16 = 0x02;
const FLAG_FREELIST: u16 = 0x10;
const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Which layer must reject a variant first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expect {
    /// `len % 512 != 32`: no trailer; a verify without `--skip-hash-check` fails
    /// ("snapshot missing hash").
    MissingHash,
    /// A trailer is present but is not the SHA-256 of the rest.
    HashMismatch,
    /// The trailer is right but the body is no usable bbolt file (too small, no valid meta,
    /// unusable page size).
    NotBbolt,
    /// The trailer and at least one meta are right, the tree is broken.
    Structural,
    /// The trailer and the bbolt structure are right, but an etcd record would crash etcd
    /// (at boot or when it is used): verify fails with an etcd-level line and restore
    /// refuses; status, which only hashes, succeeds.
    EtcdRecord,
    /// Nothing is wrong as far as a Go reader is concerned: must be accepted (control). Also
    /// etcd-level findings that restore replaces or etcd tolerates (reported as warnings).
    Accept,
}

/// What a structural check of the bbolt body alone (trailer stripped if `len % 512 == 32`,
/// hash not checked) must conclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// A correct bbolt image (bytes past `HWM·pageSize` are allowed and ignored, as in bbolt).
    Valid,
    /// Not a bbolt file.
    NotBbolt,
    /// A bbolt file with a broken tree.
    Structural,
}

/// One corrupted snapshot.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Stable, file-name-safe name.
    pub name: &'static str,
    /// The fixture it was made from (under `testdata/snapshots/`).
    pub source: &'static str,
    /// What was done.
    pub what: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
    /// The first layer that must reject it.
    pub expect: Expect,
    /// The verdict on the body alone.
    pub body: Body,
    /// What `etcdutl 3.5.1 snapshot status -w json` did with it (recorded from real runs).
    pub etcdutl_status: Outcome,
}

impl Variant {
    /// The bbolt body: the bytes without the trailer when `len % 512 == 32`.
    pub fn body_bytes(&self) -> &[u8] {
        strip_trailer(&self.bytes)
    }

    /// Writes the file as `<dir>/<name>.db` and returns its path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let p = dir.join(format!("{}.db", self.name));
        std::fs::write(&p, &self.bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

// ---------------------------------------------------------------------------------------
// Trailer and checksum helpers (public: tests and fuzz targets reuse them).

/// etcd's rule: a file has a SHA-256 trailer iff `len % 512 == 32`.
pub fn has_trailer(file: &[u8]) -> bool {
    file.len() % 512 == TRAILER
}

/// The file without its trailer (if it has one by etcd's rule).
pub fn strip_trailer(file: &[u8]) -> &[u8] {
    if has_trailer(file) {
        &file[..file.len() - TRAILER]
    } else {
        file
    }
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Whether the file has a trailer and it is the SHA-256 of the rest.
pub fn trailer_ok(file: &[u8]) -> bool {
    has_trailer(file) && sha256(strip_trailer(file))[..] == file[file.len() - TRAILER..]
}

/// Appends the SHA-256 of `body` to it.
pub fn append_trailer(body: &mut Vec<u8>) {
    let d = sha256(body);
    body.extend_from_slice(&d);
}

/// Makes the last 32 bytes the SHA-256 of the rest: when the file has a trailer by etcd's
/// rule (`len % 512 == 32`) it is recomputed in place, otherwise one is appended (the result
/// then counts as having a trailer only if the original length was a multiple of 512).
pub fn repair_trailer(file: &mut Vec<u8>) {
    if has_trailer(file) {
        let n = file.len() - TRAILER;
        let d = sha256(&file[..n]);
        file[n..].copy_from_slice(&d);
    } else {
        append_trailer(file);
    }
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Recomputes the checksum of the meta page starting at `buf[off..]` (FNV-1a-64 over page
/// bytes [16, 72), stored little-endian at [72, 80)). Does nothing if the page is cut short.
pub fn repair_meta_checksum_at(buf: &mut [u8], off: usize) {
    if off + META_CHECKSUM + 8 <= buf.len() {
        let c = fnv1a64(&buf[off + META_MAGIC..off + META_CHECKSUM]);
        buf[off + META_CHECKSUM..off + META_CHECKSUM + 8].copy_from_slice(&c.to_le_bytes());
    }
}

/// Recomputes both meta checksums, meta 1 being at `page_size`.
pub fn repair_meta_checksums_at(buf: &mut [u8], page_size: usize) {
    repair_meta_checksum_at(buf, 0);
    if page_size > 0 {
        repair_meta_checksum_at(buf, page_size);
    }
}

/// Recomputes both meta checksums. Meta 1 is taken to be at meta 0's page size when that is
/// a power of two in [1 KiB, 16 MiB] and inside the buffer; otherwise at the first offset
/// 1024·2^i (i < 15, as Go's probe) holding the bbolt magic; otherwise at 4096.
pub fn repair_meta_checksums(buf: &mut [u8]) {
    repair_meta_checksums_at(buf, meta1_offset(buf));
}

fn meta1_offset(buf: &[u8]) -> usize {
    let ok =
        |ps: usize| ps.is_power_of_two() && (1024..=16 << 20).contains(&ps) && ps + 80 <= buf.len();
    if buf.len() >= 28 {
        let ps = rd32(buf, META_PAGE_SIZE) as usize;
        if ok(ps) {
            return ps;
        }
    }
    (0..15)
        .map(|i| 1024usize << i)
        .find(|&o| o + 80 <= buf.len() && rd32(buf, o + META_MAGIC) == MAGIC)
        .unwrap_or(4096)
}

// ---------------------------------------------------------------------------------------
// Minimal bbolt reading (only what the generator needs; fixtures are trusted to be valid).

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().expect("2 bytes"))
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}
fn wr16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn wr32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn wr64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// A leaf element, as absolute offsets into the buffer.
#[derive(Debug, Clone)]
struct LeafElem {
    hdr: usize,
    flags: u32,
    key: Range<usize>,
    val: Range<usize>,
}

/// A branch element, as absolute offsets into the buffer.
#[derive(Debug, Clone)]
struct BranchElem {
    hdr: usize,
    key: Range<usize>,
    child: u64,
}

/// The layout facts the generator needs about one body.
#[derive(Clone, Copy)]
struct Layout<'a> {
    b: &'a [u8],
    ps: usize,
    root: u64,
    hwm: u64,
}

impl<'a> Layout<'a> {
    /// Reads the active meta (higher txid of the two) of a valid body.
    fn read(b: &'a [u8]) -> Layout<'a> {
        let ps = rd32(b, META_PAGE_SIZE) as usize;
        assert!(ps.is_power_of_two() && ps >= 1024, "fixture page size {ps}");
        let m = if rd64(b, ps + META_TXID) > rd64(b, META_TXID) {
            ps
        } else {
            0
        };
        assert_eq!(rd32(b, m + META_MAGIC), MAGIC, "fixture magic");
        Layout {
            b,
            ps,
            root: rd64(b, m + META_ROOT),
            hwm: rd64(b, m + META_PGID),
        }
    }

    fn off(&self, id: u64) -> usize {
        id as usize * self.ps
    }
    fn flags(&self, id: u64) -> u16 {
        rd16(self.b, self.off(id) + 8)
    }
    fn overflow(&self, id: u64) -> u32 {
        rd32(self.b, self.off(id) + 12)
    }

    /// Elements of the leaf page image starting at `base` (a page or an inline page).
    fn leaf_elems(&self, base: usize) -> Vec<LeafElem> {
        assert_eq!(
            rd16(self.b, base + 8),
            FLAG_LEAF,
            "expected a leaf at offset {base}"
        );
        let n = rd16(self.b, base + 10) as usize;
        (0..n)
            .map(|i| {
                let hdr = base + PAGE_HEADER + ELEM * i;
                let k = hdr + rd32(self.b, hdr + 4) as usize;
                let ks = rd32(self.b, hdr + 8) as usize;
                let vs = rd32(self.b, hdr + 12) as usize;
                LeafElem {
                    hdr,
                    flags: rd32(self.b, hdr),
                    key: k..k + ks,
                    val: k + ks..k + ks + vs,
                }
            })
            .collect()
    }

    fn branch_elems(&self, id: u64) -> Vec<BranchElem> {
        let base = self.off(id);
        assert_eq!(
            rd16(self.b, base + 8),
            FLAG_BRANCH,
            "expected a branch at page {id}"
        );
        let n = rd16(self.b, base + 10) as usize;
        (0..n)
            .map(|i| {
                let hdr = base + PAGE_HEADER + ELEM * i;
                let k = hdr + rd32(self.b, hdr) as usize;
                BranchElem {
                    hdr,
                    key: k..k + rd32(self.b, hdr + 4) as usize,
                    child: rd64(self.b, hdr + 8),
                }
            })
            .collect()
    }

    /// The root bucket's element for bucket `name` (the root bucket's root must be a leaf).
    fn bucket(&self, name: &[u8]) -> LeafElem {
        self.leaf_elems(self.off(self.root))
            .into_iter()
            .find(|e| &self.b[e.key.clone()] == name)
            .unwrap_or_else(|| panic!("no bucket {:?}", String::from_utf8_lossy(name)))
    }

    /// Page ids of the bucket tree under `root`, depth first, with their depth.
    fn tree(&self, root: u64) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(root, 0)];
        while let Some((id, d)) = stack.pop() {
            out.push((id, d));
            if self.flags(id) == FLAG_BRANCH {
                for e in self.branch_elems(id).into_iter().rev() {
                    stack.push((e.child, d + 1));
                }
            }
        }
        out
    }
}

/// Swaps leaf/branch element headers `i` and `i+1` of the page image at `base`, keeping each
/// header pointing at its own key (pos is relative to the header), so the keys trade places.
fn swap_elems(b: &mut [u8], base: usize, i: usize, branch: bool) {
    let h0 = base + PAGE_HEADER + ELEM * i;
    let h1 = h0 + ELEM;
    let pos_at = if branch { 0 } else { 4 };
    let mut e0: [u8; ELEM] = b[h0..h0 + ELEM].try_into().expect("16 bytes");
    let mut e1: [u8; ELEM] = b[h1..h1 + ELEM].try_into().expect("16 bytes");
    let p0 = u32::from_le_bytes(e0[pos_at..pos_at + 4].try_into().expect("4"));
    let p1 = u32::from_le_bytes(e1[pos_at..pos_at + 4].try_into().expect("4"));
    // e0 moves to h1 (16 bytes later): its pos shrinks by 16; e1 moves to h0: grows by 16.
    e0[pos_at..pos_at + 4].copy_from_slice(&(p0 - ELEM as u32).to_le_bytes());
    e1[pos_at..pos_at + 4].copy_from_slice(&(p1 + ELEM as u32).to_le_bytes());
    b[h0..h0 + ELEM].copy_from_slice(&e1);
    b[h1..h1 + ELEM].copy_from_slice(&e0);
}

// ---------------------------------------------------------------------------------------
// A minimal leaf writer: rebuilds the root leaf of a fixture whose root bucket is one leaf
// page, with changed inline buckets (dense packing, as bbolt writes it).

/// A leaf element: flags, key, value.
type Entry = (u32, Vec<u8>, Vec<u8>);

/// A leaf page image (header id `id`, no padding) holding `entries` in the given order.
fn leaf_image(id: u64, entries: &[Entry]) -> Vec<u8> {
    let mut b = vec![0u8; PAGE_HEADER + ELEM * entries.len()];
    wr64(&mut b, 0, id);
    wr16(&mut b, 8, FLAG_LEAF);
    wr16(&mut b, 10, u16::try_from(entries.len()).expect("count"));
    for (i, (flags, k, v)) in entries.iter().enumerate() {
        let hdr = PAGE_HEADER + ELEM * i;
        let pos = b.len() - hdr;
        wr32(&mut b, hdr, *flags);
        wr32(&mut b, hdr + 4, u32::try_from(pos).expect("pos"));
        wr32(&mut b, hdr + 8, u32::try_from(k.len()).expect("ksize"));
        wr32(&mut b, hdr + 12, u32::try_from(v.len()).expect("vsize"));
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b
}

/// The entries of the leaf image at `base`.
fn entries_at(l: &Layout, base: usize) -> Vec<Entry> {
    l.leaf_elems(base)
        .into_iter()
        .map(|e| (e.flags, l.b[e.key].to_vec(), l.b[e.val].to_vec()))
        .collect()
}

/// Rewrites the root leaf of `b` (one page) with `f` applied to its entries, where each inline
/// bucket's entries are decoded for `f` and encoded again (its 16-byte header kept).
fn edit_root(b: &mut [u8], l: &Layout, f: impl FnOnce(&mut Vec<(Entry, Option<Vec<Entry>>)>)) {
    let base = l.off(l.root);
    assert_eq!(l.overflow(l.root), 0, "root leaf is one page");
    let mut items: Vec<(Entry, Option<Vec<Entry>>)> = entries_at(l, base)
        .into_iter()
        .map(|e| {
            let inline = (e.0 & BUCKET_LEAF_FLAG != 0 && rd64(&e.2, 0) == 0).then(|| {
                let view = Layout { b: &e.2, ..*l };
                entries_at(&view, 16)
            });
            (e, inline)
        })
        .collect();
    f(&mut items);
    let entries: Vec<Entry> = items
        .into_iter()
        .map(|((flags, k, v), inline)| match inline {
            Some(inner) => {
                let mut value = v[..16].to_vec();
                value.extend_from_slice(&leaf_image(0, &inner));
                (flags, k, value)
            }
            None => (flags, k, v),
        })
        .collect();
    let img = leaf_image(l.root, &entries);
    assert!(img.len() <= l.ps, "rebuilt root leaf fits in one page");
    b[base..base + l.ps].fill(0);
    b[base..base + img.len()].copy_from_slice(&img);
}

/// `edit_root` on the inline bucket `name` only.
fn edit_bucket(b: &mut [u8], l: &Layout, name: &[u8], f: impl FnOnce(&mut Vec<Entry>)) {
    edit_root(b, l, |items| {
        let (_, inline) = items
            .iter_mut()
            .find(|((_, k, _), _)| k == name)
            .unwrap_or_else(|| panic!("no bucket {:?}", String::from_utf8_lossy(name)));
        f(inline.as_mut().expect("an inline bucket"));
    });
}

/// Sets `key` in a bucket's entries (replacing or inserting in key order).
fn set(entries: &mut Vec<Entry>, key: &[u8], value: &[u8]) {
    match entries.binary_search_by(|e| e.1.as_slice().cmp(key)) {
        Ok(i) => entries[i].2 = value.to_vec(),
        Err(i) => entries.insert(i, (0, key.to_vec(), value.to_vec())),
    }
}

/// Rewrites the freelist page of a synced-freelist body with `f` applied to its ids.
fn edit_freelist(b: &mut [u8], l: &Layout, f: impl FnOnce(&mut Vec<u64>)) {
    let m = if rd64(b, l.ps + META_TXID) > rd64(b, META_TXID) {
        l.ps
    } else {
        0
    };
    let id = rd64(b, m + 48);
    let base = l.off(id);
    assert_eq!(l.flags(id), FLAG_FREELIST, "freelist page {id}");
    let n = rd16(b, base + 10) as usize;
    assert!(n < 0xFFFF, "no escaped count in the fixture");
    let mut ids: Vec<u64> = (0..n).map(|i| rd64(b, base + 16 + 8 * i)).collect();
    f(&mut ids);
    ids.sort_unstable();
    assert!(16 + 8 * ids.len() <= l.ps, "ids fit in the page");
    wr16(b, base + 10, ids.len() as u16);
    for (i, v) in ids.iter().enumerate() {
        wr64(b, base + 16 + 8 * i, *v);
    }
}

// ---------------------------------------------------------------------------------------
// The generator.

/// Deterministic pseudo-random bytes (splitmix64).
pub fn pseudo_random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A proptest strategy for opaque bytes (values, long keys): a length in `len` that proptest
/// picks and shrinks, and contents from a seed. Drawn byte by byte (`vec(any::<u8>(), ..)`),
/// a kilobyte value cost a thousand strategy trees and ChaCha calls in the debug build, most
/// of the bbolt property tests' CPU.
pub fn arb_bytes(
    len: std::ops::Range<usize>,
) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::strategy::Strategy;
    (len, proptest::arbitrary::any::<u64>()).prop_map(|(n, seed)| pseudo_random_bytes(seed, n))
}

/// The fixture with inline buckets only (5 pages).
pub const SMALL: &str = "small-v35.db";
/// The fixture with branch and overflow pages (2612 pages).
pub const K8S: &str = "k8s-v35.db";
/// Users, roles and auth enabled (every bucket inline in the root leaf).
pub const AUTH: &str = "auth-v35.db";
/// A synced freelist (converted by Go bbolt) and a key bucket with an overflow leaf.
pub const SYNCED: &str = "synced-v35.db";

struct Builder<'s> {
    out: Vec<Variant>,
    source: &'static str,
    file: &'s [u8],
}

impl Builder<'_> {
    fn push(
        &mut self,
        name: &'static str,
        what: &'static str,
        bytes: Vec<u8>,
        expect: Expect,
        body: Body,
        etcdutl_status: Outcome,
    ) {
        self.out.push(Variant {
            name,
            source: self.source,
            what,
            bytes,
            expect,
            body,
            etcdutl_status,
        });
    }

    /// Body copy → `f` → meta checksums recomputed → fresh trailer.
    fn fixed(&self, f: impl FnOnce(&mut Vec<u8>, &Layout)) -> Vec<u8> {
        let body = strip_trailer(self.file);
        let layout = Layout::read(body);
        let mut b = body.to_vec();
        f(&mut b, &layout);
        repair_meta_checksums_at(&mut b, layout.ps);
        append_trailer(&mut b);
        b
    }
}

/// Builds every variant from the two fixtures' bytes (`small` = small-v35.db, `k8s` =
/// k8s-v35.db, both with their trailer).
pub fn build(small: &[u8], k8s: &[u8]) -> Vec<Variant> {
    use Body as B;
    use Expect as E;
    use Outcome::{Error as Err_, Ok as Ok_, Panic};

    let mut v = Builder {
        out: Vec::new(),
        source: SMALL,
        file: small,
    };
    let sbody = strip_trailer(small);
    let sl = Layout::read(sbody);
    let ps = sl.ps;

    // --- trailer / size layer -----------------------------------------------------------
    v.push(
        "empty",
        "a 0-byte file",
        Vec::new(),
        E::MissingHash,
        B::NotBbolt,
        Err_,
    );
    v.push(
        "tiny-1",
        "the first byte only",
        small[..1].to_vec(),
        E::MissingHash,
        B::NotBbolt,
        Err_,
    );
    v.push(
        "tiny-31",
        "the first 31 bytes (shorter than a trailer)",
        small[..31].to_vec(),
        E::MissingHash,
        B::NotBbolt,
        Err_,
    );
    v.push(
        "tiny-32",
        "the first 32 bytes: 32 % 512 == 32, so it is all trailer, and an empty body",
        small[..32].to_vec(),
        E::HashMismatch,
        B::NotBbolt,
        Err_,
    );
    v.push(
        "tiny-100",
        "the first 100 bytes",
        small[..100].to_vec(),
        E::MissingHash,
        B::NotBbolt,
        Err_,
    );
    v.push(
        "truncated-mid-page",
        "cut 100 bytes into page 2 (metas intact, root page 4 gone)",
        small[..2 * ps + 100].to_vec(),
        E::MissingHash,
        B::Structural,
        Panic,
    );
    v.push(
        "truncated-page-boundary",
        "cut after page 2 (3 of 5 pages; the root page is gone)",
        small[..3 * ps].to_vec(),
        E::MissingHash,
        B::Structural,
        Panic,
    );
    v.push(
        "truncated-in-trailer",
        "the last 10 bytes of the trailer cut: no trailer by size, body = whole bbolt image + 22 stray bytes",
        small[..small.len() - 10].to_vec(),
        E::MissingHash,
        B::Valid,
        Ok_,
    );
    v.push(
        "no-trailer",
        "the bbolt image without its trailer (like a member db)",
        sbody.to_vec(),
        E::MissingHash,
        B::Valid,
        Ok_,
    );
    let mut f = small.to_vec();
    let last = f.len() - 1;
    f[last] ^= 0x01;
    v.push(
        "trailer-byte-flipped",
        "last byte of the trailer xor 0x01",
        f,
        E::HashMismatch,
        B::Valid,
        Ok_,
    );
    let mut f = small.to_vec();
    let kv = sl.leaf_elems(sl.bucket(b"key").val.start + 16);
    let target = kv[0].val.end - 1;
    f[target] ^= 0x20;
    v.push(
        "body-byte-flipped-old-trailer",
        "one byte of a KeyValue's value in the key bucket xor 0x20, trailer left as it was",
        f,
        E::HashMismatch,
        B::Valid,
        Ok_,
    );
    let mut f = pseudo_random_bytes(0x5EED_0001, 2 * ps);
    append_trailer(&mut f);
    v.push(
        "random-bytes-valid-trailer",
        "8 KiB of pseudo-random bytes with a correct trailer",
        f,
        E::NotBbolt,
        B::NotBbolt,
        Err_,
    );

    // --- meta layer (trailer recomputed) --------------------------------------------------
    let f = {
        let mut b = sbody.to_vec();
        for m in [0, ps] {
            b[m + META_CHECKSUM] ^= 0xFF;
        }
        append_trailer(&mut b);
        b
    };
    v.push(
        "meta-both-checksums-bad",
        "checksum byte 0 of both metas xor 0xff",
        f,
        E::NotBbolt,
        B::NotBbolt,
        Err_,
    );
    let f = v.fixed(|b, l| {
        for m in [0, l.ps] {
            wr32(b, m + META_MAGIC, 0xDEAD_BEEF);
        }
    });
    v.push(
        "meta-both-bad-magic",
        "magic 0xdeadbeef in both metas, checksums recomputed",
        f,
        E::NotBbolt,
        B::NotBbolt,
        Err_,
    );
    let f = v.fixed(|b, l| {
        for m in [0, l.ps] {
            wr32(b, m + META_VERSION, 3);
        }
    });
    v.push(
        "meta-both-bad-version",
        "version 3 in both metas, checksums recomputed",
        f,
        E::NotBbolt,
        B::NotBbolt,
        Err_,
    );
    for (name, what, size, etcdutl) in [
        (
            "meta-page-size-0",
            "page size 0 in both metas, checksums recomputed",
            0u32,
            Panic,
        ),
        (
            "meta-page-size-3",
            "page size 3 in both metas, checksums recomputed",
            3,
            Panic,
        ),
        (
            "meta-page-size-2g",
            "page size 2^31 in both metas, checksums recomputed",
            1 << 31,
            Err_,
        ),
    ] {
        let f = v.fixed(|b, l| {
            for m in [0, l.ps] {
                wr32(b, m + META_PAGE_SIZE, size);
            }
        });
        v.push(name, what, f, E::NotBbolt, B::NotBbolt, etcdutl);
    }
    let f = v.fixed(|b, l| {
        for m in [0, l.ps] {
            wr64(b, m + META_ROOT, l.hwm + 10);
        }
    });
    v.push(
        "meta-root-beyond-hwm",
        "root bucket page = HWM + 10 in both metas",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, l| {
        for m in [0, l.ps] {
            wr64(b, m + META_PGID, l.hwm + 100);
        }
    });
    v.push(
        "meta-hwm-beyond-file",
        "HWM = real HWM + 100 in both metas (file 100 pages short)",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let mut f = sbody.to_vec();
    f[META_CHECKSUM] ^= 0xFF;
    append_trailer(&mut f);
    v.push(
        "meta0-checksum-bad-fallback",
        "meta 0 checksum spoiled: bbolt falls back to meta 1 (txid-1, same tree) - must be accepted",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );

    // --- pages of the small file (root leaf = page 4, all buckets inline) ------------------
    let roff = sl.off(sl.root);
    let f = v.fixed(|b, l| b[l.off(l.root)..l.off(l.root) + l.ps].fill(0));
    v.push(
        "root-page-zeroed",
        "the root bucket's leaf page zero-filled (a lost write)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, l| wr64(b, l.off(l.root), l.root - 1));
    v.push(
        "root-page-id-mismatch",
        "the root leaf's header id says root-1",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let f = v.fixed(|b, l| wr16(b, l.off(l.root) + 8, FLAG_FREELIST));
    v.push(
        "root-page-bad-flags",
        "the root leaf's flags = 0x10 (freelist)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr32(b, roff + PAGE_HEADER + 4, 0xFFFF_FF00));
    v.push(
        "leaf-elem-pos-absurd",
        "root leaf element 0: pos = 0xffffff00",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr32(b, roff + PAGE_HEADER + 8, 0x7FFF_FFFF));
    v.push(
        "leaf-elem-ksize-absurd",
        "root leaf element 0: ksize = 0x7fffffff",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr32(b, roff + PAGE_HEADER + 12, 0x7FFF_FFFF));
    v.push(
        "leaf-elem-vsize-absurd",
        "root leaf element 0: vsize = 0x7fffffff",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr16(b, roff + 10, 0xFFF0));
    v.push(
        "leaf-count-absurd",
        "root leaf count = 0xfff0 (headers alone need 1 MiB)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| swap_elems(b, roff, 0, false));
    v.push(
        "leaf-keys-out-of-order",
        "root leaf elements 0 and 1 swapped (bucket names out of order)",
        f,
        E::Structural,
        B::Structural,
        Err_,
    );
    let kb = sl.bucket(b"key");
    let f = v.fixed(|b, _| wr32(b, kb.hdr + 12, 8));
    v.push(
        "bucket-value-short",
        "bucket `key`'s value length set to 8 (< 16-byte bucket header)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let inline = kb.val.start + 16;
    let f = v.fixed(|b, _| wr16(b, inline + 8, FLAG_FREELIST));
    v.push(
        "inline-bucket-bad-flags",
        "bucket `key`'s inline page header flags = 0x10",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr16(b, inline + 10, 0xFFF0));
    v.push(
        "inline-bucket-bad-count",
        "bucket `key`'s inline page header count = 0xfff0",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let ie = sl.leaf_elems(inline)[0].hdr;
    let f = v.fixed(|b, _| wr32(b, ie, BUCKET_LEAF_FLAG));
    v.push(
        "inline-bucket-nested-flag",
        "first entry inside inline bucket `key` flagged as a sub-bucket (its value is a KeyValue, not a bucket header)",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let mut out = v.out;

    // --- pages of the k8s file (key bucket: 3-level tree, overflow leaves) ---------------
    let mut v = Builder {
        out: Vec::new(),
        source: K8S,
        file: k8s,
    };
    let kbody = strip_trailer(k8s);
    let kl = Layout::read(kbody);
    let key_root = rd64(kbody, kl.bucket(b"key").val.start);
    assert_eq!(
        kl.flags(key_root),
        FLAG_BRANCH,
        "k8s key bucket root is a branch"
    );
    let tree = kl.tree(key_root);
    let b0 = kl.branch_elems(key_root)[0].child;
    assert_eq!(kl.flags(b0), FLAG_BRANCH, "k8s key bucket has depth >= 3");
    let b0e = kl.branch_elems(b0);
    let leaf = b0e[1].child;
    assert_eq!(kl.flags(leaf), FLAG_LEAF, "depth-3 children are leaves");
    let (ovf, _) = *tree
        .iter()
        .find(|(id, _)| kl.flags(*id) == FLAG_LEAF && kl.overflow(*id) > 0)
        .expect("an overflow leaf in the k8s key bucket");
    let pages = (kbody.len() / kl.ps) as u32;

    v.push(
        "k8s-truncated-half",
        "k8s snapshot cut at the page boundary half-way (references past EOF)",
        kbody[..(kl.hwm as usize / 2) * kl.ps].to_vec(),
        E::MissingHash,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, l| wr32(b, l.off(ovf) + 12, pages + 1000));
    v.push(
        "overflow-past-eof",
        "an overflow leaf's overflow count = file pages + 1000",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, l| b[l.off(leaf)..l.off(leaf) + l.ps].fill(0));
    v.push(
        "k8s-leaf-zeroed",
        "a referenced leaf of the key bucket zero-filled (a lost write)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let leaf_off = kl.off(leaf);
    assert!(kl.leaf_elems(leaf_off).len() >= 2, "a leaf with two keys");
    let f = v.fixed(|b, _| swap_elems(b, leaf_off, 0, false));
    v.push(
        "k8s-leaf-keys-out-of-order",
        "a key-bucket leaf's elements 0 and 1 swapped (revisions out of order)",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let child = b0e[1].hdr + 8;
    let f = v.fixed(|b, l| wr64(b, child, l.hwm + 1000));
    v.push(
        "branch-child-beyond-hwm",
        "a level-2 branch's child id = HWM + 1000",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr64(b, child, b0));
    v.push(
        "branch-child-self",
        "a level-2 branch's child id = its own id",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr64(b, child, 0));
    v.push(
        "branch-child-meta0",
        "a level-2 branch's child id = 0 (meta page)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr64(b, child, 1));
    v.push(
        "branch-child-meta1",
        "a level-2 branch's child id = 1 (meta page)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, _| wr64(b, child, key_root));
    v.push(
        "branch-child-ancestor",
        "a level-2 branch's child id = the key bucket's root branch (a cycle)",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let b0off = kl.off(b0);
    let f = v.fixed(|b, _| swap_elems(b, b0off, 0, true));
    v.push(
        "branch-keys-out-of-order",
        "a level-2 branch's elements 0 and 1 swapped (keys out of order)",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let (c0, c1) = (b0e[0].hdr + 8, b0e[1].hdr + 8);
    let f = v.fixed(|b, _| {
        let (x, y) = (rd64(b, c0), rd64(b, c1));
        wr64(b, c0, y);
        wr64(b, c1, x);
    });
    v.push(
        "branch-separator-violation",
        "a level-2 branch's first two child ids swapped: separators stay sorted, the leaves' keys violate them",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let f = v.fixed(|b, _| wr16(b, b0off + 10, 0));
    v.push(
        "branch-count-zero",
        "a level-2 branch's element count = 0",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    let f = v.fixed(|b, l| {
        // A key-bucket leaf entry turned into a nested bucket whose root is the key
        // bucket's own root: walking it leads back to where it started.
        let e = &l.leaf_elems(l.off(leaf))[0];
        wr32(b, e.hdr, BUCKET_LEAF_FLAG);
        wr32(b, e.hdr + 12, 16);
        wr64(b, e.val.start, key_root);
        wr64(b, e.val.start + 8, 0);
    });
    v.push(
        "nested-bucket-ancestor",
        "a key-bucket entry made a nested bucket whose root is the key bucket's root",
        f,
        E::Structural,
        B::Structural,
        Panic,
    );
    out.extend(v.out);

    // --- etcd records, rebuilt inline buckets (issue 10: values etcd decodes) -------------
    let mut v = Builder {
        out: Vec::new(),
        source: SMALL,
        file: small,
    };
    let f =
        v.fixed(|b, l| edit_bucket(b, l, b"auth", |e| set(e, b"authRevision", b"\x00\x00\x01")));
    v.push(
        "auth-revision-short",
        "auth/authRevision is 3 bytes (etcd reads it with binary.BigEndian.Uint64 at boot)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_bucket(b, l, b"alarm", |e| set(e, b"\x08\x80", b"")));
    v.push(
        "alarm-not-alarm-member",
        "an alarm key that is not an etcdserverpb.AlarmMember (a cut varint)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"meta", |e| {
            set(e, b"scheduledCompactRev", b"\x00\x00\x00\x00")
        })
    });
    v.push(
        "meta-compact-rev-short",
        "meta/scheduledCompactRev is 4 bytes (etcd reads 17 at boot)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    let f =
        v.fixed(|b, l| edit_bucket(b, l, b"cluster", |e| set(e, b"downgrade", b"{\"enabled\":")));
    v.push(
        "cluster-downgrade-not-json",
        "cluster/downgrade is cut JSON (etcd 3.5 decodes it at boot)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"members", |e| {
            let k = e[0].1.clone();
            set(e, &k, b"{\"id\":");
        })
    });
    v.push(
        "members-record-malformed",
        "a members value that is not member JSON (restore replaces the bucket: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_root(b, l, |items| items.retain(|((_, k, _), _)| k != b"key")));
    v.push(
        "key-bucket-missing",
        "no key bucket (etcd creates it at boot: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    // Warnings: what restore replaces or etcd tolerates.
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"key", |e| {
            // "foo" at 2_1: mod_revision 2 -> 3 (one varint byte).
            let kv = &mut e[1].2;
            let at = kv
                .iter()
                .position(|&x| x == 0x18)
                .expect("mod_revision tag");
            kv[at + 1] = 3;
        })
    });
    v.push(
        "kv-mod-revision-mismatch",
        "a KeyValue whose mod_revision is not its revision (etcd serves it as stored: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_bucket(b, l, b"cluster", |e| set(e, b"clusterVersion", b"3.5")));
    v.push(
        "cluster-version-not-semver",
        "cluster/clusterVersion is \"3.5\" (etcd 3.5 does not read it, 3.6 panics: a warning for 3.5)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_bucket(b, l, b"meta", |e| set(e, b"confState", b"{\"voters\":")));
    v.push(
        "meta-conf-state-not-json",
        "meta/confState is cut JSON (etcd 3.5 does not read it: a warning for 3.5)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_bucket(b, l, b"meta", |e| set(e, b"consistent_index", b"\x07")));
    v.push(
        "meta-consistent-index-short",
        "meta/consistent_index is 1 byte (restore rewrites it: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        // AlarmMember{MemberID: 0x6747fe7fe56705e2, Alarm: NOSPACE}
        let mut k = vec![0x08];
        let mut id: u64 = 0x6747_fe7f_e567_05e2;
        while id >= 0x80 {
            k.push((id as u8) | 0x80);
            id >>= 7;
        }
        k.push(id as u8);
        k.extend_from_slice(&[0x10, 0x01]);
        edit_bucket(b, l, b"alarm", |e| set(e, &k, b""))
    });
    v.push(
        "alarm-raised",
        "a NOSPACE alarm in the alarm bucket (etcd starts with it raised: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        let t0 = rd64(b, META_TXID);
        wr64(b, l.ps + META_TXID, t0 + 1);
        wr32(b, l.ps + META_PAGE_SIZE, 8192);
    });
    v.push(
        "meta-page-size-disagree",
        "meta 1 is newer (txid + 1) and declares page size 8192; meta 0 says 4096",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    out.extend(v.out);

    let auth = fixtures::read_snapshot(AUTH);
    let mut v = Builder {
        out: Vec::new(),
        source: AUTH,
        file: &auth,
    };
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"authUsers", |e| {
            let k = e[0].1.clone();
            set(e, &k, b"\x0a\x05al");
        })
    });
    v.push(
        "auth-user-not-user",
        "an authUsers value that is not an authpb.User (etcd panics on user list)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"authRoles", |e| {
            let last = e.len() - 1;
            e[last].2 = b"\x0a\x06reader\x12\x04\x08\x01\x12\x09".to_vec();
        })
    });
    v.push(
        "auth-role-not-role",
        "an authRoles value whose permission is cut (etcd panics on role get)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    out.extend(v.out);

    let synced = fixtures::read_snapshot(SYNCED);
    let mut v = Builder {
        out: Vec::new(),
        source: SYNCED,
        file: &synced,
    };
    let sl = Layout::read(strip_trailer(&synced));
    let skey = rd64(sl.b, sl.bucket(b"key").val.start);
    let (ovf, _) = *sl
        .tree(skey)
        .iter()
        .find(|(id, _)| sl.flags(*id) == FLAG_LEAF && sl.overflow(*id) >= 2)
        .expect("an overflow leaf in the synced fixture");
    let f = v.fixed(|b, l| edit_freelist(b, l, |ids| ids.push(ovf + 2)));
    v.push(
        "freelist-lists-live-overflow",
        "the synced freelist lists the last overflow page of a live leaf",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let f = v.fixed(|b, l| {
        let m = if rd64(b, l.ps + META_TXID) > rd64(b, META_TXID) {
            l.ps
        } else {
            0
        };
        let own = rd64(b, m + 48);
        edit_freelist(b, l, |ids| ids.push(own));
    });
    v.push(
        "freelist-lists-itself",
        "the synced freelist lists its own page",
        f,
        E::Structural,
        B::Structural,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_freelist(b, l, |ids| ids.push(ovf)));
    v.push(
        "freelist-lists-live-leaf",
        "the synced freelist lists a live leaf's first page (Go's check sees this one)",
        f,
        E::Structural,
        B::Structural,
        Err_,
    );
    let f = v.fixed(|b, l| {
        edit_bucket(b, l, b"lease", |e| {
            // The ID varint's first byte: another ID, same length.
            e[0].2[1] ^= 0x02;
        })
    });
    v.push(
        "lease-id-mismatch",
        "a lease stored under a key that is not its ID (etcd uses the ID in the value: a warning)",
        f,
        E::Accept,
        B::Valid,
        Ok_,
    );
    let f = v.fixed(|b, l| edit_bucket(b, l, b"lease", |e| e[0].2 = b"\x08\xff".to_vec()));
    v.push(
        "lease-not-lease",
        "a lease value that is not a leasepb.Lease (etcd panics at boot)",
        f,
        E::EtcdRecord,
        B::Valid,
        Ok_,
    );
    out.extend(v.out);
    out
}

/// The corpus built from the checked-in fixtures, made once per test binary.
pub fn corpus() -> &'static [Variant] {
    static CORPUS: OnceLock<Vec<Variant>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        build(
            &fixtures::read_snapshot(SMALL),
            &fixtures::read_snapshot(K8S),
        )
    })
}

/// One variant by name.
pub fn variant(name: &str) -> &'static Variant {
    corpus()
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no corruption variant named {name}"))
}

/// Writes every variant to `<dir>/<name>.db` (e.g. as fuzz seeds); returns the paths.
pub fn write_corpus(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    corpus().iter().map(|v| v.write_to(dir)).collect()
}
