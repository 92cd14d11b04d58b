//! Go bbolt's key-order rules (v1.3.7+ `tx.Check`), extended to empty keys.

use super::super::clip::Clipped;
use super::problem::OrderRule;

/// A broken rule, borrowing the key it names until a problem is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken<'k> {
    EmptyKey,
    NotAfterPrevious(&'k [u8]),
    BelowAncestor(&'k [u8]),
    NotBelowNext(&'k [u8]),
}

impl Broken<'_> {
    /// The rule as a problem reports it (keys clipped).
    pub(super) fn rule(self) -> OrderRule {
        match self {
            Broken::EmptyKey => OrderRule::EmptyKey,
            Broken::NotAfterPrevious(p) => OrderRule::NotAfterPrevious {
                previous: Clipped::new(p),
            },
            Broken::BelowAncestor(b) => OrderRule::BelowAncestor {
                bound: Clipped::new(b),
            },
            Broken::NotBelowNext(b) => OrderRule::NotBelowNext {
                bound: Clipped::new(b),
            },
        }
    }
}

/// Checks key `i` of a page against the previous key on the page and the
/// bounds its ancestors set (`lower` closed, `upper` open).
pub(super) fn order_problem<'k>(
    key: &[u8],
    prev: Option<&'k [u8]>,
    lower: Option<&'k [u8]>,
    upper: Option<&'k [u8]>,
) -> Option<Broken<'k>> {
    if key.is_empty() {
        return Some(Broken::EmptyKey);
    }
    match prev {
        Some(p) if p >= key => return Some(Broken::NotAfterPrevious(p)),
        None => {
            if let Some(lo) = lower.filter(|lo| key < *lo) {
                return Some(Broken::BelowAncestor(lo));
            }
        }
        _ => {}
    }
    if let Some(up) = upper.filter(|up| key >= *up) {
        return Some(Broken::NotBelowNext(up));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(order_problem(b"", None, None, None), Some(Broken::EmptyKey));
        assert!(order_problem(b"b", Some(b"a"), None, Some(b"c")).is_none());
        assert!(matches!(
            order_problem(b"a", Some(b"a"), None, None),
            Some(Broken::NotAfterPrevious(_))
        ));
        assert!(matches!(
            order_problem(b"a", None, Some(b"b"), None),
            Some(Broken::BelowAncestor(_))
        ));
        assert!(matches!(
            order_problem(b"c", Some(b"b"), None, Some(b"c")),
            Some(Broken::NotBelowNext(_))
        ));
    }
}
