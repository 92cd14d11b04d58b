//! Which etcd release's restore output the writers reproduce.

/// Which etcd release's `snapshot restore` output to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavour {
    /// `etcdctl 3.4 snapshot restore`: the final WAL snapshot record has no
    /// `ConfState`.
    V34,
    /// `etcdutl 3.5 snapshot restore`: the final WAL snapshot record carries
    /// `ConfState{voters}`.
    V35,
    /// `etcdutl 3.6 snapshot restore`: as 3.5, the v2 store statistics
    /// count one failed get, and members are created in the order given
    /// (etcd 3.6 iterates a Go map: any rotation of `--initial-cluster`).
    V36,
    /// `etcdutl 3.7 snapshot restore`: as 3.6, marshalled with
    /// google.golang.org/protobuf, which writes only the fields etcd sets:
    /// `ConfChange.ID` and `ConfState.auto_leave` (zero at restore) are
    /// left out.
    V37,
}

impl Flavour {
    /// Whether etcd of this flavour writes `ConfChange.ID` and
    /// `ConfState.auto_leave` when they are zero (gogo-protobuf, 3.4 to
    /// 3.6).
    pub fn writes_zero_fields(self) -> bool {
        !matches!(self, Flavour::V37)
    }

    /// `ConfState.auto_leave` as etcd of this flavour writes it at restore.
    pub fn auto_leave(self) -> Option<bool> {
        self.writes_zero_fields().then_some(false)
    }

    /// Whether members may come in any order (3.6+ fill the v2 store from
    /// a Go map); 3.4 and 3.5 create them in ascending ID order.
    pub fn any_member_order(self) -> bool {
        matches!(self, Flavour::V36 | Flavour::V37)
    }
}
