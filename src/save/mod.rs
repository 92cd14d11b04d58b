//! `snapshot save`: take a snapshot from a live etcd member over gRPC
//! (plain or TLS, with client certificates and auth), as `etcdctl snapshot
//! save` does, but keep it only when it is complete, matches the server's
//! digest and passes verify's structural and etcd checks.
//!
//! The async runtime (tokio, current-thread) lives inside [`save`]; the
//! rest of the crate stays synchronous.

pub(crate) mod client;
mod error;
pub(crate) mod options;
pub(crate) mod proto;
mod run;
mod tls;

pub use error::SaveError;
pub use options::{Credentials, SaveOptions, TlsOptions};
pub use run::{SaveSummary, save, save_to};
