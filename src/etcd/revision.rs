//! Revision keys of the `key` bucket: `BE8(main) '_' BE8(sub)`, with a
//! trailing `t` for tombstones.

/// Length of a revision key.
pub(crate) const REV_LEN: usize = 17;
/// Length of a tombstone revision key.
pub(crate) const TOMBSTONE_LEN: usize = 18;
/// The byte that marks a tombstone.
pub(crate) const TOMBSTONE_MARK: u8 = b't';

/// A decoded revision key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// Main revision (one per transaction).
    pub main: i64,
    /// Sub revision (the change's index inside the transaction).
    pub sub: i64,
}

/// Why a key of the `key` bucket is not a revision.
#[derive(Debug, Clone, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum RevisionError {
    /// Neither 17 nor 18 bytes.
    #[error("revision key has {0} bytes, expected 17 (or 18 for a tombstone)")]
    Length(usize),
    /// Byte 8 is not `_`.
    #[error("revision key has {0:#04x} where '_' separates main and sub revision")]
    Separator(u8),
    /// An 18-byte key not ending in `t`.
    #[error("18-byte revision key ends in {0:#04x}, not the tombstone mark 't'")]
    Mark(u8),
}

/// A parsed key of the `key` bucket.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub struct RevKey {
    /// The revision.
    pub rev: Revision,
    /// Whether the key is a tombstone (deletion marker).
    pub tombstone: bool,
}

impl Revision {
    /// Encodes the 17-byte key.
    ///
    /// ```
    /// use etcdsnap::etcd::revision::Revision;
    /// let k = Revision { main: 2, sub: 1 }.encode();
    /// assert_eq!(&k[..], b"\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\x01");
    /// ```
    pub fn encode(&self) -> [u8; REV_LEN] {
        let mut k = [0u8; REV_LEN];
        k[..8].copy_from_slice(&self.main.to_be_bytes());
        k[8] = b'_';
        k[9..].copy_from_slice(&self.sub.to_be_bytes());
        k
    }

    /// The main revision from the first 8 bytes, as etcd's `bytesToRev`
    /// reads it; `None` when the key is shorter than 8 bytes.
    pub(crate) fn main_of(key: &[u8]) -> Option<i64> {
        Some(i64::from_be_bytes(key.get(..8)?.try_into().ok()?))
    }
}

/// Parses a key of the `key` bucket strictly.
pub fn parse(key: &[u8]) -> Result<RevKey, RevisionError> {
    let tombstone = match key.len() {
        REV_LEN => false,
        TOMBSTONE_LEN => true,
        n => return Err(RevisionError::Length(n)),
    };
    let sep = key.get(8).copied().unwrap_or(0);
    if sep != b'_' {
        return Err(RevisionError::Separator(sep));
    }
    if tombstone {
        let mark = key.get(17).copied().unwrap_or(0);
        if mark != TOMBSTONE_MARK {
            return Err(RevisionError::Mark(mark));
        }
    }
    let be = |r: std::ops::Range<usize>| {
        key.get(r)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_be_bytes)
            .unwrap_or(0)
    };
    Ok(RevKey {
        rev: Revision {
            main: be(0..8),
            sub: be(9..17),
        },
        tombstone,
    })
}

/// Whether `key` is a tombstone by etcd's rule (18 bytes ending in `t`).
pub(crate) fn is_tombstone(key: &[u8]) -> bool {
    key.len() == TOMBSTONE_LEN && key.last() == Some(&TOMBSTONE_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_live_and_tombstone_keys() {
        let mut k = Revision { main: 3, sub: 0 }.encode().to_vec();
        assert_eq!(parse(&k).map(|r| r.tombstone), Ok(false));
        k.push(b't');
        let r = parse(&k).expect("tombstone");
        assert!(r.tombstone && is_tombstone(&k));
        assert_eq!(r.rev, Revision { main: 3, sub: 0 });
        k[17] = b'T';
        assert_eq!(parse(&k), Err(RevisionError::Mark(b'T')));
        assert_eq!(parse(b"short"), Err(RevisionError::Length(5)));
        assert_eq!(Revision::main_of(b"short"), None);
    }
}
