//! `--initial-cluster` as etcd's `types.NewURLsMap` parses it.

use std::collections::{HashMap, HashSet};

use super::error::ClusterError;
use super::peer_url::{PeerUrl, parse_peer_urls};
use crate::etcd::TargetVersion;

/// Most members accepted in `--initial-cluster` (etcd has no limit; real
/// clusters have a handful).
pub const MAX_MEMBERS: usize = 1000;

/// Longest `--initial-cluster` accepted, in bytes.
pub const MAX_INITIAL_CLUSTER_LEN: usize = 1024 * 1024;

/// etcd's default `--name`.
pub const DEFAULT_NAME: &str = "default";
/// etcd's default `--initial-cluster` (a fixed string, not derived from
/// `--name`).
pub const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";
/// etcd's default `--initial-cluster-token`.
pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &str = "etcd-cluster";
/// etcd's default `--initial-advertise-peer-urls`.
pub const DEFAULT_INITIAL_ADVERTISE_PEER_URLS: &str = "http://localhost:2380";

/// A parsed `--initial-cluster`: member names with their canonical, sorted
/// peer URLs (etcd's `types.URLsMap`).
///
/// ```
/// use etcdsnap::internal::membership::InitialCluster;
/// use etcdsnap::TargetVersion;
/// let c = InitialCluster::parse("b=http://h:2,a=HTTP://h:1,,b=http://g:1", TargetVersion::V3_5)?;
/// let b: Vec<&str> = c.urls("b").unwrap_or_default().iter().map(|u| u.as_str()).collect();
/// assert_eq!(b, ["http://g:1", "http://h:2"]);
/// assert_eq!(c.to_go_string(), "a=http://h:1,b=http://g:1,b=http://h:2");
/// # Ok::<(), etcdsnap::internal::membership::ClusterError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCluster {
    members: Vec<(String, Vec<PeerUrl>)>,
    version: TargetVersion,
}

impl InitialCluster {
    /// Parses `--initial-cluster` as `types.NewURLsMap`: split on `,`, skip
    /// empty items, split each at the first `=` into name and URL (no `=`:
    /// the whole item is the name and the URL is empty). Names are not
    /// trimmed; repeated names collect URLs. Each member's URLs are parsed as
    /// [`parse_peer_urls`] does.
    pub fn parse(s: &str, version: TargetVersion) -> Result<InitialCluster, ClusterError> {
        if s.len() > MAX_INITIAL_CLUSTER_LEN {
            return Err(ClusterError::TooLong { len: s.len() });
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut raw: Vec<(&str, Vec<&str>)> = Vec::new();
        for item in s.split(',').filter(|item| !item.is_empty()) {
            let (name, url) = item.split_once('=').unwrap_or((item, ""));
            let slot = match index.get(name) {
                Some(&slot) => slot,
                None => {
                    if raw.len() >= MAX_MEMBERS {
                        return Err(ClusterError::TooManyMembers);
                    }
                    index.insert(name, raw.len());
                    raw.push((name, Vec::new()));
                    raw.len() - 1
                }
            };
            if let Some((_, urls)) = raw.get_mut(slot) {
                urls.push(url);
            }
        }
        let mut members = Vec::with_capacity(raw.len());
        for (name, urls) in raw {
            members.push((name.to_owned(), parse_peer_urls(&urls, version)?));
        }
        Ok(InitialCluster { members, version })
    }

    /// A cluster without members (what an empty `--initial-cluster` gives).
    pub fn empty(version: TargetVersion) -> InitialCluster {
        InitialCluster {
            members: Vec::new(),
            version,
        }
    }

    /// The etcd release whose rules parsed this cluster; verification and
    /// error texts follow the same release.
    pub fn version(&self) -> TargetVersion {
        self.version
    }

    /// The URLs of member `name`, if it is in the cluster.
    pub fn urls(&self, name: &str) -> Option<&[PeerUrl]> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, urls)| urls.as_slice())
    }

    /// The members in order of first appearance, each with its sorted URLs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[PeerUrl])> {
        self.members.iter().map(|(n, u)| (n.as_str(), u.as_slice()))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Go's `URLsMap.String()`: every `name=url` pair, sorted bytewise,
    /// joined with `,`.
    pub fn to_go_string(&self) -> String {
        let mut pairs: Vec<String> = self
            .members
            .iter()
            .flat_map(|(name, urls)| urls.iter().map(move |u| format!("{name}={u}")))
            .collect();
        pairs.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        pairs.join(",")
    }

    pub(super) fn has_duplicate_url(&self) -> bool {
        let mut seen = HashSet::new();
        self.members
            .iter()
            .flat_map(|(_, urls)| urls.iter())
            .any(|u| !seen.insert(u.as_str()))
    }
}
