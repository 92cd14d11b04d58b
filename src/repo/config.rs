//! The repository's `config` object: format version, repository ID and
//! how blobs are protected. JSON, so a person can read it.
//!
//! ```json
//! {"format":"etcdsnap-backup-repository","version":1,"id":"<32 hex>",
//!  "encryption":"none"}
//! ```
//!
//! An encrypted repository records `"encryption":"xchacha20poly1305"` and a
//! `"keyCheck"`: a value derived from the key (not the key), so a wrong key
//! file is refused up front instead of failing on every blob.

use serde_json::{Value, json};

use super::codec::{hex, parse_hex32};
use super::crypto::{Crypto, MasterKey};
use super::error::{RepoError, Result};

/// The `format` value.
const FORMAT: &str = "etcdsnap-backup-repository";
/// The only version so far.
const VERSION: u64 = 1;
/// Largest config accepted.
pub(crate) const MAX_CONFIG: usize = 64 << 10;

/// A decoded config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Random repository ID (hex).
    pub id: String,
    /// The key check value, when encrypted.
    pub key_check: Option<[u8; 32]>,
}

impl Config {
    /// A new config, encrypted with `key` if given.
    pub(crate) fn new(key: Option<&MasterKey>) -> Result<Config> {
        Ok(Config {
            id: hex(&super::crypto::random16("repository ID")?),
            key_check: key.map(MasterKey::check_value),
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = json!({
            "format": FORMAT,
            "version": VERSION,
            "id": self.id,
            "encryption": if self.key_check.is_some() { "xchacha20poly1305" } else { "none" },
        });
        if let (Some(k), Some(obj)) = (&self.key_check, v.as_object_mut()) {
            obj.insert("keyCheck".into(), Value::String(hex(k)));
        }
        let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub(crate) fn decode(b: &[u8]) -> std::result::Result<Config, String> {
        if b.len() > MAX_CONFIG {
            return Err(format!("{} bytes is too long for a config", b.len()));
        }
        let v: Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err("not an etcdsnap backup repository config".into());
        }
        match v.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            other => {
                return Err(format!(
                    "repository version {} is not supported (this etcdsnap reads version {VERSION})",
                    other.map_or("?".into(), |n| n.to_string())
                ));
            }
        }
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or("no repository id")?
            .to_owned();
        let key_check = match v.get("encryption").and_then(Value::as_str) {
            Some("none") => None,
            Some("xchacha20poly1305") => Some(
                v.get("keyCheck")
                    .and_then(Value::as_str)
                    .and_then(parse_hex32)
                    .ok_or("encrypted, but no valid keyCheck")?,
            ),
            other => return Err(format!("unknown encryption {other:?}")),
        };
        Ok(Config { id, key_check })
    }

    /// The crypto for this repository with the key given (if any).
    pub(crate) fn crypto(&self, key: Option<&MasterKey>) -> Result<Crypto> {
        match (&self.key_check, key) {
            (None, None) => Ok(Crypto::plain()),
            (None, Some(_)) => Err(RepoError::NotEncrypted),
            (Some(_), None) => Err(RepoError::KeyNeeded),
            (Some(check), Some(k)) if *check == k.check_value() => Ok(Crypto::encrypted(k)),
            (Some(_), Some(_)) => Err(RepoError::WrongKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Config::new(None).expect("config");
        assert_eq!(Config::decode(&c.encode()), Ok(c.clone()));
        assert_eq!(c.id.len(), 32);
        assert!(Config::decode(b"{}").is_err());
        assert!(Config::decode(b"\xff").is_err());
        let mut enc = Config {
            id: "x".into(),
            key_check: Some([9; 32]),
        };
        assert_eq!(Config::decode(&enc.encode()), Ok(enc.clone()));
        enc.key_check = None;
        assert!(enc.crypto(None).is_ok());
    }
}
