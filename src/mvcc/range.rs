//! Range requests as etcd's `Range` RPC takes them, and what etcd's server
//! does after reading the index: sort, limit, `more`, keys only.

use super::gosort::{self, GoSort};
use crate::etcd::TargetVersion;
use crate::etcd::kv::KeyValueRef;

/// `RangeRequest.sort_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// No sorting (results come in key order).
    #[default]
    None,
    /// Ascending.
    Ascend,
    /// Descending.
    Descend,
}

/// `RangeRequest.sort_target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortTarget {
    /// The user key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// A range request, with etcd's conventions for `range_end`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RangeRequest<'k> {
    /// The first key (must not be empty).
    pub key: &'k [u8],
    /// Empty: only `key`; `[0]`: every key from `key` on; otherwise the
    /// keys in `[key, range_end)`.
    pub range_end: &'k [u8],
    /// The revision to read at; 0 or less for the current one.
    pub revision: i64,
    /// Most keys to return; 0 or less for no limit.
    pub limit: i64,
    /// The order.
    pub sort_order: SortOrder,
    /// What to sort by.
    pub sort_target: SortTarget,
    /// Leave the values out.
    pub keys_only: bool,
    /// Only count.
    pub count_only: bool,
}

impl<'k> RangeRequest<'k> {
    /// A request for one key at the current revision.
    pub fn key(key: &'k [u8]) -> RangeRequest<'k> {
        RangeRequest {
            key,
            ..RangeRequest::default()
        }
    }

    /// The range end: empty for only `key`, `[0]` for every key from `key` on, otherwise the keys in `[key, range_end)` (see [`prefix_end`]).
    pub fn with_range_end(mut self, range_end: &'k [u8]) -> RangeRequest<'k> {
        self.range_end = range_end;
        self
    }

    /// The revision to read at; 0 or less for the current one.
    pub fn with_revision(mut self, revision: i64) -> RangeRequest<'k> {
        self.revision = revision;
        self
    }

    /// Most keys to return; 0 or less for no limit.
    pub fn with_limit(mut self, limit: i64) -> RangeRequest<'k> {
        self.limit = limit;
        self
    }

    /// The order.
    pub fn with_sort_order(mut self, order: SortOrder) -> RangeRequest<'k> {
        self.sort_order = order;
        self
    }

    /// What to sort by.
    pub fn with_sort_target(mut self, target: SortTarget) -> RangeRequest<'k> {
        self.sort_target = target;
        self
    }

    /// Leave the values out.
    pub fn with_keys_only(mut self, keys_only: bool) -> RangeRequest<'k> {
        self.keys_only = keys_only;
        self
    }

    /// Only count.
    pub fn with_count_only(mut self, count_only: bool) -> RangeRequest<'k> {
        self.count_only = count_only;
        self
    }

    /// Whether `k` is in the requested range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match self.range_end {
            [] => k == self.key,
            [0] => k >= self.key,
            end => k >= self.key && k < end,
        }
    }

    /// Whether the request names a single key.
    pub(crate) fn is_single_key(&self) -> bool {
        self.range_end.is_empty()
    }
}

/// The range end that selects every key with `prefix`, as etcd's clients
/// compute it (`[0]`, meaning "to the end", when no such key exists).
///
/// ```
/// use etcdsnap::mvcc::prefix_end;
/// assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
/// assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
/// assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
/// ```
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The answer to a range request.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub struct RangeResponse<'a> {
    /// The store's current revision (what etcd puts in the header, whatever
    /// revision was read).
    pub header_revision: i64,
    /// The key-values, borrowed from the file (values empty when
    /// `keys_only`; none when `count_only`).
    pub kvs: Vec<KeyValueRef<'a>>,
    /// Whether `limit` left keys out.
    pub more: bool,
    /// How many keys the range holds at that revision (before `limit`).
    pub count: i64,
}

/// Which Go release's `sort.Sort` the reference build of `v` has.
pub(crate) fn go_sort_of(v: TargetVersion) -> GoSort {
    match v {
        TargetVersion::V3_4 => GoSort::Go119,
        TargetVersion::V3_5 => GoSort::Go116,
        TargetVersion::V3_6 | TargetVersion::V3_7 => GoSort::Go121,
    }
}

/// What etcd's applier does with the key-values of a range, given in key
/// order: sort (with Go's unstable sort), limit, `more`, keys only.
pub(crate) fn finish<'a>(
    req: &RangeRequest<'_>,
    mut kvs: Vec<KeyValueRef<'a>>,
    header_revision: i64,
    rules: TargetVersion,
) -> RangeResponse<'a> {
    let count = kvs.len() as i64;
    if req.count_only {
        return RangeResponse {
            header_revision,
            kvs: Vec::new(),
            more: false,
            count,
        };
    }
    // etcd reads the whole range only when the request has a sort order;
    // otherwise it takes `limit + 1` keys in key order and sorts just those
    // (so `--sort-by=VERSION --limit 5` sorts the first six keys).
    if req.sort_order == SortOrder::None
        && let Ok(limit) = usize::try_from(req.limit)
        && limit > 0
    {
        kvs.truncate(limit.saturating_add(1));
    }
    // etcd re-sorts only when asked for something other than key order.
    let order = match (req.sort_target, req.sort_order) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (t, SortOrder::None) if t != SortTarget::Key => SortOrder::Ascend,
        (_, o) => o,
    };
    if order != SortOrder::None {
        let algo = go_sort_of(rules);
        let target = req.sort_target;
        let less = move |a: &KeyValueRef<'_>, b: &KeyValueRef<'_>| match target {
            SortTarget::Key => a.key < b.key,
            SortTarget::Version => a.version < b.version,
            SortTarget::Create => a.create_revision < b.create_revision,
            SortTarget::Mod => a.mod_revision < b.mod_revision,
            SortTarget::Value => a.value < b.value,
        };
        if order == SortOrder::Descend {
            gosort::sort_by(&mut kvs, algo, |a, b| less(b, a));
        } else {
            gosort::sort_by(&mut kvs, algo, less);
        }
    }
    let mut more = false;
    if let Ok(limit) = usize::try_from(req.limit)
        && limit > 0
        && kvs.len() > limit
    {
        kvs.truncate(limit);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = &[];
        }
    }
    RangeResponse {
        header_revision,
        kvs,
        more,
        count,
    }
}
