//! Internals re-exported for this crate's own tests, benchmarks and fuzz
//! targets. Not part of the public API: anything here may change or vanish
//! in any release.

/// Ports of Go library behaviour (`net/url`, `net`, `strconv`,
/// `encoding/json`, errno texts).
pub mod go {
    pub use crate::go::*;

    /// The Go release whose library behaviour an etcd release's output
    /// shows (the binary's etcdctl renderings quote keys with it).
    pub fn release_of(target: crate::etcd::TargetVersion) -> GoRelease {
        target.go_release()
    }
}

/// Membership flags: peer URLs, `--initial-cluster`, bootstrap checks.
pub mod membership {
    pub use crate::restore::membership::*;
}

/// The bbolt writer (bulk loader, copy-on-write transaction plans),
/// freelist codec and the file format's constants.
pub mod bolt {
    pub use crate::bolt::bucket::{BucketRoot, BucketValue};
    pub use crate::bolt::load::{
        CopyError, LoadOptions, LoadSummary, Loader, MAX_KEY_SIZE, MAX_VALUE_SIZE, copy_bucket,
        copy_db,
    };
    pub use crate::bolt::meta::{Meta, fnv1a64};
    pub use crate::bolt::page::{
        BranchElem, ELEMENT_SIZE, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FLAG_META,
        LEAF_FLAG_BUCKET, PAGE_HEADER_SIZE, Page, PageHeader,
    };

    /// Page `id` of `db` with its overflow span, checked only against the
    /// file length.
    pub fn raw_page<'a>(db: &crate::bolt::Db<'a>, id: u64) -> crate::bolt::Result<Page<'a>> {
        db.raw_page(id)
    }

    /// Page `id` of `db` with its overflow span, checked the strict way.
    pub fn page<'a>(db: &crate::bolt::Db<'a>, id: u64) -> crate::bolt::Result<Page<'a>> {
        db.page(id)
    }

    /// The meta page `db` goes by.
    pub fn meta(db: &crate::bolt::Db<'_>) -> Meta {
        *db.meta()
    }

    /// The root of `bucket`: a page id or an inline page.
    pub fn bucket_root<'a>(bucket: &crate::bolt::Bucket<'a>) -> BucketRoot<'a> {
        bucket.root()
    }

    /// The synced freelist page codec.
    pub mod freelist {
        pub use crate::bolt::freelist::*;
    }

    /// Node images and Go's split rule.
    pub mod node {
        pub use crate::bolt::node::*;
    }

    /// Copy-on-write transaction plans.
    pub mod tx {
        pub use crate::bolt::tx::*;
    }
}

/// The raft file writers `snapshot restore` uses (the readers are public,
/// under `etcdsnap::raft`).
pub mod raft {
    pub use crate::raft::flavour::Flavour;
    pub use crate::raft::v2store::{StoreMember, raft_attributes_json, store_json};
    pub use crate::raft::wal::encoder::WalEncoder;
    pub use crate::raft::wal::restore::{
        WalMember, restore_payloads, restore_wal_prefix, write_segment_file,
    };

    /// Encodes a `.snap` file (see `crate::raft::snap`).
    pub fn encode_snap(snapshot: &crate::raft::RaftSnapshot) -> Vec<u8> {
        crate::raft::snap::encode_snap(snapshot)
    }

    /// The raft snapshot `snapshot restore` writes for `members`.
    pub fn restore_snapshot(
        members: &[StoreMember],
        flavour: Flavour,
    ) -> Result<crate::raft::RaftSnapshot, crate::raft::RaftError> {
        crate::raft::snap::restore_snapshot(members, flavour)
    }
}

/// The snapshot file layer: hashing and the copy path.
pub mod snapshot {
    pub use crate::snapshot::copy::{copy_prefix, copy_prefix_synced};
    pub use crate::snapshot::file::{SnapshotFile, TRAILER_LEN};
    pub use crate::snapshot::hash::{hex, sha256_prefix};
    pub use crate::snapshot::verify::verify;
}

/// The Kubernetes protobuf decoders under `inspect::k8s` (for the fuzz
/// targets).
pub mod k8s {
    pub use crate::inspect::k8s::proto::decode_object_meta;

    /// The CBOR decoder.
    pub mod cbor {
        pub use crate::inspect::k8s::cbor::*;
    }
}

/// The status visitor and etcd-level checks.
pub mod etcd {
    pub use crate::etcd::checks::SchemaChecks;
    pub use crate::etcd::status::StatusVisitor;

    /// etcd's bucket names.
    pub mod buckets {
        pub use crate::etcd::buckets::*;
    }

    /// Keys of etcd's `meta` bucket.
    pub mod meta {
        /// The consistent index.
        pub const CONSISTENT_INDEX: &[u8] = crate::etcd::meta::CONSISTENT_INDEX;
        /// The raft term.
        pub const TERM: &[u8] = crate::etcd::meta::TERM;
    }
}

#[cfg(feature = "repo")]
/// Decoders of the backup repository's stored objects (for the fuzz
/// targets): each takes untrusted bytes and returns `None`/`false` on
/// anything malformed, never panicking.
pub mod repo {
    /// Decodes a chunk list; its chunk count.
    pub fn decode_list(b: &[u8]) -> Option<u64> {
        crate::repo::list::ChunkList::decode(b)
            .ok()
            .map(|l| l.count())
    }
    /// Decodes a manifest; its size.
    pub fn decode_manifest(b: &[u8]) -> Option<u64> {
        crate::repo::manifest::Manifest::decode(b)
            .ok()
            .map(|m| m.size)
    }
    /// Decodes a pack held in memory; its number of chunks.
    pub fn decode_pack(b: &[u8]) -> Option<usize> {
        crate::repo::pack::decode_pack(&crate::repo::crypto::Crypto::plain(), b, "pack")
            .ok()
            .map(|e| e.len())
    }
    /// Decodes a repository config.
    pub fn decode_config(b: &[u8]) -> bool {
        crate::repo::config::Config::decode(b).is_ok()
    }
    /// Decodes the body of a segment of recorded changes (what a delta
    /// object's zstd frame holds) and encodes it again: the bytes a sound
    /// body gives back (the encoding is canonical).
    pub fn reencode_delta_body(b: &[u8]) -> Option<Vec<u8>> {
        crate::repo::deltas::decode_body(b)
            .ok()
            .map(|s| crate::repo::deltas::encode_body(&s))
    }
    /// Opens a whole delta object of a plain repository, stored on top of
    /// `base` under `name`; its number of revisions.
    pub fn open_delta(base: &[u8; 32], name: &str, b: &[u8]) -> Option<usize> {
        let plain = crate::repo::crypto::Crypto::plain();
        crate::repo::deltas::open(&plain, base, name, b, &|| name.to_string())
            .ok()
            .map(|s| s.revisions.len())
    }
    /// A stored delta object of a small sample segment (on top of base
    /// `[1; 32]`, plain): its name and bytes, to mutate.
    pub fn sample_delta() -> (String, Vec<u8>) {
        let plain = crate::repo::crypto::Crypto::plain();
        crate::repo::deltas::seal(&plain, &[1; 32], &crate::repo::deltas::sample(5, 8))
            .unwrap_or_default()
    }
    /// Stores a snapshot file without verify's structural and etcd-level
    /// checks, as etcdsnap did before push ran them: the repositories
    /// those versions wrote, for tests of `check --read-data`.
    pub fn push_unverified(
        repo: &crate::repo::Repository,
        path: &std::path::Path,
        opts: &crate::repo::PushOptions,
    ) -> crate::repo::Result<crate::repo::PushSummary> {
        repo.push_unverified(path, opts)
    }
}

/// Go's `sort.Sort` of the releases that built etcd (unstable: equal keys
/// come out in Go's order).
pub mod gosort {
    pub use crate::mvcc::gosort::*;
}
