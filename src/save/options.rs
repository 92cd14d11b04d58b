//! What to save, from where, and how to connect: the settings etcdctl's
//! global flags carry, already parsed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::error::SaveError;
use crate::etcd::version::TargetChoice;

/// TLS settings (`--cacert`, `--cert`, `--key`, `--insecure-skip-tls-verify`,
/// `--insecure-transport`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsOptions {
    /// CA bundle (PEM) that signs the server's certificate; the system's
    /// bundle when `None`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with [`key_file`](Self::key_file).
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (testing only, as etcdctl warns).
    pub insecure_skip_verify: bool,
    /// etcdctl's `--insecure-transport` (default true): plain TCP unless a
    /// certificate flag is given or the endpoint says `https://`.
    pub insecure_transport: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_file: None,
            cert_file: None,
            key_file: None,
            insecure_skip_verify: false,
            insecure_transport: true,
        }
    }
}

impl TlsOptions {
    /// `--cacert`: the CA bundle (PEM) that signs the server's certificate.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// `--cert`: the client certificate (PEM).
    pub fn with_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(path.into());
        self
    }

    /// `--key`: the client key (PEM).
    pub fn with_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// `--insecure-skip-tls-verify`: accept any server certificate.
    pub fn with_insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_verify = skip;
        self
    }

    /// `--insecure-transport`: plain TCP unless TLS is otherwise asked for.
    pub fn with_insecure_transport(mut self, insecure: bool) -> Self {
        self.insecure_transport = insecure;
        self
    }

    /// etcdctl's rule: TLS is configured when a certificate flag is given
    /// or `--insecure-transport=false`.
    pub(crate) fn configured(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || !self.insecure_transport
    }
}

/// User and password for `Auth/Authenticate`.
#[derive(Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// A user and its password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// [`SaveOptions::stall_timeout`]'s default.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How to take a snapshot: [`SaveOptions::new`], then its `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SaveOptions {
    /// The endpoints given (etcdctl's `--endpoints`); exactly one is
    /// accepted, as etcdctl requires.
    pub endpoints: Vec<String>,
    /// Where the snapshot goes: `FILE` (written as `FILE.part` first), or
    /// any [`Location`](crate::Location) text (`s3://bucket/etcd/snap.db.zst`,
    /// `backup.db.gz`), uploaded as it arrives and completed only once
    /// verified. Every `{time}` is replaced by the UTC time of the save
    /// (`20250131T235959Z`), for [`prune`](crate::prune).
    pub path: PathBuf,
    /// TLS settings.
    pub tls: TlsOptions,
    /// `--user` / `--password`, when auth is needed.
    pub credentials: Option<Credentials>,
    /// Time allowed to connect, retrying (`--dial-timeout`, 2 s).
    pub dial_timeout: Duration,
    /// Time allowed for the whole save once connected (`--command-timeout`;
    /// etcdctl's save has none unless the flag is given).
    pub command_timeout: Option<Duration>,
    /// HTTP/2 ping interval when the connection is idle (`--keepalive-time`).
    pub keepalive_time: Duration,
    /// Time to wait for a ping's answer before dropping the connection
    /// (`--keepalive-timeout`).
    pub keepalive_timeout: Duration,
    /// A snapshot stream that delivers nothing for this long fails
    /// ([`SaveError::Stalled`]), even on a connection that answers
    /// keepalive pings: a server or proxy stuck mid-stream. Default 30 s
    /// (etcd sends a snapshot as fast as it reads its db; etcdctl has no
    /// such bound and waits forever). Time spent waiting for our own
    /// disk does not count.
    pub stall_timeout: Duration,
    /// Rules for the checks of the saved file and the status in the
    /// summary; `Auto` (the default) follows the file's storage version.
    pub target: TargetChoice,
    /// When the value becomes non-zero, the save stops, removes what it
    /// wrote and returns [`SaveError::Interrupted`] with that value (the
    /// command stores the number of the signal it received).
    pub interrupt: Option<Arc<AtomicUsize>>,
    /// How a destination other than a plain local file (a URL, a `.zst`
    /// or `.gz` name) is written: compression level and threads, upload
    /// part size, retries.
    pub location: crate::location::LocationOptions,
}

impl SaveOptions {
    /// etcdctl's defaults: endpoint `127.0.0.1:2379`, dial timeout 2 s,
    /// keepalive 2 s / 6 s, no command timeout, no TLS; a stream stalled
    /// for 30 s fails.
    pub fn new(path: impl Into<PathBuf>) -> SaveOptions {
        SaveOptions {
            endpoints: vec!["127.0.0.1:2379".into()],
            path: path.into(),
            tls: TlsOptions::default(),
            credentials: None,
            dial_timeout: Duration::from_secs(2),
            command_timeout: None,
            keepalive_time: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(6),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            target: TargetChoice::Auto,
            interrupt: None,
            location: crate::location::LocationOptions::default(),
        }
    }

    /// `--endpoints` (save takes exactly one).
    pub fn with_endpoints(
        mut self,
        endpoints: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// TLS settings.
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// `--user` / `--password`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// `--dial-timeout`.
    pub fn with_dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// `--command-timeout`: time allowed for the whole save once connected.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = Some(timeout);
        self
    }

    /// `--keepalive-time`.
    pub fn with_keepalive_time(mut self, interval: Duration) -> Self {
        self.keepalive_time = interval;
        self
    }

    /// `--keepalive-timeout`.
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// A stream that delivers nothing for this long fails.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Rules for the checks of the saved file: a release or `auto`.
    pub fn with_target(mut self, target: impl Into<TargetChoice>) -> Self {
        self.target = target.into();
        self
    }

    /// Stop (and remove what was written) when `flag` becomes non-zero.
    pub fn with_interrupt(mut self, flag: Arc<AtomicUsize>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// How a destination other than a plain local file is written.
    pub fn with_location(mut self, location: crate::location::LocationOptions) -> Self {
        self.location = location;
        self
    }

    /// The one endpoint, parsed; etcdctl's error for any other count.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, SaveError> {
        match self.endpoints.as_slice() {
            [one] => Endpoint::parse(one),
            more => Err(SaveError::NotOneEndpoint(more.to_vec())),
        }
    }
}

/// URL scheme of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`: plain TCP whatever the TLS flags say (etcd's client).
    Http,
    /// `https://`: TLS.
    Https,
    /// `host:port`: TLS when the TLS flags configure it.
    Bare,
}

/// One parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As given.
    pub text: String,
    /// Its scheme.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `http://host:port`, `https://host:port` or `host:port`
    /// (`[v6]:port` for IPv6); a trailing `/` is allowed.
    pub fn parse(text: &str) -> Result<Endpoint, SaveError> {
        let bad = |why: &str| SaveError::Options(format!("invalid endpoint {text:?}: {why}"));
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("http://") {
            (Scheme::Http, text.get(7..).unwrap_or(""))
        } else if lower.starts_with("https://") {
            (Scheme::Https, text.get(8..).unwrap_or(""))
        } else if lower.contains("://") {
            return Err(bad(
                "only http://, https:// and host:port endpoints are supported",
            ));
        } else {
            (Scheme::Bare, text)
        };
        let hostport = rest.strip_suffix('/').unwrap_or(rest);
        if hostport.contains('/') || hostport.contains('?') || hostport.contains('@') {
            return Err(bad("expected host:port"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once("]:").ok_or_else(|| bad("missing port"))?;
            (h, p)
        } else {
            hostport
                .rsplit_once(':')
                .ok_or_else(|| bad("missing port"))?
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if !host.starts_with('[') && host.contains(':') && !hostport.starts_with('[') {
            return Err(bad("IPv6 addresses need brackets: [addr]:port"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        Ok(Endpoint {
            text: text.to_string(),
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// Whether to use TLS with these settings.
    pub fn uses_tls(&self, tls: &TlsOptions) -> bool {
        match self.scheme {
            Scheme::Http => false,
            Scheme::Https => true,
            Scheme::Bare => tls.configured(),
        }
    }

    /// `host:port` for connecting (brackets around IPv6).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("127.0.0.1:2379").expect("bare");
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Bare, "127.0.0.1", 2379)
        );
        let e = Endpoint::parse("HTTPS://[::1]:2379/").expect("v6");
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Https, "::1", 2379)
        );
        assert_eq!(e.authority(), "[::1]:2379");
        let e = Endpoint::parse("http://localhost:22379").expect("http");
        assert_eq!(e.scheme, Scheme::Http);
        for bad in [
            "",
            "127.0.0.1",
            "unix://x",
            "http://:1",
            "h:99999",
            "::1:2379",
            "a/b:1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_rules() {
        let mut t = TlsOptions::default();
        let bare = Endpoint::parse("127.0.0.1:2379").expect("ok");
        let http = Endpoint::parse("http://127.0.0.1:2379").expect("ok");
        assert!(!bare.uses_tls(&t));
        t.ca_file = Some("ca.pem".into());
        assert!(bare.uses_tls(&t));
        assert!(!http.uses_tls(&t));
        let t = TlsOptions {
            insecure_transport: false,
            ..TlsOptions::default()
        };
        assert!(bare.uses_tls(&t));
    }

    #[test]
    fn one_endpoint_only() {
        let mut o = SaveOptions::new("x.db");
        o.endpoints = vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()];
        assert!(matches!(o.endpoint(), Err(SaveError::NotOneEndpoint(_))));
        o.endpoints.clear();
        assert_eq!(
            o.endpoint().expect_err("none").to_string(),
            "snapshot must be requested to one selected node, not multiple []"
        );
    }
}
