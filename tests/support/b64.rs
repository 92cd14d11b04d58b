//! Standard base64 (RFC 4648), as the etcd JSON gateway expects for bytes fields, through the
//! `base64` crate: the tests' loader encodes every value it puts (tens of MB per test), and the
//! crate is built optimized in the dev profile where a loop of the tests' own is not (a
//! hand-written encoder was a third of the CPU of tests that fill a store).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Encodes with padding; decodes with or without it (etcdctl and the gateway both pad, but
/// a hand-written expectation need not).
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Appends the base64 encoding of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    STANDARD.encode_string(data, out);
}

/// The base64 encoding of `data`.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64 (padding optional); `None` for anything else (a character outside
/// the alphabet, a length or final bits no encoder produces).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}
