//! `encoding/hex`'s `EncodeToString`: lower-case hex, two digits a byte.

/// `hex.EncodeToString(b)`.
///
/// ```
/// use etcdsnap::internal::go::hex;
/// assert_eq!(hex::encode(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn encode(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len().saturating_mul(2));
    for &x in b {
        s.push(digit(x >> 4));
        s.push(digit(x & 0x0f));
    }
    s
}

/// The hex digit of `n` (0 to 15).
fn digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
}
