//! A protobuf wire-format reader for untrusted bytes: every length is
//! checked against what is left, nothing is allocated, and a malformed
//! message ends the iteration with an error instead of a panic.

/// One field's value as the wire format carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, a string or a nested message.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Why a message could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A varint longer than 10 bytes or cut short.
    #[error("malformed varint at byte {0}")]
    Varint(usize),
    /// A field number of 0, or a wire type protobuf does not define (3, 4
    /// are groups, which no Kubernetes object uses; 6 and 7 do not exist).
    #[error("unsupported tag {tag} at byte {at}")]
    Tag {
        /// The tag read.
        tag: u64,
        /// Where.
        at: usize,
    },
    /// A length that runs past the end.
    #[error("field at byte {0} runs past the end of the message")]
    Truncated(usize),
}

/// Iterates the fields of one message: `(field number, value)`. After an
/// error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The fields of `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

/// Reads a varint at `pos`; returns it and the position after it.
pub fn varint(buf: &[u8], pos: usize) -> Result<(u64, usize), WireError> {
    let mut v = 0u64;
    for i in 0..10 {
        let at = pos.checked_add(i).ok_or(WireError::Varint(pos))?;
        let b = *buf.get(at).ok_or(WireError::Varint(pos))?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, at + 1));
        }
    }
    Err(WireError::Varint(pos))
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<(u32, Wire<'a>), WireError> {
        let start = self.pos;
        let (tag, p) = varint(self.buf, start)?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(WireError::Tag { tag, at: start });
        }
        let take = |p: usize, n: usize| -> Result<(&'a [u8], usize), WireError> {
            let end = p.checked_add(n).ok_or(WireError::Truncated(start))?;
            let s = self.buf.get(p..end).ok_or(WireError::Truncated(start))?;
            Ok((s, end))
        };
        let (value, next) = match tag & 7 {
            0 => {
                let (v, n) = varint(self.buf, p)?;
                (Wire::Varint(v), n)
            }
            1 => {
                let (s, n) = take(p, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                (Wire::Fixed64(u64::from_le_bytes(a)), n)
            }
            2 => {
                let (len, p) = varint(self.buf, p)?;
                let len = usize::try_from(len).map_err(|_| WireError::Truncated(start))?;
                let (s, n) = take(p, len)?;
                (Wire::Bytes(s), n)
            }
            5 => {
                let (s, n) = take(p, 4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(s);
                (Wire::Fixed32(u32::from_le_bytes(a)), n)
            }
            _ => return Err(WireError::Tag { tag, at: start }),
        };
        self.pos = next;
        Ok((field as u32, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.read();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `buf` is a well-formed message to its last byte.
    fn is_message(buf: &[u8]) -> bool {
        fields(buf).all(|f| f.is_ok())
    }

    #[test]
    fn reads_every_wire_type_and_refuses_bad_input() {
        // 1: varint 150, 2: bytes "hi", 3: fixed64, 4: fixed32
        let mut m = vec![0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x19];
        m.extend_from_slice(&7u64.to_le_bytes());
        m.push(0x25);
        m.extend_from_slice(&9u32.to_le_bytes());
        let got: Vec<_> = fields(&m).collect::<Result<_, _>>().expect("well formed");
        assert_eq!(
            got,
            vec![
                (1, Wire::Varint(150)),
                (2, Wire::Bytes(b"hi")),
                (3, Wire::Fixed64(7)),
                (4, Wire::Fixed32(9))
            ]
        );
        for cut in 1..m.len() {
            if [3, 7, 16].contains(&cut) {
                continue; // field boundaries
            }
            assert!(!is_message(&m[..cut]), "cut {cut}");
        }
        assert!(!is_message(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f])); // huge length
        assert!(!is_message(&[0x0b])); // group start
        assert!(!is_message(&[0x00])); // field 0
        assert!(!is_message(&[0x08; 11])); // endless varint
    }
}
