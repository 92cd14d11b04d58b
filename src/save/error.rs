//! Why a save failed. Every variant that involves the server names the
//! endpoint; nothing is left behind when one is returned.

use std::path::PathBuf;
use std::time::Duration;

/// Why `snapshot save` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// Not exactly one endpoint (etcdctl's wording).
    #[error("snapshot must be requested to one selected node, not multiple [{}]", .0.join(" "))]
    NotOneEndpoint(Vec<String>),
    /// An option is wrong (a malformed endpoint, conflicting settings).
    #[error("{0}")]
    Options(String),
    /// A certificate, key or CA file could not be used.
    #[error("{0}")]
    TlsFiles(String),
    /// No connection could be made.
    #[error("{endpoint}: {cause}")]
    Connect {
        /// The endpoint, as given.
        endpoint: String,
        /// What went wrong (refused, timed out, TLS handshake...).
        cause: String,
        /// The socket's, TLS's or the transport's error.
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// No connection within the dial timeout (etcdctl says `context
    /// deadline exceeded`, or hangs).
    #[error("{endpoint}: context deadline exceeded: no connection within the {} dial timeout (last attempt: {last})", go_duration(*timeout))]
    DialTimeout {
        /// The endpoint.
        endpoint: String,
        /// The dial timeout.
        timeout: Duration,
        /// Why the last attempt failed.
        last: String,
        /// The last attempt's error, when it had one.
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// `Authenticate` failed (bad user or password, auth not enabled...).
    #[error("{endpoint}: authentication as {user:?} failed: {cause}")]
    Auth {
        /// The endpoint.
        endpoint: String,
        /// The user name.
        user: String,
        /// The server's answer.
        cause: String,
        /// The gRPC status or transport error (downcast to
        /// [`tonic::Status`]: `Unauthenticated`/`InvalidArgument` for a bad
        /// user or password).
        #[source]
        source: Option<crate::location::BoxError>,
    },
    /// The server refused the snapshot or broke off the stream.
    #[error("{endpoint}: {cause}")]
    Rpc {
        /// The endpoint.
        endpoint: String,
        /// The gRPC status code.
        code: String,
        /// The server's message, or what happened to the connection.
        cause: String,
        /// The gRPC status (downcast to [`tonic::Status`]; its code is
        /// `PermissionDenied` for a user without the root role) or the
        /// transport error.
        #[source]
        source: Option<crate::location::BoxError>,
    },
    /// The stream did not have the shape etcd gives it (short, too long,
    /// no digest) or its digest does not match the bytes received.
    #[error("{endpoint}: bad snapshot stream: {cause}")]
    Stream {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        cause: String,
    },
    /// The received snapshot failed the structural or etcd checks.
    #[error(
        "{endpoint}: the received snapshot is not sound, not saved: {}",
        join_problems(problems)
    )]
    Corrupt {
        /// The endpoint.
        endpoint: String,
        /// What verify found, most fundamental first (never empty).
        problems: Vec<crate::snapshot::VerifyProblem>,
    },
    /// The received snapshot is structurally sound but gives no status
    /// (`source` says why; `None` when verify gave no reason).
    #[error("{endpoint}: the received snapshot is not sound, not saved: {}",
        source.as_ref().map_or_else(|| "no status could be computed".to_owned(), ToString::to_string))]
    NoStatus {
        /// The endpoint.
        endpoint: String,
        /// Why no status could be computed.
        #[source]
        source: Option<crate::etcd::StatusError>,
    },
    /// The staged copy of the received snapshot could not be opened to
    /// check it.
    #[error("{endpoint}: the received snapshot is not sound, not saved: {source}")]
    Unchecked {
        /// The endpoint.
        endpoint: String,
        /// Why it could not be opened.
        #[source]
        source: crate::snapshot::SnapshotError,
    },
    /// The stream delivered nothing for [`stall_timeout`](super::SaveOptions::stall_timeout)
    /// (a server or proxy stuck with the connection open).
    #[error("{endpoint}: the snapshot stream stalled: nothing arrived for {} after {received} of {} bytes",
        go_duration(*idle), total.map_or_else(|| "?".to_string(), |t| t.to_string()))]
    Stalled {
        /// The endpoint.
        endpoint: String,
        /// Bytes of the body received.
        received: u64,
        /// Bytes the server announced, once it had sent something.
        total: Option<u64>,
        /// How long nothing came.
        idle: Duration,
    },
    /// `--command-timeout` expired.
    #[error("{endpoint}: context deadline exceeded: the snapshot did not complete within the {} command timeout", go_duration(*timeout))]
    CommandTimeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Writing the file failed (full disk, permissions...).
    #[error("{endpoint}: {op} {}: {}", path.display(), crate::go::errno::text(source))]
    Write {
        /// The endpoint being saved from.
        endpoint: String,
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The destination is not a location this crate can write.
    #[error(transparent)]
    Location(#[from] crate::location::LocationError),
    /// The caller asked to stop (a signal in the command: SIGINT,
    /// SIGTERM, SIGHUP, SIGQUIT).
    #[error("{endpoint}: interrupted by {}, nothing saved{}", crate::cleanup::signal_name(*signal),
        if removed.is_empty() { String::new() } else { format!(" ({removed})") })]
    Interrupted {
        /// The endpoint.
        endpoint: String,
        /// The value the caller stored in the interrupt flag (the signal
        /// number for the command).
        signal: usize,
        /// What was written and is now gone (`removed FILE.part`, `aborted
        /// the multipart upload to URL`); empty if nothing had been.
        removed: String,
    },
    /// The async runtime could not be started.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
}

/// The problems on one line, as `snapshot save` prints them.
fn join_problems(problems: &[crate::snapshot::VerifyProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A duration as Go prints the usual ones (`2s`, `500ms`, `1m30s`).
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}ns", d.as_nanos());
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let frac = d.subsec_millis();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    } else {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn texts() {
        let e = SaveError::NotOneEndpoint(vec!["a".into(), "b".into()]);
        assert_eq!(
            e.to_string(),
            "snapshot must be requested to one selected node, not multiple [a b]"
        );
        let i = SaveError::Interrupted {
            endpoint: "e".into(),
            signal: libc::SIGTERM as usize,
            removed: String::new(),
        };
        assert_eq!(i.to_string(), "e: interrupted by SIGTERM, nothing saved");
        let i = SaveError::Interrupted {
            endpoint: "e".into(),
            signal: libc::SIGQUIT as usize,
            removed: "removed x.db.part".into(),
        };
        assert_eq!(
            i.to_string(),
            "e: interrupted by SIGQUIT, nothing saved (removed x.db.part)"
        );
    }
}
