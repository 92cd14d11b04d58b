//! Which etcd release's behaviour to reproduce.

use std::fmt;
use std::str::FromStr;

use crate::go::GoRelease;

/// The etcd minor version whose output format and rules are reproduced
/// (`--target-version`). Versions compare in release order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum TargetVersion {
    /// etcd 3.4 (`etcdctl snapshot restore`).
    V3_4,
    /// etcd 3.5 (`etcdutl snapshot restore`), the default.
    #[default]
    V3_5,
    /// etcd 3.6.
    V3_6,
    /// etcd 3.7: 3.6's rules, google.golang.org/protobuf encoding of the
    /// raft files, Unicode table borders.
    V3_7,
}

/// An unknown `--target-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported target version {0:?} (expected auto, 3.4, 3.5, 3.6 or 3.7)")]
pub struct UnknownVersion(pub String);

impl FromStr for TargetVersion {
    type Err = UnknownVersion;

    /// Accepts `3.4`, `3.5`, `3.6`, `3.7`, optionally with a `v` prefix and a
    /// patch level (`v3.5.1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let minor = match (parts.next(), parts.next()) {
            (Some("3"), Some(m)) => m,
            _ => return Err(UnknownVersion(s.into())),
        };
        if parts.clone().any(|p| p.parse::<u32>().is_err()) || parts.count() > 1 {
            return Err(UnknownVersion(s.into()));
        }
        match minor {
            "4" => Ok(TargetVersion::V3_4),
            "5" => Ok(TargetVersion::V3_5),
            "6" => Ok(TargetVersion::V3_6),
            "7" => Ok(TargetVersion::V3_7),
            _ => Err(UnknownVersion(s.into())),
        }
    }
}

impl TargetVersion {
    /// Every version, oldest first.
    pub(crate) const ALL: [TargetVersion; 4] = [
        TargetVersion::V3_4,
        TargetVersion::V3_5,
        TargetVersion::V3_6,
        TargetVersion::V3_7,
    ];

    /// The Go release that built this etcd release's reference binary,
    /// whose library behaviour (quoting, JSON escaping, IP parsing) shows
    /// in etcd's output: Go 1.19 for Debian's 3.4.23, Go 1.16 for 3.5.1,
    /// and the `.go-version` of the v3.6.14 and v3.7.1 tags (Go 1.25 and
    /// Go 1.26) for the recorded 3.6 and 3.7 binaries.
    pub(crate) fn go_release(self) -> GoRelease {
        match self {
            TargetVersion::V3_4 => GoRelease::GO1_19,
            TargetVersion::V3_5 => GoRelease::GO1_16,
            TargetVersion::V3_6 => GoRelease::GO1_25,
            TargetVersion::V3_7 => GoRelease::GO1_26,
        }
    }

    /// The storage schema version etcd of this release writes and reads
    /// (`meta/storageVersion`, "major.minor"); 3.4 and 3.5 write none and
    /// read their data as 3.5.
    pub(crate) fn storage_version(self) -> (u64, u64) {
        match self {
            TargetVersion::V3_4 | TargetVersion::V3_5 => (3, 5),
            TargetVersion::V3_6 => (3, 6),
            TargetVersion::V3_7 => (3, 7),
        }
    }

    /// The release whose layout matches a snapshot's storage version
    /// (`meta/storageVersion` parsed as "major.minor[.patch]"; `None` when
    /// the snapshot has none, which etcd reads as 3.5). A version newer
    /// than every known release gives `Err` with the version text.
    ///
    /// ```
    /// use etcdsnap::TargetVersion;
    /// assert_eq!(TargetVersion::for_storage_version(None), Ok(TargetVersion::V3_5));
    /// assert_eq!(TargetVersion::for_storage_version(Some("3.6.0")), Ok(TargetVersion::V3_6));
    /// assert_eq!(TargetVersion::for_storage_version(Some("3.7.0")), Ok(TargetVersion::V3_7));
    /// assert!(TargetVersion::for_storage_version(Some("3.9.0")).is_err());
    /// ```
    pub fn for_storage_version(v: Option<&str>) -> Result<TargetVersion, UnknownVersion> {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Ok(TargetVersion::V3_5);
        };
        match parse_major_minor(v) {
            Some((3, m)) if m <= 5 => Ok(TargetVersion::V3_5),
            Some((3, 6)) => Ok(TargetVersion::V3_6),
            Some((3, 7)) => Ok(TargetVersion::V3_7),
            _ => Err(UnknownVersion(v.into())),
        }
    }

    /// Whether etcd of this release counts live keys in `snapshot status`
    /// and adds the storage version (3.6 and later).
    pub(crate) fn has_storage_version(self) -> bool {
        self >= TargetVersion::V3_6
    }

    /// Whether `unix` and `unixs` peer URLs skip the `host:port` and
    /// empty-path checks (etcd 3.5.13+ and 3.6; 3.5.1 does not).
    pub(crate) fn relaxed_unix_urls(self) -> bool {
        self >= TargetVersion::V3_6
    }
}

/// `--target-version`: a release, or `auto` (the default), which follows
/// the snapshot's own `meta/storageVersion` (absent: 3.5; see
/// [`TargetVersion::for_storage_version`]).
///
/// ```
/// use etcdsnap::{TargetChoice, TargetVersion};
/// assert_eq!("auto".parse(), Ok(TargetChoice::Auto));
/// assert_eq!("3.6".parse(), Ok(TargetChoice::Exact(TargetVersion::V3_6)));
/// assert_eq!(TargetChoice::Auto.resolve(Some("3.7.0")), Ok(TargetVersion::V3_7));
/// assert_eq!(TargetChoice::Exact(TargetVersion::V3_5).resolve(Some("3.7.0")), Ok(TargetVersion::V3_5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TargetChoice {
    /// Follow the snapshot's storage version.
    #[default]
    Auto,
    /// This release, whatever the snapshot holds.
    Exact(TargetVersion),
}

impl TargetChoice {
    /// The release to follow for a snapshot whose `meta/storageVersion` is
    /// `storage` (`None`: absent or not a version).
    pub fn resolve(self, storage: Option<&str>) -> Result<TargetVersion, UnknownVersion> {
        match self {
            TargetChoice::Auto => TargetVersion::for_storage_version(storage),
            TargetChoice::Exact(v) => Ok(v),
        }
    }

    /// Whether this is `auto`.
    pub fn is_auto(self) -> bool {
        self == TargetChoice::Auto
    }
}

impl From<TargetVersion> for TargetChoice {
    fn from(v: TargetVersion) -> TargetChoice {
        TargetChoice::Exact(v)
    }
}

impl FromStr for TargetChoice {
    type Err = UnknownVersion;

    /// `auto`, or what [`TargetVersion`] accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "auto" {
            return Ok(TargetChoice::Auto);
        }
        s.parse().map(TargetChoice::Exact)
    }
}

impl fmt::Display for TargetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetChoice::Auto => f.write_str("auto"),
            TargetChoice::Exact(v) => v.fmt(f),
        }
    }
}

/// "major.minor" of a semver-like text ("3.6.0", "3.6"); `None` if it does
/// not start that way.
pub(crate) fn parse_major_minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl fmt::Display for TargetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetVersion::V3_4 => "3.4",
            TargetVersion::V3_5 => "3.5",
            TargetVersion::V3_6 => "3.6",
            TargetVersion::V3_7 => "3.7",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_urls_are_relaxed_from_3_6() {
        assert!(!TargetVersion::V3_5.relaxed_unix_urls());
        assert!(TargetVersion::V3_6.relaxed_unix_urls());
    }

    #[test]
    fn parses_versions() {
        assert_eq!("3.4".parse(), Ok(TargetVersion::V3_4));
        assert_eq!("v3.5.1".parse(), Ok(TargetVersion::V3_5));
        assert_eq!("3.6.0".parse(), Ok(TargetVersion::V3_6));
        assert_eq!("3.7.1".parse(), Ok(TargetVersion::V3_7));
        assert!("3.8".parse::<TargetVersion>().is_err());
        assert!("3.5.x".parse::<TargetVersion>().is_err());
        assert!("4.0".parse::<TargetVersion>().is_err());
    }

    #[test]
    fn display() {
        let shown: Vec<String> = TargetVersion::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["3.4", "3.5", "3.6", "3.7"]);
    }
}
