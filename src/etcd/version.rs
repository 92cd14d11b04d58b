//! Which etcd release's behaviour to reproduce.

use std::fmt;
use std::str::FromStr;

use crate::go::GoRelease;

/// The etcd minor version whose output format and rules are reproduced
/// (`--target-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TargetVersion {
    /// etcd 3.4 (`etcdctl snapshot restore`).
    V3_4,
    /// etcd 3.5 (`etcdutl snapshot restore`), the default.
    #[default]
    V3_5,
    /// etcd 3.6.
    V3_6,
}

/// An unknown `--target-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported target version {0:?} (expected 3.4, 3.5 or 3.6)")]
pub struct UnknownVersion(pub String);

impl FromStr for TargetVersion {
    type Err = UnknownVersion;

    /// Accepts `3.4`, `3.5`, `3.6`, optionally with a `v` prefix and a
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
            _ => Err(UnknownVersion(s.into())),
        }
    }
}

impl TargetVersion {
    /// The Go release that built this etcd release's reference binary,
    /// whose library behaviour (quoting, JSON escaping, IP parsing) shows
    /// in etcd's output: Go 1.19 for Debian's 3.4.23, Go 1.16 for 3.5.1,
    /// Go 1.24 for 3.6.
    pub(crate) fn go_release(self) -> GoRelease {
        match self {
            TargetVersion::V3_4 => GoRelease::GO1_19,
            TargetVersion::V3_5 => GoRelease::GO1_16,
            TargetVersion::V3_6 => GoRelease::GO1_24,
        }
    }

    /// Whether `unix` and `unixs` peer URLs skip the `host:port` and
    /// empty-path checks (etcd 3.5.13+ and 3.6; 3.5.1 does not).
    ///
    /// ```
    /// use etcdsnap::TargetVersion;
    /// assert!(!TargetVersion::V3_5.relaxed_unix_urls());
    /// assert!(TargetVersion::V3_6.relaxed_unix_urls());
    /// ```
    pub fn relaxed_unix_urls(self) -> bool {
        matches!(self, TargetVersion::V3_6)
    }
}

impl fmt::Display for TargetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetVersion::V3_4 => "3.4",
            TargetVersion::V3_5 => "3.5",
            TargetVersion::V3_6 => "3.6",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!("3.4".parse(), Ok(TargetVersion::V3_4));
        assert_eq!("v3.5.1".parse(), Ok(TargetVersion::V3_5));
        assert_eq!("3.6.0".parse(), Ok(TargetVersion::V3_6));
        assert!("3.7".parse::<TargetVersion>().is_err());
        assert!("3.5.x".parse::<TargetVersion>().is_err());
        assert!("4.0".parse::<TargetVersion>().is_err());
    }

    #[test]
    fn display() {
        let all = [
            TargetVersion::V3_4,
            TargetVersion::V3_5,
            TargetVersion::V3_6,
        ];
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["3.4", "3.5", "3.6"]);
    }
}
