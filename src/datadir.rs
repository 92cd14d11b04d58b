//! The layout of an etcd member data dir, in one place.
//!
//! ```text
//! <data dir>/member/snap/db                      the bbolt backend
//! <data dir>/member/snap/<term>-<index>.snap     raft snapshots (v2 store)
//! <data dir>/member/wal/<seq>-<index>.wal        WAL segments (or --wal-dir)
//! ```

use std::io;
use std::path::{Path, PathBuf};

/// Where a member data dir keeps its database, raft snapshots and WAL.
///
/// ```
/// use etcdsnap::DataDir;
/// let d = DataDir::new("/var/lib/etcd");
/// assert_eq!(d.db_path(), std::path::Path::new("/var/lib/etcd/member/snap/db"));
/// assert_eq!(d.wal_dir(), std::path::Path::new("/var/lib/etcd/member/wal"));
/// let d = d.with_wal_dir(Some("/fast/wal".into()));
/// assert_eq!(d.wal_dir(), std::path::Path::new("/fast/wal"));
/// assert!(d.has_separate_wal_dir());
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub struct DataDir {
    path: PathBuf,
    member: PathBuf,
    wal: Option<PathBuf>,
}

impl DataDir {
    /// The data dir at `path` (`--data-dir`), with its WAL inside.
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        let path = path.into();
        DataDir {
            member: path.join("member"),
            path,
            wal: None,
        }
    }

    /// The same data dir with its WAL in `wal` (`--wal-dir`), or inside it
    /// for `None`.
    pub fn with_wal_dir(mut self, wal: Option<PathBuf>) -> DataDir {
        self.wal = wal;
        self
    }

    /// Finds the layout from what a user points at: a data dir (holding
    /// `member/wal`), a member dir (holding `wal`), or else a WAL dir itself
    /// (then there is no snapshot dir beside it).
    pub fn locate(dir: &Path) -> DataDir {
        let as_data_dir = DataDir::new(dir);
        if as_data_dir.wal_dir().is_dir() {
            return as_data_dir;
        }
        if dir.join("wal").is_dir() {
            return DataDir {
                path: dir.parent().unwrap_or(dir).to_path_buf(),
                member: dir.to_path_buf(),
                wal: None,
            };
        }
        DataDir {
            path: dir.to_path_buf(),
            member: dir.join("member"),
            wal: Some(dir.to_path_buf()),
        }
    }

    /// The data dir itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `member/`.
    pub fn member_dir(&self) -> &Path {
        &self.member
    }

    /// `member/snap/`: the backend and the raft snapshots.
    pub fn snap_dir(&self) -> PathBuf {
        self.member.join("snap")
    }

    /// `member/snap/db`: the bbolt backend.
    pub fn db_path(&self) -> PathBuf {
        self.snap_dir().join("db")
    }

    /// The WAL dir: `--wal-dir` when given, else `member/wal/`.
    pub fn wal_dir(&self) -> PathBuf {
        match &self.wal {
            Some(w) => w.clone(),
            None => self.member.join("wal"),
        }
    }

    /// Whether the WAL lives outside the data dir (`--wal-dir`).
    pub fn has_separate_wal_dir(&self) -> bool {
        self.wal.is_some()
    }

    /// The WAL segments (`*.wal`) in name order, which is sequence order.
    pub fn wal_segments(&self) -> io::Result<Vec<PathBuf>> {
        files_with_ext(&self.wal_dir(), "wal")
    }

    /// The newest raft snapshot (`*.snap`, names sort by term and index),
    /// if there is a snapshot dir holding one.
    pub fn newest_snap(&self) -> io::Result<Option<PathBuf>> {
        let dir = self.snap_dir();
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(files_with_ext(&dir, "snap")?.pop())
    }
}

/// The files in `dir` whose extension is `ext`, sorted by name.
fn files_with_ext(dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == ext) {
            v.push(path);
        }
    }
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_data_member_and_wal_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("d.etcd");
        std::fs::create_dir_all(data.join("member/wal")).expect("mkdir");
        std::fs::create_dir_all(data.join("member/snap")).expect("mkdir");
        std::fs::write(
            data.join("member/wal/0000000000000000-0000000000000000.wal"),
            b"",
        )
        .expect("write");
        std::fs::write(
            data.join("member/snap/0000000000000001-0000000000000001.snap"),
            b"",
        )
        .expect("write");
        std::fs::write(
            data.join("member/snap/0000000000000001-0000000000000003.snap"),
            b"",
        )
        .expect("write");
        std::fs::write(data.join("member/snap/db"), b"").expect("write");

        let d = DataDir::locate(&data);
        assert_eq!(d, DataDir::new(&data));
        let m = DataDir::locate(&data.join("member"));
        assert_eq!(m.wal_dir(), data.join("member/wal"));
        assert_eq!(m.snap_dir(), data.join("member/snap"));
        let w = DataDir::locate(&data.join("member/wal"));
        assert_eq!(w.wal_dir(), data.join("member/wal"));
        assert_eq!(w.newest_snap().expect("read"), None);
        for d in [d, m] {
            assert_eq!(d.wal_segments().expect("read").len(), 1);
            assert_eq!(
                d.newest_snap().expect("read"),
                Some(data.join("member/snap/0000000000000001-0000000000000003.snap"))
            );
        }
    }
}
