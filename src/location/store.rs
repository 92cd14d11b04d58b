//! An object store behind a URL (`s3://`, `gs://`, `az://`), configured by
//! the `object_store` crate from its usual environment variables, and the
//! tokio runtime its client needs: one for the whole process, started on
//! first use and never dropped, so that no `Remote` (nor the location,
//! writer or repository holding it) drops a runtime on its owner's thread.
//! Dropping a runtime blocks, which tokio refuses (with a panic) on a
//! thread that runs async code: an embedder's `#[tokio::main]` would panic
//! when it drops a location. The rest of the crate stays synchronous.

#[cfg(feature = "remote")]
use std::future::Future;
#[cfg(feature = "remote")]
use std::sync::{Arc, OnceLock};
#[cfg(feature = "remote")]
use std::time::Duration;

#[cfg(feature = "remote")]
use object_store::path::Path as ObjectPath;
#[cfg(feature = "remote")]
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

#[cfg(feature = "remote")]
use super::error::{LocationError, Refusal, one_line};
#[cfg(feature = "remote")]
use super::options::LocationOptions;

/// The object store schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    S3,
    Gcs,
    Azure,
}

impl Scheme {
    pub(crate) fn of(scheme: &str) -> Option<Scheme> {
        match scheme {
            "s3" | "s3a" => Some(Scheme::S3),
            "gs" => Some(Scheme::Gcs),
            "az" | "azure" | "abfs" | "abfss" => Some(Scheme::Azure),
            _ => None,
        }
    }

    /// The Cargo feature that builds this store in.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gcs",
            Scheme::Azure => "azure",
        }
    }

    /// Why a location of this scheme cannot be used by this build.
    pub(crate) fn not_built(self) -> String {
        format!(
            "this etcdsnap was built without the {:?} feature, which this scheme needs",
            self.feature()
        )
    }

    /// Whether this build has the store (its feature was on).
    pub(crate) fn built(self) -> bool {
        match self {
            Scheme::S3 => cfg!(feature = "s3"),
            Scheme::Gcs => cfg!(feature = "gcs"),
            Scheme::Azure => cfg!(feature = "azure"),
        }
    }
}

#[cfg(feature = "remote")]
/// Most worker threads the I/O runtime runs. Requests mostly wait on the
/// network; a few workers let TLS and the parts of several uploads (or an
/// upload and a download, as `backup push` of a URL into a bucket does)
/// progress side by side, and more would mostly sit idle.
const MAX_IO_WORKERS: usize = 4;

/// A store and the object (or prefix) within it; its requests run on the
/// process's I/O runtime ([`io_runtime`]).
#[cfg(feature = "remote")]
pub(crate) struct Remote {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: ObjectPath,
}

#[cfg(feature = "remote")]
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("store", &self.store.to_string())
            .field("path", &self.path.as_ref())
            .finish()
    }
}

#[cfg(feature = "remote")]
impl Remote {
    /// A remote over an already built store (the tests' in-memory and
    /// local stores, or an embedder's own).
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: ObjectPath) -> Remote {
        Remote { store, path }
    }

    /// Another object of the same store, sharing its client.
    pub(crate) fn at(&self, path: ObjectPath) -> Remote {
        Remote {
            store: self.store.clone(),
            path,
        }
    }

    /// Builds the store for `scheme://bucket` from the environment.
    pub(crate) fn from_env(
        scheme: Scheme,
        bucket: &str,
        key: &str,
        text: &str,
        opts: &LocationOptions,
    ) -> Result<Remote, LocationError> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: opts.retries,
            retry_timeout: opts.retry_timeout,
        };
        // No limit on a whole request (a multi-gigabyte download is one
        // GET), but a connection that goes quiet is a failure, not a hang.
        // The environment (AWS_TIMEOUT, ...) is applied after these, so it
        // has the last word.
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout_disabled()
            .with_read_timeout(opts.read_timeout);
        let config = |e: object_store::Error| LocationError::Config {
            location: text.to_string(),
            cause: cause(&e),
            source: Some(Box::new(e)),
        };
        // reqwest takes rustls's process-wide provider (it bundles none
        // here, see Cargo.toml): ring, as save uses. An embedder's own
        // default, installed first, is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store: Arc<dyn ObjectStore> = match scheme {
            #[cfg(feature = "s3")]
            Scheme::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_client_options(client)
                    .with_retry(retry);
                for (k, v) in env_config("AWS_").into_iter().chain(opts.config.clone()) {
                    if let Ok(key) = k.parse() {
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(
                    b.with_url(format!("s3://{bucket}"))
                        .build()
                        .map_err(config)?,
                )
            }
            #[cfg(feature = "gcs")]
            Scheme::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                    .with_client_options(client)
                    .with_retry(retry);
                for (k, v) in env_config("GOOGLE_").into_iter().chain(opts.config.clone()) {
                    if let Ok(key) = k.parse() {
                        b = b.with_config(key, v);
                    }
                }
                if let Ok(sa) = std::env::var("SERVICE_ACCOUNT") {
                    b = b.with_service_account_path(sa);
                }
                Arc::new(
                    b.with_url(format!("gs://{bucket}"))
                        .build()
                        .map_err(config)?,
                )
            }
            #[cfg(feature = "azure")]
            Scheme::Azure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_client_options(client)
                    .with_retry(retry);
                for (k, v) in env_config("AZURE_").into_iter().chain(opts.config.clone()) {
                    if let Ok(key) = k.parse() {
                        b = b.with_config(key, v);
                    }
                }
                // Azure's managed identity endpoint has no AZURE_ name
                // (the crate's own `from_env` reads it the same way).
                if let Ok(msi) = std::env::var("MSI_ENDPOINT") {
                    b = b.with_msi_endpoint(msi);
                }
                Arc::new(
                    b.with_url(format!("az://{bucket}"))
                        .build()
                        .map_err(config)?,
                )
            }
            // Location::parse_with refuses a scheme this build lacks first.
            #[allow(unreachable_patterns)]
            other => {
                return Err(LocationError::Config {
                    location: text.to_string(),
                    cause: other.not_built(),
                    source: None,
                });
            }
        };
        Ok(Remote::new(store, ObjectPath::from(key)))
    }

    /// Runs `fut` to completion on the I/O runtime, blocking the calling
    /// thread. Called from inside another runtime (an embedder's async
    /// code, or `save`'s own), it blocks on a helper thread, since a
    /// runtime cannot be blocked on from within one; the I/O runtime is
    /// driven by its own workers, so waiting cannot starve it, even when
    /// the caller's runtime has only the one thread that is waiting.
    pub(crate) fn block_on<F>(&self, fut: F) -> Result<F::Output, String>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let rt = self.runtime()?;
        off_runtime(|| rt.block_on(fut)).map_err(|_| "the I/O thread panicked".to_string())
    }

    /// The runtime the store's requests and background tasks (parts of an
    /// upload, the download stream) run on: [`io_runtime`].
    pub(crate) fn runtime(&self) -> Result<&'static tokio::runtime::Runtime, String> {
        io_runtime()
    }
}

/// The process's I/O runtime, started on first use: a few worker threads
/// of its own, so requests progress while the caller's thread hashes,
/// compresses or writes. It lives in a static and is never dropped (its
/// threads end with the process): dropping it would block, and the last
/// owner of a store could be a thread that runs async code, where tokio
/// panics on a blocking drop.
#[cfg(feature = "remote")]
pub(crate) fn io_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, MAX_IO_WORKERS);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("etcdsnap-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether this thread is inside a tokio runtime (an embedder's async
/// code, or a `spawn_blocking` thread of it), where a drop must not wait on
/// the network.
#[cfg(any(feature = "save", feature = "remote"))]
pub(crate) fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

#[cfg(any(feature = "save", feature = "remote"))]
/// Runs `f` here, or, when this thread already drives a tokio runtime (an
/// embedder's async code calling a synchronous API), on a thread of its
/// own: a runtime cannot be started or blocked on from within one. `Err`
/// carries a panic of that thread.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> std::thread::Result<T> {
    if in_runtime() {
        return std::thread::scope(|s| s.spawn(f).join());
    }
    Ok(f())
}

#[cfg(feature = "remote")]
/// The variables starting with `prefix`, keys lower-cased as the
/// `object_store` builders' `from_env` reads them.
fn env_config(prefix: &str) -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

#[cfg(feature = "remote")]
/// What went wrong, on one line, without the store's boilerplate: the S3
/// error code and message when the server sent an XML error body.
pub(crate) fn cause(e: &object_store::Error) -> String {
    let mut text = strip_generic(&one_line(&e.to_string()));
    // The root cause (say "Connection refused") is often only at the end
    // of the source chain.
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let root = strip_generic(&one_line(&root.to_string()));
    if !text.contains(&root) {
        text = format!("{text}: {root}");
    }
    let code = between(&text, "<Code>", "</Code>");
    let message = between(&text, "<Message>", "</Message>");
    let status = status_of(&text);
    match (code, message) {
        (Some(c), Some(m)) => match status {
            Some(s) => format!("{s}: {c}: {m}"),
            None => format!("{c}: {m}"),
        },
        (Some(c), None) => match status {
            Some(s) => format!("{s}: {c}"),
            None => c.to_string(),
        },
        _ => text,
    }
}

/// Whether `e` (whose [`cause`] is `text`) is a refusal: the store's
/// `PermissionDenied`/`Unauthenticated`, or an HTTP 403/401 it reported
/// as a generic error.
#[cfg(feature = "remote")]
pub(crate) fn refusal(e: &object_store::Error, text: &str) -> Option<Refusal> {
    match e {
        object_store::Error::PermissionDenied { .. } => Some(Refusal::Denied),
        object_store::Error::Unauthenticated { .. } => Some(Refusal::Unauthenticated),
        _ => refusal_in(text),
    }
}

/// The refusal an HTTP 403/401 in a [`cause`] text stands for.
#[cfg(feature = "remote")]
pub(crate) fn refusal_in(text: &str) -> Option<super::error::Refusal> {
    use super::error::Refusal;
    // Without an object store there is no HTTP status to read.
    #[cfg(not(feature = "remote"))]
    let status: Option<String> = {
        let _ = text;
        None
    };
    #[cfg(feature = "remote")]
    let status = status_of(text);
    match status.as_deref() {
        Some("403 Forbidden") => Some(Refusal::Denied),
        Some("401 Unauthorized") => Some(Refusal::Unauthenticated),
        _ => None,
    }
}

#[cfg(feature = "remote")]
/// Without the store's "Generic S3 error: " prefixes (nested errors repeat
/// them).
fn strip_generic(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(i) = out.find("Generic ") {
        let rest = out.get(i + 8..).unwrap_or("");
        match rest.find(" error: ") {
            Some(j) if j > 0 && !rest[..j].contains(' ') => {
                out.replace_range(i..i + 8 + j + 8, "");
            }
            _ => break,
        }
    }
    out
}

#[cfg(feature = "remote")]
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s.get(start..)?.find(close)?;
    s.get(start..start + len)
}

#[cfg(feature = "remote")]
/// `403 Forbidden` from "... status code: 403 Forbidden ...".
fn status_of(text: &str) -> Option<String> {
    text.split_whitespace().find_map(|w| {
        let code: u16 = w.parse().ok()?;
        if !(400..600).contains(&code) {
            return None;
        }
        let reason = http::StatusCode::from_u16(code).ok()?.canonical_reason()?;
        text.contains(&format!("{code} {reason}"))
            .then(|| format!("{code} {reason}"))
    })
}

#[cfg(test)]
#[cfg(feature = "remote")]
mod tests {
    use super::*;

    #[test]
    fn s3_error_bodies_become_code_and_message() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://127.0.0.1:9/b/k in 2ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>The access key does not exist</Message></Error>".into(),
        };
        assert_eq!(
            cause(&e),
            "403 Forbidden: InvalidAccessKeyId: The access key does not exist"
        );
    }

    #[test]
    fn other_errors_are_kept_on_one_line() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "error sending request\n  connection refused".into(),
        };
        assert_eq!(cause(&e), "error sending request connection refused");
        let nested = object_store::Error::Generic {
            store: "S3",
            source: "Generic S3 error: Error performing GET http://127.0.0.1:9/b/k".into(),
        };
        assert_eq!(
            cause(&nested),
            "Error performing GET http://127.0.0.1:9/b/k"
        );
    }
}
