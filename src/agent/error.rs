//! Why the agent stopped, or why one of its steps failed (it logs those
//! and carries on).

use crate::repo::RepoError;
use crate::save::SaveError;

/// An agent failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// An option is wrong (no endpoint).
    #[error("{0}")]
    Options(String),
    /// [`delta_every`](super::AgentOptions::delta_every) or
    /// [`full_every`](super::AgentOptions::full_every) is zero.
    #[error("the delta and full snapshot intervals must be positive")]
    ZeroInterval,
    /// Connecting or authenticating to a member failed.
    #[error(transparent)]
    Connect(#[from] SaveError),
    /// A call to a member failed (the watch broke, a lease query timed
    /// out).
    #[error("{endpoint}: {call}: {cause}")]
    Rpc {
        /// The endpoint, as given.
        endpoint: String,
        /// The gRPC method.
        call: String,
        /// What went wrong.
        cause: String,
    },
    /// The member refused the auth token (it expired, or the auth store
    /// changed under it): etcd's clients authenticate again and retry,
    /// and so does the agent, on the same member.
    #[error("{endpoint}: {call}: {cause}")]
    TokenRefused {
        /// The endpoint, as given.
        endpoint: String,
        /// The gRPC method.
        call: String,
        /// etcd's words.
        cause: String,
    },
    /// The repository refused or failed a write or a read.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The metrics listener could not be started.
    #[error("metrics listener on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: String,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl AgentError {
    /// The `kind` label the error counter uses for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentError::Options(_) | AgentError::ZeroInterval => "options",
            AgentError::Connect(_) => "connect",
            AgentError::Rpc { .. } => "rpc",
            AgentError::TokenRefused { .. } => "auth",
            AgentError::Repo(_) => "repository",
            AgentError::Metrics { .. } => "metrics",
            AgentError::Runtime(_) => "runtime",
        }
    }
}
