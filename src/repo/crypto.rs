//! Names and (optional) encryption of everything the repository stores.
//!
//! * IDs: BLAKE3 of the plaintext. In an encrypted repository the hash is
//!   keyed (with a key derived from the master key), so IDs say nothing
//!   about the content to someone without the key.
//! * Encryption: XChaCha20-Poly1305 with a random 24-byte nonce per blob
//!   (stored as `nonce || ciphertext || tag`); the associated data binds a
//!   blob to its role (and a chunk to its ID), so blobs cannot be swapped.
//!
//! The master key is 32 random bytes kept in a key file (64 hex digits).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::codec::{hex, parse_hex32};
use super::error::{RepoError, Result};

/// 16 bytes from the operating system's random source, for `what`
/// (a repository ID, a lock name).
pub(crate) fn random16(what: &str) -> Result<[u8; 16]> {
    let n = XNonce::try_generate().map_err(|e| RepoError::Key(format!("random {what}: {e}")))?;
    let mut out = [0u8; 16];
    out.copy_from_slice(n.as_slice().get(..16).unwrap_or(&[0; 16]));
    Ok(out)
}

/// Length of the nonce in front of every encrypted blob.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the authentication tag after every encrypted blob.
pub(crate) const TAG_LEN: usize = 16;

const CTX_ID: &str = "etcdsnap backup repository 2026 object ids";
const CTX_AEAD: &str = "etcdsnap backup repository 2026 xchacha20poly1305";
const CTX_CHECK: &str = "etcdsnap backup repository 2026 key check";

/// A repository master key, read from a key file.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads a key file: 64 hex digits (surrounding white space ignored).
    pub fn from_file(path: &Path) -> Result<MasterKey> {
        let text = std::fs::read_to_string(path).map_err(RepoError::io("read", path))?;
        parse_hex32(text.trim()).map(MasterKey).ok_or_else(|| {
            RepoError::Key(format!(
                "{}: a key file holds 64 hex digits (32 bytes)",
                path.display()
            ))
        })
    }

    /// Makes a new random key and writes it to `path` (mode 0600), which
    /// must not exist yet.
    pub fn generate(path: &Path) -> Result<MasterKey> {
        let key = Key::try_generate().map_err(|e| RepoError::Key(format!("random key: {e}")))?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(key.as_slice());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(RepoError::io("create", path))?;
        f.write_all(format!("{}\n", hex(&bytes)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| {
                // A partly written key file would be taken for a key.
                let _ = std::fs::remove_file(path);
                RepoError::io("write", path)(e)
            })?;
        Ok(MasterKey(bytes))
    }

    /// The value stored in the repository config to recognise this key.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        blake3::derive_key(CTX_CHECK, &self.0)
    }
}

/// What a repository does to name and protect blobs: plain, or keyed and
/// encrypted.
#[derive(Clone)]
pub(crate) struct Crypto {
    id_key: Option<[u8; 32]>,
    aead: Option<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("encrypted", &self.is_encrypted())
            .finish()
    }
}

impl Crypto {
    /// No encryption, plain BLAKE3 IDs.
    pub(crate) fn plain() -> Crypto {
        Crypto {
            id_key: None,
            aead: None,
        }
    }

    /// Keyed IDs and encryption with keys derived from `key`.
    pub(crate) fn encrypted(key: &MasterKey) -> Crypto {
        let aead_key = blake3::derive_key(CTX_AEAD, &key.0);
        Crypto {
            id_key: Some(blake3::derive_key(CTX_ID, &key.0)),
            aead: Some(XChaCha20Poly1305::new(&Key::from(aead_key))),
        }
    }

    pub(crate) fn is_encrypted(&self) -> bool {
        self.aead.is_some()
    }

    /// The ID of a chunk, list or manifest with this plaintext.
    pub(crate) fn id(&self, data: &[u8]) -> [u8; 32] {
        match &self.id_key {
            Some(k) => *blake3::keyed_hash(k, data).as_bytes(),
            None => *blake3::hash(data).as_bytes(),
        }
    }

    /// A hasher whose result is [`id`](Self::id) of what it is given.
    pub(crate) fn id_hasher(&self) -> blake3::Hasher {
        match &self.id_key {
            Some(k) => blake3::Hasher::new_keyed(k),
            None => blake3::Hasher::new(),
        }
    }

    /// Encrypts `plain` (bound to `aad`), or returns it as is.
    pub(crate) fn seal(&self, plain: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>> {
        if self.aead.is_none() {
            return Ok(plain);
        }
        self.seal_ref(&plain, aad).map(std::borrow::Cow::into_owned)
    }

    /// [`seal`](Self::seal) of borrowed bytes: borrowed back when not
    /// encrypted, so a large plain object (a snapshot's chunk list) is not
    /// copied to be stored.
    pub(crate) fn seal_ref<'a>(
        &self,
        plain: &'a [u8],
        aad: &[u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        let Some(c) = &self.aead else {
            return Ok(std::borrow::Cow::Borrowed(plain));
        };
        let nonce =
            XNonce::try_generate().map_err(|e| RepoError::Key(format!("random nonce: {e}")))?;
        let ct = c
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| RepoError::Key("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ct);
        Ok(std::borrow::Cow::Owned(out))
    }

    /// Decrypts and authenticates a sealed blob, or returns it as is.
    /// `what` names the blob in the error.
    pub(crate) fn open<'a>(
        &self,
        stored: &'a [u8],
        aad: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        let Some(c) = &self.aead else {
            return Ok(std::borrow::Cow::Borrowed(stored));
        };
        let (nonce, ct) = match (stored.get(..NONCE_LEN), stored.get(NONCE_LEN..)) {
            (Some(n), Some(ct)) if ct.len() >= TAG_LEN => (n, ct),
            _ => {
                return Err(RepoError::damaged(
                    what(),
                    "too short for an encrypted blob",
                ));
            }
        };
        let nonce =
            XNonce::try_from(nonce).map_err(|_| RepoError::damaged(what(), "bad nonce length"))?;
        c.decrypt(&nonce, Payload { msg: ct, aad })
            .map(std::borrow::Cow::Owned)
            .map_err(|_| {
                RepoError::damaged(what(), "authentication failed (damaged, or the wrong key)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let key = MasterKey::generate(&path).expect("generate");
        let again = MasterKey::from_file(&path).expect("read back");
        assert_eq!(key.check_value(), again.check_value());
        assert!(
            MasterKey::generate(&path).is_err(),
            "never overwrites a key"
        );

        let c = Crypto::encrypted(&key);
        let sealed = c.seal(b"hello pages".to_vec(), b"aad").expect("seal");
        assert_eq!(sealed.len(), 11 + NONCE_LEN + TAG_LEN);
        let name = || "blob".to_string();
        assert_eq!(
            &*c.open(&sealed, b"aad", &name).expect("open"),
            b"hello pages"
        );
        assert!(c.open(&sealed, b"other", &name).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(c.open(&bad, b"aad", &name).is_err(), "flip at {i}");
        }
        assert!(c.open(&sealed[..10], b"aad", &name).is_err());
        assert_ne!(c.id(b"x"), Crypto::plain().id(b"x"));
    }
}
