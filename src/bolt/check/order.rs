//! Go bbolt's key-order rules (v1.3.7+ `tx.Check`), extended to empty keys.

use super::problem::OrderRule;

/// Checks key `i` of a page against the previous key on the page and the
/// bounds its ancestors set (`lower` closed, `upper` open).
pub(super) fn order_problem(
    key: &[u8],
    prev: Option<&[u8]>,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Option<OrderRule> {
    if key.is_empty() {
        return Some(OrderRule::EmptyKey);
    }
    match prev {
        Some(p) if p >= key => {
            return Some(OrderRule::NotAfterPrevious {
                previous: p.to_vec(),
            });
        }
        None => {
            if let Some(lo) = lower.filter(|lo| key < *lo) {
                return Some(OrderRule::BelowAncestor { bound: lo.to_vec() });
            }
        }
        _ => {}
    }
    if let Some(up) = upper.filter(|up| key >= *up) {
        return Some(OrderRule::NotBelowNext { bound: up.to_vec() });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            order_problem(b"", None, None, None),
            Some(OrderRule::EmptyKey)
        );
        assert!(order_problem(b"b", Some(b"a"), None, Some(b"c")).is_none());
        assert!(matches!(
            order_problem(b"a", Some(b"a"), None, None),
            Some(OrderRule::NotAfterPrevious { .. })
        ));
        assert!(matches!(
            order_problem(b"a", None, Some(b"b"), None),
            Some(OrderRule::BelowAncestor { .. })
        ));
        assert!(matches!(
            order_problem(b"c", Some(b"b"), None, Some(b"c")),
            Some(OrderRule::NotBelowNext { .. })
        ));
    }
}
