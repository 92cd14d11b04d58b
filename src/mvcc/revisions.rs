//! The current and the compacted revision, decided as etcd decides them
//! when it opens a backend (`mvcc.store.restore`).

use crate::etcd::TargetVersion;

/// What the `key` and `meta` buckets say about revisions, and what etcd
/// makes of it.
#[derive(Debug, Clone, Copy)]
pub struct Revisions {
    /// Main revision of the last entry of the `key` bucket (`None` when the
    /// bucket is empty or missing).
    pub last_entry: Option<i64>,
    /// `meta/finishedCompactRev`: the last compaction that completed.
    pub finished_compact: Option<i64>,
    /// `meta/scheduledCompactRev`: the last compaction that was started.
    pub scheduled_compact: Option<i64>,
    /// The revision an etcd booted on this file reports in every response
    /// header: the last entry's (1 for an empty store), raised to the
    /// compaction revision when the compaction removed the newest entries.
    pub current: i64,
    /// Revisions below this one have been compacted away; reading them
    /// fails with etcd's "required revision has been compacted". 0 when the
    /// store was never compacted.
    pub compacted: i64,
}

impl Revisions {
    /// Decides `current` and `compacted` as etcd `rules` does on start-up.
    ///
    /// All releases start from the finished compaction. A scheduled
    /// compaction newer than it means one was interrupted: etcd runs it
    /// again, and from then on it is the compacted revision. etcd 3.4 and
    /// 3.5 refuse to resume one beyond the current revision (it stays at
    /// the finished one); etcd 3.6 first raises the current revision to it.
    pub(crate) fn decide(
        last_entry: Option<i64>,
        finished_compact: Option<i64>,
        scheduled_compact: Option<i64>,
        rules: TargetVersion,
    ) -> Revisions {
        let finished = finished_compact.unwrap_or(0);
        let scheduled = scheduled_compact.unwrap_or(0);
        let mut current = last_entry.unwrap_or(1).max(finished);
        if rules >= TargetVersion::V3_6 {
            current = current.max(scheduled);
        }
        let mut compacted = finished;
        if scheduled > compacted && scheduled <= current {
            compacted = scheduled;
        }
        Revisions {
            last_entry,
            finished_compact,
            scheduled_compact,
            current,
            compacted,
        }
    }

    /// The revision a read at `requested` sees (0 or less means the current
    /// one), or etcd's error for it.
    pub(crate) fn resolve(&self, requested: i64) -> Result<i64, super::MvccError> {
        if requested > self.current {
            return Err(super::MvccError::FutureRevision {
                requested,
                current: self.current,
            });
        }
        let rev = if requested <= 0 {
            self.current
        } else {
            requested
        };
        if rev < self.compacted {
            return Err(super::MvccError::Compacted {
                requested: rev,
                compacted: self.compacted,
            });
        }
        Ok(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_compactions_resume_by_the_release_rules() {
        let r = Revisions::decide(Some(10), Some(4), Some(7), TargetVersion::V3_5);
        assert_eq!((r.current, r.compacted), (10, 7));
        let r = Revisions::decide(Some(5), Some(4), Some(7), TargetVersion::V3_5);
        assert_eq!((r.current, r.compacted), (5, 4));
        let r = Revisions::decide(Some(5), Some(4), Some(7), TargetVersion::V3_6);
        assert_eq!((r.current, r.compacted), (7, 7));
        assert_eq!(
            Revisions::decide(None, None, None, TargetVersion::V3_5).current,
            1
        );
    }
}
