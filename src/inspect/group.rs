//! Which group a key's space is counted in: a path prefix, a Kubernetes
//! resource (and namespace), or the object kind its value declares.

use super::k8s;

/// How `stats` groups keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The first `depth` `/`-separated segments of the key (never the last
    /// segment, the object's own name).
    Prefix {
        /// Segments kept.
        depth: usize,
    },
    /// `/registry/<resource>` for Kubernetes keys (API groups with a dot
    /// kept: `/registry/cert-manager.io/certificates`), else a one-segment
    /// prefix.
    Resource,
    /// [`GroupBy::Resource`] and the namespace: `/registry/pods/default`;
    /// cluster-scoped objects stay in their resource's group.
    Namespace,
    /// The kind the value declares (protobuf envelope, JSON or CBOR), or
    /// `(encrypted)`, `(not kubernetes)`, `(unknown)`.
    Kind,
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resource" => Ok(GroupBy::Resource),
            "namespace" => Ok(GroupBy::Namespace),
            "kind" => Ok(GroupBy::Kind),
            "prefix" => Ok(GroupBy::Prefix { depth: 2 }),
            other => Err(format!(
                "unknown grouping {other:?} (expected prefix, resource, namespace or kind)"
            )),
        }
    }
}

/// A Kubernetes registry key split up: `(resource, namespace, name)`;
/// `None` for keys outside `/registry/`.
///
/// ```
/// use etcdsnap::inspect::group::registry_parts;
/// assert_eq!(registry_parts(b"/registry/pods/default/web-0"), Some(("pods".into(), Some("default".into()), "web-0".into())));
/// assert_eq!(registry_parts(b"/registry/namespaces/kube-system"), Some(("namespaces".into(), None, "kube-system".into())));
/// assert_eq!(registry_parts(b"/registry/cert-manager.io/certificates/ns1/c"),
///            Some(("cert-manager.io/certificates".into(), Some("ns1".into()), "c".into())));
/// assert_eq!(registry_parts(b"/registry/services/specs/default/kubernetes"),
///            Some(("services/specs".into(), Some("default".into()), "kubernetes".into())));
/// assert_eq!(registry_parts(b"/other/x"), None);
/// ```
pub fn registry_parts(key: &[u8]) -> Option<(String, Option<String>, String)> {
    let rest = key.strip_prefix(b"/registry/")?;
    let segs: Vec<String> = rest
        .split(|&b| b == b'/')
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let first = segs.first()?.clone();
    let nested = first.contains('.')
        || (first == "services"
            && segs
                .get(1)
                .is_some_and(|s| s == "specs" || s == "endpoints"));
    let (resource, tail) = if nested && segs.len() >= 3 {
        (format!("{first}/{}", segs.get(1)?), segs.get(2..)?)
    } else {
        (first, segs.get(1..)?)
    };
    match tail {
        [] => None,
        [name] => Some((resource, None, name.clone())),
        [ns, name @ ..] => Some((resource, Some(ns.clone()), name.join("/"))),
    }
}

/// The first `depth` segments of `key` (at most all but the last), as text.
///
/// ```
/// use etcdsnap::inspect::group::prefix;
/// assert_eq!(prefix(b"/registry/pods/ns/p", 2), "/registry/pods");
/// assert_eq!(prefix(b"/registry/pods/ns/p", 9), "/registry/pods/ns");
/// assert_eq!(prefix(b"app/config/db", 1), "app");
/// assert_eq!(prefix(b"plain", 1), "(no prefix)");
/// ```
pub fn prefix(key: &[u8], depth: usize) -> String {
    let (lead, body) = match key.strip_prefix(b"/") {
        Some(b) => ("/", b),
        None => ("", key),
    };
    let segs: Vec<&[u8]> = body.split(|&b| b == b'/').collect();
    let keep = depth.min(segs.len().saturating_sub(1));
    if keep == 0 {
        return "(no prefix)".into();
    }
    let joined = segs.get(..keep).unwrap_or_default().join(&b'/');
    format!("{lead}{}", String::from_utf8_lossy(&joined))
}

/// For the groupings that are a prefix of the key (all but
/// [`GroupBy::Kind`]): how many bytes of `key` name its group, or `None`
/// when the group is not a plain prefix (keys outside `/registry/` under
/// resource grouping whose first segment is the whole key, ...).
pub(crate) fn prefix_len(key: &[u8], by: GroupBy) -> Option<usize> {
    let slashes = |n: usize| -> Option<usize> {
        // Offset of the n-th '/' after the first byte.
        key.iter()
            .enumerate()
            .skip(1)
            .filter(|(_, b)| **b == b'/')
            .nth(n.checked_sub(1)?)
            .map(|(i, _)| i)
    };
    match by {
        GroupBy::Kind => None,
        GroupBy::Prefix { depth } if key.first() == Some(&b'/') => slashes(depth)
            .or_else(|| (1..depth).rev().find_map(slashes))
            .filter(|&n| n > 0),
        GroupBy::Prefix { .. } => None,
        GroupBy::Resource | GroupBy::Namespace => {
            let rest = key.strip_prefix(b"/registry/")?;
            let first_end = rest.iter().position(|&b| b == b'/')?;
            let first = rest.get(..first_end)?;
            let nested = first.contains(&b'.')
                || (first == b"services"
                    && (rest.get(first_end..)?.starts_with(b"/specs/")
                        || rest.get(first_end..)?.starts_with(b"/endpoints/")));
            // Segment ends after "/registry/": resource, [namespace].
            let segs: Vec<usize> = rest
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| i)
                .take(4)
                .collect();
            let base = 10; // "/registry/"
            let res_end = if nested {
                *segs.get(1)?
            } else {
                *segs.first()?
            };
            let after_res = if nested { 2 } else { 1 };
            // Namespaced: another segment (the name) after the namespace.
            if by == GroupBy::Namespace
                && let Some(&ns_end) = segs.get(after_res)
            {
                return Some(base + ns_end);
            }
            Some(base + res_end)
        }
    }
}

/// The group of an entry with this key and value.
pub(crate) fn group_of(key: &[u8], value: &[u8], by: GroupBy) -> String {
    match by {
        GroupBy::Prefix { depth } => prefix(key, depth),
        GroupBy::Kind => k8s::decode(value).kind_label(),
        GroupBy::Resource | GroupBy::Namespace => match registry_parts(key) {
            Some((res, Some(ns), _)) if by == GroupBy::Namespace => {
                format!("/registry/{res}/{ns}")
            }
            Some((res, _, _)) => format!("/registry/{res}"),
            None => prefix(key, 1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_lengths_of_a_registry_key() {
        let k = b"/registry/pods/default/web-0";
        assert_eq!(prefix_len(k, GroupBy::Resource), Some(14));
        assert_eq!(prefix_len(k, GroupBy::Namespace), Some(22));
        assert_eq!(prefix_len(k, GroupBy::Prefix { depth: 1 }), Some(9));
        assert_eq!(prefix_len(k, GroupBy::Kind), None);
    }

    fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
        let seg = prop_oneof![
            Just(b"registry".to_vec()),
            Just(b"services".to_vec()),
            Just(b"specs".to_vec()),
            Just(b"endpoints".to_vec()),
            Just(b"a.io".to_vec()),
            Just(b"pods".to_vec()),
            Just(Vec::new()),
            proptest::collection::vec(prop_oneof![Just(b'x'), Just(b'.'), Just(0xffu8)], 1..3),
        ];
        (any::<bool>(), proptest::collection::vec(seg, 0..6)).prop_map(|(lead, segs)| {
            let mut k = if lead { b"/".to_vec() } else { Vec::new() };
            k.extend(segs.join(&b'/'));
            k
        })
    }

    proptest! {
        /// The allocation-free prefix, when there is one, names the same
        /// group as the general rule.
        #[test]
        fn prefix_len_agrees_with_group_of(key in key_strategy(), depth in 1usize..5) {
            for by in [GroupBy::Resource, GroupBy::Namespace, GroupBy::Prefix { depth }] {
                if let Some(n) = prefix_len(&key, by) {
                    let fast = String::from_utf8_lossy(&key[..n]).into_owned();
                    prop_assert_eq!(fast, group_of(&key, b"", by), "{:?} {:?}", String::from_utf8_lossy(&key), by);
                }
            }
        }
    }
}
