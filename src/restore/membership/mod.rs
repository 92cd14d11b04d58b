//! The membership a restore writes, from etcd's flags: peer URLs,
//! `--initial-cluster`, the bootstrap checks and name resolution, as etcd's
//! `types.NewURLs`, `types.NewURLsMap`, `ServerConfig.VerifyBootstrap` and
//! `membership.NewClusterFromURLsMap` do them.
//!
//! The usual entry point is [`bootstrap`], which runs etcd's steps in etcd's
//! order:
//!
//! 1. parse `--initial-advertise-peer-urls` (split on `,`; see
//!    [`parse_peer_url_list`]);
//! 2. parse `--initial-cluster` ([`InitialCluster::parse`]);
//! 3. [`verify_bootstrap`]: the local name is in the cluster, its URLs match
//!    the advertised ones (resolving names where etcd does, see [`resolve`]),
//!    no URL appears twice, the cluster is not empty;
//! 4. [`build_cluster`]: member IDs, duplicate/zero ID checks, cluster ID.
//!
//! Where etcd iterates a Go map (and so reports one of several problems at
//! random), this module picks a fixed order: members in order of first
//! appearance in `--initial-cluster`, URL lists sorted. When exactly one
//! problem exists the result is the same as etcd's.

mod bootstrap;
mod error;
mod initial_cluster;
mod peer_url;
pub mod resolve;

pub use bootstrap::{
    BootstrapConfig, Cluster, bootstrap, bootstrap_with_resolver, build_cluster, verify_bootstrap,
    verify_bootstrap_with_resolver,
};
pub use error::ClusterError;
pub use initial_cluster::{
    DEFAULT_INITIAL_ADVERTISE_PEER_URLS, DEFAULT_INITIAL_CLUSTER, DEFAULT_INITIAL_CLUSTER_TOKEN,
    DEFAULT_NAME, InitialCluster, MAX_INITIAL_CLUSTER_LEN, MAX_MEMBERS,
};
pub use peer_url::{
    MAX_URL_LEN, MAX_URL_LIST_LEN, PeerUrl, UrlError, parse_peer_url, parse_peer_url_list,
    parse_peer_urls,
};
pub use resolve::{HostResolver, SystemResolver};
