//! The few etcd v3 API messages a snapshot save needs, derived by hand
//! with prost (field numbers and types as in etcd's `rpc.proto`), and the
//! gRPC method paths they travel on.

/// `/etcdserverpb.Maintenance/Snapshot` (a server stream).
pub const SNAPSHOT_PATH: &str = "/etcdserverpb.Maintenance/Snapshot";
/// `/etcdserverpb.Auth/Authenticate` (unary).
pub const AUTHENTICATE_PATH: &str = "/etcdserverpb.Auth/Authenticate";

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResponseHeader {
    /// The ID of the cluster which sent the response.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// The ID of the member which sent the response.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The key-value store revision when the request was applied.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// The raft term when the request was applied.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `etcdserverpb.SnapshotRequest` (empty).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SnapshotRequest {}

/// `etcdserverpb.SnapshotResponse`: one chunk of the stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SnapshotResponse {
    /// Header of the response (etcd fills it in the first message only).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Bytes of the database still to come after this chunk.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// The chunk (or, in the last message, the 32-byte SHA-256 of all the
    /// database bytes).
    #[prost(bytes = "bytes", tag = "3")]
    pub blob: ::bytes::Bytes,
    /// The storage version of the data (etcd 3.6+, e.g. `3.6.0`; empty
    /// from 3.4 and 3.5 servers).
    #[prost(string, tag = "4")]
    pub version: String,
}

/// `etcdserverpb.AuthenticateRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthenticateRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password.
    #[prost(string, tag = "2")]
    pub password: String,
}

/// `etcdserverpb.AuthenticateResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthenticateResponse {
    /// Header of the response.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The token to send as `token` metadata on later calls.
    #[prost(string, tag = "2")]
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A 3.6 server's message, encoded field by field from the wire format
    /// (tag bytes written out, not produced by our own encoder): header
    /// {cluster_id 1}, remaining_bytes 5, blob "ab", version "3.6.0".
    #[test]
    fn decodes_the_version_field() {
        let wire: &[u8] = &[
            0x0a, 0x02, 0x08, 0x01, // field 1, len 2: header { cluster_id: 1 }
            0x10, 0x05, // field 2 varint 5
            0x1a, 0x02, b'a', b'b', // field 3 bytes "ab"
            0x22, 0x05, b'3', b'.', b'6', b'.', b'0', // field 4 string "3.6.0"
        ];
        let m = SnapshotResponse::decode(wire).expect("valid message");
        assert_eq!(m.header.map(|h| h.cluster_id), Some(1));
        assert_eq!(m.remaining_bytes, 5);
        assert_eq!(&m.blob[..], b"ab");
        assert_eq!(m.version, "3.6.0");
    }

    /// A 3.4/3.5 server never writes field 4: the version is empty.
    #[test]
    fn version_is_empty_without_field_4() {
        let m = SnapshotResponse::decode(&[0x10, 0x00, 0x1a, 0x01, 0x7f][..]).expect("valid");
        assert_eq!(m.version, "");
        assert_eq!(&m.blob[..], &[0x7f]);
    }

    #[test]
    fn auth_request_wire_format() {
        let m = AuthenticateRequest {
            name: "root".into(),
            password: "pw".into(),
        };
        let want: &[u8] = &[0x0a, 0x04, b'r', b'o', b'o', b't', 0x12, 0x02, b'p', b'w'];
        assert_eq!(m.encode_to_vec(), want);
    }
}
