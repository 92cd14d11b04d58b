//! CBOR (RFC 8949) values as newer API servers store them: the
//! self-describe tag `d9 d9 f7`, then the object as a map. Decoded into a
//! JSON value so it can be shown like a JSON object. Kubernetes writes Go
//! strings as CBOR byte strings; both string kinds become JSON strings
//! (invalid UTF-8 replaced).
//!
//! Untrusted input: nesting is limited to [`MAX_DEPTH`], lengths are checked
//! against the bytes left before anything is read, and nothing is
//! preallocated from a declared length.

use serde_json::{Map, Number, Value};

/// The self-describe tag that starts Kubernetes' CBOR values.
pub const SELF_DESCRIBE: &[u8; 3] = b"\xd9\xd9\xf7";
/// Deepest nesting decoded.
pub const MAX_DEPTH: usize = 64;

/// Why the bytes are not one CBOR data item.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub enum CborError {
    /// The bytes end inside an item.
    #[error("CBOR item cut short at byte {0}")]
    Truncated(usize),
    /// Reserved additional information or an unexpected break.
    #[error("malformed CBOR at byte {0}")]
    Malformed(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("CBOR nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Bytes left after the item.
    #[error("{0} bytes after the CBOR item")]
    Trailing(usize),
}

/// Decodes one CBOR item that fills `b` (after an optional self-describe
/// tag) into JSON.
pub fn decode(b: &[u8]) -> Result<Value, CborError> {
    let mut r = Reader { b, pos: 0 };
    let v = r.item(0)?;
    let left = b.len().saturating_sub(r.pos);
    if left > 0 {
        return Err(CborError::Trailing(left));
    }
    Ok(v)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

enum Head {
    Int(u64),
    Indefinite,
    Break,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CborError> {
        let x = *self.b.get(self.pos).ok_or(CborError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(x)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], CborError> {
        let n = usize::try_from(n).map_err(|_| CborError::Truncated(self.pos))?;
        let end = self
            .pos
            .checked_add(n)
            .ok_or(CborError::Truncated(self.pos))?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or(CborError::Truncated(self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: u64) -> Result<u64, CborError> {
        let s = self.take(n)?;
        Ok(s.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    /// The major type and the argument of the next head.
    fn head(&mut self) -> Result<(u8, u8, Head), CborError> {
        let at = self.pos;
        let ib = self.byte()?;
        let (major, info) = (ib >> 5, ib & 0x1f);
        let h = match info {
            0..=23 => Head::Int(u64::from(info)),
            24 => Head::Int(self.uint(1)?),
            25 => Head::Int(self.uint(2)?),
            26 => Head::Int(self.uint(4)?),
            27 => Head::Int(self.uint(8)?),
            31 if major == 7 => Head::Break,
            31 if (2..=5).contains(&major) => Head::Indefinite,
            _ => return Err(CborError::Malformed(at)),
        };
        Ok((major, info, h))
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let at = self.pos;
        let (major, info, h) = self.head()?;
        let n = match h {
            Head::Break => return Err(CborError::Malformed(at)),
            Head::Indefinite => None,
            Head::Int(n) => Some(n),
        };
        Ok(match (major, n) {
            (0, Some(n)) => Value::Number(n.into()),
            (1, Some(n)) => match i64::try_from(n) {
                Ok(i) => Value::Number((-1 - i).into()),
                Err(_) => Value::Number(Number::from_f64(-1.0 - n as f64).unwrap_or(0.into())),
            },
            (2 | 3, Some(n)) => Value::String(String::from_utf8_lossy(self.take(n)?).into_owned()),
            (2 | 3, None) => {
                let mut s = Vec::new();
                loop {
                    let at = self.pos;
                    let (m, _, h) = self.head()?;
                    match h {
                        Head::Break => break,
                        Head::Int(n) if m == major => s.extend_from_slice(self.take(n)?),
                        _ => return Err(CborError::Malformed(at)),
                    }
                }
                Value::String(String::from_utf8_lossy(&s).into_owned())
            }
            (4, n) => {
                let mut a = Vec::new();
                let mut i = 0u64;
                while n.is_none_or(|n| i < n) {
                    if n.is_none() && self.b.get(self.pos) == Some(&0xff) {
                        self.pos += 1;
                        break;
                    }
                    a.push(self.item(depth + 1)?);
                    i += 1;
                }
                Value::Array(a)
            }
            (5, n) => {
                let mut m = Map::new();
                let mut i = 0u64;
                while n.is_none_or(|n| i < n) {
                    if n.is_none() && self.b.get(self.pos) == Some(&0xff) {
                        self.pos += 1;
                        break;
                    }
                    // Kubernetes keys are strings. Anything else is named
                    // by its kind only: printing a nested key inside a key
                    // would escape it again at every level and grow
                    // exponentially with the nesting.
                    let k = match self.item(depth + 1)? {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".into(),
                        Value::Array(_) => "(array key)".into(),
                        Value::Object(_) => "(map key)".into(),
                    };
                    let v = self.item(depth + 1)?;
                    m.insert(k, v);
                    i += 1;
                }
                Value::Object(m)
            }
            // Tags (the self-describe one, times, bignums): the content.
            (6, Some(_)) => self.item(depth + 1)?,
            (7, Some(n)) => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => float(half(n as u16)),
                26 => float(f64::from(f32::from_bits(n as u32))),
                27 => float(f64::from_bits(n)),
                _ => Value::Null,
            },
            _ => return Err(CborError::Malformed(at)),
        })
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// IEEE 754 half precision to f64.
fn half(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc8949_examples() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x00", "0"),
            (b"\x18\x64", "100"),
            (b"\x20", "-1"),
            (b"\x39\x03\xe7", "-1000"),
            (b"\xf4", "false"),
            (b"\xf5", "true"),
            (b"\xf6", "null"),
            (b"\xf9\x3c\x00", "1.0"),
            (b"\x62\x49\x45", "\"IE\""),
            (b"\x83\x01\x02\x03", "[1,2,3]"),
            (
                b"\xa2\x61\x61\x01\x61\x62\x82\x02\x03",
                "{\"a\":1,\"b\":[2,3]}",
            ),
            (
                b"\x5f\x42\x01\x02\x43\x03\x04\x05\xff",
                "\"\\u0001\\u0002\\u0003\\u0004\\u0005\"",
            ),
            (b"\x9f\x01\x82\x02\x03\xff", "[1,[2,3]]"),
            (b"\xbf\x61\x61\x01\xff", "{\"a\":1}"),
            (b"\xd9\xd9\xf7\xa1\x44kind\x43Pod", "{\"kind\":\"Pod\"}"),
        ];
        for (b, want) in cases {
            let got = decode(b).unwrap_or_else(|e| panic!("{b:x?}: {e}"));
            assert_eq!(got.to_string(), *want, "{b:x?}");
        }
        for bad in [
            &b"\x83\x01\x02"[..],
            b"\x1c",
            b"\xff",
            b"\x62\x49",
            b"\x00\x00",
            b"\x5f\x61\x61\xff",
        ] {
            assert!(decode(bad).is_err(), "{bad:x?}");
        }
        // Maps as keys of maps as keys: bounded output.
        let mut nested = vec![0xa1u8; 60];
        nested.extend_from_slice(b"\x61\x22\x00");
        nested.extend(std::iter::repeat_n(0x00, 59));
        let v = decode(&nested).expect("decodes");
        assert!(v.to_string().len() < 10_000);
        let deep = vec![0x81u8; 1000];
        assert_eq!(decode(&deep), Err(CborError::TooDeep));
        // A huge declared length allocates nothing.
        assert!(decode(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
    }
}
