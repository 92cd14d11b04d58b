//! Writing WAL frames with the chained CRC.

use prost::Message;

use super::{MAX_RECORD_SIZE_BYTES, RecordType, WalPayload, padding_for};
use crate::raft::error::RaftError;
use crate::raft::proto::walpb;

/// Appends WAL frames to an in-memory buffer, keeping the running CRC-32C
/// chain exactly as etcd's `wal.encoder` does.
///
/// For every record the encoder folds the record's data (empty when absent)
/// into the running CRC and stores the result in the record; for a CRC
/// record (no data) that is just the running value.
///
/// ```
/// use etcdsnap::raft::WalSnapshot;
/// use etcdsnap::raft::wal::WalPayload;
/// use etcdsnap::internal::raft::WalEncoder;
///
/// let mut enc = WalEncoder::new(0);
/// enc.push(&WalPayload::Crc)?;
/// // The first frame of every restored WAL: length 4, padding 4, crc record 0.
/// assert_eq!(enc.as_bytes(), [0x04, 0, 0, 0, 0, 0, 0, 0x84, 0x08, 0x04, 0x10, 0x00, 0, 0, 0, 0]);
///
/// let snap = WalSnapshot::new(0, 0, None);
/// let crc = enc.push(&WalPayload::Snapshot(snap))?;
/// assert_eq!(crc, crc32c::crc32c(&[0x08, 0x00, 0x10, 0x00]));
/// assert_eq!(enc.as_bytes().len() % 8, 0);
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct WalEncoder {
    buf: Vec<u8>,
    crc: u32,
}

impl WalEncoder {
    /// A new encoder whose CRC chain starts at `prev_crc` (0 for the first
    /// segment of a WAL; the last record's CRC of the previous segment
    /// otherwise).
    pub fn new(prev_crc: u32) -> Self {
        WalEncoder {
            buf: Vec::new(),
            crc: prev_crc,
        }
    }

    /// The running CRC: the value the next CRC record would store.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The frames written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the encoder, returning the frames written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends a typed record: marshals the payload and calls
    /// [`push_raw`](Self::push_raw). Returns the CRC stored in the record.
    pub fn push(&mut self, payload: &WalPayload) -> Result<u32, RaftError> {
        self.push_raw(payload.record_type(), payload.to_bytes())
    }

    /// Appends a record of type `rec_type` with payload `data` (`None` writes
    /// no data field, as for CRC records). Returns the CRC stored in the
    /// record.
    ///
    /// Refuses (and writes nothing) when the record plus its padding would
    /// reach [`MAX_RECORD_SIZE_BYTES`], since no etcd reader would accept it.
    pub fn push_raw(
        &mut self,
        rec_type: RecordType,
        data: Option<Vec<u8>>,
    ) -> Result<u32, RaftError> {
        let crc = crc32c::crc32c_append(self.crc, data.as_deref().unwrap_or(&[]));
        let rec = walpb::Record {
            r#type: rec_type.code(),
            crc,
            data,
        };
        let bytes = rec.encode_to_vec();
        let len = bytes.len() as u64;
        let pad = padding_for(len);
        let limit = MAX_RECORD_SIZE_BYTES - pad;
        if len >= limit {
            return Err(RaftError::WalRecordTooLargeToWrite { len, limit });
        }
        let mut word = len;
        if pad != 0 {
            word |= (0x80 | pad) << 56;
        }
        self.buf.extend_from_slice(&word.to_le_bytes());
        self.buf.extend_from_slice(&bytes);
        self.buf.extend(std::iter::repeat_n(0u8, pad as usize));
        self.crc = crc;
        Ok(crc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_equals_crc_of_concatenation() {
        let mut enc = WalEncoder::new(0);
        let a = enc
            .push_raw(RecordType::Entry, Some(b"abc".to_vec()))
            .unwrap();
        let b = enc
            .push_raw(RecordType::Entry, Some(b"defgh".to_vec()))
            .unwrap();
        assert_eq!(a, crc32c::crc32c(b"abc"));
        assert_eq!(b, crc32c::crc32c(b"abcdefgh"));
        // A CRC record stores the running value and does not change it.
        assert_eq!(enc.push(&WalPayload::Crc).unwrap(), b);
        assert_eq!(enc.crc(), b);
    }

    #[test]
    fn frames_are_aligned_and_padding_is_in_the_length_word() {
        let mut enc = WalEncoder::new(0);
        // Record bytes: 08 02 10 <crc varint> 1a 01 'x' -> length not a multiple of 8.
        enc.push_raw(RecordType::Entry, Some(b"x".to_vec()))
            .unwrap();
        let bytes = enc.as_bytes();
        assert_eq!(bytes.len() % 8, 0);
        let word = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let len = word & 0x00ff_ffff_ffff_ffff;
        let pad = (8 - len % 8) % 8;
        assert_eq!(word >> 56, 0x80 | pad);
        assert_eq!(bytes.len() as u64, 8 + len + pad);
    }

    #[test]
    fn refuses_records_over_the_limit() {
        let mut enc = WalEncoder::new(0);
        let err = enc
            .push_raw(
                RecordType::Entry,
                Some(vec![0; MAX_RECORD_SIZE_BYTES as usize]),
            )
            .unwrap_err();
        assert!(matches!(err, RaftError::WalRecordTooLargeToWrite { .. }));
        assert!(enc.as_bytes().is_empty());
        assert_eq!(enc.crc(), 0);
    }
}
