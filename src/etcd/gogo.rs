//! Protobuf decoding the way etcd's generated gogo-protobuf code does it,
//! for the records etcd reads back from its buckets (`mvccpb.KeyValue`,
//! `leasepb.Lease`, `etcdserverpb.AlarmMember`, `authpb.User`,
//! `authpb.Role`).
//!
//! What gogo's `Unmarshal` accepts differs in small ways from other
//! decoders (prost, Go's reflection-based one): strings are not checked for
//! UTF-8, a 10-byte varint may carry any bits in its last byte, field
//! numbers are truncated to 32 bits, unknown fields may be groups. A record
//! etcd decodes must be judged by etcd's rules, so this walks the wire
//! format with exactly those rules and reports gogo's own error texts.

use std::fmt;

/// How a known field is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    /// A varint (int64, uint64, bool, enum).
    Varint,
    /// A length-delimited byte string or string.
    Bytes,
    /// A length-delimited nested message, decoded by its own rules.
    Message(&'static Schema),
}

/// One known field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) num: i32,
    pub(crate) name: &'static str,
    pub(crate) kind: FieldKind,
}

/// A message type: its Go name (for error texts) and its known fields.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
}

const fn f(num: i32, name: &'static str, kind: FieldKind) -> Field {
    Field { num, name, kind }
}

/// `mvccpb.KeyValue`.
pub(crate) static KEY_VALUE: Schema = Schema {
    name: "KeyValue",
    fields: &[
        f(1, "Key", FieldKind::Bytes),
        f(2, "CreateRevision", FieldKind::Varint),
        f(3, "ModRevision", FieldKind::Varint),
        f(4, "Version", FieldKind::Varint),
        f(5, "Value", FieldKind::Bytes),
        f(6, "Lease", FieldKind::Varint),
    ],
};

/// `leasepb.Lease`.
pub(crate) static LEASE: Schema = Schema {
    name: "Lease",
    fields: &[
        f(1, "ID", FieldKind::Varint),
        f(2, "TTL", FieldKind::Varint),
        f(3, "RemainingTTL", FieldKind::Varint),
    ],
};

/// `etcdserverpb.AlarmMember`.
pub(crate) static ALARM_MEMBER: Schema = Schema {
    name: "AlarmMember",
    fields: &[
        f(1, "MemberID", FieldKind::Varint),
        f(2, "Alarm", FieldKind::Varint),
    ],
};

static USER_ADD_OPTIONS: Schema = Schema {
    name: "UserAddOptions",
    fields: &[f(1, "NoPassword", FieldKind::Varint)],
};

/// `authpb.User`.
pub(crate) static USER: Schema = Schema {
    name: "User",
    fields: &[
        f(1, "Name", FieldKind::Bytes),
        f(2, "Password", FieldKind::Bytes),
        f(3, "Roles", FieldKind::Bytes),
        f(4, "Options", FieldKind::Message(&USER_ADD_OPTIONS)),
    ],
};

static PERMISSION: Schema = Schema {
    name: "Permission",
    fields: &[
        f(1, "PermType", FieldKind::Varint),
        f(2, "Key", FieldKind::Bytes),
        f(3, "RangeEnd", FieldKind::Bytes),
    ],
};

/// `authpb.Role`.
pub(crate) static ROLE: Schema = Schema {
    name: "Role",
    fields: &[
        f(1, "Name", FieldKind::Bytes),
        f(2, "KeyPermission", FieldKind::Message(&PERMISSION)),
    ],
};

/// Why gogo's `Unmarshal` rejects the bytes; `Display` is gogo's text.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum GogoError {
    /// `io.ErrUnexpectedEOF`.
    UnexpectedEof,
    /// A varint longer than 10 bytes.
    IntOverflow,
    /// A length that is negative as a Go `int`.
    InvalidLength,
    /// An end-group tag without a start.
    UnexpectedEndOfGroup,
    /// Wire type 6 or 7.
    IllegalWireType(u64),
    /// An end-group tag where a field was expected.
    EndGroupForNonGroup {
        /// The message type.
        message: &'static str,
    },
    /// Field number 0 or negative (after truncation to 32 bits).
    IllegalTag {
        /// The message type.
        message: &'static str,
        /// The field number, as Go's int32.
        field: i32,
        /// The whole tag varint (Go prints it as the "wire type").
        tag: u64,
    },
    /// A known field with the wrong wire type.
    WrongWireType {
        /// The field's Go name.
        field: &'static str,
        /// The wire type found.
        wire_type: u64,
    },
}

impl fmt::Display for GogoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GogoError::UnexpectedEof => f.write_str("unexpected EOF"),
            GogoError::IntOverflow => f.write_str("proto: integer overflow"),
            GogoError::InvalidLength => {
                f.write_str("proto: negative length found during unmarshaling")
            }
            GogoError::UnexpectedEndOfGroup => f.write_str("proto: unexpected end of group"),
            GogoError::IllegalWireType(w) => write!(f, "proto: illegal wireType {w}"),
            GogoError::EndGroupForNonGroup { message } => {
                write!(f, "proto: {message}: wiretype end group for non-group")
            }
            GogoError::IllegalTag {
                message,
                field,
                tag,
            } => write!(f, "proto: {message}: illegal tag {field} (wire type {tag})"),
            GogoError::WrongWireType { field, wire_type } => {
                write!(f, "proto: wrong wireType = {wire_type} for field {field}")
            }
        }
    }
}

impl std::error::Error for GogoError {}

/// A known field's value, handed to the caller of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A varint field.
    Varint(u64),
    /// A bytes, string or (already checked) message field.
    Bytes(&'a [u8]),
}

/// Reads a varint at `*i` the way gogo does: at most 10 bytes, the bits
/// beyond 64 dropped.
fn varint(d: &[u8], i: &mut usize) -> Result<u64, GogoError> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        if shift >= 64 {
            return Err(GogoError::IntOverflow);
        }
        let b = *d.get(*i).ok_or(GogoError::UnexpectedEof)?;
        *i += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
    }
}

/// A length varint as Go's `int`: the same bits, negative when the top bit
/// is set.
fn length(d: &[u8], i: &mut usize) -> Result<i64, GogoError> {
    Ok(varint(d, i)? as i64)
}

/// The end of a length-delimited field starting at `i`, checked as gogo
/// checks it.
fn delimited_end(d: &[u8], i: usize, len: i64) -> Result<usize, GogoError> {
    if len < 0 {
        return Err(GogoError::InvalidLength);
    }
    let post = (i as i64).wrapping_add(len);
    if post < 0 {
        return Err(GogoError::InvalidLength);
    }
    if post > d.len() as i64 {
        return Err(GogoError::UnexpectedEof);
    }
    Ok(post as usize)
}

/// gogo's `skipX`: the length of the unknown field (with its tag) at the
/// start of `d`, groups included.
fn skip(d: &[u8]) -> Result<i64, GogoError> {
    let l = d.len() as i64;
    let mut i = 0usize;
    let mut depth = 0u64;
    while (i as i64) < l {
        let tag = varint(d, &mut i)?;
        let mut at = i as i64;
        match tag & 7 {
            0 => {
                varint(d, &mut i)?;
                at = i as i64;
            }
            1 => at = at.wrapping_add(8),
            2 => {
                let len = length(d, &mut i)?;
                if len < 0 {
                    return Err(GogoError::InvalidLength);
                }
                at = (i as i64).wrapping_add(len);
            }
            3 => depth += 1,
            4 => {
                if depth == 0 {
                    return Err(GogoError::UnexpectedEndOfGroup);
                }
                depth -= 1;
            }
            5 => at = at.wrapping_add(4),
            w => return Err(GogoError::IllegalWireType(w)),
        }
        if at < 0 {
            return Err(GogoError::InvalidLength);
        }
        if depth == 0 {
            return Ok(at);
        }
        // Inside a group: continue from `at`, which may lie past the end
        // (then the loop ends and the data is short).
        i = usize::try_from(at).unwrap_or(usize::MAX);
    }
    Err(GogoError::UnexpectedEof)
}

/// Decodes `d` as a `schema` message by gogo's rules, handing every known
/// field to `on_field` (nested messages are checked by their own schema
/// and handed over as bytes). Unknown fields are skipped.
pub(crate) fn decode<'a, F: FnMut(i32, Value<'a>)>(
    schema: &Schema,
    d: &'a [u8],
    mut on_field: F,
) -> Result<(), GogoError> {
    let mut i = 0usize;
    while i < d.len() {
        let pre = i;
        let tag = varint(d, &mut i)?;
        // Go: fieldNum := int32(wire >> 3)
        let num = (tag >> 3) as u32 as i32;
        let wire_type = tag & 7;
        if wire_type == 4 {
            return Err(GogoError::EndGroupForNonGroup {
                message: schema.name,
            });
        }
        if num <= 0 {
            return Err(GogoError::IllegalTag {
                message: schema.name,
                field: num,
                tag,
            });
        }
        match schema.fields.iter().find(|f| f.num == num) {
            Some(field) => {
                let want = match field.kind {
                    FieldKind::Varint => 0,
                    FieldKind::Bytes | FieldKind::Message(_) => 2,
                };
                if wire_type != want {
                    return Err(GogoError::WrongWireType {
                        field: field.name,
                        wire_type,
                    });
                }
                match field.kind {
                    FieldKind::Varint => on_field(num, Value::Varint(varint(d, &mut i)?)),
                    FieldKind::Bytes | FieldKind::Message(_) => {
                        let len = length(d, &mut i)?;
                        let end = delimited_end(d, i, len)?;
                        let body = d.get(i..end).ok_or(GogoError::UnexpectedEof)?;
                        if let FieldKind::Message(inner) = field.kind {
                            decode(inner, body, ignore as fn(i32, Value<'a>))?;
                        }
                        on_field(num, Value::Bytes(body));
                        i = end;
                    }
                }
            }
            None => {
                let n = skip(d.get(pre..).unwrap_or(&[]))?;
                let end = (pre as i64).wrapping_add(n);
                if n < 0 || end < 0 {
                    return Err(GogoError::InvalidLength);
                }
                if end > d.len() as i64 {
                    return Err(GogoError::UnexpectedEof);
                }
                i = end as usize;
            }
        }
    }
    Ok(())
}

fn ignore(_: i32, _: Value<'_>) {}

/// Whether `d` decodes as a `schema` message.
#[cfg(test)]
pub(crate) fn check(schema: &Schema, d: &[u8]) -> Result<(), GogoError> {
    decode(schema, d, ignore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn accepts_what_gogo_accepts() {
        // A KeyValue, an unknown varint field, an unknown group with a
        // nested fixed64, and a 10-byte varint whose last byte is 0x7f
        // (prost rejects that one).
        let mut d = b"\x0a\x03foo\x10\x02".to_vec();
        d.extend_from_slice(b"\x38\x05"); // field 7 varint
        d.extend_from_slice(b"\x43\x09\x01\x02\x03\x04\x05\x06\x07\x08\x44"); // group 8 { fixed64 }
        d.extend_from_slice(b"\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f");
        let mut mod_rev = 0;
        check(&KEY_VALUE, &d).expect("gogo accepts");
        decode(&KEY_VALUE, &d, |n, v| {
            if let (3, Value::Varint(x)) = (n, v) {
                mod_rev = x;
            }
        })
        .expect("decodes");
        assert_eq!(mod_rev, u64::MAX);
        // Roles are strings gogo does not check for UTF-8.
        check(&USER, b"\x0a\x01u\x1a\x02\xff\xfe").expect("invalid UTF-8 accepted");
    }

    #[test]
    fn rejects_with_gogo_texts() {
        let cases: &[(&Schema, &[u8], &str)] = &[
            (&KEY_VALUE, b"\x0a\x05ab", "unexpected EOF"),
            (
                &KEY_VALUE,
                b"\x08\x01",
                "proto: wrong wireType = 0 for field Key",
            ),
            (
                &KEY_VALUE,
                b"\x00",
                "proto: KeyValue: illegal tag 0 (wire type 0)",
            ),
            (
                &KEY_VALUE,
                b"\x0c",
                "proto: KeyValue: wiretype end group for non-group",
            ),
            (&LEASE, b"\x3f", "proto: illegal wireType 7"),
            (
                &LEASE,
                b"\x3c\x01",
                "proto: Lease: wiretype end group for non-group",
            ),
            (
                &LEASE,
                b"\x3b\x3c\x3c",
                "proto: Lease: wiretype end group for non-group",
            ),
            (
                &LEASE,
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                "proto: integer overflow",
            ),
            (
                &LEASE,
                b"\x3a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                "proto: negative length found during unmarshaling",
            ),
            (
                &ALARM_MEMBER,
                b"\x12\x00",
                "proto: wrong wireType = 2 for field Alarm",
            ),
            (&ROLE, b"\x12\x02\x08", "unexpected EOF"),
            (&ROLE, b"\x12\x02\x12\x05", "unexpected EOF"),
            (
                &USER,
                b"\x22\x01\x0a",
                "proto: wrong wireType = 2 for field NoPassword",
            ),
            (&USER, b"\x3b\x08", "unexpected EOF"),
        ];
        for (schema, d, want) in cases {
            let got = check(schema, d).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{} {d:02x?}", schema.name);
        }
    }

    #[test]
    fn field_numbers_are_truncated_to_32_bits_like_go() {
        // Field number 2^32 + 1 is field 1 for gogo.
        let tag: u64 = ((1u64 << 32) + 1) << 3 | 2;
        let mut d = Vec::new();
        prost::encoding::encode_varint(tag, &mut d);
        d.extend_from_slice(b"\x01x");
        let mut key = None;
        decode(&KEY_VALUE, &d, |n, v| {
            if let (1, Value::Bytes(b)) = (n, v) {
                key = Some(b);
            }
        })
        .expect("decodes");
        assert_eq!(key, Some(&b"x"[..]));
    }

    proptest::proptest! {
        /// Where prost and gogo both accept a KeyValue they agree on it, and
        /// whatever prost's derive encodes, gogo's rules accept.
        #[test]
        fn agrees_with_prost_on_what_both_accept(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48)) {
            let prost_kv = crate::etcd::kv::KeyValue::decode(&b[..]);
            let mut key: &[u8] = &[];
            let ours = decode(&KEY_VALUE, &b, |n, v| if let (1, Value::Bytes(x)) = (n, v) { key = x });
            if let (Ok(kv), Ok(())) = (&prost_kv, &ours) {
                proptest::prop_assert_eq!(&kv.key[..], key);
            }
            if let Ok(kv) = prost_kv {
                let again = kv.encode_to_vec();
                proptest::prop_assert!(check(&KEY_VALUE, &again).is_ok());
            }
        }
    }
}
