//! Reading a WAL segment from a stream, one record at a time: memory stays
//! at one record (at most 10 MiB) whatever the segment's size.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use super::FRAME_HEADER_BYTES;
use super::decoder::{Frame, WalRecord};
use crate::raft::error::RaftError;

/// Iterates over the records of one WAL segment read from `R`, with the
/// same rules and errors as [`WalDecoder`](super::WalDecoder): the end of
/// the stream or a zero length word ends the segment; a frame cut short is
/// [`RaftError::WalTruncated`], a frame with a zeroed sector
/// [`RaftError::WalTornWrite`] (the two tails etcd's read-all mode stops at
/// without an error, and repairs when it next opens the WAL for writing).
/// After the first error the iterator yields nothing more;
/// [`end_offset`](Self::end_offset) then says where the last good record
/// ended.
///
/// ```
/// use etcdsnap::raft::wal::{WalPayload, WalReader, decode_segment};
/// use etcdsnap::raft::RaftError;
///
/// // The records `etcdutl 3.5 snapshot restore` wrote for three members,
/// // the last one cut short as a crash would.
/// let wal = std::fs::read("testdata/golden/v35-three-members/0000000000000000-0000000000000000.wal.prefix")?;
/// let last = decode_segment(&wal)?.last().map(|r| r.offset).unwrap_or(0);
/// let cut = &wal[..wal.len() - 3];
///
/// let mut reader = WalReader::new(cut);
/// assert!(matches!(reader.next(), Some(Ok(r)) if r.payload == WalPayload::Crc));
/// let mut tail = reader.by_ref().skip_while(Result::is_ok);
/// assert!(matches!(tail.next(), Some(Err(RaftError::WalTruncated { offset, .. })) if offset == last));
/// assert_eq!(reader.end_offset(), last);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WalReader<R> {
    r: R,
    pos: u64,
    crc: u32,
    buf: Vec<u8>,
    done: bool,
}

impl WalReader<BufReader<File>> {
    /// A reader over the segment file at `path`.
    pub fn open(path: &Path) -> Result<Self, RaftError> {
        let f = File::open(path).map_err(|e| RaftError::io("open", path, e))?;
        Ok(WalReader::new(BufReader::with_capacity(256 << 10, f)))
    }
}

impl<R: Read> WalReader<R> {
    /// A reader over a segment's bytes, starting at offset 0.
    pub fn new(r: R) -> Self {
        WalReader {
            r,
            pos: 0,
            crc: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// Continues the CRC chain of the segment before: etcd's decoder reads
    /// all segments with one running CRC, so the CRC record that starts a
    /// segment must carry the CRC the previous one ended with (else `wal:
    /// crc mismatch`, as when a segment between them is missing). A chain of
    /// 0 checks nothing (the first segment read).
    pub fn with_crc(mut self, crc: u32) -> Self {
        self.crc = crc;
        self
    }

    /// The running CRC after the last record read successfully.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The offset just past the last record read successfully.
    pub fn end_offset(&self) -> u64 {
        self.pos
    }

    /// Reads into `buf` until it is full or the stream ends; returns how
    /// many bytes were read.
    fn fill(r: &mut R, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        let mut got = 0;
        while got < buf.len() {
            match r.read(buf.get_mut(got..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    fn next_record(&mut self) -> Result<Option<WalRecord>, RaftError> {
        let offset = self.pos;
        let io = |e: std::io::Error| RaftError::WalRead { offset, source: e };
        let mut word = [0u8; FRAME_HEADER_BYTES];
        let got = Self::fill(&mut self.r, &mut word).map_err(io)?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER_BYTES {
            return Err(RaftError::WalTruncated {
                offset,
                needed: FRAME_HEADER_BYTES as u64,
                available: got as u64,
            });
        }
        let Some(frame) = Frame::parse(u64::from_le_bytes(word), offset)? else {
            return Ok(None);
        };
        // Bounded by the 10 MiB record limit Frame::parse enforces.
        self.buf.resize(frame.body_len, 0);
        let got = Self::fill(&mut self.r, &mut self.buf).map_err(io)?;
        if got < frame.body_len {
            return Err(RaftError::WalTruncated {
                offset,
                needed: frame.total(),
                available: (FRAME_HEADER_BYTES + got) as u64,
            });
        }
        let (record, crc) = frame.decode(&self.buf, self.crc)?;
        self.crc = crc;
        self.pos = offset.saturating_add(frame.total());
        Ok(Some(record))
    }
}

impl<R: Read> Iterator for WalReader<R> {
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

impl<R: Read> std::iter::FusedIterator for WalReader<R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::wal::{WalDecoder, WalEncoder, WalPayload};
    use crate::raft::{Entry, EntryKind, WalMetadata};

    fn sample() -> Vec<u8> {
        let mut enc = WalEncoder::new(0);
        enc.push(&WalPayload::Crc).unwrap();
        enc.push(&WalPayload::Metadata(WalMetadata {
            node_id: 7,
            cluster_id: 9,
        }))
        .unwrap();
        for i in 1..=3 {
            enc.push(&WalPayload::Entry(Entry {
                term: 1,
                index: i,
                kind: EntryKind::Normal,
                data: Some(vec![0x5a; 700]),
            }))
            .unwrap();
        }
        enc.into_bytes()
    }

    /// The same outcome as the in-memory decoder: records, then the same
    /// error (or none) at the same offset.
    fn same(bytes: &[u8]) {
        let a: Vec<_> = WalDecoder::new(bytes).collect();
        let b: Vec<_> = WalReader::new(bytes).collect();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            match (x, y) {
                (Ok(x), Ok(y)) => assert_eq!(x, y),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
                _ => panic!("{x:?} vs {y:?}"),
            }
        }
    }

    #[test]
    fn agrees_with_the_slice_decoder_on_every_cut_and_zeroed_tail() {
        let full = sample();
        for cut in 0..=full.len() {
            same(&full[..cut]);
        }
        for zero_from in (0..full.len()).step_by(64) {
            let mut z = full.clone();
            z[zero_from..].fill(0);
            same(&z);
        }
    }
}
