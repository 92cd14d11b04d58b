//! The names of etcd's top-level buckets.

/// MVCC key revisions → `mvccpb.KeyValue`.
pub const KEY: &[u8] = b"key";
/// consistent_index, term, confState, compaction revisions, storageVersion.
pub const META: &[u8] = b"meta";
/// Leases.
pub const LEASE: &[u8] = b"lease";
/// Alarms.
pub const ALARM: &[u8] = b"alarm";
/// clusterVersion, downgrade.
pub const CLUSTER: &[u8] = b"cluster";
/// Member ID (hex) → member JSON.
pub const MEMBERS: &[u8] = b"members";
/// Removed member ID (hex) → `removed`.
pub const MEMBERS_REMOVED: &[u8] = b"members_removed";
/// authEnabled, authRevision.
pub const AUTH: &[u8] = b"auth";
/// User name → `authpb.User`.
pub const AUTH_USERS: &[u8] = b"authUsers";
/// Role name → `authpb.Role`.
pub const AUTH_ROLES: &[u8] = b"authRoles";

/// Every bucket etcd 3.4 to 3.6 creates, in byte order.
pub const ALL: [&[u8]; 10] = [
    ALARM,
    AUTH,
    AUTH_ROLES,
    AUTH_USERS,
    CLUSTER,
    KEY,
    LEASE,
    MEMBERS,
    MEMBERS_REMOVED,
    META,
];
