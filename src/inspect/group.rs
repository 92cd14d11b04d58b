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

/// The group of an entry with this key and value.
pub fn group_of(key: &[u8], value: &[u8], by: GroupBy) -> String {
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
