//! The gRPC side: a tonic channel over our own connector (TCP, then rustls
//! when TLS is wanted), `Auth/Authenticate`, and the `Maintenance/Snapshot`
//! stream with the `token` metadata etcd expects.

use std::error::Error;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::Streaming;
use tonic::client::Grpc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

use super::error::SaveError;
use super::options::{Credentials, Endpoint, SaveOptions};
use super::proto::{
    AUTHENTICATE_PATH, AuthenticateRequest, AuthenticateResponse, SNAPSHOT_PATH, SnapshotRequest,
    SnapshotResponse,
};
use super::tls;

/// grpc-go (etcdctl's client) never pings more often than this, whatever
/// `--keepalive-time` says; etcd's server sends GOAWAY to clients that
/// ping more often than its `--grpc-keepalive-min-time` (5 s).
const MIN_PING_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP/2 flow-control windows: big enough that the server never waits
/// for us on loopback or a LAN, small enough to bound what is buffered.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;
/// The last attempt's failure when the server accepted the connection and
/// sent nothing.
const SILENT: &str = "the server accepted the connection but sent nothing (no HTTP/2 handshake)";
/// grpc-go's words (what etcdctl prints) for a ping not answered within
/// the keepalive timeout.
pub const KEEPALIVE_FAILED: &str = "keepalive ping failed to receive ACK within timeout";
/// Pause between connection attempts within the dial timeout.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The text of an error and all its sources, each once.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Socket reads under TLS: rustls asks for at most 4 KiB at a time, which
/// would be one `read(2)` per 4 KiB of snapshot; a buffer below it turns
/// that into one system call per 64 KiB (a third of the CPU time of a
/// 1.4 GB save went to those reads).
const TLS_READ_BUFFER: usize = 64 << 10;

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<BufReader<TcpStream>>>),
}

/// A connection that says when the server first sent something (its
/// HTTP/2 SETTINGS): until then the dial is not done, and a server that
/// accepts connections and never speaks is bounded by the dial timeout.
struct Conn {
    stream: Stream,
    spoke: Option<Arc<watch::Sender<bool>>>,
    /// Whether the server closed the connection or it failed.
    ended: bool,
    /// Set when this side drops the connection while it is still open:
    /// hyper does that when a keepalive ping goes unanswered, and the
    /// stream then only says `broken pipe`.
    dropped_open: Arc<AtomicBool>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.ended {
            self.dropped_open.store(true, Ordering::SeqCst);
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() == before => this.ended = true,
            Poll::Ready(Err(_)) => this.ended = true,
            _ => {}
        }
        if buf.filled().len() > before
            && let Some(spoke) = this.spoke.take()
        {
            spoke.send_replace(true);
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why the last connection attempt failed, and whether trying again
/// could help (a refused connection may be a server starting; a bad
/// certificate will not get better).
#[derive(Debug, Clone)]
struct Failure {
    fatal: bool,
    cause: String,
    /// The error itself (shared: the dialer keeps the last one while the
    /// attempt's own error travels up through tonic).
    source: Option<Arc<dyn Error + Send + Sync>>,
}

#[derive(Clone)]
struct Dialer {
    addr: String,
    tls: Option<TlsSetup>,
    last: Arc<Mutex<Option<Failure>>>,
    /// Told when a connection's server first sends something.
    spoke: Arc<watch::Sender<bool>>,
    /// See [`Conn::dropped_open`].
    dropped_open: Arc<AtomicBool>,
}

impl Dialer {
    fn fail(&self, fatal: bool, cause: String, source: std::io::Error) -> std::io::Error {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(Failure {
                fatal,
                cause: cause.clone(),
                source: Some(Arc::new(source)),
            });
        }
        std::io::Error::other(cause)
    }

    async fn dial(self) -> std::io::Result<TokioIo<Conn>> {
        let tcp = TcpStream::connect(&self.addr).await.map_err(|e| {
            self.fail(
                false,
                format!("dial tcp {}: {}", self.addr, crate::go::errno::text(&e)),
                e,
            )
        })?;
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let s = connector
                    .connect(name.clone(), BufReader::with_capacity(TLS_READ_BUFFER, tcp))
                    .await
                    .map_err(|e| self.fail(true, tls_failure(&chain(&e)), e))?;
                Stream::Tls(Box::new(s))
            }
        };
        Ok(TokioIo::new(Conn {
            stream,
            spoke: Some(self.spoke.clone()),
            ended: false,
            dropped_open: self.dropped_open.clone(),
        }))
    }
}

/// A TLS handshake failure, with what it usually means.
fn tls_failure(cause: &str) -> String {
    let hint = if cause.contains("UnknownIssuer") || cause.contains("BadSignature") {
        " (the server's certificate is not signed by the CA given)"
    } else if cause.contains("NotValidForName") {
        " (the server's certificate does not name the endpoint's host)"
    } else if cause.contains("Expired") {
        " (the server's certificate has expired)"
    } else if cause.contains("alert: BadCertificate")
        || cause.contains("alert: CertificateRequired")
        || cause.contains("alert: UnknownCA")
    {
        " (the server refused our client certificate, or wants one)"
    } else {
        ""
    };
    format!("TLS handshake: {cause}{hint}")
}

/// What the connector needs for TLS: the rustls connector and the name the
/// server's certificate must carry.
pub type TlsSetup = (TlsConnector, rustls_pki_types::ServerName<'static>);

/// The TLS setup for `ep`, or `None` when it is a plain endpoint: the
/// certificate files are read and parsed here, once, so that unreadable
/// ones are reported before any connection is tried.
pub fn tls_setup(ep: &Endpoint, opts: &SaveOptions) -> Result<Option<TlsSetup>, SaveError> {
    if !ep.uses_tls(&opts.tls) {
        return Ok(None);
    }
    let cfg = tls::client_config(&opts.tls)?;
    Ok(Some((
        TlsConnector::from(Arc::new(cfg)),
        tls::server_name(&ep.host)?,
    )))
}

/// A connected channel.
pub struct Connected {
    /// The channel.
    pub channel: Channel,
    /// Set when the connection was closed by this side while still open
    /// (a keepalive ping unanswered, see [`KEEPALIVE_FAILED`]).
    pub dropped_open: Arc<AtomicBool>,
}

/// Connects to `ep` (over `tls` when given, see [`tls_setup`]), retrying
/// until the dial timeout (refused connections are retried; TLS failures
/// are reported at once). The dial timeout bounds the TCP connection, the
/// TLS handshake and the server's first HTTP/2 frame, as grpc-go's dial
/// does: a server that accepts connections and never speaks fails then.
pub async fn connect(
    ep: &Endpoint,
    opts: &SaveOptions,
    tls: Option<TlsSetup>,
) -> Result<Connected, SaveError> {
    let (spoke, mut spoken) = watch::channel(false);
    let dropped_open = Arc::new(AtomicBool::new(false));
    let dialer = Dialer {
        addr: ep.authority(),
        tls,
        last: Arc::new(Mutex::new(None)),
        spoke: Arc::new(spoke),
        dropped_open: Arc::clone(&dropped_open),
    };
    // The URI only names the authority for HTTP/2; the connector decides
    // about TLS.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", ep.authority()))
        .map_err(|e| SaveError::Options(format!("invalid endpoint {:?}: {e}", ep.text)))?
        .http2_keep_alive_interval(opts.keepalive_time.max(MIN_PING_INTERVAL))
        .keep_alive_timeout(opts.keepalive_timeout)
        .keep_alive_while_idle(false)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let deadline = Instant::now() + opts.dial_timeout;
    let mut last = String::from("no answer");
    let mut last_source = None;
    loop {
        let d = dialer.clone();
        let svc = tower::service_fn(move |_: Uri| d.clone().dial());
        let attempt = tokio::time::timeout_at(deadline, endpoint.connect_with_connector(svc)).await;
        let failure = match attempt {
            Ok(Ok(channel)) => {
                // The handshake has been sent; the server's answer is
                // read by the connection's task meanwhile.
                return match tokio::time::timeout_at(deadline, spoken.wait_for(|s| *s)).await {
                    Ok(_) => Ok(Connected {
                        channel,
                        dropped_open,
                    }),
                    Err(_) => Err(SaveError::DialTimeout {
                        endpoint: ep.text.clone(),
                        timeout: opts.dial_timeout,
                        last: SILENT.into(),
                        source: None,
                    }),
                };
            }
            Ok(Err(e)) => dialer
                .last
                .lock()
                .ok()
                .and_then(|mut l| l.take())
                .unwrap_or_else(|| Failure {
                    fatal: false,
                    cause: chain(&e),
                    source: Some(Arc::new(e)),
                }),
            Err(_) => Failure {
                fatal: false,
                cause: last.clone(),
                source: last_source.clone(),
            },
        };
        if failure.fatal {
            return Err(SaveError::Connect {
                endpoint: ep.text.clone(),
                cause: failure.cause,
                source: failure.source,
            });
        }
        last = failure.cause;
        last_source = failure.source;
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(SaveError::DialTimeout {
                endpoint: ep.text.clone(),
                timeout: opts.dial_timeout,
                last,
                source: last_source,
            });
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The text of a gRPC status: etcd's message, and what broke for
/// transport errors (a keepalive ping unanswered in grpc-go's words,
/// which etcdctl prints).
pub fn status_text(s: &tonic::Status) -> String {
    let msg = s.message();
    let src = s.source().map(chain).unwrap_or_default();
    if src.contains("keep-alive timed out") || msg.contains("keep-alive timed out") {
        return KEEPALIVE_FAILED.into();
    }
    match (msg.is_empty(), src.is_empty()) {
        (false, true) => msg.to_string(),
        (true, false) => src,
        (false, false) if msg.contains(&src) => msg.to_string(),
        (false, false) if src.starts_with(msg) => src,
        (false, false) => format!("{msg}: {src}"),
        (true, true) => format!("{:?}", s.code()),
    }
}

/// Why the server refused to start a snapshot, with what it usually means.
pub fn refused(s: &tonic::Status) -> String {
    let text = status_text(s);
    let hint = if text.contains("permission denied") {
        " (saving a snapshot needs a user with the root role)"
    } else if text.contains("user name is empty") || text.contains("invalid auth token") {
        " (auth is enabled: a user is needed)"
    } else if text.contains("broken pipe") || text.contains("connection reset") {
        " (does the endpoint want TLS? use https:// or a CA and client certificate)"
    } else {
        ""
    };
    format!("snapshot refused: {text}{hint}")
}

/// `Auth/Authenticate`: the token for later calls.
pub async fn authenticate(
    channel: Channel,
    ep: &Endpoint,
    creds: &Credentials,
) -> Result<String, SaveError> {
    let mut grpc = Grpc::new(channel);
    let auth_err = |cause: String, source: crate::location::BoxError| SaveError::Auth {
        endpoint: ep.text.clone(),
        user: creds.user.clone(),
        cause,
        source: Some(source),
    };
    grpc.ready()
        .await
        .map_err(|e| auth_err(chain(&e), Box::new(e)))?;
    let codec: ProstCodec<AuthenticateRequest, AuthenticateResponse> = ProstCodec::default();
    let req = tonic::Request::new(AuthenticateRequest {
        name: creds.user.clone(),
        password: creds.password.clone(),
    });
    let resp = grpc
        .unary(req, PathAndQuery::from_static(AUTHENTICATE_PATH), codec)
        .await
        .map_err(|s| auth_err(status_text(&s), Box::new(s)))?;
    Ok(resp.into_inner().token)
}

/// Opens the `Maintenance/Snapshot` stream.
pub async fn snapshot(
    channel: Channel,
    ep: &Endpoint,
    token: Option<&str>,
) -> Result<Streaming<SnapshotResponse>, SaveError> {
    let rpc_err = |s: tonic::Status| SaveError::Rpc {
        endpoint: ep.text.clone(),
        code: format!("{:?}", s.code()),
        cause: refused(&s),
        source: Some(Box::new(s)),
    };
    let mut grpc = Grpc::new(channel);
    grpc.ready().await.map_err(|e| SaveError::Rpc {
        endpoint: ep.text.clone(),
        code: "Unavailable".into(),
        cause: chain(&e),
        source: Some(Box::new(e)),
    })?;
    let mut req = tonic::Request::new(SnapshotRequest {});
    if let Some(t) = token {
        let v: MetadataValue<_> = t.parse().map_err(|_| SaveError::Auth {
            endpoint: ep.text.clone(),
            user: String::new(),
            cause: "the server sent a token that is not valid metadata".into(),
            source: None,
        })?;
        req.metadata_mut().insert("token", v);
    }
    let codec: ProstCodec<SnapshotRequest, SnapshotResponse> = ProstCodec::default();
    let resp = grpc
        .server_streaming(req, PathAndQuery::from_static(SNAPSHOT_PATH), codec)
        .await
        .map_err(rpc_err)?;
    Ok(resp.into_inner())
}
