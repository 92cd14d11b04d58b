//! Continuous backup's recorded changes: the [`ChangeSegment`]s an agent
//! records on top of a full snapshot, stored sealed beside it.
//!
//! ```text
//! REPO/deltas/<base id>/<first>-<last>          one segment (revisions
//!                                               zero-padded to 20 digits,
//!                                               so names sort)
//! REPO/deltas/<base id>/<first>-<last>-<sealed> an empty segment (no key
//!                                               change: leases and
//!                                               compactions of a quiet
//!                                               period), named also by
//!                                               its sealed time in ns, as
//!                                               several cover the same
//!                                               empty range
//! ```
//!
//! An object is the magic `ESNDELT1`, a fixed-length header and the body:
//!
//! ```text
//! header (sealed)  version u8 (1), base[32], first i64, last i64,
//!                  sealed_ns i64, revisions u64, events u64, raw_len u64,
//!                  body_len u64, body_sum[32], header_sum[32]
//! body (sealed)    one zstd frame of the encoded segment:
//!                  first i64 last i64 sealed_ns i64
//!                  n u32, n x (revision i64 observed_ns i64 m u32,
//!                    m x (kind u8 key_len u32 key create i64 mod i64
//!                         version i64 value_len u32 value lease i64))
//!                  n u32, n x (lease id i64 ttl i64 alive u8)
//!                  n u32, n x (compaction revision i64 seen_at i64)
//! ```
//!
//! Both parts are sealed as every blob is (`crypto.rs`: encrypted, and
//! bound to the base and the object's name, in an encrypted repository)
//! and carry a checksum ([`Crypto::id`], keyed in an encrypted
//! repository), so a flipped byte is an error naming the object in a plain
//! repository too. The header has a fixed length, so a listing reads only
//! it ([`Repository::changes`]: one ranged read per segment).
//!
//! A segment is written once, under `tmp/` and renamed (or in one PUT), as
//! every object is; a segment with the name of a stored one is a no-op if
//! it is the same segment and refused otherwise, and one overlapping a
//! stored one is refused, so one name never holds two contents and a chain
//! never holds a revision twice.
//!
//! Retention: a segment belongs to its base. Forgetting the base forgets
//! its segments (they are read only for a present base); prune, holding
//! the lock exclusively, deletes the segments of every base that is
//! neither present nor missing (see `held.rs`): the forgotten ones, and
//! what an interrupted prune left. A put checks that its base is present
//! and not forgotten under the shared lock, so prune never runs beside it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::backend::keys;
use super::check::{CheckProblem, CheckReport};
use super::codec::{Dec, DecResult, Enc, hex};
use super::crypto::{Crypto, NONCE_LEN, TAG_LEN};
use super::error::{RepoError, Result};
use super::held;
use super::manifest::Manifest;
use super::repository::{Repository, SnapshotId};
use crate::etcd::KeyValue;
use crate::etcd::change::{
    ChangeSegment, CompactionRecord, EventKind, KeyEvent, LeaseRecord, RevisionChanges,
    before_first_change, chain_range,
};

/// Prefix of every delta object.
pub(crate) const DELTAS: &str = "deltas/";
/// Leading magic of a delta object.
const MAGIC: &[u8; 8] = b"ESNDELT1";
/// The encoding written.
const VERSION: u8 = 1;
/// Length of the header's plaintext.
const HEADER_LEN: usize = 1 + 32 + 8 * 7 + 32 + 32;
/// Largest stored delta object; a larger segment is refused (a recorder
/// seals one every few seconds, far below this).
pub(crate) const MAX_DELTA_OBJECT: u64 = 512 << 20;
/// Largest decoded segment body.
const MAX_RAW: u64 = 1 << 30;
/// zstd level of segment bodies.
const LEVEL: i32 = 3;
/// Digits of a zero-padded revision or time in a name.
const DIGITS: usize = 20;

// Smallest encodings, bounding counts by the bytes left.
const MIN_REVISION: usize = 8 + 8 + 4;
const MIN_EVENT: usize = 1 + 4 + 8 * 3 + 4 + 8;
const MIN_LEASE: usize = 8 + 8 + 1;
const MIN_COMPACTION: usize = 8 + 8;

/// One stored segment, as [`Repository::changes`] lists it (its events
/// are not loaded).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangeSegmentInfo {
    /// The first revision it covers.
    pub first: i64,
    /// The last revision it covers (`first - 1` for an empty segment).
    pub last: i64,
    /// When it was sealed.
    pub sealed: SystemTime,
    /// Revisions with key changes in it.
    pub revisions: u64,
    /// Key events in it.
    pub events: u64,
    /// Bytes stored.
    pub size: u64,
    /// The object's name under `deltas/<base>/`.
    pub(crate) name: String,
}

impl ChangeSegmentInfo {
    /// Whether it covers no revision.
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

/// The chain of segments stored on top of one full snapshot: what can be
/// restored with it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangeChain {
    /// The full snapshot.
    pub base: SnapshotId,
    /// Its revision.
    pub base_revision: i64,
    /// Segments stored on top of it.
    pub segments: usize,
    /// The last revision reachable from the base with no hole: the base's
    /// revision when no segment follows it.
    pub last_revision: i64,
    /// When the last segment of the contiguous part was sealed (`None`
    /// without one, or when its header cannot be read).
    pub last_sealed: Option<SystemTime>,
    /// Holes: revision ranges (inclusive) no segment covers, between the
    /// base and a later segment.
    pub gaps: Vec<(i64, i64)>,
    /// Segments that overlap an earlier one (their names).
    pub overlaps: Vec<String>,
}

/// `deltas/<base>/`.
pub(crate) fn dir(base: &[u8; 32]) -> String {
    format!("{DELTAS}{}/", hex(base))
}

/// The object name of a segment.
fn name_of(first: i64, last: i64, sealed_ns: i64) -> String {
    if last < first {
        format!(
            "{first:0DIGITS$}-{last:0DIGITS$}-{:0DIGITS$}",
            sealed_ns.max(0)
        )
    } else {
        format!("{first:0DIGITS$}-{last:0DIGITS$}")
    }
}

/// Parses a segment's name: first, last, and the sealed time of an empty
/// one. Only canonical names parse (so one range has one name).
fn parse_name(name: &str) -> Option<(i64, i64, Option<i64>)> {
    let mut parts = name.split('-');
    let mut num = || -> Option<i64> {
        let p = parts.next()?;
        if p.len() != DIGITS || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (first, last) = (num()?, num()?);
    let sealed = num();
    if parts.next().is_some() || name_of(first, last, sealed.unwrap_or(0)) != name {
        return None;
    }
    Some((first, last, sealed))
}

/// The revision range a segment name covers.
pub(crate) fn parse_name_range(name: &str) -> Option<(i64, i64)> {
    parse_name(name).map(|(f, l, _)| (f, l))
}

/// Nanoseconds since the Unix epoch (negative before it, saturated).
pub(crate) fn time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The time `ns` nanoseconds from the Unix epoch.
pub(crate) fn from_ns(ns: i64) -> Option<SystemTime> {
    let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    crate::go::time::from_unix(ns.div_euclid(1_000_000_000), nanos)
}

/// What is wrong with a segment, if anything: the rules of
/// [`ChangeSegment`] (a contiguous range from revision 1 on, revisions
/// strictly increasing inside it, each with events of its own revision).
pub(crate) fn invalid(seg: &ChangeSegment) -> Option<String> {
    if seg.first < 1 {
        return Some(format!("first revision {} is below 1", seg.first));
    }
    if seg.last < seg.first.saturating_sub(1) {
        return Some(format!(
            "last revision {} is below first {} - 1",
            seg.last, seg.first
        ));
    }
    let mut prev = seg.first.saturating_sub(1);
    for r in &seg.revisions {
        if r.revision <= prev || r.revision > seg.last {
            return Some(format!(
                "revision {} is out of order or outside {}..={}",
                r.revision, seg.first, seg.last
            ));
        }
        prev = r.revision;
        if r.events.is_empty() {
            return Some(format!("revision {} has no event", r.revision));
        }
        if let Some(why) = before_first_change(r.revision) {
            return Some(why);
        }
        if let Some(e) = r.events.iter().find(|e| e.kv.mod_revision != r.revision) {
            return Some(format!(
                "an event of revision {} has mod revision {}",
                r.revision, e.kv.mod_revision
            ));
        }
    }
    None
}

/// Encodes a segment's body (before compression).
pub(crate) fn encode_body(seg: &ChangeSegment) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = encode_body_to(seg, &mut out);
    out
}

/// Bytes [`encode_body_to`] gathers before handing them on.
const ENCODE_PIECE: usize = 64 << 10;

/// [`encode_body`] written to `w` a piece at a time (a segment's events
/// go straight into the compressor: a seal holds no second copy of
/// them); the number of bytes written.
fn encode_body_to(seg: &ChangeSegment, w: &mut impl std::io::Write) -> std::io::Result<u64> {
    let mut e = Enc::with_capacity(ENCODE_PIECE + 1024);
    let mut total = 0u64;
    // Hands `e`'s bytes and then `big` (a key or value too large to
    // gather) to `w`.
    let mut flush = |e: &mut Enc, big: &[u8]| -> std::io::Result<()> {
        w.write_all(&e.0)?;
        w.write_all(big)?;
        total += (e.0.len() + big.len()) as u64;
        e.0.clear();
        Ok(())
    };
    e.i64(seg.first).i64(seg.last).i64(time_ns(seg.sealed));
    e.u32(seg.revisions.len() as u32);
    for r in &seg.revisions {
        e.i64(r.revision)
            .i64(time_ns(r.observed))
            .u32(r.events.len() as u32);
        for ev in &r.events {
            let kv = &ev.kv;
            e.u8(match ev.kind {
                EventKind::Put => 0,
                EventKind::Delete => 1,
            })
            .u32(kv.key.len() as u32);
            if kv.key.len() > ENCODE_PIECE {
                flush(&mut e, &kv.key)?;
            } else {
                e.bytes(&kv.key);
            }
            e.i64(kv.create_revision)
                .i64(kv.mod_revision)
                .i64(kv.version)
                .u32(kv.value.len() as u32);
            if kv.value.len() > ENCODE_PIECE {
                flush(&mut e, &kv.value)?;
            } else {
                e.bytes(&kv.value);
            }
            e.i64(kv.lease);
            if e.0.len() >= ENCODE_PIECE {
                flush(&mut e, &[])?;
            }
        }
    }
    e.u32(seg.leases.len() as u32);
    for l in &seg.leases {
        e.i64(l.id).i64(l.ttl).u8(u8::from(l.alive_at_end));
    }
    e.u32(seg.compactions.len() as u32);
    for c in &seg.compactions {
        e.i64(c.revision).i64(c.seen_at_revision);
    }
    flush(&mut e, &[])?;
    Ok(total)
}

/// A count of elements of at least `min` bytes each, refused if they
/// cannot fit what is left (so no allocation is sized beyond the input).
fn count(d: &mut Dec<'_>, min: usize, what: &str) -> DecResult<usize> {
    let n = d.u32(what)? as usize;
    if d.remaining() / min < n {
        return d.err(format!("{what}: {n} do not fit {} bytes", d.remaining()));
    }
    Ok(n)
}

fn time(d: &Dec<'_>, ns: i64, what: &str) -> DecResult<SystemTime> {
    from_ns(ns).map_or_else(|| d.err(format!("{what}: time {ns} out of range")), Ok)
}

fn bytes_field(d: &mut Dec<'_>, what: &str) -> DecResult<Vec<u8>> {
    let n = d.u32(what)? as usize;
    Ok(d.bytes(n, what)?.to_vec())
}

/// Decodes a segment's body (untrusted bytes: every count is bounded by
/// what is left, and the result obeys [`invalid`]'s rules).
pub(crate) fn decode_body(b: &[u8]) -> DecResult<ChangeSegment> {
    let mut d = Dec::new(b);
    let first = d.i64("first revision")?;
    let last = d.i64("last revision")?;
    let sealed_ns = d.i64("sealed time")?;
    let sealed = time(&d, sealed_ns, "sealed")?;
    let n = count(&mut d, MIN_REVISION, "revisions")?;
    let mut revisions = Vec::with_capacity(n);
    for _ in 0..n {
        let revision = d.i64("revision")?;
        let observed_ns = d.i64("observed time")?;
        let observed = time(&d, observed_ns, "observed")?;
        let m = count(&mut d, MIN_EVENT, "events")?;
        let mut events = Vec::with_capacity(m);
        for _ in 0..m {
            let kind = match d.u8("event kind")? {
                0 => EventKind::Put,
                1 => EventKind::Delete,
                k => return d.err(format!("unknown event kind {k}")),
            };
            let key = bytes_field(&mut d, "key")?;
            let create_revision = d.i64("create revision")?;
            let mod_revision = d.i64("mod revision")?;
            let version = d.i64("version")?;
            let value = bytes_field(&mut d, "value")?;
            let lease = d.i64("lease")?;
            events.push(KeyEvent {
                kind,
                kv: KeyValue {
                    key,
                    create_revision,
                    mod_revision,
                    version,
                    value,
                    lease,
                },
            });
        }
        revisions.push(RevisionChanges {
            revision,
            events,
            observed,
        });
    }
    let n = count(&mut d, MIN_LEASE, "leases")?;
    let mut leases = Vec::with_capacity(n);
    for _ in 0..n {
        let id = d.i64("lease id")?;
        let ttl = d.i64("lease ttl")?;
        let alive_at_end = match d.u8("lease alive")? {
            0 => false,
            1 => true,
            v => return d.err(format!("lease alive flag {v}")),
        };
        leases.push(LeaseRecord {
            id,
            ttl,
            alive_at_end,
        });
    }
    let n = count(&mut d, MIN_COMPACTION, "compactions")?;
    let mut compactions = Vec::with_capacity(n);
    for _ in 0..n {
        compactions.push(CompactionRecord {
            revision: d.i64("compaction revision")?,
            seen_at_revision: d.i64("compaction seen at")?,
        });
    }
    d.finish("segment")?;
    let seg = ChangeSegment {
        first,
        last,
        revisions,
        leases,
        compactions,
        sealed,
    };
    if let Some(why) = invalid(&seg) {
        return d.err(why);
    }
    Ok(seg)
}

/// The decoded header of a delta object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    base: [u8; 32],
    first: i64,
    last: i64,
    sealed_ns: i64,
    revisions: u64,
    events: u64,
    raw_len: u64,
    body_len: u64,
    body_sum: [u8; 32],
}

/// Associated data binding a header or body to its base and name.
fn aad(part: &str, base: &[u8; 32], name: &str) -> Vec<u8> {
    format!("{DELTAS}{part} {}/{name}", hex(base)).into_bytes()
}

/// Length of the stored header.
fn stored_header_len(crypto: &Crypto) -> usize {
    HEADER_LEN
        + if crypto.is_encrypted() {
            NONCE_LEN + TAG_LEN
        } else {
            0
        }
}

/// The stored bytes of a segment on top of `base`, and its name.
pub(crate) fn seal(
    crypto: &Crypto,
    base: &[u8; 32],
    seg: &ChangeSegment,
) -> Result<(String, Vec<u8>)> {
    let name = name_of(seg.first, seg.last, time_ns(seg.sealed));
    // The events are encoded into the compressor as they are read, and
    // the header put in front of the compressed body in place: besides
    // the segment, a seal holds about one compressed copy of it (it held
    // the segment again, its encoding and two compressed copies).
    let zerr = || RepoError::io("zstd compress", "segment");
    let mut z = zstd::stream::Encoder::new(Vec::new(), LEVEL).map_err(zerr())?;
    let raw_len = encode_body_to(seg, &mut z).map_err(zerr())?;
    let z = z.finish().map_err(zerr())?;
    let mut body = crypto.seal(z, &aad("body", base, &name))?;
    let header = sealed_header(
        crypto,
        base,
        seg,
        &name,
        raw_len,
        body.len() as u64,
        crypto.id(&body),
    )?;
    body.splice(0..0, MAGIC.iter().chain(&header).copied());
    Ok((name, body))
}

/// [`seal`] into `file` (empty), for an unencrypted repository: the body
/// goes to the file as it is compressed (hashed on the way) and the header
/// is written in front of it at the end, so a seal holds no copy of the
/// stored bytes. The name and the length written.
pub(crate) fn seal_into(
    crypto: &Crypto,
    base: &[u8; 32],
    seg: &ChangeSegment,
    file: &std::fs::File,
) -> Result<(String, u64)> {
    /// The body as it leaves the compressor: written at its offset and
    /// hashed.
    struct Body<'a> {
        file: &'a std::fs::File,
        at: u64,
        len: u64,
        hasher: blake3::Hasher,
    }
    impl std::io::Write for Body<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            use std::os::unix::fs::FileExt;
            self.file.write_all_at(b, self.at + self.len)?;
            self.hasher.update(b);
            self.len += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    use std::os::unix::fs::FileExt;
    let name = name_of(seg.first, seg.last, time_ns(seg.sealed));
    let werr = || RepoError::io("write", "segment");
    let at = (MAGIC.len() + stored_header_len(crypto)) as u64;
    let sink = Body {
        file,
        at,
        len: 0,
        hasher: crypto.id_hasher(),
    };
    // The compressor hands its output on in blocks of up to 128 KiB.
    let mut z = zstd::stream::Encoder::new(std::io::BufWriter::with_capacity(1 << 20, sink), LEVEL)
        .map_err(werr())?;
    let raw_len = encode_body_to(seg, &mut z).map_err(werr())?;
    let body = z
        .finish()
        .map_err(werr())?
        .into_inner()
        .map_err(|e| werr()(e.into_error()))?;
    let id: [u8; 32] = body.hasher.finalize().into();
    let header = sealed_header(crypto, base, seg, &name, raw_len, body.len, id)?;
    if header.len() as u64 + MAGIC.len() as u64 != at {
        return Err(werr()(std::io::Error::other("header length")));
    }
    file.write_all_at(MAGIC, 0).map_err(werr())?;
    file.write_all_at(&header, MAGIC.len() as u64)
        .map_err(werr())?;
    Ok((name, at + body.len))
}

/// A segment's stored header: what it holds and the checksums of the
/// body (`body_len` bytes stored, with ID `body_id`) and of itself.
fn sealed_header(
    crypto: &Crypto,
    base: &[u8; 32],
    seg: &ChangeSegment,
    name: &str,
    raw_len: u64,
    body_len: u64,
    body_id: [u8; 32],
) -> Result<Vec<u8>> {
    let events: usize = seg.revisions.iter().map(|r| r.events.len()).sum();
    let mut h = Enc::with_capacity(HEADER_LEN);
    h.u8(VERSION)
        .bytes(base)
        .i64(seg.first)
        .i64(seg.last)
        .i64(time_ns(seg.sealed))
        .u64(seg.revisions.len() as u64)
        .u64(events as u64)
        .u64(raw_len)
        .u64(body_len)
        .bytes(&body_id);
    let sum = crypto.id(&h.0);
    h.bytes(&sum);
    crypto.seal(h.finish(), &aad("header", base, name))
}

/// Opens and checks the header at the start of `stored` (which may hold
/// only the header); `what` names the object.
fn open_header(
    crypto: &Crypto,
    base: &[u8; 32],
    name: &str,
    stored: &[u8],
    what: &dyn Fn() -> String,
) -> Result<Header> {
    let bad = |why: String| RepoError::damaged(what(), why);
    if stored.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(bad("not a delta object (bad magic)".into()));
    }
    let sealed = stored
        .get(MAGIC.len()..MAGIC.len() + stored_header_len(crypto))
        .ok_or_else(|| bad("too short for a delta object's header".into()))?;
    let plain = crypto.open(sealed, &aad("header", base, name), what)?;
    let (body, sum) = plain
        .split_at_checked(HEADER_LEN - 32)
        .ok_or_else(|| bad("header too short".into()))?;
    if crypto.id(body) != sum {
        return Err(bad("header checksum mismatch (damaged)".into()));
    }
    let mut d = Dec::new(body);
    let parse = |d: &mut Dec<'_>| -> DecResult<Header> {
        let v = d.u8("version")?;
        if v != VERSION {
            return d.err(format!("unknown delta encoding version {v}"));
        }
        Ok(Header {
            base: d.array("base")?,
            first: d.i64("first")?,
            last: d.i64("last")?,
            sealed_ns: d.i64("sealed")?,
            revisions: d.u64("revisions")?,
            events: d.u64("events")?,
            raw_len: d.u64("raw length")?,
            body_len: d.u64("body length")?,
            body_sum: d.array("body checksum")?,
        })
    };
    let h = parse(&mut d).map_err(|e| bad(e.to_string()))?;
    if &h.base != base {
        return Err(bad(format!("recorded on top of {}", hex(&h.base))));
    }
    if name_of(h.first, h.last, h.sealed_ns) != name {
        return Err(bad(format!(
            "holds revisions {}..={}, not what its name says",
            h.first, h.last
        )));
    }
    if h.raw_len > MAX_RAW {
        return Err(bad(format!("{} bytes decoded is too long", h.raw_len)));
    }
    Ok(h)
}

/// Opens, checks and decodes a whole stored segment.
pub(crate) fn open(
    crypto: &Crypto,
    base: &[u8; 32],
    name: &str,
    stored: &[u8],
    what: &dyn Fn() -> String,
) -> Result<ChangeSegment> {
    let bad = |why: String| RepoError::damaged(what(), why);
    let h = open_header(crypto, base, name, stored, what)?;
    let body = stored
        .get(MAGIC.len() + stored_header_len(crypto)..)
        .unwrap_or_default();
    if body.len() as u64 != h.body_len {
        return Err(bad(format!(
            "body has {} bytes, the header says {} (truncated or damaged)",
            body.len(),
            h.body_len
        )));
    }
    if crypto.id(body) != h.body_sum {
        return Err(bad("body checksum mismatch (damaged)".into()));
    }
    let z = crypto.open(body, &aad("body", base, name), what)?;
    // Streamed, so memory follows what the frame really holds, up to the
    // length the header declares.
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(&z[..])
        .and_then(|dec| dec.take(h.raw_len.saturating_add(1)).read_to_end(&mut raw))
        .map_err(|e| bad(format!("zstd: {e}")))?;
    if raw.len() as u64 != h.raw_len {
        return Err(bad(format!(
            "body decodes to {} bytes, the header says {}",
            raw.len(),
            h.raw_len
        )));
    }
    let seg = decode_body(&raw).map_err(|e| bad(e.to_string()))?;
    let events: usize = seg.revisions.iter().map(|r| r.events.len()).sum();
    if seg.first != h.first
        || seg.last != h.last
        || time_ns(seg.sealed) != h.sealed_ns
        || seg.revisions.len() as u64 != h.revisions
        || events as u64 != h.events
    {
        return Err(bad("body does not match its header".into()));
    }
    Ok(seg)
}

/// Whether two stored ranges (one of them possibly empty, standing
/// between `first - 1` and `first`) claim the same revisions.
fn overlap(a: (i64, i64), b: (i64, i64)) -> bool {
    let inside = |p: i64, (f, l): (i64, i64)| f <= p && p < l;
    match (a.1 < a.0, b.1 < b.0) {
        (false, false) => a.0 <= b.1 && b.0 <= a.1,
        (true, false) => inside(a.0.saturating_sub(1), b),
        (false, true) => inside(b.0.saturating_sub(1), a),
        (true, true) => false,
    }
}

/// A chain walked from its base's revision (see [`walk`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Walk {
    /// The last revision reachable from the base with no hole.
    pub last_revision: i64,
    /// Positions of the segments of that contiguous part, in order.
    pub chain: Vec<usize>,
    /// Holes (inclusive ranges) before later segments.
    pub gaps: Vec<(i64, i64)>,
    /// Names of the segments that overlap an earlier one.
    pub overlaps: Vec<String>,
}

/// Walks segments in name order from the base's revision: the last
/// contiguous revision and its segments, the holes and the overlapping
/// segments (left out of the chain).
pub(crate) fn walk(base_revision: i64, ranges: &[(String, i64, i64)]) -> Walk {
    let mut w = Walk {
        last_revision: base_revision,
        ..Walk::default()
    };
    let mut covered = base_revision;
    for (i, (name, first, last)) in ranges.iter().enumerate() {
        let next = covered.saturating_add(1);
        // On a snapshot of a store that never changed, a chain may start
        // at revision 1 (see `chain_range`).
        let (first, last) = chain_range(base_revision, *first, *last);
        if first > next {
            w.gaps.push((next, first.saturating_sub(1)));
        } else if first < next {
            w.overlaps.push(name.clone());
            continue;
        }
        covered = covered.max(last);
        if w.gaps.is_empty() {
            w.last_revision = covered;
            w.chain.push(i);
        }
    }
    w
}

impl Repository {
    fn delta_path(&self, key: &str) -> PathBuf {
        self.path_of(key)
    }

    /// The manifest of `base` if it is present (pushed and not forgotten).
    fn present_base(&self, base: &SnapshotId) -> Result<Manifest> {
        let key = keys::snapshot(&base.0);
        let gone = || RepoError::NoSuchSnapshot(base.to_string());
        match self.backend.read(&held::forgotten(&base.0), 0) {
            Ok(_) => return Err(gone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let key = held::forgotten(&base.0);
                return Err(RepoError::io("read", self.path_of(&key))(e));
            }
        }
        let plain = match super::index::read_object(
            self.backend.as_ref(),
            &self.crypto,
            keys::SNAPSHOTS,
            &base.0,
            0,
        ) {
            Err(RepoError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(gone());
            }
            other => other?,
        };
        Manifest::decode(&plain).map_err(|e| RepoError::damaged(key, e.to_string()))
    }

    /// The segment objects stored on top of `base`: name, first, last and
    /// size, in name (revision) order; names that are not segments are
    /// left out.
    fn delta_objects(&self, base: &[u8; 32]) -> Result<Vec<(String, i64, i64, u64)>> {
        let prefix = dir(base);
        let listed = self
            .backend
            .list(&prefix)
            .map_err(RepoError::io("list", self.delta_path(&prefix)))?;
        let mut out: Vec<(String, i64, i64, u64)> = listed
            .into_iter()
            .filter_map(|(k, size)| {
                let name = k.strip_prefix(&prefix)?.to_string();
                let (first, last, _) = parse_name(&name)?;
                Some((name, first, last, size))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads and checks one segment object.
    pub(crate) fn read_delta(&self, base: &[u8; 32], name: &str) -> Result<ChangeSegment> {
        let key = format!("{}{name}", dir(base));
        let stored = self
            .backend
            .read(&key, MAX_DELTA_OBJECT)
            .map_err(RepoError::io("read", self.delta_path(&key)))?;
        open(&self.crypto, base, name, &stored, &|| key.clone())
    }

    /// Reads and checks the header of one segment object.
    fn delta_info(&self, base: &[u8; 32], name: &str, size: u64) -> Result<ChangeSegmentInfo> {
        let key = format!("{}{name}", dir(base));
        let what = || key.clone();
        let n = MAGIC.len() + stored_header_len(&self.crypto);
        if size < n as u64 {
            return Err(RepoError::damaged(
                what(),
                "too short for a delta object's header",
            ));
        }
        let mut buf = vec![0u8; n];
        self.backend
            .read_at(&key, 0, &mut buf)
            .map_err(RepoError::io("read", self.delta_path(&key)))?;
        let h = open_header(&self.crypto, base, name, &buf, &what)?;
        let expected = (n as u64).checked_add(h.body_len);
        if expected != Some(size) {
            return Err(RepoError::damaged(
                what(),
                format!(
                    "{size} bytes, the header says {} (truncated or damaged)",
                    expected.map_or("more".into(), |e| e.to_string())
                ),
            ));
        }
        Ok(ChangeSegmentInfo {
            first: h.first,
            last: h.last,
            sealed: from_ns(h.sealed_ns)
                .ok_or_else(|| RepoError::damaged(what(), "sealed time out of range"))?,
            revisions: h.revisions,
            events: h.events,
            size,
            name: name.to_string(),
        })
    }

    /// Stores one sealed segment recorded on top of the full snapshot
    /// `base` (which must be present, and below the segment's first
    /// revision). Idempotent: storing the same segment again does
    /// nothing; a different segment under the same name, or one that
    /// overlaps a stored segment, is refused ([`RepoError::Conflict`]).
    /// Crash-safe: the object is written under a temporary name and
    /// published by rename (or one PUT).
    pub fn put_changes(&self, base: &SnapshotId, segment: &ChangeSegment) -> Result<()> {
        if let Some(why) = invalid(segment) {
            return Err(RepoError::Usage(format!(
                "segment {}..={}: {why}",
                segment.first, segment.last
            )));
        }
        let _lock = self.lock(false)?;
        let m = self.present_base(base)?;
        let base_revision = m.etcd_revision();
        if chain_range(base_revision, segment.first, segment.last).0 <= base_revision {
            return Err(RepoError::Conflict(format!(
                "segment {}..={} starts at or below snapshot {}'s revision {}",
                segment.first,
                segment.last,
                base.short(),
                base_revision
            )));
        }
        // Unencrypted, the stored bytes go to a temporary file as they
        // are made (a sealed body is one AEAD message: made in memory).
        enum Stored {
            Bytes(Vec<u8>),
            File(crate::atomic_file::PartFile),
        }
        let (name, stored, len) = if self.crypto.is_encrypted() {
            let (name, bytes) = seal(&self.crypto, &base.0, segment)?;
            let len = bytes.len() as u64;
            (name, Stored::Bytes(bytes), len)
        } else {
            let part = self.tmp_file("delta")?;
            let (name, len) = seal_into(&self.crypto, &base.0, segment, part.file())?;
            (name, Stored::File(part), len)
        };
        if len > MAX_DELTA_OBJECT {
            return Err(RepoError::Usage(format!(
                "segment {}..={}: {len} bytes stored is more than {MAX_DELTA_OBJECT}; seal segments more often",
                segment.first, segment.last,
            )));
        }
        for (other, first, last, _) in self.delta_objects(&base.0)? {
            if other == name {
                let there = self.read_delta(&base.0, &name)?;
                if &there == segment {
                    return Ok(());
                }
                return Err(RepoError::Conflict(format!(
                    "{}{name}: a different segment of the same range is stored",
                    dir(&base.0)
                )));
            }
            if overlap((segment.first, segment.last), (first, last)) {
                return Err(RepoError::Conflict(format!(
                    "segment {}..={} overlaps the stored {}{other}",
                    segment.first,
                    segment.last,
                    dir(&base.0)
                )));
            }
        }
        let key = format!("{}{name}", dir(&base.0));
        match &stored {
            Stored::Bytes(b) => self.backend.write(&key, b),
            Stored::File(part) => self.backend.write_file(&key, part.part()),
        }
        .map_err(RepoError::io("write", self.delta_path(&key)))
    }

    /// The segments stored on top of `base`, in revision order (first,
    /// last, sealed time, size; events not loaded). Every header is read
    /// and checked; a damaged one is an error naming the object.
    pub fn changes(&self, base: &SnapshotId) -> Result<Vec<ChangeSegmentInfo>> {
        let _lock = self.lock(false)?;
        self.present_base(base)?;
        self.delta_infos(&base.0)
    }

    /// [`changes`](Self::changes) under a lock the caller holds.
    pub(crate) fn delta_infos(&self, base: &[u8; 32]) -> Result<Vec<ChangeSegmentInfo>> {
        self.delta_objects(base)?
            .into_iter()
            .map(|(name, _, _, size)| self.delta_info(base, &name, size))
            .collect()
    }

    /// Reads one segment [`changes`](Self::changes) listed, checking its
    /// checksums (and its authentication, when encrypted).
    pub fn read_changes(
        &self,
        base: &SnapshotId,
        info: &ChangeSegmentInfo,
    ) -> Result<ChangeSegment> {
        let _lock = self.lock(false)?;
        self.read_delta(&base.0, &info.name)
    }

    /// The chain of segments on top of each of `snaps` (as
    /// [`snapshots`](Self::snapshots) lists them), in the same order: what
    /// `backup ls` shows. Only the last contiguous segment's header is
    /// read.
    pub fn change_chains(&self, snaps: &[super::SnapshotInfo]) -> Result<Vec<ChangeChain>> {
        let _lock = self.lock(false)?;
        let (mut by_base, _) = self.all_deltas()?;
        let mut out = Vec::new();
        for s in snaps {
            let objs = by_base.remove(&s.id.0).unwrap_or_default();
            let ranges: Vec<(String, i64, i64)> = objs
                .iter()
                .filter_map(|(n, _)| parse_name(n).map(|(f, l, _)| (n.clone(), f, l)))
                .collect();
            let w = walk(s.revision, &ranges);
            let last_sealed = w
                .chain
                .last()
                .and_then(|i| objs.get(*i))
                .and_then(|(name, size)| self.delta_info(&s.id.0, name, *size).ok())
                .map(|i| i.sealed);
            out.push(ChangeChain {
                base: s.id,
                base_revision: s.revision,
                segments: objs.len(),
                last_revision: w.last_revision,
                last_sealed,
                gaps: w.gaps,
                overlaps: w.overlaps,
            });
        }
        Ok(out)
    }
}

impl Repository {
    /// Every delta object, grouped by base: name and size; keys that are
    /// not segments of a base are returned apart.
    #[allow(clippy::type_complexity)]
    fn all_deltas(&self) -> Result<(BTreeMap<[u8; 32], Vec<(String, u64)>>, Vec<String>)> {
        let all = self
            .backend
            .list(DELTAS)
            .map_err(RepoError::io("list", self.delta_path(DELTAS)))?;
        let mut by_base: BTreeMap<[u8; 32], Vec<(String, u64)>> = BTreeMap::new();
        let mut strays = Vec::new();
        for (k, size) in all {
            let parsed = k
                .strip_prefix(DELTAS)
                .and_then(|r| r.split_once('/'))
                .and_then(|(b, name)| {
                    parse_name(name)?;
                    Some((super::codec::parse_hex32(b)?, name.to_string()))
                });
            match parsed {
                Some((b, name)) => by_base.entry(b).or_default().push((name, size)),
                None => strays.push(k),
            }
        }
        for v in by_base.values_mut() {
            v.sort();
        }
        Ok((by_base, strays))
    }

    /// Prune's part (under the exclusive lock, after the snapshots it
    /// removes are gone from the listing): deletes the segments of every
    /// base that is neither present nor missing. A missing base's segments
    /// stay, as everything a damaged snapshot had does. Returns the number
    /// of objects and their bytes (what would go, when `dry`, counting the
    /// bases in `going` as gone too).
    pub(crate) fn prune_deltas(
        &self,
        dry: bool,
        going: &std::collections::HashSet<[u8; 32]>,
    ) -> Result<(usize, u64)> {
        let held = held::list(self.backend.as_ref())
            .map_err(RepoError::io("list", self.path_of(keys::SNAPSHOTS)))?;
        let (by_base, _) = self.all_deltas()?;
        let (mut n, mut bytes) = (0usize, 0u64);
        for (base, objs) in by_base {
            let stays = held.present.contains_key(&base) && !going.contains(&base);
            if stays || held.missing.contains(&base) {
                continue;
            }
            for (name, size) in objs {
                n += 1;
                bytes = bytes.saturating_add(size);
                if dry {
                    continue;
                }
                let key = format!("{}{name}", dir(&base));
                self.backend
                    .remove(&key)
                    .map_err(RepoError::io("remove", self.delta_path(&key)))?;
            }
            if !dry && let Some(d) = self.backend.local_path(dir(&base).trim_end_matches('/')) {
                // The emptied directory of a local repository (another
                // put may have filled it again: then it stays).
                let _ = std::fs::remove_dir(d);
            }
        }
        Ok((n, bytes))
    }

    /// Check's part: every segment of every present snapshot read whole
    /// (checksums, authentication, decoding, header against name) and its
    /// chain walked from the base's revision (holes and overlaps are
    /// problems); segments of bases that are gone are noted.
    pub(crate) fn check_deltas(
        &self,
        manifests: &BTreeMap<[u8; 32], Manifest>,
        r: &mut CheckReport,
    ) -> Result<()> {
        let (by_base, strays) = self.all_deltas()?;
        for k in strays {
            r.notes
                .push(format!("{k}: not a delta segment name, ignored"));
        }
        let mut orphans = 0usize;
        for (base, objs) in by_base {
            let Some(m) = manifests.get(&base) else {
                orphans += objs.len();
                continue;
            };
            let sid = SnapshotId(base);
            let mut ranges = Vec::new();
            for (name, _) in &objs {
                let Some((first, last, _)) = parse_name(name) else {
                    continue;
                };
                r.deltas += 1;
                match self.read_delta(&base, name) {
                    Ok(_) => ranges.push((name.clone(), first, last)),
                    Err(e) => r.problems.push(CheckProblem::Delta {
                        snapshot: sid,
                        source: std::sync::Arc::new(e),
                    }),
                }
            }
            let w = walk(m.etcd_revision(), &ranges);
            for (from, to) in w.gaps {
                r.problems.push(CheckProblem::DeltaGap {
                    snapshot: sid,
                    from,
                    to,
                });
            }
            for name in w.overlaps {
                r.problems.push(CheckProblem::DeltaOverlap {
                    snapshot: sid,
                    segment: format!("{}{name}", dir(&base)),
                });
            }
        }
        if orphans > 0 {
            r.notes.push(format!(
                "{orphans} delta segment(s) belong to forgotten snapshots (`backup prune` removes them)"
            ));
        }
        Ok(())
    }
}

/// A small segment over `first..=last` (two events a revision, a lease, a
/// compaction record), for tests and the fuzz targets.
pub(crate) fn sample(first: i64, last: i64) -> ChangeSegment {
    let at = |s: u64| {
        let d = Duration::from_secs(1_700_000_000_u64.saturating_add(s));
        UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
    };
    let revisions = (first..=last)
        .map(|r| RevisionChanges {
            revision: r,
            events: vec![
                KeyEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: format!("k{r}").into_bytes(),
                        create_revision: r,
                        mod_revision: r,
                        version: 1,
                        value: vec![r as u8; 10],
                        lease: 7,
                    },
                },
                KeyEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: b"gone".to_vec(),
                        mod_revision: r,
                        ..KeyValue::default()
                    },
                },
            ],
            observed: at(r as u64),
        })
        .collect();
    ChangeSegment {
        first,
        last,
        revisions,
        leases: vec![LeaseRecord {
            id: 7,
            ttl: 60,
            alive_at_end: true,
        }],
        compactions: vec![CompactionRecord {
            revision: first - 1,
            seen_at_revision: last,
        }],
        sealed: at(last as u64 + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_times_round_trip_on_both_sides_of_the_epoch() {
        for ns in [
            0,
            1,
            -1,
            999_999_999,
            -999_999_999,
            -1_000_000_001,
            1_736_164_800_123_456_789,
        ] {
            let t = from_ns(ns).expect("in range");
            assert_eq!(time_ns(t), ns);
        }
        assert_eq!(from_ns(-1), UNIX_EPOCH.checked_sub(Duration::from_nanos(1)));
    }

    #[test]
    fn body_and_object_round_trip_and_refuse_damage() {
        let seg = sample(5, 9);
        assert_eq!(decode_body(&encode_body(&seg)), Ok(seg.clone()));
        let dir = tempfile::tempdir().expect("tempdir");
        let key = crate::repo::MasterKey::generate(&dir.path().join("k")).expect("key");
        for crypto in [Crypto::plain(), Crypto::encrypted(&key)] {
            let base = [3u8; 32];
            let (name, stored) = seal(&crypto, &base, &seg).expect("seal");
            assert_eq!(name, "00000000000000000005-00000000000000000009");
            let what = || "obj".to_string();
            assert_eq!(
                open(&crypto, &base, &name, &stored, &what).expect("open"),
                seg
            );
            assert!(open(&crypto, &[4; 32], &name, &stored, &what).is_err());
            let other = name_of(5, 10, 0);
            assert!(open(&crypto, &base, &other, &stored, &what).is_err());
            for i in 0..stored.len() {
                let mut bad = stored.clone();
                bad[i] ^= 0x10;
                assert!(
                    open(&crypto, &base, &name, &bad, &what).is_err(),
                    "flip at {i} of {}",
                    stored.len()
                );
            }
            for n in 0..stored.len() {
                assert!(open(&crypto, &base, &name, &stored[..n], &what).is_err());
            }
        }
    }

    #[test]
    fn names_sort_and_parse() {
        assert_eq!(parse_name(&name_of(5, 9, 0)), Some((5, 9, None)));
        assert_eq!(parse_name(&name_of(5, 4, 77)), Some((5, 4, Some(77))));
        assert_eq!(parse_name("5-9"), None);
        assert_eq!(parse_name(&format!("{}-x", name_of(5, 9, 0))), None);
        // An empty segment with a sealed time only; a non-empty one without.
        assert_eq!(parse_name(&format!("{}-{:020}", name_of(5, 9, 0), 1)), None);
        let mut names = vec![name_of(10, 20, 0), name_of(10, 9, 5), name_of(9, 9, 0)];
        names.sort();
        assert_eq!(
            names,
            vec![name_of(9, 9, 0), name_of(10, 9, 5), name_of(10, 20, 0)]
        );
    }

    #[test]
    fn overlaps_and_walks() {
        assert!(overlap((1, 5), (5, 9)));
        assert!(!overlap((1, 5), (6, 9)));
        assert!(overlap((4, 3), (1, 5)));
        assert!(!overlap((6, 5), (1, 5)));
        assert!(!overlap((1, 0), (1, 5)));
        assert!(!overlap((4, 3), (4, 3)));
        let r = |f, l| (name_of(f, l, 0), f, l);
        assert_eq!(walk(10, &[]).last_revision, 10);
        let w = walk(10, &[r(11, 15), r(16, 16), r(17, 16)]);
        assert_eq!((w.last_revision, w.chain), (16, vec![0, 1, 2]));
        let w = walk(10, &[r(11, 15), r(18, 20), r(19, 19)]);
        assert_eq!(
            (w.last_revision, w.chain, w.gaps),
            (15, vec![0], vec![(16, 17)])
        );
        assert_eq!(w.overlaps, vec![name_of(19, 19, 0)]);
        let w = walk(10, &[r(11, 15), r(13, 14), r(16, 17)]);
        assert_eq!((w.last_revision, w.chain), (17, vec![0, 2]));
        assert_eq!(walk(10, &[r(12, 15)]).gaps, vec![(11, 11)]);
    }

    #[test]
    fn invalid_segments() {
        assert!(invalid(&sample(5, 9)).is_none());
        let mut s = sample(5, 9);
        s.revisions.swap(0, 1);
        assert!(invalid(&s).is_some());
        let mut s = sample(5, 9);
        s.last = 8;
        assert!(invalid(&s).is_some());
        let mut s = sample(5, 9);
        s.revisions[2].events[1].kv.mod_revision = 3;
        assert!(invalid(&s).is_some());
        let mut s = sample(5, 9);
        s.revisions[2].events.clear();
        assert!(invalid(&s).is_some());
        let mut s = sample(5, 4);
        assert!(invalid(&s).is_none());
        s.last = 3;
        assert!(invalid(&s).is_some());
        assert!(invalid(&sample(0, 0)).is_some());
    }
}

#[cfg(test)]
mod repo_tests {
    use super::*;
    use crate::repo::PushOptions;

    #[test]
    fn put_list_read_idempotent_and_conflicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_dir(dir.path().join("repo"), None).expect("init");
        let info = repo
            .push(
                "testdata/snapshots/small-v35.db".as_ref(),
                &PushOptions::default(),
            )
            .expect("push")
            .info;
        let (base, r) = (info.id, info.revision);
        assert!(repo.changes(&base).expect("changes").is_empty());
        let a = sample(r + 1, r + 3);
        let quiet = sample(r + 4, r + 3);
        let b = sample(r + 4, r + 9);
        for s in [&a, &quiet, &b] {
            repo.put_changes(&base, s).expect("put");
        }
        repo.put_changes(&base, &a)
            .expect("the same again is a no-op");
        let listed = repo.changes(&base).expect("changes");
        let ranges: Vec<(i64, i64)> = listed.iter().map(|i| (i.first, i.last)).collect();
        assert_eq!(ranges, vec![(r + 1, r + 3), (r + 4, r + 3), (r + 4, r + 9)]);
        assert_eq!(listed[0].sealed, a.sealed);
        assert_eq!(listed[2].events, 12);
        for (i, s) in listed.iter().zip([&a, &quiet, &b]) {
            assert_eq!(&repo.read_changes(&base, i).expect("read"), s);
        }
        let mut other = a.clone();
        other.revisions[0].events[0].kv.value = b"else".to_vec();
        assert!(matches!(
            repo.put_changes(&base, &other),
            Err(RepoError::Conflict(_))
        ));
        for (f, l) in [(r + 2, r + 5), (r + 9, r + 12), (r, r + 1)] {
            let e = repo.put_changes(&base, &sample(f, l));
            assert!(matches!(e, Err(RepoError::Conflict(_))), "{f}..={l}: {e:?}");
        }
        assert!(matches!(
            repo.put_changes(&SnapshotId([9; 32]), &sample(r + 10, r + 11)),
            Err(RepoError::NoSuchSnapshot(_))
        ));
        let chains = repo
            .change_chains(&repo.snapshots().expect("snapshots"))
            .expect("chains");
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].last_revision, r + 9);
        assert_eq!(chains[0].last_sealed, Some(b.sealed));
        repo.put_changes(&base, &sample(r + 12, r + 14))
            .expect("after a hole");
        let chains = repo
            .change_chains(&repo.snapshots().expect("snapshots"))
            .expect("chains");
        assert_eq!(chains[0].last_revision, r + 9);
        assert_eq!(chains[0].gaps, vec![(r + 10, r + 11)]);
    }
}
