//! The byte encoding every repository object uses: fixed-width little-endian
//! integers and length-prefixed byte strings, written by [`Enc`] and read by
//! [`Dec`], which checks every length against what is left and never panics.

/// Appends fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Enc(pub Vec<u8>);

impl Enc {
    pub(crate) fn with_capacity(n: usize) -> Enc {
        Enc(Vec::with_capacity(n))
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads fields from untrusted bytes. Every read checks the remaining
/// length first; errors say what was being read and at which offset.
#[derive(Debug, Clone)]
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A decoding failure: what was expected at which offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub offset: usize,
    pub reason: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

pub(crate) type DecResult<T> = Result<T, DecodeError>;

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf, pos: 0 }
    }

    pub(crate) fn err<T>(&self, reason: impl Into<String>) -> DecResult<T> {
        Err(DecodeError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> DecResult<&'a [u8]> {
        let end = match self.pos.checked_add(n) {
            Some(e) if e <= self.buf.len() => e,
            _ => {
                return self.err(format!(
                    "{what}: needs {n} bytes, {} left",
                    self.remaining()
                ));
            }
        };
        let out = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> DecResult<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> DecResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &str) -> DecResult<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> DecResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> DecResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn i64(&mut self, what: &str) -> DecResult<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Checks a fixed magic string.
    pub(crate) fn magic(&mut self, want: &[u8], what: &str) -> DecResult<()> {
        let at = self.pos;
        let got = self.bytes(want.len(), what)?;
        if got != want {
            return Err(DecodeError {
                offset: at,
                reason: format!("{what}: bad magic"),
            });
        }
        Ok(())
    }

    /// Fails if bytes are left over: every encoding is canonical.
    pub(crate) fn finish(&self, what: &str) -> DecResult<()> {
        if self.remaining() != 0 {
            return self.err(format!("{what}: {} trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

/// Lower-case hex.
pub(crate) use crate::go::hex::encode as hex;

/// Parses 64 hex digits into 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, &[hi, lo]) in out.iter_mut().zip(s.as_chunks::<2>().0) {
        let hi = (hi as char).to_digit(16)?;
        let lo = (lo as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut e = Enc::default();
        e.u8(7)
            .u16(300)
            .u32(70000)
            .u64(1 << 40)
            .i64(-5)
            .bytes(b"xy");
        let v = e.finish();
        let mut d = Dec::new(&v);
        assert_eq!(d.u8("a"), Ok(7));
        assert_eq!(d.u16("b"), Ok(300));
        assert_eq!(d.u32("c"), Ok(70000));
        assert_eq!(d.u64("d"), Ok(1 << 40));
        assert_eq!(d.i64("e"), Ok(-5));
        assert_eq!(d.bytes(2, "f"), Ok(&b"xy"[..]));
        assert!(d.finish("x").is_ok());
        assert!(d.u8("past the end").is_err());
        assert!(Dec::new(&[1, 2]).bytes(usize::MAX, "huge").is_err());
    }

    #[test]
    fn hex_round_trip() {
        let b: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(parse_hex32(&hex(&b)), Some(b));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }
}
