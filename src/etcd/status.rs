//! `snapshot status`: the CRC-32C hash over every bucket name, key and
//! value, the latest revision, the key count and the size, computed exactly
//! as `etcdutl snapshot status` computes them.
//!
//! The hash is built by a [`Visitor`] during the structural walk, so status
//! costs one pass. Because CRC-32C is linear, parts of a bucket hashed on
//! different threads are joined with `crc32c_combine`.

use prost::Message;

use super::buckets;
use super::kv::{self, KeyValue};
use super::meta;
use super::revision::{self, Revision};
use super::version::TargetVersion;
use crate::bolt::{LeafElem, Visitor};

/// What `etcdutl snapshot status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// CRC-32C over every top-level bucket name and the keys and values of
    /// each top-level bucket, in order.
    pub hash: u32,
    /// Main revision of the last key of the `key` bucket (0 if none).
    pub revision: i64,
    /// Key count: every entry of every top-level bucket (3.4, 3.5), or the
    /// number of live user keys (3.6, 3.7).
    pub total_key: u64,
    /// High-water mark times page size.
    pub total_size: u64,
    /// `meta/storageVersion` (3.6 and 3.7 output only; `Some("")` when
    /// absent).
    pub version: Option<String>,
    /// The release whose rules and output this status follows.
    pub target: TargetVersion,
}

/// Why a status cannot be given for a structurally sound file.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// A top-level key is not a bucket (etcdutl: "cannot get hash of bucket").
    #[error("cannot get hash of bucket {0}")]
    NotABucket(String),
    /// A key of the `key` bucket is too short to hold a revision.
    #[error("key bucket: key {0} is too short to hold a revision")]
    ShortRevision(String),
    /// A value of the `key` bucket does not decode (3.6 rule only).
    #[error("key bucket: value at {key} does not decode as mvccpb.KeyValue: {err}")]
    KeyValue {
        /// The revision key, hex.
        key: String,
        /// The decode error.
        err: String,
    },
}

/// Accumulates a [`Status`] while the database is walked.
#[derive(Debug, Clone)]
pub struct StatusVisitor {
    rule: TargetVersion,
    crc: u32,
    len: u64,
    entries: u64,
    last_main: Option<i64>,
    /// 3.6 rule: user key fingerprint -> live after the last change.
    live: FpMap<bool>,
    storage_version: Option<Option<String>>,
    error: Option<StatusError>,
}

impl StatusVisitor {
    /// A visitor that counts keys by the rule of `rule`.
    pub fn new(rule: TargetVersion) -> StatusVisitor {
        StatusVisitor {
            rule,
            crc: 0,
            len: 0,
            entries: 0,
            last_main: None,
            live: FpMap::default(),
            storage_version: None,
            error: None,
        }
    }

    fn hash(&mut self, b: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.len += b.len() as u64;
    }

    fn fail(&mut self, e: StatusError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The status, given the database size (`hwm * page size`).
    pub fn finish(self, total_size: u64) -> Result<Status, StatusError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let total_key = match self.rule {
            r if r.has_storage_version() => self.live.values().filter(|&&v| v).count() as u64,
            _ => self.entries,
        };
        let version = self
            .rule
            .has_storage_version()
            .then(|| self.storage_version.flatten().unwrap_or_default());
        Ok(Status {
            hash: self.crc,
            revision: self.last_main.unwrap_or(0),
            total_key,
            total_size,
            version,
            target: self.rule,
        })
    }
}

use super::fp::{Fp, FpMap, fingerprint};
use crate::go::hex::encode as hex;

impl Visitor for StatusVisitor {
    fn fork(&self) -> Self {
        StatusVisitor::new(self.rule)
    }

    fn merge(&mut self, later: Self) {
        self.crc = crc32c::crc32c_combine(self.crc, later.crc, later.len as usize);
        self.len += later.len;
        self.entries += later.entries;
        if later.last_main.is_some() {
            self.last_main = later.last_main;
        }
        self.live.extend(later.live);
        if later.storage_version.is_some() {
            self.storage_version = later.storage_version;
        }
        if let Some(e) = later.error {
            self.fail(e);
        }
    }

    fn entry(&mut self, path: &[&[u8]], e: &LeafElem<'_>) {
        match path {
            [] => {
                if !e.is_bucket() {
                    self.fail(StatusError::NotABucket(
                        String::from_utf8_lossy(e.key).into_owned(),
                    ));
                }
                self.hash(e.key);
            }
            [bucket] => {
                self.hash(e.key);
                if !e.is_bucket() {
                    self.hash(e.value);
                }
                self.entries += 1;
                if *bucket == buckets::KEY {
                    self.key_entry(e);
                } else if *bucket == buckets::META && e.key == meta::STORAGE_VERSION {
                    self.storage_version = Some(meta::storage_version(e.value));
                }
            }
            _ => {}
        }
    }
}

impl StatusVisitor {
    fn key_entry(&mut self, e: &LeafElem<'_>) {
        match Revision::main_of(e.key) {
            Some(m) => self.last_main = Some(m),
            None => self.fail(StatusError::ShortRevision(hex(e.key))),
        }
        if !self.rule.has_storage_version() {
            return;
        }
        match kv::key_of(e.value) {
            Some(user_key) => {
                self.live
                    .insert(Fp(fingerprint(user_key)), !revision::is_tombstone(e.key));
            }
            None => self.fail(StatusError::KeyValue {
                key: hex(e.key),
                err: KeyValue::decode(e.value)
                    .err()
                    .map_or_else(|| "malformed".into(), |e| e.to_string()),
            }),
        }
    }
}
