//! 128-bit fingerprints of user keys, for maps that must not read keys
//! back from the file (a rehash would fault released pages in again).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A key fingerprint; hashed as its first word, which is a hash already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fp(pub(crate) [u64; 2]);

impl std::hash::Hash for Fp {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.0[0]);
    }
}

/// The identity hasher for [`Fp`].
#[derive(Default)]
pub(crate) struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = self.0.rotate_left(8) ^ u64::from(x);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by fingerprint.
pub(crate) type FpMap<V> = HashMap<Fp, V, BuildHasherDefault<FpHasher>>;

/// A 128-bit fingerprint of a user key: two independent multiply-rotate
/// lanes over its 8-byte words, each finished with a full avalanche.
/// Unrelated keys collide with probability about n^2 / 2^129; keys crafted
/// to collide could only merge two keys' counts, never crash anything.
pub(crate) fn fingerprint(key: &[u8]) -> [u64; 2] {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let len = key.len() as u64;
    let (mut a, mut b) = (K1 ^ len, K2 ^ len.rotate_left(32));
    let (chunks, rest) = key.as_chunks::<8>();
    for c in chunks {
        let w = u64::from_le_bytes(*c);
        a = (a ^ w).wrapping_mul(K1).rotate_left(31);
        b = (b ^ w.rotate_left(23)).wrapping_mul(K2).rotate_left(29);
    }
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(rest) {
        *d = *s;
    }
    let w = u64::from_le_bytes(w);
    a = (a ^ w).wrapping_mul(K1).rotate_left(31);
    b = (b ^ w.rotate_left(23)).wrapping_mul(K2).rotate_left(29);
    [fmix(a ^ b.rotate_left(7)), fmix(b ^ K1)]
}

/// MurmurHash3's 64-bit finaliser.
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
