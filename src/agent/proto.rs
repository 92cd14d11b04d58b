//! The etcd v3 API messages the agent needs besides save's, derived by
//! hand with prost (field numbers and types as in etcd's `rpc.proto` and
//! `kv.proto`), and the gRPC method paths they travel on.

use crate::etcd::KeyValue;
use crate::save::proto::ResponseHeader;

/// `/etcdserverpb.Watch/Watch` (a bidirectional stream).
pub const WATCH_PATH: &str = "/etcdserverpb.Watch/Watch";
/// `/etcdserverpb.Lease/LeaseLeases` (unary).
pub const LEASE_LEASES_PATH: &str = "/etcdserverpb.Lease/LeaseLeases";
/// `/etcdserverpb.Lease/LeaseTimeToLive` (unary).
pub const LEASE_TTL_PATH: &str = "/etcdserverpb.Lease/LeaseTimeToLive";
/// `/etcdserverpb.KV/Range` (unary).
pub const RANGE_PATH: &str = "/etcdserverpb.KV/Range";

/// `etcdserverpb.WatchRequest`: its `request_union` oneof.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchRequest {
    /// Which request this is.
    #[prost(oneof = "WatchRequestUnion", tags = "1, 2")]
    pub request_union: Option<WatchRequestUnion>,
}

/// `WatchRequest.request_union` (the progress request, field 3, is not
/// sent: etcd 3.5.1 answers it before pending events, see `client.rs`).
#[derive(Clone, PartialEq, ::prost::Oneof)]
pub enum WatchRequestUnion {
    /// Start a watch.
    #[prost(message, tag = "1")]
    CreateRequest(WatchCreateRequest),
    /// Cancel one.
    #[prost(message, tag = "2")]
    CancelRequest(WatchCancelRequest),
}

/// `etcdserverpb.WatchCreateRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchCreateRequest {
    /// First key watched.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// End of the range (exclusive); `\0` with key `\0`: every key.
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// The revision to start from (inclusive); 0: the next one.
    #[prost(int64, tag = "3")]
    pub start_revision: i64,
    /// Ask for periodic progress notifications while idle.
    #[prost(bool, tag = "4")]
    pub progress_notify: bool,
    /// Whether to send each event's previous key-value (off: a restore
    /// needs only the new one).
    #[prost(bool, tag = "6")]
    pub prev_kv: bool,
    /// The watch ID to use (0: the server picks).
    #[prost(int64, tag = "7")]
    pub watch_id: i64,
}

/// `etcdserverpb.WatchCancelRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchCancelRequest {
    /// The watch to cancel.
    #[prost(int64, tag = "1")]
    pub watch_id: i64,
}

/// `mvccpb.Event`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Event {
    /// 0 PUT, 1 DELETE.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The key-value after the event (for a delete: the key and the
    /// delete's revision).
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
}

/// `etcdserverpb.WatchResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchResponse {
    /// The member's header: its revision when the response was made.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The watch this is about.
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    /// The answer to a create request.
    #[prost(bool, tag = "3")]
    pub created: bool,
    /// The watch ended (compacted past, or refused).
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    /// Set when the start revision was compacted: the compaction revision.
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    /// Why the watch was canceled.
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    /// Whether more fragments of this response follow (never: we do not
    /// ask for fragments).
    #[prost(bool, tag = "7")]
    pub fragment: bool,
    /// The events, in revision order, whole revisions.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
}

/// `etcdserverpb.LeaseLeasesRequest` (empty).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseLeasesRequest {}

/// `etcdserverpb.LeaseStatus`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseStatus {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `etcdserverpb.LeaseLeasesResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseLeasesResponse {
    /// Header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Every lease alive.
    #[prost(message, repeated, tag = "2")]
    pub leases: Vec<LeaseStatus>,
}

/// `etcdserverpb.LeaseTimeToLiveRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseTimeToLiveRequest {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Whether to list the attached keys (no).
    #[prost(bool, tag = "2")]
    pub keys: bool,
}

/// `etcdserverpb.LeaseTimeToLiveResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseTimeToLiveResponse {
    /// Header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// Seconds left; -1 when the lease has expired or was revoked.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// The TTL the lease was granted (or last renewed) with.
    #[prost(int64, tag = "4")]
    pub granted_ttl: i64,
}

/// `etcdserverpb.RangeRequest` (the fields the compaction probe sets).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RangeRequest {
    /// First key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// At most this many keys.
    #[prost(int64, tag = "3")]
    pub limit: i64,
    /// The revision to read at.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// Answer the count only.
    #[prost(bool, tag = "9")]
    pub count_only: bool,
}

/// `etcdserverpb.RangeResponse` (the header only).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RangeResponse {
    /// Header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Field numbers written out from rpc.proto, not produced by our own
    /// encoder: create_request (1) { key (1) "\0", range_end (2) "\0",
    /// start_revision (3) 5, progress_notify (4) true }.
    #[test]
    fn watch_create_wire_format() {
        let m = WatchRequest {
            request_union: Some(WatchRequestUnion::CreateRequest(WatchCreateRequest {
                key: vec![0],
                range_end: vec![0],
                start_revision: 5,
                progress_notify: true,
                prev_kv: false,
                watch_id: 0,
            })),
        };
        let want: &[u8] = &[
            0x0a, 0x0a, 0x0a, 0x01, 0x00, 0x12, 0x01, 0x00, 0x18, 0x05, 0x20, 0x01,
        ];
        assert_eq!(m.encode_to_vec(), want);
    }

    /// A response as etcd sends it: header {revision 9}, watch_id 0,
    /// compact_revision 7, canceled.
    #[test]
    fn watch_response_compacted() {
        let wire: &[u8] = &[0x0a, 0x02, 0x18, 0x09, 0x20, 0x01, 0x28, 0x07];
        let m = WatchResponse::decode(wire).expect("valid");
        assert_eq!(m.header.map(|h| h.revision), Some(9));
        assert!(m.canceled);
        assert_eq!(m.compact_revision, 7);
    }
}
