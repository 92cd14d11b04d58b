//! etcd's bootstrap checks for a restore (`ServerConfig.VerifyBootstrap`)
//! and the member list it writes (`membership.NewClusterFromURLsMap`).

use std::collections::HashSet;

use super::error::ClusterError;
use super::initial_cluster::{
    DEFAULT_INITIAL_ADVERTISE_PEER_URLS, DEFAULT_INITIAL_CLUSTER, DEFAULT_INITIAL_CLUSTER_TOKEN,
    DEFAULT_NAME, InitialCluster,
};
use super::peer_url::{PeerUrl, parse_peer_url_list};
use super::resolve::{HostResolver, SystemResolver, url_strings_equal};
use crate::etcd::TargetVersion;
use crate::etcd::ids;
use crate::etcd::member::Member;

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
    /// use etcdsnap::internal::membership::{bootstrap, BootstrapConfig};
    /// use etcdsnap::TargetVersion;
    /// let cluster = bootstrap(&BootstrapConfig::defaults(TargetVersion::V3_4))?;
    /// assert_eq!(format!("{:x}", cluster.cluster_id), "cdf818194e3a8c32");
    /// # Ok::<(), etcdsnap::internal::membership::ClusterError>(())
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
    /// The member IDs in order of first appearance in `--initial-cluster`
    /// (the order etcd 3.6+ may create them in the v2 store).
    pub initial_order: Vec<u64>,
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
/// use etcdsnap::internal::membership::{bootstrap, BootstrapConfig};
/// use etcdsnap::TargetVersion;
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
/// # Ok::<(), etcdsnap::internal::membership::ClusterError>(())
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
/// use etcdsnap::internal::membership::{parse_peer_url_list, verify_bootstrap, InitialCluster};
/// use etcdsnap::TargetVersion;
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
    let version = initial.version();
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
            version: initial.version(),
        });
    };
    let initial_order = members.iter().map(|m| m.id).collect();
    members.sort_unstable_by_key(|m| m.id);
    let cluster_id = ids::cluster_id(&members.iter().map(|m| m.id).collect::<Vec<_>>());
    Ok(Cluster {
        cluster_id,
        members,
        local_id,
        initial_order,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use crate::restore::membership::{
        InitialCluster, MAX_INITIAL_CLUSTER_LEN, MAX_MEMBERS, UrlError,
    };

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
                c.as_ref().and_then(|c| c.local_member()).map(|m| m.to_json(v)),
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
    }
}
