//! `--initial-cluster` parsing, bootstrap verification and the member list a
//! restore writes, as etcd's `types.NewURLsMap`, `ServerConfig.VerifyBootstrap`
//! and `membership.NewClusterFromURLsMap` do them.
//!
//! The usual entry point is [`bootstrap`], which runs etcd's steps in etcd's
//! order:
//!
//! 1. parse `--initial-advertise-peer-urls` (split on `,`; see
//!    [`parse_peer_url_list`]);
//! 2. parse `--initial-cluster` ([`InitialCluster::parse`]);
//! 3. [`verify_bootstrap`]: the local name is in the cluster, its URLs match
//!    the advertised ones, no URL appears twice, the cluster is not empty;
//! 4. [`build_cluster`]: member IDs, duplicate/zero ID checks, cluster ID.
//!
//! Where etcd iterates a Go map (and so reports one of several problems at
//! random), this module picks a fixed order: members in order of first
//! appearance in `--initial-cluster`, URL lists sorted. When exactly one
//! problem exists the result is the same as etcd's.
//!
//! Name resolution: when the advertised URLs and the member's URLs differ
//! textually, etcd resolves host names (not `localhost`, not IP literals
//! before 3.6) and compares again; so does this module, through a
//! [`HostResolver`]. etcd 3.5.0 to 3.5.5, including the 3.5.1 reference,
//! also resolved when the lists were identical, and so failed (after a 30 s
//! retry loop) on names the restoring machine cannot resolve (etcd issue
//! #14456); this module, like 3.4.22+ and 3.5.6+, never does that. Texts of
//! lookup failures other than Go's own `no such host` cases come from the
//! operating system, not from Go's resolver.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, ToSocketAddrs};

use crate::etcd::ids;
use crate::etcd::member::Member;
use crate::restore::urls::{
    GoUrl, PeerUrl, TargetVersion, UrlError, go_quote, parse_peer_url_list, parse_peer_urls,
    split_host_port,
};

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

/// Why the cluster flags were rejected. Except for the limit variants, the
/// texts are etcd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// A peer URL was rejected.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `--initial-cluster` exceeds [`MAX_INITIAL_CLUSTER_LEN`].
    #[error("--initial-cluster is {len} bytes long; at most {max} bytes are accepted", max = MAX_INITIAL_CLUSTER_LEN)]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// `--initial-cluster` names more than [`MAX_MEMBERS`] members.
    #[error("--initial-cluster names more than {max} members", max = MAX_MEMBERS)]
    TooManyMembers,
    /// `--name` is not a member of `--initial-cluster`.
    #[error("couldn't find local name {} in the initial cluster configuration", go_quote(.name.as_bytes(), *.version))]
    NameNotFound {
        /// The `--name` given.
        name: String,
        /// Whose quoting the message uses.
        version: TargetVersion,
    },
    /// Some of the member's `--initial-cluster` URLs are not advertised.
    #[error(
        "--initial-cluster has {missing} but missing from --initial-advertise-peer-urls={advertised} ({detail})"
    )]
    MissingFromAdvertised {
        /// `name=url` items, comma-separated.
        missing: String,
        /// The advertised URLs, sorted, comma-separated.
        advertised: String,
        /// Why the lists did not match.
        detail: String,
    },
    /// Some advertised URLs are not in the member's `--initial-cluster` URLs.
    #[error(
        "--initial-advertise-peer-urls has {extra} but missing from --initial-cluster={cluster}"
    )]
    MissingFromInitialCluster {
        /// The extra URLs, comma-separated.
        extra: String,
        /// `name=url` for the *advertised* URLs (etcd prints those here).
        cluster: String,
    },
    /// The URL sets agree but the lists still do not match (duplicates, or
    /// resolution failed).
    #[error("failed to resolve {advertised} to match --initial-cluster={cluster} ({detail})")]
    ResolveMismatch {
        /// The advertised URLs, sorted, comma-separated.
        advertised: String,
        /// `name=url` for the advertised URLs.
        cluster: String,
        /// Why the lists did not match.
        detail: String,
    },
    /// A URL appears twice in `--initial-cluster`; holds the whole map as
    /// `name=url,...` sorted.
    #[error("initial cluster {0} has duplicate url")]
    DuplicateUrl(String),
    /// `--initial-cluster` is empty (only reachable through the library).
    #[error("initial cluster unset and no discovery URL found")]
    Unset,
    /// Two members hash to the same ID; holds Go's `%v` of the member.
    #[error("member exists with identical ID {0}")]
    DuplicateId(String),
    /// A member hashes to ID 0.
    #[error("cannot use 0 as member id")]
    ZeroId,
}

/// A parsed `--initial-cluster`: member names with their canonical, sorted
/// peer URLs (etcd's `types.URLsMap`).
///
/// ```
/// use etcdsnap::restore::cluster::InitialCluster;
/// use etcdsnap::restore::urls::TargetVersion;
/// let c = InitialCluster::parse("b=http://h:2,a=HTTP://h:1,,b=http://g:1", TargetVersion::V3_5)?;
/// let b: Vec<&str> = c.urls("b").unwrap_or_default().iter().map(|u| u.as_str()).collect();
/// assert_eq!(b, ["http://g:1", "http://h:2"]);
/// assert_eq!(c.to_go_string(), "a=http://h:1,b=http://g:1,b=http://h:2");
/// # Ok::<(), etcdsnap::restore::cluster::ClusterError>(())
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

    fn has_duplicate_url(&self) -> bool {
        let mut seen = HashSet::new();
        self.members
            .iter()
            .flat_map(|(_, urls)| urls.iter())
            .any(|u| !seen.insert(u.as_str()))
    }
}

/// Looks up host names while advertised and cluster URLs are compared.
///
/// etcd only resolves when the two URL lists differ textually and only for
/// hosts that are neither `localhost` nor (before 3.6) IP literals.
pub trait HostResolver {
    /// Returns the first address `host` resolves to, or an error text.
    fn lookup(&self, host: &str) -> Result<IpAddr, String>;
}

/// Resolves with the operating system (`std::net::ToSocketAddrs`), one
/// attempt, no timeout of its own.
///
/// Names made only of numeric labels (`127.000.0.1`, `127.1`, `0x7f.1`) are
/// answered `no such host` without a lookup: they only get here when Go's
/// address parser rejected them, and Go's resolver then asks DNS for them as
/// names (verified with etcd 3.4.23), where the C library would read them as
/// addresses. Other failures carry the operating system's text, not Go's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Result<IpAddr, String> {
        let numeric_label = |label: &str| {
            let digits = label
                .strip_prefix("0x")
                .or_else(|| label.strip_prefix("0X"))
                .map_or_else(
                    || label.bytes().all(|b| b.is_ascii_digit()),
                    |hex| hex.bytes().all(|b| b.is_ascii_hexdigit()),
                );
            !label.is_empty() && digits
        };
        if host.is_empty() || host.split('.').all(numeric_label) {
            return Err(format!("lookup {host}: no such host"));
        }
        let mut addrs = (host, 0u16)
            .to_socket_addrs()
            .map_err(|e| format!("lookup {host}: {e}"))?;
        addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("lookup {host}: no such host"))
    }
}

/// The flags a restore takes for its membership, with etcd's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapConfig<'a> {
    /// `--name`.
    pub name: &'a str,
    /// `--initial-cluster`.
    pub initial_cluster: &'a str,
    /// `--initial-cluster-token` (may be empty).
    pub initial_cluster_token: &'a str,
    /// `--initial-advertise-peer-urls` (comma-separated).
    pub initial_advertise_peer_urls: &'a str,
    /// Whose rules apply.
    pub version: TargetVersion,
}

impl BootstrapConfig<'static> {
    /// etcd's defaults for every flag.
    ///
    /// ```
    /// use etcdsnap::restore::cluster::{bootstrap, BootstrapConfig};
    /// use etcdsnap::restore::urls::TargetVersion;
    /// let cluster = bootstrap(&BootstrapConfig::defaults(TargetVersion::V3_4))?;
    /// assert_eq!(format!("{:x}", cluster.cluster_id), "cdf818194e3a8c32");
    /// # Ok::<(), etcdsnap::restore::cluster::ClusterError>(())
    /// ```
    pub fn defaults(version: TargetVersion) -> BootstrapConfig<'static> {
        BootstrapConfig {
            name: DEFAULT_NAME,
            initial_cluster: DEFAULT_INITIAL_CLUSTER,
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN,
            initial_advertise_peer_urls: DEFAULT_INITIAL_ADVERTISE_PEER_URLS,
            version,
        }
    }
}

/// The membership a restore writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The cluster ID.
    pub cluster_id: u64,
    /// All members, sorted by ascending numeric ID; all voters.
    pub members: Vec<Member>,
    /// The ID of the member named by `--name`.
    pub local_id: u64,
}

impl Cluster {
    /// The member named by `--name`.
    pub fn local_member(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.id == self.local_id)
    }

    /// The member IDs in ascending order.
    pub fn member_ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }
}

/// Runs etcd's bootstrap steps for a restore (see the module docs), resolving
/// host names with [`SystemResolver`] when it has to.
///
/// ```
/// use etcdsnap::restore::cluster::{bootstrap, BootstrapConfig};
/// use etcdsnap::restore::urls::TargetVersion;
/// let cfg = BootstrapConfig {
///     name: "m2",
///     initial_cluster: "m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m2=http://10.0.0.2:12380,m3=https://node3.example:2380",
///     initial_cluster_token: "tok-xyz",
///     initial_advertise_peer_urls: "http://10.0.0.2:2380,http://10.0.0.2:12380",
///     version: TargetVersion::V3_5,
/// };
/// let cluster = bootstrap(&cfg)?;
/// assert_eq!(format!("{:x}", cluster.cluster_id), "11ef1ac1e2f71fb7");
/// assert_eq!(format!("{:x}", cluster.local_id), "3d274109dcb8ec6b");
/// let ids: Vec<String> = cluster.members.iter().map(|m| format!("{:x}", m.id)).collect();
/// assert_eq!(ids, ["614222aa6b90f72", "228d327bcfe81d90", "3d274109dcb8ec6b"]);
/// # Ok::<(), etcdsnap::restore::cluster::ClusterError>(())
/// ```
pub fn bootstrap(cfg: &BootstrapConfig<'_>) -> Result<Cluster, ClusterError> {
    bootstrap_with_resolver(cfg, &SystemResolver)
}

/// [`bootstrap`] with a caller-chosen [`HostResolver`].
pub fn bootstrap_with_resolver(
    cfg: &BootstrapConfig<'_>,
    resolver: &dyn HostResolver,
) -> Result<Cluster, ClusterError> {
    let advertised = parse_peer_url_list(cfg.initial_advertise_peer_urls, cfg.version)?;
    let initial = InitialCluster::parse(cfg.initial_cluster, cfg.version)?;
    verify_bootstrap_with_resolver(cfg.name, &initial, &advertised, resolver)?;
    build_cluster(&initial, cfg.name, cfg.initial_cluster_token.as_bytes())
}

/// etcd's `ServerConfig.VerifyBootstrap` for a restore, resolving host names
/// with [`SystemResolver`] when it has to. Checks, in order:
///
/// 1. `name` is a member (`couldn't find local name ...`);
/// 2. the member's URLs equal `advertised` (same length and, after sorting,
///    the same URLs; when they differ textually, both lists are resolved and
///    compared again);
/// 3. no URL appears twice in the cluster (`... has duplicate url`);
/// 4. the cluster is not empty.
///
/// ```
/// use etcdsnap::restore::cluster::{verify_bootstrap, InitialCluster};
/// use etcdsnap::restore::urls::{parse_peer_url_list, TargetVersion};
/// let v = TargetVersion::V3_4;
/// let c = InitialCluster::parse("a=http://127.0.0.1:1,b=http://127.0.0.1:1", v)?;
/// let adv = parse_peer_url_list("http://127.0.0.1:1", v)?;
/// assert_eq!(
///     verify_bootstrap("a", &c, &adv).unwrap_err().to_string(),
///     "initial cluster a=http://127.0.0.1:1,b=http://127.0.0.1:1 has duplicate url"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_bootstrap(
    name: &str,
    initial: &InitialCluster,
    advertised: &[PeerUrl],
) -> Result<(), ClusterError> {
    verify_bootstrap_with_resolver(name, initial, advertised, &SystemResolver)
}

/// [`verify_bootstrap`] with a caller-chosen [`HostResolver`].
pub fn verify_bootstrap_with_resolver(
    name: &str,
    initial: &InitialCluster,
    advertised: &[PeerUrl],
    resolver: &dyn HostResolver,
) -> Result<(), ClusterError> {
    let version = initial.version;
    let Some(member_urls) = initial.urls(name) else {
        return Err(ClusterError::NameNotFound {
            name: name.to_owned(),
            version,
        });
    };
    advertise_matches_cluster(name, member_urls, advertised, version, resolver)?;
    if initial.has_duplicate_url() {
        return Err(ClusterError::DuplicateUrl(initial.to_go_string()));
    }
    if initial.to_go_string().is_empty() {
        return Err(ClusterError::Unset);
    }
    Ok(())
}

/// etcd's `membership.NewClusterFromURLsMap` followed by the lookup of the
/// local member: computes every member's ID from its URLs and `token`,
/// rejects duplicate and zero IDs, sorts members by ID and computes the
/// cluster ID.
pub fn build_cluster(
    initial: &InitialCluster,
    local_name: &str,
    token: &[u8],
) -> Result<Cluster, ClusterError> {
    let mut members: Vec<Member> = Vec::with_capacity(initial.len());
    let mut seen: HashSet<u64> = HashSet::with_capacity(initial.len());
    let mut local_id = None;
    for (name, urls) in initial.iter() {
        let strs: Vec<&str> = urls.iter().map(PeerUrl::as_str).collect();
        let id = ids::member_id(&strs, token);
        let member = Member::new(id, name, strs.iter().map(|s| (*s).to_owned()).collect());
        if !seen.insert(id) {
            return Err(ClusterError::DuplicateId(go_format_member(&member)));
        }
        if id == 0 {
            return Err(ClusterError::ZeroId);
        }
        if name == local_name {
            local_id = Some(id);
        }
        members.push(member);
    }
    let Some(local_id) = local_id else {
        return Err(ClusterError::NameNotFound {
            name: local_name.to_owned(),
            version: initial.version,
        });
    };
    members.sort_unstable_by_key(|m| m.id);
    let cluster_id = ids::cluster_id(&members.iter().map(|m| m.id).collect::<Vec<_>>());
    Ok(Cluster {
        cluster_id,
        members,
        local_id,
    })
}

/// Go's `%v` of a `*membership.Member`:
/// `&{<hex id> {[<peer urls>] <isLearner>} {<name> [<client urls>]}}`.
fn go_format_member(m: &Member) -> String {
    format!(
        "&{{{} {{[{}] {}}} {{{} [{}]}}}}",
        ids::format_id(m.id),
        m.peer_urls.join(" "),
        m.is_learner,
        m.name,
        m.client_urls.join(" ")
    )
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list<S: AsRef<str>>(items: &[S], version: TargetVersion) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| go_quote(s.as_ref().as_bytes(), version))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// etcd's `advertiseMatchesCluster`.
fn advertise_matches_cluster(
    name: &str,
    member_urls: &[PeerUrl],
    advertised: &[PeerUrl],
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<(), ClusterError> {
    let mut ap: Vec<&str> = advertised.iter().map(PeerUrl::as_str).collect();
    ap.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut cl: Vec<&str> = member_urls.iter().map(PeerUrl::as_str).collect();
    cl.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    let detail = match url_strings_equal(&ap, &cl, version, resolver) {
        Ok(()) => return Ok(()),
        Err(detail) => detail,
    };

    let ap_set: HashSet<&str> = ap.iter().copied().collect();
    let cl_set: HashSet<&str> = cl.iter().copied().collect();
    let mut missing: Vec<&str> = cl_set.difference(&ap_set).copied().collect();
    missing.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let advertised_str = ap.join(",");
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(|u| format!("{name}={u}")).collect();
        return Err(ClusterError::MissingFromAdvertised {
            missing: missing.join(","),
            advertised: advertised_str,
            detail,
        });
    }
    // etcd prints `--initial-cluster=` with the advertised URLs here.
    let mut pairs: Vec<String> = ap.iter().map(|u| format!("{name}={u}")).collect();
    pairs.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let cluster = pairs.join(",");
    let mut extra: Vec<&str> = ap_set.difference(&cl_set).copied().collect();
    extra.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    if !extra.is_empty() {
        return Err(ClusterError::MissingFromInitialCluster {
            extra: extra.join(","),
            cluster,
        });
    }
    Err(ClusterError::ResolveMismatch {
        advertised: advertised_str,
        cluster,
        detail,
    })
}

/// etcd's `netutil.URLStringsEqual` on two sorted lists of canonical URLs;
/// `Err` holds the detail text etcd puts in parentheses.
///
/// Lists that are equal after parsing are accepted without resolving any
/// name (etcd 3.4.22+, 3.5.6+, 3.6; 3.5.0 to 3.5.5 resolved even then).
fn url_strings_equal(
    a: &[&str],
    b: &[&str],
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!(
            "len({}) != len({})",
            go_quote_list(a, version),
            go_quote_list(b, version)
        ));
    }
    let parse_all = |list: &[&str]| -> Result<Vec<GoUrl>, String> {
        list.iter()
            .map(|s| {
                GoUrl::parse(s, version).map_err(|_| match version {
                    TargetVersion::V3_5 => {
                        format!("failed to parse {}", go_quote(s.as_bytes(), version))
                    }
                    _ => format!(
                        "failed to parse string to URL: {}",
                        go_quote(s.as_bytes(), version)
                    ),
                })
            })
            .collect()
    };
    let mut urls_a = parse_all(a)?;
    let mut urls_b = parse_all(b)?;
    sort_by_go_string(&mut urls_a);
    sort_by_go_string(&mut urls_b);
    if urls_a == urls_b {
        return Ok(());
    }
    let before_a: Vec<String> = urls_a.iter().map(GoUrl::to_go_string).collect();
    let before_b: Vec<String> = urls_b.iter().map(GoUrl::to_go_string).collect();
    let mut resolved_a = resolve_all(&urls_a, version, resolver)?;
    let mut resolved_b = resolve_all(&urls_b, version, resolver)?;
    sort_by_go_string(&mut resolved_a);
    sort_by_go_string(&mut resolved_b);
    let pairs = resolved_a.iter().zip(&resolved_b).enumerate();
    for (i, (ra, rb)) in pairs {
        if ra != rb {
            let ra = ra.to_go_string();
            let rb = rb.to_go_string();
            return Err(match version {
                TargetVersion::V3_5 => format!(
                    "{}(resolved from {}) != {}(resolved from {})",
                    go_quote(ra.as_bytes(), version),
                    go_quote(before_a.get(i).map_or(&[][..], |s| s.as_bytes()), version),
                    go_quote(rb.as_bytes(), version),
                    go_quote(before_b.get(i).map_or(&[][..], |s| s.as_bytes()), version),
                ),
                _ => format!(
                    "resolved urls: {} != {}",
                    go_quote(ra.as_bytes(), version),
                    go_quote(rb.as_bytes(), version)
                ),
            });
        }
    }
    Ok(())
}

fn sort_by_go_string(urls: &mut [GoUrl]) {
    urls.sort_by_cached_key(|u| u.to_go_string().into_bytes());
}

/// etcd's `resolveTCPAddrs` for one list: re-parse, then replace each
/// resolvable host with `ip:port`.
fn resolve_all(
    urls: &[GoUrl],
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<Vec<GoUrl>, String> {
    let mut out = Vec::with_capacity(urls.len());
    for u in urls {
        let text = u.to_go_string();
        let mut reparsed = GoUrl::parse(&text, version).map_err(|e| {
            format!(
                "failed to parse {} ({e})",
                go_quote(text.as_bytes(), version)
            )
        })?;
        match resolve_url(&reparsed, version, resolver) {
            Ok(Some(host)) => reparsed.host = host.into_bytes(),
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "failed to resolve {} ({e})",
                    go_quote(text.as_bytes(), version)
                ));
            }
        }
        out.push(reparsed);
    }
    Ok(out)
}

/// etcd's `resolveURL`: `None` keeps the host as it is.
fn resolve_url(
    u: &GoUrl,
    version: TargetVersion,
    resolver: &dyn HostResolver,
) -> Result<Option<String>, String> {
    if u.scheme == "unix" || u.scheme == "unixs" {
        return Ok(None);
    }
    let (host, port) = split_host_port(&u.host).map_err(|why| go_addr_error(&u.host, why))?;
    if host == b"localhost" {
        return Ok(None);
    }
    let host_text = std::str::from_utf8(host).ok();
    let literal = host_text.and_then(|h| go_parse_ip(h, version));
    if literal.is_some() && version != TargetVersion::V3_6 {
        return Ok(None);
    }
    // resolveTCPAddr: the port first, then the address.
    let port = go_lookup_port(port)?;
    let (ip, zone) = match literal {
        Some(ip) => (ip, ""),
        None => {
            let name = host_text.unwrap_or_default();
            if name.is_empty() {
                // Go refuses the empty name before any lookup.
                return Err(format!(
                    "lookup {}: no such host",
                    String::from_utf8_lossy(host)
                ));
            }
            match go_parse_ipv6_zone(name) {
                Some((ip, zone)) => (IpAddr::V6(ip), zone),
                None => (resolver.lookup(name)?, ""),
            }
        }
    };
    let mut text = go_ip_string(ip);
    if !zone.is_empty() {
        text.push('%');
        text.push_str(zone);
    }
    Ok(Some(go_join_host_port(&text, port)))
}

/// Go's `net.ParseIP` as built into `version`'s reference binary: Go 1.16
/// (etcd 3.5.1) still accepted IPv4 fields with leading zeros.
fn go_parse_ip(host: &str, version: TargetVersion) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    if version != TargetVersion::V3_5 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut fields = host.split('.');
    for octet in &mut octets {
        let field = fields.next()?;
        if field.is_empty() || field.len() > 8 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = u8::try_from(field.parse::<u32>().ok()?).ok()?;
    }
    match fields.next() {
        None => Some(IpAddr::from(octets)),
        Some(_) => None,
    }
}

/// The zone form of an IPv6 literal that Go's resolver accepts without a
/// lookup: `addr%zone`, split at the last `%`.
fn go_parse_ipv6_zone(host: &str) -> Option<(std::net::Ipv6Addr, &str)> {
    let (addr, zone) = host.rsplit_once('%')?;
    if addr.is_empty() {
        return None;
    }
    Some((addr.parse().ok()?, zone))
}

/// Go's `net.AddrError` text.
fn go_addr_error(addr: &[u8], why: &str) -> String {
    if addr.is_empty() {
        why.to_owned()
    } else {
        format!("address {}: {why}", String::from_utf8_lossy(addr))
    }
}

/// Go's `LookupPort("tcp", port)` for the digit strings a parsed URL can
/// hold: empty means 0, more than 65535 is an error.
fn go_lookup_port(port: &[u8]) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(port)
        .ok()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| {
            let trimmed = p.trim_start_matches('0');
            if trimmed.len() > 5 {
                None
            } else {
                trimmed.parse::<u32>().ok().or(Some(0))
            }
        })
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| go_addr_error(port, "invalid port"))
}

/// Go's `net.IP.String()`: IPv4 and IPv4-mapped IPv6 as dotted quads, other
/// IPv6 in RFC 5952 form.
fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
    }
}

/// Go's `net.JoinHostPort`.
fn go_join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V34: TargetVersion = TargetVersion::V3_4;
    const V35: TargetVersion = TargetVersion::V3_5;
    const V36: TargetVersion = TargetVersion::V3_6;

    struct FakeResolver(&'static [(&'static str, &'static str)]);

    impl HostResolver for FakeResolver {
        fn lookup(&self, host: &str) -> Result<IpAddr, String> {
            self.0
                .iter()
                .find(|(h, _)| *h == host)
                .and_then(|(_, ip)| ip.parse().ok())
                .ok_or_else(|| format!("lookup {host}: no such host"))
        }
    }

    fn run(
        name: &str,
        initial_cluster: &str,
        advertised: &str,
        version: TargetVersion,
    ) -> Result<Cluster, ClusterError> {
        let cfg = BootstrapConfig {
            name,
            initial_cluster,
            initial_cluster_token: "tok",
            initial_advertise_peer_urls: advertised,
            version,
        };
        bootstrap_with_resolver(
            &cfg,
            &FakeResolver(&[
                ("node1", "127.0.0.1"),
                ("node6", "::1"),
                ("mapped", "::ffff:127.0.0.9"),
            ]),
        )
    }

    fn err(name: &str, ic: &str, adv: &str, version: TargetVersion) -> String {
        match run(name, ic, adv, version) {
            Ok(c) => format!("OK {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn listing(c: &InitialCluster) -> Vec<(String, Vec<String>)> {
        c.iter()
            .map(|(n, u)| {
                (
                    n.to_owned(),
                    u.iter().map(|u| u.as_str().to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parse_splits_like_newurlsmap() {
        let c = InitialCluster::parse(
            ",, m1=http://h:1 ,m1=http://a:1,=http://e:1,m1=HTTP://0:1,",
            V35,
        );
        let want: Vec<(String, Vec<String>)> = vec![
            (" m1".into(), vec!["http://h:1".into()]),
            ("m1".into(), vec!["http://0:1".into(), "http://a:1".into()]),
            ("".into(), vec!["http://e:1".into()]),
        ];
        assert_eq!(c.as_ref().map(listing), Ok(want));
        // Split at the first `=`: the URL of `x` is `y=http://q:1`.
        assert_eq!(
            InitialCluster::parse("x=y=http://q:1", V35)
                .unwrap_err()
                .to_string(),
            "parse \"y=http://q:1\": first path segment in URL cannot contain colon"
        );
        assert_eq!(
            InitialCluster::parse("default", V35)
                .unwrap_err()
                .to_string(),
            "URL scheme must be http, https, unix, or unixs: "
        );
        assert_eq!(InitialCluster::parse("", V35).map(|c| c.len()), Ok(0));
        assert_eq!(
            InitialCluster::parse(",,,", V35).map(|c| c.is_empty()),
            Ok(true)
        );
    }

    #[test]
    fn limits() {
        let many: Vec<String> = (0..=MAX_MEMBERS)
            .map(|i| format!("m{i}=http://h:{i}"))
            .collect();
        assert_eq!(
            InitialCluster::parse(&many.join(","), V35),
            Err(ClusterError::TooManyMembers)
        );
        let ok: Vec<String> = (0..MAX_MEMBERS)
            .map(|i| format!("m{i}=http://h:{i}"))
            .collect();
        assert_eq!(
            InitialCluster::parse(&ok.join(","), V35).map(|c| c.len()),
            Ok(MAX_MEMBERS)
        );
        let long = "a".repeat(MAX_INITIAL_CLUSTER_LEN + 1);
        assert_eq!(
            InitialCluster::parse(&long, V35),
            Err(ClusterError::TooLong { len: long.len() })
        );
        let long_url = format!("a=http://{}:1", "h".repeat(5000));
        assert!(matches!(
            InitialCluster::parse(&long_url, V35),
            Err(ClusterError::Url(UrlError::TooLong { .. }))
        ));
    }

    #[test]
    fn defaults_vectors() {
        for v in [V34, V35, V36] {
            let c = bootstrap(&BootstrapConfig::defaults(v));
            let c = c.ok();
            assert_eq!(c.as_ref().map(|c| c.local_id), Some(0x8e9e05c52164694d));
            assert_eq!(c.as_ref().map(|c| c.cluster_id), Some(0xcdf818194e3a8c32));
            assert_eq!(
                c.as_ref().and_then(|c| c.local_member()).map(Member::to_json),
                Some(r#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#.to_owned())
            );
        }
    }

    #[test]
    fn members_sorted_by_numeric_id() {
        let cfg = BootstrapConfig {
            name: "s1",
            initial_cluster: "s1=http://127.0.0.1:23800",
            initial_cluster_token: "origtok",
            initial_advertise_peer_urls: "http://127.0.0.1:23800",
            version: V35,
        };
        let c = bootstrap(&cfg).ok();
        assert_eq!(
            c.as_ref().map(|c| ids::format_id(c.local_id)),
            Some("9b117a65ef5b0082".into())
        );
        assert_eq!(
            c.map(|c| ids::format_id(c.cluster_id)),
            Some("d2d903da6f53b99b".into())
        );
        let c = run(
            "a",
            "a=http://h:1,b=http://h:2,c=http://h:3,d=http://h:4",
            "http://h:1",
            V34,
        );
        let ids = c.map(|c| c.member_ids()).unwrap_or_default();
        assert_eq!(ids.len(), 4);
        assert!(ids.windows(2).all(|w| w.first() < w.get(1)));
    }

    #[test]
    fn verify_order_and_texts() {
        assert_eq!(
            err(
                "foo",
                "default=http://localhost:2380",
                "http://localhost:2380",
                V35
            ),
            "couldn't find local name \"foo\" in the initial cluster configuration"
        );
        assert_eq!(
            err("a\"b\n", "x=http://h:1", "http://h:1", V34),
            "couldn't find local name \"a\\\"b\\n\" in the initial cluster configuration"
        );
        // The advertised list is parsed first, then the cluster.
        assert_eq!(
            err("a", "a=ftp://h:1", "http://h:1/", V35),
            "URL must not contain a path: http://h:1/"
        );
        // Advertise check comes before the duplicate check.
        assert_eq!(
            err(
                "a",
                "a=http://127.0.0.1:1,b=http://127.0.0.1:1",
                "http://127.0.0.1:2",
                V35
            ),
            "--initial-cluster has a=http://127.0.0.1:1 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2 \
             (\"http://127.0.0.1:2\"(resolved from \"http://127.0.0.1:2\") != \"http://127.0.0.1:1\"(resolved from \"http://127.0.0.1:1\"))"
        );
        assert_eq!(
            err("a", "a=http://h:1,b=http://h:1", "http://h:1", V35),
            "initial cluster a=http://h:1,b=http://h:1 has duplicate url"
        );
    }

    #[test]
    fn advertise_mismatch_texts_per_version() {
        let ic = "default=http://localhost:2380";
        assert_eq!(
            err("default", ic, "http://127.0.0.1:2380", V34),
            "--initial-cluster has default=http://localhost:2380 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2380 (resolved urls: \"http://127.0.0.1:2380\" != \"http://localhost:2380\")"
        );
        assert_eq!(
            err("default", ic, "http://127.0.0.1:2380", V35),
            "--initial-cluster has default=http://localhost:2380 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2380 (\"http://127.0.0.1:2380\"(resolved from \"http://127.0.0.1:2380\") != \"http://localhost:2380\"(resolved from \"http://localhost:2380\"))"
        );
        // Extra advertised URL: lengths differ, every cluster URL is advertised.
        assert_eq!(
            err(
                "default",
                ic,
                "http://localhost:2380,http://127.0.0.1:2380",
                V34
            ),
            "--initial-advertise-peer-urls has http://127.0.0.1:2380 but missing from --initial-cluster=default=http://127.0.0.1:2380,default=http://localhost:2380"
        );
        // Same set, different lengths (a repeated URL).
        assert_eq!(
            err("n", "n=http://h:1,n=HTTP://h:1", "http://h:1", V35),
            "failed to resolve http://h:1 to match --initial-cluster=n=http://h:1 (len([\"http://h:1\"]) != len([\"http://h:1\" \"http://h:1\"]))"
        );
    }

    #[test]
    fn resolution_makes_names_and_addresses_match() {
        // node1 resolves to 127.0.0.1, so these match after resolution.
        for v in [V34, V35, V36] {
            assert!(run("n", "n=http://node1:2380", "http://127.0.0.1:2380", v).is_ok());
            assert!(run("n", "n=http://[::1]:2380", "http://node6:2380", v).is_ok());
            assert!(run("n", "n=http://127.0.0.9:2380", "http://mapped:2380", v).is_ok());
        }
        // Only 3.6 normalises IP literals through resolution.
        assert!(run("n", "n=http://[::1]:1", "http://[0::1]:1", V36).is_ok());
        assert_eq!(
            err("n", "n=http://[::1]:1", "http://[0::1]:1", V34),
            "--initial-cluster has n=http://[::1]:1 but missing from --initial-advertise-peer-urls=http://[0::1]:1 (resolved urls: \"http://[0::1]:1\" != \"http://[::1]:1\")"
        );
        assert_eq!(
            err("n", "n=http://node1:2380", "http://nowhere:2380", V34),
            "--initial-cluster has n=http://node1:2380 but missing from --initial-advertise-peer-urls=http://nowhere:2380 (failed to resolve \"http://nowhere:2380\" (lookup nowhere: no such host))"
        );
        assert_eq!(
            err("n", "n=http://node1:99999", "http://127.0.0.1:99999", V34),
            "--initial-cluster has n=http://node1:99999 but missing from --initial-advertise-peer-urls=http://127.0.0.1:99999 (failed to resolve \"http://node1:99999\" (address 99999: invalid port))"
        );
        // 3.5 reports the original URL next to the resolved one.
        assert_eq!(
            err("n", "n=http://node1:2380", "http://127.0.0.2:2380", V35),
            "--initial-cluster has n=http://node1:2380 but missing from --initial-advertise-peer-urls=http://127.0.0.2:2380 (\"http://127.0.0.2:2380\"(resolved from \"http://127.0.0.2:2380\") != \"http://127.0.0.1:2380\"(resolved from \"http://node1:2380\"))"
        );
    }

    #[test]
    fn build_rejects_duplicate_and_zero_ids() {
        let ic = InitialCluster::parse("a=http://h:1,b=http://h:1", V35);
        let r = ic.and_then(|ic| build_cluster(&ic, "a", b"t"));
        let id = ids::member_id(&["http://h:1"], b"t");
        assert_eq!(
            r.map(|c| c.cluster_id).unwrap_err().to_string(),
            format!(
                "member exists with identical ID &{{{} {{[http://h:1] false}} {{b []}}}}",
                ids::format_id(id)
            )
        );
        let ic = InitialCluster::parse("a=http://h:1", V35).unwrap_or(InitialCluster::empty(V35));
        assert_eq!(
            build_cluster(&ic, "zz", b"t").map(|c| c.local_id),
            Err(ClusterError::NameNotFound {
                name: "zz".into(),
                version: V35
            })
        );
        assert_eq!(
            go_format_member(&Member::new(0xab, "n m", vec!["u1".into(), "u2".into()])),
            "&{ab {[u1 u2] false} {n m []}}"
        );
    }

    #[test]
    fn unset_cluster() {
        let empty = InitialCluster::empty(V34);
        assert!(empty.is_empty());
        assert_eq!(empty.to_go_string(), "");
        assert_eq!(
            verify_bootstrap("x", &empty, &[]),
            Err(ClusterError::NameNotFound {
                name: "x".into(),
                version: V34
            })
        );
    }

    #[test]
    fn lookups_that_go_answers_without_dns() {
        // Empty hosts and zone literals never reach the resolver.
        assert_eq!(
            err("n", "n=http://:1", "http://:2", V34),
            "--initial-cluster has n=http://:1 but missing from --initial-advertise-peer-urls=http://:2 \
             (failed to resolve \"http://:2\" (lookup : no such host))"
        );
        assert_eq!(
            err("n", "n=http://[::1%25lo]:1", "http://[::1%25lo]:2", V35),
            "--initial-cluster has n=http://[::1%25lo]:1 but missing from --initial-advertise-peer-urls=http://[::1%25lo]:2 \
             (\"http://[::1%25lo]:2\"(resolved from \"http://[::1%25lo]:2\") != \"http://[::1%25lo]:1\"(resolved from \"http://[::1%25lo]:1\"))"
        );
        assert!(run("n", "n=http://[::1%25lo]:1", "http://[0::1%25lo]:1", V34).is_ok());
        // Go 1.16 (3.5.1) reads 127.000.0.1 as an address and so never looks
        // it up; later Go hands it to the resolver.
        assert_eq!(
            go_parse_ip("127.000.0.01", V35),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(go_parse_ip("127.000.0.01", V34), None);
        assert_eq!(go_parse_ip("127.0.0.256", V35), None);
        assert_eq!(go_parse_ip("127.0.0", V35), None);
        assert_eq!(go_parse_ip("127.0.0.1.", V35), None);
        assert_eq!(
            go_parse_ipv6_zone("fe80::1%eth0").map(|(_, z)| z),
            Some("eth0")
        );
        assert_eq!(go_parse_ipv6_zone("fe80::1%a%b"), None);
        assert_eq!(go_parse_ipv6_zone("%lo"), None);
    }

    #[test]
    fn system_resolver_refuses_numeric_names() {
        for host in ["", "127.000.0.1", "127.1", "0x7f.1", "2130706433"] {
            assert_eq!(
                SystemResolver.lookup(host),
                Err(format!("lookup {host}: no such host"))
            );
        }
    }

    #[test]
    fn go_net_helpers() {
        assert_eq!(go_lookup_port(b""), Ok(0));
        assert_eq!(go_lookup_port(b"02380"), Ok(2380));
        assert_eq!(go_lookup_port(b"0000000000065535"), Ok(65535));
        assert_eq!(
            go_lookup_port(b"65536"),
            Err("address 65536: invalid port".into())
        );
        assert_eq!(
            go_ip_string("::ffff:1.2.3.4".parse().unwrap_or(IpAddr::from([0u8; 4]))),
            "1.2.3.4"
        );
        assert_eq!(go_join_host_port("::1", 1), "[::1]:1");
        assert_eq!(go_join_host_port("h", 1), "h:1");
        assert_eq!(
            go_quote_list(&["a", "b\"\u{7f}"], V34),
            "[\"a\" \"b\\\"\\x7f\"]"
        );
        assert_eq!(go_quote_list::<&str>(&[], V35), "[]");
    }
}
