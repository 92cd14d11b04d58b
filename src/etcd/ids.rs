//! Member and cluster IDs, computed as etcd computes them at bootstrap and
//! restore.
//!
//! * member ID: the first 8 bytes (big-endian) of
//!   `SHA1(url_1 || url_2 || ... || token)`, where the URLs are the member's
//!   canonical peer URLs sorted bytewise and concatenated without separator
//!   and `token` is `--initial-cluster-token` (restore mixes in no time);
//! * cluster ID: the first 8 bytes (big-endian) of
//!   `SHA1(BE8(id_1) || BE8(id_2) || ...)` over the member IDs sorted
//!   ascending;
//! * the text form of an ID is lower-case hex without leading zeros.

use sha1::{Digest, Sha1};

fn first_8_be(digest: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (dst, src) in word.iter_mut().zip(digest) {
        *dst = *src;
    }
    u64::from_be_bytes(word)
}

/// Computes a member ID from its canonical peer URLs and the cluster token.
///
/// The URLs are sorted bytewise before hashing, as etcd does, so their order
/// in `sorted_canonical_urls` does not matter.
///
/// ```
/// use etcdsnap::etcd::ids::{format_id, member_id};
/// let id = member_id(&["http://localhost:2380"], b"etcd-cluster");
/// assert_eq!(format_id(id), "8e9e05c52164694d");
/// ```
pub fn member_id(sorted_canonical_urls: &[&str], token: &[u8]) -> u64 {
    let mut urls = sorted_canonical_urls.to_vec();
    urls.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Sha1::new();
    for url in urls {
        hasher.update(url.as_bytes());
    }
    hasher.update(token);
    first_8_be(&hasher.finalize())
}

/// Computes the cluster ID from the member IDs (in any order; they are
/// sorted ascending before hashing). etcd's IDs are distinct; duplicates are
/// hashed as given.
///
/// ```
/// use etcdsnap::etcd::ids::{cluster_id, format_id};
/// assert_eq!(format_id(cluster_id(&[0x8e9e05c52164694d])), "cdf818194e3a8c32");
/// ```
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha1::new();
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    first_8_be(&hasher.finalize())
}

/// Formats an ID as etcd's `types.ID.String()`: lower-case hex without
/// leading zeros (`0` for zero).
///
/// ```
/// assert_eq!(etcdsnap::etcd::ids::format_id(0x0614222aa6b90f72), "614222aa6b90f72");
/// assert_eq!(etcdsnap::etcd::ids::format_id(0), "0");
/// ```
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

/// Parses an ID written in hex, as etcd's `types.IDFromString` does (any
/// case, no `0x` prefix, no sign, at most 64 bits).
///
/// ```
/// assert_eq!(etcdsnap::etcd::ids::parse_id("8E9E05C52164694D"), Some(0x8e9e05c52164694d));
/// assert_eq!(etcdsnap::etcd::ids::parse_id("+1"), None);
/// ```
pub fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_vectors_defaults() {
        let m = member_id(&["http://localhost:2380"], b"etcd-cluster");
        assert_eq!(m, 10276657743932975437);
        assert_eq!(format_id(m), "8e9e05c52164694d");
        let c = cluster_id(&[m]);
        assert_eq!(c, 14841639068965178418);
        assert_eq!(format_id(c), "cdf818194e3a8c32");
    }

    #[test]
    fn doc_vectors_three_members() {
        let token = b"tok-xyz";
        let m1 = member_id(&["http://10.0.0.1:2380"], token);
        let m2 = member_id(&["http://10.0.0.2:2380", "http://10.0.0.2:12380"], token);
        let m2_sorted = member_id(&["http://10.0.0.2:12380", "http://10.0.0.2:2380"], token);
        let m3 = member_id(&["https://node3.example:2380"], token);
        assert_eq!(format_id(m1), "614222aa6b90f72");
        assert_eq!(format_id(m2), "3d274109dcb8ec6b");
        assert_eq!(m2, m2_sorted);
        assert_eq!(format_id(m3), "228d327bcfe81d90");
        assert_eq!(format_id(cluster_id(&[m3, m1, m2])), "11ef1ac1e2f71fb7");
        // The hash input is the concatenation, so this is the same ID.
        let mut h = Sha1::new();
        h.update(b"http://10.0.0.2:12380http://10.0.0.2:2380tok-xyz");
        assert_eq!(first_8_be(&h.finalize()), m2);
    }

    #[test]
    fn doc_vectors_origtok() {
        let m = member_id(&["http://127.0.0.1:23800"], b"origtok");
        assert_eq!(format_id(m), "9b117a65ef5b0082");
        assert_eq!(format_id(cluster_id(&[m])), "d2d903da6f53b99b");
    }

    #[test]
    fn cluster_id_sorts_numerically_not_by_hex_text() {
        // The hex texts sort the other way round from the numbers.
        let small = 0x0077f31c211d10e0_u64;
        let big = 0x13b6beb6cc424afb_u64;
        assert!(format_id(small) > format_id(big));
        assert_eq!(cluster_id(&[big, small]), cluster_id(&[small, big]));
        let mut h = Sha1::new();
        h.update(small.to_be_bytes());
        h.update(big.to_be_bytes());
        assert_eq!(cluster_id(&[big, small]), first_8_be(&h.finalize()));
    }

    #[test]
    fn empty_token_and_empty_list() {
        let mut h = Sha1::new();
        h.update(b"http://localhost:2380");
        assert_eq!(
            member_id(&["http://localhost:2380"], b""),
            first_8_be(&h.finalize())
        );
        assert_eq!(cluster_id(&[]), first_8_be(&Sha1::digest(b"")));
    }

    #[test]
    fn id_text_round_trip() {
        for id in [0, 1, 0xf, 0x10, 0x614222aa6b90f72, u64::MAX] {
            assert_eq!(parse_id(&format_id(id)), Some(id));
        }
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("0x1"), None);
        assert_eq!(parse_id("1ffffffffffffffff"), None);
    }
}
