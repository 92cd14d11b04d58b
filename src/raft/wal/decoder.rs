//! Reading WAL frames back: bounds-checked, CRC-verified, typed.

use std::path::Path;

use prost::Message;

use super::{FRAME_HEADER_BYTES, MAX_RECORD_SIZE_BYTES, RecordType, WalPayload};
use crate::raft::error::RaftError;
use crate::raft::proto::{etcdserverpb, raftpb, walpb};
use crate::raft::{ConfChange, Entry, EntryKind, HardState, WalMetadata, WalSnapshot};

/// etcd's `minSectorSize`, the granularity of its torn-write detection.
const SECTOR_BYTES: u64 = 512;

/// Mask of the record length in a length word (the low 56 bits).
const LEN_MASK: u64 = 0x00ff_ffff_ffff_ffff;

/// One decoded WAL record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalRecord {
    /// Offset of the frame's length word from the start of the segment.
    pub offset: u64,
    /// The CRC stored in the record (already verified against the chain).
    pub crc: u32,
    /// The decoded payload.
    pub payload: WalPayload,
    /// For an entry of kind [`EntryKind::ConfChange`], its data decoded as
    /// a [`ConfChange`]; `None` for every other record.
    pub conf_change: Option<ConfChange>,
}

/// Iterates over the records of one WAL segment held in memory.
///
/// Mirrors etcd's `wal.decoder`: starts with a running CRC of 0, checks each
/// non-CRC record against the chain, and on a CRC record checks it against
/// the chain (unless the chain is still 0) and then continues from the
/// stored value. Stops at the end of the data or at a zero length word.
///
/// Every length is checked against the bytes present before use, records
/// whose length plus padding reaches [`MAX_RECORD_SIZE_BYTES`] are rejected,
/// and nothing is allocated beyond the bytes present. After the first error
/// the iterator yields nothing more.
///
/// Like etcd's reader, this follows the length word exactly: the padding is
/// the low three bits of the top byte when its high bit is set, and 0
/// otherwise.
///
/// ```
/// use etcdsnap::raft::wal::{WalDecoder, WalPayload};
///
/// // What `etcdutl 3.5 snapshot restore` wrote for one member, then the
/// // preallocated zero tail, which ends the segment.
/// let mut wal = std::fs::read("testdata/golden/v35-defaults/0000000000000000-0000000000000000.wal.prefix")?;
/// let records_end = wal.len() as u64;
/// wal.resize(4096, 0);
///
/// let mut dec = WalDecoder::new(&wal);
/// let payloads: Vec<WalPayload> = dec.by_ref().map(|r| r.map(|r| r.payload)).collect::<Result<_, _>>()?;
/// assert!(matches!(&payloads[1], WalPayload::Metadata(m) if m.node_id == 0x8e9e05c52164694d));
/// assert_eq!(dec.end_offset(), records_end);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct WalDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    crc: u32,
    done: bool,
}

impl<'a> WalDecoder<'a> {
    /// A decoder over the bytes of one segment, starting at offset 0.
    pub fn new(data: &'a [u8]) -> Self {
        WalDecoder {
            data,
            pos: 0,
            crc: 0,
            done: false,
        }
    }

    /// The offset just past the last record decoded successfully (etcd's
    /// `lastValidOff`).
    pub fn end_offset(&self) -> u64 {
        self.pos as u64
    }

    /// The running CRC after the last record decoded successfully.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    fn next_record(&mut self) -> Result<Option<WalRecord>, RaftError> {
        let offset = self.pos;
        let off64 = offset as u64;
        let rest = self.data.get(offset..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(None);
        }
        let truncated = |needed: u64| RaftError::WalTruncated {
            offset: off64,
            needed,
            available: rest.len() as u64,
        };
        let word_bytes: [u8; FRAME_HEADER_BYTES] = rest
            .get(..FRAME_HEADER_BYTES)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| truncated(FRAME_HEADER_BYTES as u64))?;
        let Some(frame) = Frame::parse(u64::from_le_bytes(word_bytes), off64)? else {
            return Ok(None);
        };
        let body = rest
            .get(FRAME_HEADER_BYTES..)
            .and_then(|b| b.get(..frame.body_len))
            .ok_or_else(|| truncated(frame.total()))?;
        let (record, crc) = frame.decode(body, self.crc)?;
        self.crc = crc;
        self.pos = offset.saturating_add(FRAME_HEADER_BYTES + frame.body_len);
        Ok(Some(record))
    }
}

/// One frame, as its length word describes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    /// Offset of the length word in the segment.
    pub(super) offset: u64,
    /// Length of the marshalled record.
    pub(super) len: usize,
    /// Record plus padding.
    pub(super) body_len: usize,
}

impl Frame {
    /// Reads a length word found at `offset`; `None` for a zero word (the
    /// preallocated tail: the end of the segment).
    pub(super) fn parse(word: u64, offset: u64) -> Result<Option<Frame>, RaftError> {
        if word == 0 {
            return Ok(None);
        }
        let len = word & LEN_MASK;
        let pad = if word >> 63 == 1 {
            (word >> 56) & 0x7
        } else {
            0
        };
        // etcd: recBytes >= maxWALEntrySizeLimit - padBytes is rejected.
        if len >= MAX_RECORD_SIZE_BYTES - pad {
            return Err(RaftError::WalRecordTooLarge {
                offset,
                len,
                pad,
                limit: MAX_RECORD_SIZE_BYTES,
            });
        }
        // Both are below 10 MiB here, so neither the sum nor the casts
        // overflow.
        match (usize::try_from(len), usize::try_from(len + pad)) {
            (Ok(len), Ok(body_len)) => Ok(Some(Frame {
                offset,
                len,
                body_len,
            })),
            _ => Err(RaftError::WalRecordTooLarge {
                offset,
                len,
                pad,
                limit: MAX_RECORD_SIZE_BYTES,
            }),
        }
    }

    /// Bytes the whole frame takes, length word included.
    pub(super) fn total(&self) -> u64 {
        (FRAME_HEADER_BYTES + self.body_len) as u64
    }

    /// Decodes the frame's body (record and padding, `body_len` bytes),
    /// continuing the CRC chain from `crc`; returns the record and the new
    /// running CRC.
    pub(super) fn decode(&self, body: &[u8], crc: u32) -> Result<(WalRecord, u32), RaftError> {
        self.decode_with(body, Some(crc))
    }

    /// [`decode`](Self::decode); with `crc` `None` the record's stored CRC
    /// is taken as it is (for a record found again after a break in the
    /// chain) and becomes the running CRC.
    fn decode_with(&self, body: &[u8], crc: Option<u32>) -> Result<(WalRecord, u32), RaftError> {
        let off64 = self.offset;
        let rec_bytes = body.get(..self.len).ok_or(RaftError::WalTruncated {
            offset: off64,
            needed: self.total(),
            available: (FRAME_HEADER_BYTES + body.len()) as u64,
        })?;
        let body_off = off64 + FRAME_HEADER_BYTES as u64;

        let rec = match walpb::Record::decode(rec_bytes) {
            Ok(rec) => rec,
            Err(source) => {
                return Err(if is_torn(body, body_off) {
                    RaftError::WalTornWrite { offset: off64 }
                } else {
                    RaftError::WalDecode {
                        offset: off64,
                        what: "walpb.Record",
                        source,
                    }
                });
            }
        };
        let rec_type = RecordType::from_code(rec.r#type);
        let payload_bytes = rec.data.as_deref().unwrap_or(&[]);

        let new_crc = if let Some(crc) = crc.filter(|_| rec_type != Some(RecordType::Crc)) {
            let computed = crc32c::crc32c_append(crc, payload_bytes);
            if rec.crc != computed {
                return Err(if is_torn(body, body_off) {
                    RaftError::WalTornWrite { offset: off64 }
                } else {
                    RaftError::WalCrcMismatch {
                        offset: off64,
                        stored: rec.crc,
                        computed,
                    }
                });
            }
            computed
        } else {
            // etcd ReadAll: a CRC record must match a non-zero running CRC,
            // then the chain continues from the stored value.
            let crc = crc.unwrap_or(0);
            if crc != 0 && rec.crc != crc {
                return Err(RaftError::WalCrcMismatch {
                    offset: off64,
                    stored: rec.crc,
                    computed: crc,
                });
            }
            rec.crc
        };

        let decode_err = |what: &'static str| {
            move |source: prost::DecodeError| RaftError::WalDecode {
                offset: off64,
                what,
                source,
            }
        };
        let mut conf_change = None;
        let payload = match rec_type {
            Some(RecordType::Crc) => WalPayload::Crc,
            Some(RecordType::Metadata) => WalPayload::Metadata(WalMetadata::from_proto(
                etcdserverpb::Metadata::decode(payload_bytes)
                    .map_err(decode_err("etcdserverpb.Metadata"))?,
            )),
            Some(RecordType::Entry) => {
                let entry = Entry::from_proto(
                    raftpb::Entry::decode(payload_bytes).map_err(decode_err("raftpb.Entry"))?,
                );
                if entry.kind == EntryKind::ConfChange {
                    let data = entry.data.as_deref().unwrap_or(&[]);
                    conf_change = Some(ConfChange::from_proto(
                        raftpb::ConfChange::decode(data)
                            .map_err(decode_err("raftpb.ConfChange"))?,
                    ));
                }
                WalPayload::Entry(entry)
            }
            Some(RecordType::State) => WalPayload::State(HardState::from_proto(
                raftpb::HardState::decode(payload_bytes).map_err(decode_err("raftpb.HardState"))?,
            )),
            Some(RecordType::Snapshot) => WalPayload::Snapshot(WalSnapshot::from_proto(
                walpb::Snapshot::decode(payload_bytes).map_err(decode_err("walpb.Snapshot"))?,
            )),
            None => {
                return Err(RaftError::WalUnknownRecordType {
                    offset: off64,
                    rec_type: rec.r#type,
                });
            }
        };
        Ok((
            WalRecord {
                offset: off64,
                crc: rec.crc,
                payload,
                conf_change,
            },
            new_crc,
        ))
    }
}

impl Iterator for WalDecoder<'_> {
    type Item = Result<WalRecord, RaftError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // The end and the first error both end the iteration.
        let item = self.next_record().transpose();
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

impl std::iter::FusedIterator for WalDecoder<'_> {}

/// Records found again after a segment stopped early: see
/// [`find_records_after`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resync {
    /// Offset of the first record found again (`base` counted in).
    pub offset: u64,
    /// How many records chain from there (that one included).
    pub records: u64,
    /// The raft index of the first entry among them, if any.
    pub first_index: Option<u64>,
    /// The raft index of the last entry among them, if any.
    pub last_index: Option<u64>,
}

/// Looks for valid records in `data`, the bytes of a segment from offset
/// `base` on (a multiple of 8, as every frame starts on one), after the
/// segment stopped at a zero length word or a damaged frame: the first
/// 8-byte aligned frame that decodes (record and payload) and that either
/// ends the data (a zero word or its end follows) or is followed by a
/// record whose CRC chains to it, and how many records chain from there.
///
/// etcd's decoder reads a zero length word as the end of a segment and a
/// damaged last frame as a torn write: whatever valid records lie after
/// such a point are never read, and etcd's write mode zero-fills or
/// truncates them away when it next opens the WAL. This tells a tail a
/// crash left (nothing found) from records a damage hides.
///
/// ```
/// use etcdsnap::raft::wal::{decode_segment, find_records_after};
///
/// // What `etcdutl 3.5 snapshot restore` wrote for three members: a CRC,
/// // the metadata, an empty snapshot marker, three entries, the hard
/// // state and the final snapshot marker.
/// let mut wal = std::fs::read("testdata/golden/v35-three-members/0000000000000000-0000000000000000.wal.prefix")?;
/// let at: Vec<usize> = decode_segment(&wal)?.iter().map(|r| r.offset as usize).collect();
/// wal[at[2]..at[3]].fill(0); // the empty snapshot marker's frame zero-filled
/// assert_eq!(decode_segment(&wal)?.len(), 2); // the zero word ends the segment
/// let found = find_records_after(&wal[at[2]..], at[2] as u64).expect("found");
/// assert_eq!((found.offset, found.records), (at[3] as u64, at.len() as u64 - 3));
/// assert_eq!((found.first_index, found.last_index), (Some(1), Some(3)));
/// assert_eq!(find_records_after(&[0; 64], 0), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn find_records_after(data: &[u8], base: u64) -> Option<Resync> {
    let mut p = 0usize;
    while let Some(word) = data
        .get(p..)
        .and_then(|r| r.get(..FRAME_HEADER_BYTES))
        .and_then(|b| <[u8; FRAME_HEADER_BYTES]>::try_from(b).ok())
    {
        let at = base.saturating_add(p as u64);
        if let Some(found) = records_at(data, p, u64::from_le_bytes(word), at) {
            return Some(Resync {
                offset: at,
                ..found
            });
        }
        p = p.saturating_add(FRAME_HEADER_BYTES);
    }
    None
}

/// The records that chain from a frame at `p` in `data` whose length word
/// is `word`, if it decodes and is followed by a chained record or by the
/// end; `offset` is left for the caller.
fn records_at(data: &[u8], p: usize, word: u64, at: u64) -> Option<Resync> {
    let frame = Frame::parse(word, at).ok().flatten()?;
    let next = p
        .checked_add(FRAME_HEADER_BYTES)?
        .checked_add(frame.body_len)?;
    let body = data.get(p + FRAME_HEADER_BYTES..next)?;
    let (first, crc) = frame.decode_with(body, None).ok()?;
    let mut found = Resync::default();
    let count = |r: &WalRecord, found: &mut Resync| {
        found.records += 1;
        if let WalPayload::Entry(e) = &r.payload {
            found.first_index.get_or_insert(e.index);
            found.last_index = Some(e.index);
        }
    };
    count(&first, &mut found);
    let mut rest = WalDecoder {
        data,
        pos: next,
        crc,
        done: false,
    };
    let mut failed = false;
    for r in rest.by_ref() {
        match r {
            Ok(r) => count(&r, &mut found),
            Err(_) => failed = true,
        }
    }
    // A lone frame that decodes but is followed by bytes that do not
    // chain is as likely garbage that happens to parse.
    (found.records > 1 || !failed).then_some(found)
}

/// Decodes every record of one segment held in memory (see [`WalDecoder`]).
///
/// ```
/// use etcdsnap::raft::wal::decode_segment;
/// use etcdsnap::raft::RaftError;
///
/// // A length word announcing 16 bytes that are not there.
/// let err = decode_segment(&[16, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
/// assert!(matches!(err, RaftError::WalTruncated { offset: 0, .. }));
/// assert!(decode_segment(&[0; 64])?.is_empty());
/// # Ok::<(), RaftError>(())
/// ```
pub fn decode_segment(data: &[u8]) -> Result<Vec<WalRecord>, RaftError> {
    WalDecoder::new(data).collect()
}

/// Reads a segment file with a [`WalReader`](super::WalReader) (one record
/// in memory at a time) and collects the records; errors name the file.
pub fn read_segment_file(path: &Path) -> Result<Vec<WalRecord>, RaftError> {
    super::reader::WalReader::open(path)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.in_file(path))
}

/// etcd's `isTornEntry`: splits the frame body (record and padding, which
/// starts at `body_off` in the file) on 512-byte sector boundaries and
/// reports whether any piece is all zero.
fn is_torn(body: &[u8], body_off: u64) -> bool {
    let mut file_off = body_off;
    let mut rest = body;
    while !rest.is_empty() {
        let to_boundary = SECTOR_BYTES - file_off % SECTOR_BYTES;
        let take = usize::try_from(to_boundary).map_or(rest.len(), |n| n.min(rest.len()));
        let (chunk, tail) = rest.split_at(take);
        if chunk.iter().all(|&b| b == 0) {
            return true;
        }
        file_off = file_off.saturating_add(take as u64);
        rest = tail;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::wal::WalEncoder;

    fn word(len: u64, pad: u64) -> [u8; 8] {
        let mut w = len;
        if pad != 0 {
            w |= (0x80 | pad) << 56;
        }
        w.to_le_bytes()
    }

    fn sample() -> Vec<u8> {
        let mut enc = WalEncoder::new(0);
        enc.push(&WalPayload::Crc).unwrap();
        enc.push(&WalPayload::Metadata(WalMetadata {
            node_id: 7,
            cluster_id: 9,
        }))
        .unwrap();
        let cc = ConfChange {
            id: Some(0),
            kind: crate::raft::ConfChangeKind::AddNode,
            node_id: 7,
            context: Some(b"{}".to_vec()),
        };
        enc.push(&WalPayload::Entry(Entry {
            term: 1,
            index: 1,
            kind: EntryKind::ConfChange,
            data: Some(cc.to_bytes()),
        }))
        .unwrap();
        enc.push(&WalPayload::State(HardState {
            term: 1,
            vote: 7,
            commit: 1,
        }))
        .unwrap();
        enc.into_bytes()
    }

    #[test]
    fn sample_round_trips() {
        let recs = decode_segment(&sample()).unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].payload, WalPayload::Crc);
        assert_eq!(recs[2].conf_change.as_ref().map(|c| c.node_id), Some(7));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_clean_prefix() {
        let full = sample();
        let mut dec = WalDecoder::new(&full);
        let mut boundaries: Vec<u64> = dec.by_ref().map(|r| r.unwrap().offset).collect();
        boundaries.push(dec.end_offset());
        assert_eq!(dec.end_offset(), full.len() as u64);
        for cut in 0..full.len() {
            let res = decode_segment(&full[..cut]);
            if boundaries.contains(&(cut as u64)) {
                assert!(res.is_ok(), "cut {cut}");
            } else {
                assert!(
                    matches!(res, Err(RaftError::WalTruncated { .. })),
                    "cut {cut}: {res:?}"
                );
            }
        }
    }

    #[test]
    fn huge_length_words_are_rejected_without_allocating() {
        for w in [
            u64::MAX,
            LEN_MASK,
            MAX_RECORD_SIZE_BYTES,
            (MAX_RECORD_SIZE_BYTES - 4) | (0x84 << 56),
        ] {
            let mut data = w.to_le_bytes().to_vec();
            data.extend_from_slice(&[1; 32]);
            let err = decode_segment(&data).unwrap_err();
            assert!(
                matches!(err, RaftError::WalRecordTooLarge { offset: 0, .. }),
                "{w:#x}: {err}"
            );
        }
        // Just under the limit but not present: truncated, not allocated.
        let mut data = (MAX_RECORD_SIZE_BYTES - 1).to_le_bytes().to_vec();
        data.extend_from_slice(&[1; 32]);
        assert!(matches!(
            decode_segment(&data),
            Err(RaftError::WalTruncated { .. })
        ));
    }

    #[test]
    fn bad_crc_is_reported_with_its_offset() {
        let mut data = sample();
        // The metadata frame starts at 16; the last byte of its record is the
        // cluster_id varint (9). Changing it keeps valid protobuf.
        let len = u64::from_le_bytes(data[16..24].try_into().unwrap()) & LEN_MASK;
        let last = 16 + 8 + len as usize - 1;
        assert_eq!(data[last], 9);
        data[last] = 8;
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(err, RaftError::WalCrcMismatch { offset: 16, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("offset 16"));
    }

    #[test]
    fn crc_record_must_match_a_nonzero_chain() {
        let mut enc = WalEncoder::new(0);
        enc.push(&WalPayload::Metadata(WalMetadata::default()))
            .unwrap();
        let good = enc.crc();
        let mut data = enc.into_bytes();
        let mut other = WalEncoder::new(good ^ 1);
        other.push(&WalPayload::Crc).unwrap();
        data.extend_from_slice(other.as_bytes());
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(err, RaftError::WalCrcMismatch { offset: 24, .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_protobuf_is_an_error() {
        // A record that is not protobuf: field 15 with wire type 7.
        let rec = [0x7f, 0x7f, 0x7f, 0x7f];
        let mut data = word(4, 4).to_vec();
        data.extend_from_slice(&rec);
        data.extend_from_slice(&[0; 4]);
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(
                err,
                RaftError::WalDecode {
                    what: "walpb.Record",
                    ..
                }
            ),
            "{err}"
        );

        // A well-formed record whose entry payload is garbage.
        let payload = vec![0x22, 0x7f, 0x01]; // bytes field claiming 127 bytes
        let rec = walpb::Record {
            r#type: 2,
            crc: crc32c::crc32c(&payload),
            data: Some(payload),
        }
        .encode_to_vec();
        let pad = (8 - rec.len() % 8) % 8;
        let mut data = word(rec.len() as u64, pad as u64).to_vec();
        data.extend_from_slice(&rec);
        data.extend(std::iter::repeat_n(0, pad));
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(
                err,
                RaftError::WalDecode {
                    what: "raftpb.Entry",
                    offset: 0,
                    ..
                }
            ),
            "{err}"
        );

        // A conf change entry whose data is not a ConfChange.
        let entry = raftpb::Entry {
            r#type: 1,
            term: 1,
            index: 1,
            data: Some(vec![0xff]),
        }
        .encode_to_vec();
        let mut enc = WalEncoder::new(0);
        enc.push_raw(RecordType::Entry, Some(entry)).unwrap();
        let err = decode_segment(enc.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                RaftError::WalDecode {
                    what: "raftpb.ConfChange",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_record_type_is_an_error() {
        let rec = walpb::Record {
            r#type: 9,
            crc: 0,
            data: None,
        }
        .encode_to_vec();
        let mut data = word(rec.len() as u64, 4).to_vec();
        data.extend_from_slice(&rec);
        data.extend_from_slice(&[0; 4]);
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(err, RaftError::WalUnknownRecordType { rec_type: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn zeroed_sector_is_a_torn_write() {
        // An entry big enough to span a sector boundary, then zero its tail.
        let mut enc = WalEncoder::new(0);
        enc.push(&WalPayload::Entry(Entry {
            term: 1,
            index: 1,
            kind: EntryKind::Normal,
            data: Some(vec![0xaa; 1200]),
        }))
        .unwrap();
        let mut data = enc.into_bytes();
        for b in &mut data[512..1024] {
            *b = 0;
        }
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(err, RaftError::WalTornWrite { offset: 0 }),
            "{err}"
        );
    }

    #[test]
    fn errors_stop_the_iterator() {
        let data = [0xff; 8];
        let mut dec = WalDecoder::new(&data);
        assert!(dec.next().unwrap().is_err());
        assert!(dec.next().is_none());
        assert_eq!(dec.end_offset(), 0);
    }

    #[test]
    fn partial_length_word_is_truncated() {
        let mut data = sample();
        data.extend_from_slice(&[1, 0, 0]);
        let err = decode_segment(&data).unwrap_err();
        assert!(
            matches!(
                err,
                RaftError::WalTruncated {
                    needed: 8,
                    available: 3,
                    ..
                }
            ),
            "{err}"
        );
    }
}
