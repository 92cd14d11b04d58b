//! The agent's side of the etcd API: one connection (save's connector,
//! TLS and auth), the watch over the whole key space, the lease queries a
//! segment records, and the compaction probe.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::uri::PathAndQuery;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::client::Grpc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

use super::error::AgentError;
use super::proto::{
    LEASE_LEASES_PATH, LEASE_TTL_PATH, LeaseLeasesRequest, LeaseLeasesResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, RANGE_PATH, RangeRequest, RangeResponse,
    WATCH_PATH, WatchCreateRequest, WatchRequest, WatchRequestUnion, WatchResponse,
};
use crate::save::SaveOptions;
use crate::save::client::{authenticate, connect, status_text, tls_setup};
use crate::save::options::Credentials;
use crate::save::options::Endpoint;

/// Time allowed for one unary call when `--command-timeout` is not given.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the compaction probe's watch may take to report the
/// compaction the range probe has already seen.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// etcd's text for a read below the compaction
/// (`mvcc.ErrCompacted`).
const COMPACTED: &str = "required revision has been compacted";

/// etcd's refusals of a token that authenticating again cures, as
/// clientv3 (`shouldRefreshToken`) tells them: `rpctypes.ErrInvalidAuthToken`
/// (an expired simple token, a JWT past its `exp`),
/// `ErrAuthOldRevision`, and `ErrUserEmpty` (a token the member no longer
/// knows, as a restarted member answers).
const TOKEN_REFUSED: [&str; 3] = [
    "etcdserver: invalid auth token",
    "etcdserver: revision of auth store is old",
    "etcdserver: user name is empty",
];

/// `s` from `call` on `endpoint` as an agent error: a refused token is
/// told apart (see [`TOKEN_REFUSED`]).
pub(crate) fn call_error(endpoint: &str, call: &str, s: &tonic::Status) -> AgentError {
    let cause = status_text(s);
    if TOKEN_REFUSED.iter().any(|m| s.message() == *m) {
        AgentError::TokenRefused {
            endpoint: endpoint.to_string(),
            call: call.to_string(),
            cause,
        }
    } else {
        AgentError::Rpc {
            endpoint: endpoint.to_string(),
            call: call.to_string(),
            cause,
        }
    }
}

/// A lease's granted TTL and whether etcd still holds it, from its
/// `LeaseTimeToLive` answer. etcd answers a lease it does not hold with
/// TTL -1 and no granted TTL (`v3rpc.LeaseServer.LeaseTimeToLive`); a
/// lease it holds always has a granted TTL of at least its minimum TTL
/// (a grant below it is raised), and may have a remaining TTL of 0 or
/// below once expired: until the leader's revocation is applied it still
/// holds its keys, and a snapshot taken then holds it.
pub(crate) fn lease_state(granted_ttl: i64, ttl: i64) -> (i64, bool) {
    (granted_ttl, granted_ttl > 0 || ttl >= 0)
}

/// A connection to one member.
pub(crate) struct Client {
    /// The endpoint, as given.
    pub endpoint: String,
    channel: Channel,
    ep: Endpoint,
    credentials: Option<Credentials>,
    /// The auth token, renewed when the member refuses it.
    token: Mutex<Option<String>>,
    /// Tokens renewed since [`take_reauthentications`](Self::take_reauthentications).
    reauthenticated: AtomicU32,
    timeout: Duration,
}

/// A running watch over every key.
pub(crate) struct Watch {
    /// Kept so that the request side stays open (closing it ends the
    /// stream).
    _requests: mpsc::Sender<WatchRequest>,
    /// The responses.
    pub stream: Streaming<WatchResponse>,
}

impl Client {
    /// Connects to `endpoint` with `opts`' TLS, timeouts and credentials
    /// (authenticating when they are given).
    pub async fn connect(endpoint: &str, opts: &SaveOptions) -> Result<Client, AgentError> {
        let ep = Endpoint::parse(endpoint)?;
        let tls = tls_setup(&ep, opts)?;
        let connected = connect(&ep, opts, tls).await?;
        let token = match &opts.credentials {
            Some(c) => Some(authenticate(connected.channel.clone(), &ep, c).await?),
            None => None,
        };
        Ok(Client {
            endpoint: endpoint.to_string(),
            channel: connected.channel,
            ep,
            credentials: opts.credentials.clone(),
            token: Mutex::new(token),
            reauthenticated: AtomicU32::new(0),
            timeout: opts.command_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
        })
    }

    fn token(&self) -> Option<String> {
        match self.token.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Authenticates again (the member refused the token) and keeps the
    /// new token; `false` without credentials or when that fails.
    async fn reauthenticate(&self) -> bool {
        let Some(creds) = &self.credentials else {
            return false;
        };
        match authenticate(self.channel.clone(), &self.ep, creds).await {
            Ok(t) => {
                match self.token.lock() {
                    Ok(mut g) => *g = Some(t),
                    Err(p) => *p.into_inner() = Some(t),
                }
                self.reauthenticated.fetch_add(1, Ordering::SeqCst);
                true
            }
            Err(_) => false,
        }
    }

    /// How many times the token was renewed since the last call.
    pub fn take_reauthentications(&self) -> u32 {
        self.reauthenticated.swap(0, Ordering::SeqCst)
    }

    fn rpc_error(&self, what: &str, s: &tonic::Status) -> AgentError {
        call_error(&self.endpoint, what, s)
    }

    /// A request carrying the auth token.
    fn request<T>(&self, m: T) -> Result<tonic::Request<T>, AgentError> {
        let mut req = tonic::Request::new(m);
        if let Some(t) = &self.token() {
            let v: MetadataValue<_> = t.parse().map_err(|_| AgentError::Rpc {
                endpoint: self.endpoint.clone(),
                call: "authenticate".into(),
                cause: "the server sent a token that is not valid metadata".into(),
            })?;
            req.metadata_mut().insert("token", v);
        }
        Ok(req)
    }

    fn no_answer(&self, call: &str) -> AgentError {
        AgentError::Rpc {
            endpoint: self.endpoint.clone(),
            call: call.to_string(),
            cause: format!("no answer within {:?}", self.timeout),
        }
    }

    /// A gRPC client on the connection, once it is ready for a call.
    async fn ready(&self, call: &str) -> Result<Grpc<Channel>, AgentError> {
        let mut grpc = Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| AgentError::Rpc {
            endpoint: self.endpoint.clone(),
            call: call.to_string(),
            cause: crate::save::client::chain(&e),
        })?;
        Ok(grpc)
    }

    /// A unary call within the call timeout; the server's refusal is
    /// left to the caller. A refused token is renewed and the call made
    /// once more, as etcd's clients do.
    async fn unary_status<Q, A>(
        &self,
        what: &str,
        path: &'static str,
        m: Q,
    ) -> Result<Result<A, tonic::Status>, AgentError>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let first = self.unary_once(what, path, m.clone()).await?;
        match first {
            Err(s) if TOKEN_REFUSED.contains(&s.message()) && self.reauthenticate().await => {
                self.unary_once(what, path, m).await
            }
            r => Ok(r),
        }
    }

    async fn unary_once<Q, A>(
        &self,
        what: &str,
        path: &'static str,
        m: Q,
    ) -> Result<Result<A, tonic::Status>, AgentError>
    where
        Q: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let req = self.request(m)?;
        let call = async {
            let mut grpc = self.ready(what).await?;
            let codec: ProstCodec<Q, A> = ProstCodec::default();
            Ok(grpc
                .unary(req, PathAndQuery::from_static(path), codec)
                .await
                .map(tonic::Response::into_inner))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.no_answer(what))?
    }

    async fn unary<Q, A>(&self, what: &str, path: &'static str, m: Q) -> Result<A, AgentError>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        self.unary_status(what, path, m)
            .await?
            .map_err(|s| self.rpc_error(what, &s))
    }

    /// The IDs of every lease alive, and the member's revision.
    pub async fn leases(&self) -> Result<(Vec<i64>, i64), AgentError> {
        let r: LeaseLeasesResponse = self
            .unary("LeaseLeases", LEASE_LEASES_PATH, LeaseLeasesRequest {})
            .await?;
        let rev = r.header.map_or(0, |h| h.revision);
        Ok((r.leases.into_iter().map(|l| l.id).collect(), rev))
    }

    /// The TTL lease `id` was granted with, and whether etcd still holds
    /// it (see [`lease_state`]).
    pub async fn granted_ttl(&self, id: i64) -> Result<(i64, bool), AgentError> {
        let r: LeaseTimeToLiveResponse = self
            .unary(
                "LeaseTimeToLive",
                LEASE_TTL_PATH,
                LeaseTimeToLiveRequest { id, keys: false },
            )
            .await?;
        Ok(lease_state(r.granted_ttl, r.ttl))
    }

    /// The cluster's compaction revision if it is above `known`, with
    /// the member's revision when it said so.
    ///
    /// Two cheap calls, sound on etcd 3.4 and 3.5: a one-key range read
    /// at revision `known` fails with `ErrCompacted` exactly when a
    /// compaction above `known` happened; only then a watch of one key
    /// from `known` is created, which etcd cancels at once with the
    /// compaction revision (`compact_revision`), without scanning any
    /// history.
    pub async fn compaction_above(&self, known: i64) -> Result<Option<(i64, i64)>, AgentError> {
        let at = known.max(1);
        match self.count_at(at).await? {
            Ok(_) => Ok(None),
            Err(s) if s.message().contains(COMPACTED) => {
                let mut w = self.watch_from(vec![0], Vec::new(), at, false).await?;
                let found = tokio::time::timeout(PROBE_TIMEOUT, async {
                    loop {
                        match w.stream.message().await {
                            Ok(Some(r)) if r.compact_revision != 0 => {
                                return Ok(Some((
                                    r.compact_revision,
                                    r.header.map_or(0, |h| h.revision),
                                )));
                            }
                            Ok(Some(r)) if r.canceled => return Ok(None),
                            Ok(Some(_)) => continue,
                            Ok(None) => return Ok(None),
                            Err(s) => return Err(self.rpc_error("Watch", &s)),
                        }
                    }
                })
                .await;
                match found {
                    Ok(r) => r,
                    Err(_) => Ok(None),
                }
            }
            Err(s) => Err(self.rpc_error("Range", &s)),
        }
    }

    /// A linearizable count of one key at revision `at` (0: the newest):
    /// the member's revision (the response header's), or etcd's refusal,
    /// `ErrCompacted` when the cluster compacted above `at`. etcd reads
    /// one index entry for it, whatever the database holds.
    async fn count_at(&self, at: i64) -> Result<Result<i64, tonic::Status>, AgentError> {
        let probe = RangeRequest {
            key: vec![0],
            limit: 1,
            revision: at,
            count_only: true,
        };
        let answer: Result<RangeResponse, _> =
            self.unary_status("Range", RANGE_PATH, probe).await?;
        Ok(answer.map(|r| r.header.map_or(0, |h| h.revision)))
    }

    /// The cluster's revision now, and whether it compacted above
    /// `known` (the revision probe, see `probe.rs`): one count at `known`
    /// (its header is the member's revision: the read is linearizable, so
    /// that revision is the cluster's), and, when that is refused as
    /// compacted, one at the newest revision for the header.
    pub async fn revision(&self, known: i64) -> Result<(i64, bool), AgentError> {
        match self.count_at(known.max(1)).await? {
            Ok(rev) => Ok((rev, false)),
            Err(s) if s.message().contains(COMPACTED) => match self.count_at(0).await? {
                Ok(rev) => Ok((rev, true)),
                Err(s) => Err(self.rpc_error("Range", &s)),
            },
            Err(s) => Err(self.rpc_error("Range", &s)),
        }
    }

    /// A watch over every key from `start`, with progress notifications
    /// and without previous values.
    pub async fn watch(&self, start: i64) -> Result<Watch, AgentError> {
        self.watch_from(vec![0], vec![0], start, true).await
    }

    async fn watch_from(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start: i64,
        progress_notify: bool,
    ) -> Result<Watch, AgentError> {
        let (tx, rx) = mpsc::channel(4);
        let create = WatchRequest {
            request_union: Some(WatchRequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision: start,
                progress_notify,
                prev_kv: false,
                watch_id: 0,
            })),
        };
        tx.send(create).await.map_err(|_| AgentError::Rpc {
            endpoint: self.endpoint.clone(),
            call: "Watch".into(),
            cause: "the request stream closed".into(),
        })?;
        let req = self.request(ReceiverStream::new(rx))?;
        let call = async {
            let mut grpc = self.ready("Watch").await?;
            let codec: ProstCodec<WatchRequest, WatchResponse> = ProstCodec::default();
            grpc.streaming(req, PathAndQuery::from_static(WATCH_PATH), codec)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| self.rpc_error("Watch", &s))
        };
        let stream = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.no_answer("Watch"))??;
        Ok(Watch {
            _requests: tx,
            stream,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_gone_only_when_etcd_no_longer_holds_it() {
        // Alive, with 7 of its 10 seconds left.
        assert_eq!(lease_state(10, 7), (10, true));
        // Expired, its revocation not applied yet: etcd answers the
        // remaining TTL in whole seconds, 0 or below, with the granted TTL.
        assert_eq!(lease_state(10, 0), (10, true));
        assert_eq!(lease_state(10, -1), (10, true));
        // Not held any more: TTL -1 and nothing else.
        assert_eq!(lease_state(0, -1), (0, false));
    }

    #[test]
    fn refused_tokens_are_told_apart() {
        let refused = tonic::Status::unauthenticated("etcdserver: invalid auth token");
        assert!(matches!(
            call_error("e", "Range", &refused),
            AgentError::TokenRefused { .. }
        ));
        let other = tonic::Status::unavailable("etcdserver: leader changed");
        assert!(matches!(
            call_error("e", "Range", &other),
            AgentError::Rpc { .. }
        ));
    }
}
