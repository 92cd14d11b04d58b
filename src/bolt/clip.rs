//! Bytes of the input that a problem report keeps: a bounded prefix and
//! the full length, so that a report stays small whatever the file holds
//! (many elements of a page may all point at the same huge key).

use std::fmt;
use std::ops::Deref;

/// Most bytes of an input key, value or name a problem keeps.
pub const CLIP_LEN: usize = 256;

/// Bytes copied from the input into a problem: at most [`CLIP_LEN`] of
/// them, and the length of the whole.
///
/// ```
/// use etcdsnap::bolt::{CLIP_LEN, Clipped};
/// let short = Clipped::new(b"foo");
/// assert_eq!((&*short, short.len(), short.is_clipped()), (&b"foo"[..], 3, false));
/// assert_eq!(short.suffix().to_string(), "");
/// let long = Clipped::new(&[b'x'; 1000]);
/// assert_eq!((long.kept().len(), long.len()), (CLIP_LEN, 1000));
/// assert_eq!(long.suffix().to_string(), "... (1000 bytes)");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clipped {
    kept: Vec<u8>,
    len: usize,
}

impl Clipped {
    /// The first [`CLIP_LEN`] bytes of `bytes`, and its length.
    pub fn new(bytes: &[u8]) -> Clipped {
        Clipped {
            kept: bytes[..bytes.len().min(CLIP_LEN)].to_vec(),
            len: bytes.len(),
        }
    }

    /// The bytes kept (all of them when [`is_clipped`](Self::is_clipped)
    /// is false).
    pub fn kept(&self) -> &[u8] {
        &self.kept
    }

    /// Length of the input bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the input was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether bytes were left out.
    pub fn is_clipped(&self) -> bool {
        self.len > self.kept.len()
    }

    /// What to print after a rendering of [`kept`](Self::kept): nothing,
    /// or `... (N bytes)` when bytes were left out.
    pub fn suffix(&self) -> impl fmt::Display + '_ {
        Suffix(self)
    }
}

struct Suffix<'c>(&'c Clipped);

impl fmt::Display for Suffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_clipped() {
            write!(f, "... ({} bytes)", self.0.len)
        } else {
            Ok(())
        }
    }
}

impl Deref for Clipped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.kept
    }
}

impl From<&[u8]> for Clipped {
    fn from(bytes: &[u8]) -> Clipped {
        Clipped::new(bytes)
    }
}

impl From<Vec<u8>> for Clipped {
    fn from(mut bytes: Vec<u8>) -> Clipped {
        let len = bytes.len();
        bytes.truncate(CLIP_LEN);
        Clipped { kept: bytes, len }
    }
}

/// Equal when the lengths and the kept bytes are (exact for bytes not
/// clipped).
impl PartialEq<[u8]> for Clipped {
    fn eq(&self, other: &[u8]) -> bool {
        self.len == other.len() && other.starts_with(&self.kept)
    }
}

/// As for `[u8]`.
impl PartialEq<Vec<u8>> for Clipped {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self == other[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_past_the_limit_only() {
        let exact = Clipped::new(&[7; CLIP_LEN]);
        assert!(!exact.is_clipped());
        assert_eq!(exact, vec![7; CLIP_LEN]);
        let over: Clipped = vec![7; CLIP_LEN + 1].into();
        assert!(over.is_clipped());
        assert_eq!((over.kept().len(), over.len()), (CLIP_LEN, CLIP_LEN + 1));
        assert_eq!(over, Clipped::new(&[7; CLIP_LEN + 1]));
        assert_eq!(over.suffix().to_string(), "... (257 bytes)");
        assert!(Clipped::default().is_empty());
    }
}
