//! The restore flags (etcdutl's, plus `--target-version` and
//! `--all-members`), their validation, and where each member's data dir and
//! WAL dir go.

use std::path::{Path, PathBuf};

use super::error::{FlagsError, RestoreError};
use super::membership::PeerUrl;
use super::membership::{
    BootstrapConfig, Cluster, DEFAULT_INITIAL_ADVERTISE_PEER_URLS, DEFAULT_INITIAL_CLUSTER,
    DEFAULT_INITIAL_CLUSTER_TOKEN, DEFAULT_NAME, InitialCluster, bootstrap, build_cluster,
    verify_bootstrap,
};
use crate::etcd::TargetVersion;
use crate::etcd::version::TargetChoice;

/// How a restore is done (etcdutl's flags), with etcdutl's defaults; the
/// snapshot is a [`RestoreSource`](crate::RestoreSource) given beside them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// `--data-dir` (default `<name>.etcd`).
    pub data_dir: Option<PathBuf>,
    /// `--wal-dir` (default `<data-dir>/member/wal`).
    pub wal_dir: Option<PathBuf>,
    /// `--name`.
    pub name: String,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--initial-advertise-peer-urls`.
    pub initial_advertise_peer_urls: String,
    /// `--skip-hash-check`.
    pub skip_hash_check: bool,
    /// `--bump-revision` (0 = none).
    pub bump_revision: u64,
    /// `--mark-compacted`.
    pub mark_compacted: bool,
    /// `--compact[=R]`: write the member db compacted at revision R as
    /// `etcdctl compact R` would leave it (`Some(0)`: at the latest
    /// revision), and densely packed (as with [`defrag`](Self::defrag)).
    pub compact: Option<i64>,
    /// `--defrag`: write the member db densely packed, as `etcdutl defrag`
    /// leaves it, instead of a page-for-page copy of the snapshot's.
    pub defrag: bool,
    /// `--target-version`: a release, or `auto` (the default), which
    /// follows the snapshot's `meta/storageVersion`.
    pub target: TargetChoice,
    /// Restore even when the target release is older than the snapshot's
    /// storage version, migrating the storage version down as `etcdutl
    /// migrate` does (see [`RestoreError::StorageTooNew`]).
    pub force: bool,
    /// `--all-members --out-dir DIR`: one data dir per member in DIR.
    pub all_members_out_dir: Option<PathBuf>,
    /// Threads to use (at least 1).
    pub threads: usize,
    /// How a [`RestoreSource::Path`](crate::RestoreSource::Path) that is
    /// compressed is read (where temporary copies go). A
    /// [`Location`](crate::Location) carries its own options.
    pub location: crate::location::LocationOptions,
}

impl Default for RestoreOptions {
    /// etcdutl's defaults.
    fn default() -> RestoreOptions {
        RestoreOptions {
            data_dir: None,
            wal_dir: None,
            name: DEFAULT_NAME.into(),
            initial_cluster: DEFAULT_INITIAL_CLUSTER.into(),
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.into(),
            initial_advertise_peer_urls: DEFAULT_INITIAL_ADVERTISE_PEER_URLS.into(),
            skip_hash_check: false,
            bump_revision: 0,
            mark_compacted: false,
            compact: None,
            defrag: false,
            target: TargetChoice::Auto,
            force: false,
            all_members_out_dir: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            location: crate::location::LocationOptions::default(),
        }
    }
}

impl RestoreOptions {
    /// etcd's default `--name`.
    pub const DEFAULT_NAME: &'static str = DEFAULT_NAME;
    /// etcd's default `--initial-cluster` (a fixed string, not derived from
    /// `--name`).
    pub const DEFAULT_INITIAL_CLUSTER: &'static str = DEFAULT_INITIAL_CLUSTER;
    /// etcd's default `--initial-cluster-token`.
    pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &'static str = DEFAULT_INITIAL_CLUSTER_TOKEN;
    /// etcd's default `--initial-advertise-peer-urls`.
    pub const DEFAULT_INITIAL_ADVERTISE_PEER_URLS: &'static str =
        DEFAULT_INITIAL_ADVERTISE_PEER_URLS;

    /// `--data-dir`: the member's data dir.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// `--wal-dir`: the member's WAL dir, outside its data dir.
    pub fn with_wal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wal_dir = Some(dir.into());
        self
    }

    /// `--name`: the member restored.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `--initial-cluster` (`name=peer-url,...`).
    pub fn with_initial_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.initial_cluster = cluster.into();
        self
    }

    /// `--initial-cluster-token`.
    pub fn with_initial_cluster_token(mut self, token: impl Into<String>) -> Self {
        self.initial_cluster_token = token.into();
        self
    }

    /// `--initial-advertise-peer-urls` (comma-separated).
    pub fn with_initial_advertise_peer_urls(mut self, urls: impl Into<String>) -> Self {
        self.initial_advertise_peer_urls = urls.into();
        self
    }

    /// `--skip-hash-check`: restore a file that has no (or a wrong) trailing hash.
    pub fn with_skip_hash_check(mut self, skip: bool) -> Self {
        self.skip_hash_check = skip;
        self
    }

    /// `--bump-revision` (with [`with_mark_compacted`](Self::with_mark_compacted), as etcd requires).
    pub fn with_bump_revision(mut self, by: u64) -> Self {
        self.bump_revision = by;
        self
    }

    /// `--mark-compacted`.
    pub fn with_mark_compacted(mut self, mark: bool) -> Self {
        self.mark_compacted = mark;
        self
    }

    /// `--compact[=R]`: compact at revision `revision` (0: the latest);
    /// `None`: no compaction.
    pub fn with_compact(mut self, revision: impl Into<Option<i64>>) -> Self {
        self.compact = revision.into();
        self
    }

    /// `--defrag`: write the member db densely packed.
    pub fn with_defrag(mut self, defrag: bool) -> Self {
        self.defrag = defrag;
        self
    }

    /// `--target-version`: a release or `auto`.
    pub fn with_target(mut self, target: impl Into<TargetChoice>) -> Self {
        self.target = target.into();
        self
    }

    /// Restore even when the target is older than the snapshot's storage version.
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// `--all-members --out-dir DIR`: one data dir per member in `dir`.
    pub fn with_all_members_out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.all_members_out_dir = Some(dir.into());
        self
    }

    /// Threads to use (0 is taken as 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// How a compressed [`RestoreSource::Path`](crate::RestoreSource::Path) is read.
    pub fn with_location(mut self, location: crate::location::LocationOptions) -> Self {
        self.location = location;
        self
    }

    /// The revision bump to apply, after etcd's pairing rules: 3.5 and 3.6
    /// refuse one flag without the other; 3.4 silently ignores a lone flag.
    pub(crate) fn bump(&self, target: TargetVersion) -> Result<Option<u64>, RestoreError> {
        let both = self.mark_compacted && self.bump_revision > 0;
        let one = self.mark_compacted || self.bump_revision > 0;
        if one && !both && target != TargetVersion::V3_4 {
            return Err(FlagsError::BumpWithoutMarkCompacted.into());
        }
        Ok(both.then_some(self.bump_revision))
    }

    /// Whether the member db is laid out anew (`--compact` or `--defrag`)
    /// rather than copied; refuses a negative `--compact` revision.
    pub(crate) fn dense(&self) -> Result<bool, RestoreError> {
        if let Some(r) = self.compact.filter(|r| *r < 0) {
            return Err(RestoreError::Flags(
                super::error::FlagsError::BadCompactRevision { revision: r },
            ));
        }
        Ok(self.defrag || self.compact.is_some())
    }
}

/// Where one member's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTarget {
    /// The member's name.
    pub name: String,
    /// The member's ID.
    pub id: u64,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its WAL dir when it is outside the data dir (`--wal-dir`).
    pub wal_dir: Option<PathBuf>,
}

/// Checks a member name used to make a directory name (`<name>.etcd`).
fn dir_name_for(name: &str, all_members: bool) -> Result<String, RestoreError> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(FlagsError::BadMemberName {
            name: name.to_owned(),
            all_members,
        }
        .into());
    }
    Ok(format!("{name}.etcd"))
}

/// Runs etcd's membership checks (by the rules of `version`) and decides
/// every member's directories.
pub fn plan_members(
    opts: &RestoreOptions,
    version: TargetVersion,
) -> Result<(Cluster, Vec<MemberTarget>), RestoreError> {
    let token = opts.initial_cluster_token.as_str();
    let Some(out_dir) = &opts.all_members_out_dir else {
        let cluster = bootstrap(&BootstrapConfig {
            name: &opts.name,
            initial_cluster: &opts.initial_cluster,
            initial_cluster_token: token,
            initial_advertise_peer_urls: &opts.initial_advertise_peer_urls,
            version,
        })?;
        let data_dir = match &opts.data_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(dir_name_for(&opts.name, false)?),
        };
        let target = MemberTarget {
            name: opts.name.clone(),
            id: cluster.local_id,
            data_dir,
            wal_dir: opts.wal_dir.clone(),
        };
        return Ok((cluster, vec![target]));
    };
    if opts.data_dir.is_some() || opts.wal_dir.is_some() {
        return Err(FlagsError::AllMembersWithDir.into());
    }
    let initial = InitialCluster::parse(&opts.initial_cluster, version)?;
    let mut cluster = None;
    let mut targets = Vec::new();
    for (name, urls) in initial.iter() {
        let advertised: Vec<PeerUrl> = urls.to_vec();
        verify_bootstrap(name, &initial, &advertised)?;
        let c = build_cluster(&initial, name, token.as_bytes())?;
        targets.push(MemberTarget {
            name: name.to_owned(),
            id: c.local_id,
            data_dir: out_dir.join(dir_name_for(name, true)?),
            wal_dir: None,
        });
        cluster.get_or_insert(c);
    }
    let cluster = cluster.ok_or_else(|| RestoreError::from(FlagsError::NoInitialCluster))?;
    targets.sort_by_key(|t| t.id);
    Ok((cluster, targets))
}

/// Refuses targets etcd would refuse: a data dir that exists (3.4) or is
/// not empty (3.5, 3.6), and a WAL dir that exists.
pub fn check_targets(targets: &[MemberTarget], target: TargetVersion) -> Result<(), RestoreError> {
    for t in targets {
        check_data_dir(&t.data_dir, target)?;
        if let Some(w) = &t.wal_dir
            && std::fs::symlink_metadata(w).is_ok()
        {
            return Err(RestoreError::WalDirExists(w.display().to_string()));
        }
    }
    let mut dirs: Vec<&Path> = targets.iter().map(|t| t.data_dir.as_path()).collect();
    dirs.sort();
    if dirs.windows(2).any(|w| w[0] == w[1]) {
        return Err(FlagsError::SharedDataDir.into());
    }
    Ok(())
}

fn check_data_dir(dir: &Path, target: TargetVersion) -> Result<(), RestoreError> {
    let shown = dir.display().to_string();
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    // Debris of a killed etcdsnap restore staged inside this dir.
    if dir.is_dir() {
        super::staging::remove_stale(dir, "");
    }
    if target == TargetVersion::V3_4 {
        return Err(RestoreError::DataDirExists {
            path: shown,
            what: "exists",
        });
    }
    let empty =
        dir.is_dir() && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    if empty {
        Ok(())
    } else {
        Err(RestoreError::DataDirExists {
            path: shown,
            what: "not empty or could not be read",
        })
    }
}
