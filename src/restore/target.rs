//! Which release's layout a restore writes, and whether that release can
//! boot the snapshot's data.
//!
//! `auto` follows the snapshot's `meta/storageVersion` (etcd 3.6+ write it;
//! absent means 3.5's schema, as etcd's `DetectSchemaVersion` reads it). An
//! explicit `--target-version` wins, but a target older than the data's
//! storage version is refused, as etcd itself refuses such data:
//!
//! * etcd 3.6 and later validate the schema at boot (`schema.Validate`):
//!   going from the data's version down to the binary's needs a migration
//!   plan, which 3.6 has no step for from 3.7 (`version "3.7.0" is not
//!   supported`);
//! * etcd 3.4.31+ panic with `unsupported storage version` on anything but
//!   3.4/3.5 data (3.4.23, the reference binary, predates that check);
//! * etcd 3.5 has no check, but a 3.6 member that downgrades to 3.5 first
//!   migrates its storage to 3.5 (the downgrade removes `storageVersion`):
//!   3.5 with 3.6 storage is a state etcd never makes itself.
//!
//! With `force` the older layout is written anyway and the storage version
//! is migrated down as `etcdutl migrate --target-version` does it (3.6's
//! only schema change is the `storageVersion` key itself, 3.7 has none): to
//! 3.5 and 3.4 by removing the key, to 3.6 by writing `3.6.0`.

use super::error::RestoreError;
use crate::etcd::TargetVersion;
use crate::etcd::version::{TargetChoice, parse_major_minor};

/// What the restore writes, decided from the choice and the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// The layout to write.
    pub target: TargetVersion,
    /// The new `meta/storageVersion` value when it has to be migrated down
    /// (`Some(None)`: remove it).
    pub storage_edit: Option<Option<Vec<u8>>>,
}

/// Decides the target for data whose storage version is `storage` (as
/// [`crate::Snapshot::storage_version`] reads it).
pub fn resolve(
    choice: TargetChoice,
    force: bool,
    storage: Option<&str>,
) -> Result<ResolvedTarget, RestoreError> {
    let newest = TargetVersion::ALL[TargetVersion::ALL.len() - 1];
    let target = match choice.resolve(storage) {
        Ok(t) => t,
        Err(_) if force => newest,
        Err(_) => {
            return Err(RestoreError::StorageTooNew {
                storage: storage.unwrap_or_default().to_owned(),
                target: None,
            });
        }
    };
    let data = storage.and_then(parse_major_minor);
    let storage_edit = match data {
        Some(d) if d > target.storage_version() => {
            if !force {
                return Err(RestoreError::StorageTooNew {
                    storage: storage.unwrap_or_default().to_owned(),
                    target: Some(target),
                });
            }
            Some(match target.storage_version() {
                (3, m) if m >= 6 => Some(format!("3.{m}.0").into_bytes()),
                _ => None,
            })
        }
        _ => None,
    };
    Ok(ResolvedTarget {
        target,
        storage_edit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTO: TargetChoice = TargetChoice::Auto;

    fn exact(v: TargetVersion) -> TargetChoice {
        TargetChoice::Exact(v)
    }

    #[test]
    fn auto_follows_the_data() {
        for (storage, want) in [
            (None, TargetVersion::V3_5),
            (Some("3.6.0"), TargetVersion::V3_6),
            (Some("3.7.0"), TargetVersion::V3_7),
        ] {
            let r = resolve(AUTO, false, storage).expect("resolves");
            assert_eq!(r.target, want, "{storage:?}");
            assert_eq!(r.storage_edit, None);
        }
    }

    #[test]
    fn older_targets_are_refused_unless_forced() {
        for (target, storage) in [
            (TargetVersion::V3_4, "3.6.0"),
            (TargetVersion::V3_5, "3.6.0"),
            (TargetVersion::V3_5, "3.7.0"),
            (TargetVersion::V3_6, "3.7.0"),
        ] {
            let e = resolve(exact(target), false, Some(storage)).expect_err("refused");
            assert_eq!(
                e.to_string(),
                format!(
                    "the snapshot's storage version {storage} is newer than target version {target}"
                )
            );
            let r = resolve(exact(target), true, Some(storage)).expect("forced");
            assert_eq!(r.target, target);
            let want = (target == TargetVersion::V3_6).then(|| b"3.6.0".to_vec());
            assert_eq!(r.storage_edit, Some(want));
        }
        // Newer or equal targets are fine; 3.4 reads 3.5 data.
        for (target, storage) in [
            (TargetVersion::V3_4, None),
            (TargetVersion::V3_7, Some("3.6.0")),
            (TargetVersion::V3_6, Some("3.6.0")),
        ] {
            let r = resolve(exact(target), false, storage).expect("accepted");
            assert_eq!(r.storage_edit, None);
        }
    }

    #[test]
    fn unknown_newer_data() {
        let e = resolve(AUTO, false, Some("3.9.0")).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "the snapshot's storage version 3.9.0 is newer than any target version etcdsnap knows (3.7)"
        );
        let r = resolve(AUTO, true, Some("3.9.0")).expect("forced");
        assert_eq!(r.target, TargetVersion::V3_7);
        assert_eq!(r.storage_edit, Some(Some(b"3.7.0".to_vec())));
    }
}
