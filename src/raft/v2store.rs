//! The v2 store JSON that a restored `.snap` file carries.
//!
//! etcd 3.4–3.6 still put the (otherwise retired) v2 store into the raft
//! snapshot. At restore it holds only the members' `raftAttributes`: for each
//! member, in ascending numeric ID order, a `Create` of
//! `/0/members/<hex id>/raftAttributes` with value `{"peerURLs":[...]}`.
//! The JSON is Go's `encoding/json` rendering of the whole store object: the
//! node tree (children sorted bytewise by name), the watcher hub's event
//! history (a ring of 1000 slots, unused ones `null`), the current index, the
//! statistics and the store version.

use crate::go::GoRelease;
use crate::raft::Flavour;
use crate::raft::error::RaftError;

/// Appends a JSON string as Go's `encoding/json` writes it. Every string in
/// the store (paths, keys, the zero time, peer URLs, and values that are
/// themselves JSON text) is free of the control characters whose escaping
/// changed between Go releases, so one release's escaping serves every
/// flavour.
fn push_go_str(out: &mut String, s: &[u8]) {
    crate::go::json::write_str(out, s, GoRelease::GO1_16);
}

/// Capacity of the v2 store's event history ring.
pub const EVENT_HISTORY_CAPACITY: usize = 1000;

/// Go's zero `time.Time` as `encoding/json` writes it: the expiry of
/// permanent nodes.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A member as the v2 store records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreMember {
    /// Member ID.
    pub id: u64,
    /// Its peer URLs, already canonical and sorted (as in the member JSON).
    pub peer_urls: Vec<String>,
}

/// The `raftAttributes` value of a member: `{"peerURLs":[...]}`, with Go's
/// string escaping.
///
/// ```
/// use etcdsnap::internal::raft::raft_attributes_json;
///
/// let urls = ["http://localhost:2380".to_string()];
/// assert_eq!(raft_attributes_json(&urls), r#"{"peerURLs":["http://localhost:2380"]}"#);
/// ```
pub fn raft_attributes_json(peer_urls: &[String]) -> String {
    let mut out = String::from("{\"peerURLs\":[");
    for (i, u) in peer_urls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_go_str(&mut out, u.as_bytes());
    }
    out.push_str("]}");
    out
}

/// The v2 store JSON written into the `.snap` file by `snapshot restore`.
///
/// `members` are in the order they are created: their v2 store indexes are
/// 1..N in that order. They must be non-empty, have distinct IDs and at
/// least one peer URL each; for [`Flavour::V34`] and [`Flavour::V35`] they
/// must be in strictly ascending numeric ID order, the only order those
/// releases create them in. [`Flavour::V36`] and [`Flavour::V37`] differ
/// from 3.5 by `"getsFail":1`, and take the members in any order: etcd 3.6
/// and 3.7 create them in Go map order, recorded as a rotation of the
/// `--initial-cluster` order, which is what etcdsnap's restore passes.
///
/// ```
/// use etcdsnap::internal::raft::Flavour;
/// use etcdsnap::internal::raft::{StoreMember, store_json};
///
/// let members = [StoreMember { id: 0x8e9e05c52164694d, peer_urls: vec!["http://localhost:2380".into()] }];
/// let json = store_json(&members, Flavour::V35)?;
/// assert!(json.starts_with(r#"{"Root":{"Path":"/","CreatedIndex":0,"#));
/// assert!(json.ends_with(r#""watchers":0},"CurrentVersion":2}"#));
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub fn store_json(members: &[StoreMember], flavour: Flavour) -> Result<String, RaftError> {
    if flavour.any_member_order() {
        super::check_distinct_ids(members.iter().map(|m| m.id))?;
    } else {
        super::check_ascending_ids(members.iter().map(|m| m.id))?;
    }
    if let Some(m) = members.iter().find(|m| m.peer_urls.is_empty()) {
        return Err(RaftError::InvalidMembers(format!(
            "member {:x} has no peer URLs",
            m.id
        )));
    }

    // (hex id, store index, raftAttributes value), store index in creation
    // order.
    let entries: Vec<(String, u64, String)> = (1u64..)
        .zip(members)
        .map(|(k, m)| (format!("{:x}", m.id), k, raft_attributes_json(&m.peer_urls)))
        .collect();
    let n = entries.len() as u64;
    let mut by_name: Vec<&(String, u64, String)> = entries.iter().collect();
    by_name.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let mut out = String::with_capacity(6 * 1024 + entries.len() * 700);
    out.push_str("{\"Root\":");
    open_node(&mut out, "/", 0, "");
    push_key(&mut out, "0");
    open_node(&mut out, "/0", 0, "");
    push_key(&mut out, "members");
    open_node(&mut out, "/0/members", 1, "");
    for (i, (hex, k, value)) in by_name.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(&mut out, hex);
        let dir = format!("/0/members/{hex}");
        open_node(&mut out, &dir, *k, "");
        push_key(&mut out, "raftAttributes");
        leaf_node(&mut out, &format!("{dir}/raftAttributes"), *k, value);
        out.push_str("}}");
    }
    out.push_str("}}"); // /0/members
    out.push_str("}}"); // /0
    out.push(',');
    push_key(&mut out, "1");
    open_node(&mut out, "/1", 0, "");
    out.push_str("}}"); // /1
    out.push_str("}}"); // /

    // The event history ring: event k (1-based) lands in slot (k-1) % C,
    // later events overwriting earlier ones.
    let cap = EVENT_HISTORY_CAPACITY;
    let mut slots: Vec<Option<&(String, u64, String)>> = vec![None; cap];
    for (i, e) in entries.iter().enumerate() {
        if let Some(slot) = slots.get_mut(i % cap) {
            *slot = Some(e);
        }
    }
    let size = entries.len().min(cap);
    let back = entries.len() % cap;
    let front = if entries.len() > cap { back } else { 0 };
    let start_index = slots.get(front).copied().flatten().map_or(0, |e| e.1);

    out.push_str(",\"WatcherHub\":{\"EventHistory\":{\"Queue\":{\"Events\":[");
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match slot {
            None => out.push_str("null"),
            Some((hex, k, value)) => {
                out.push_str("{\"action\":\"create\",\"node\":{\"key\":");
                push_go_str(
                    &mut out,
                    format!("/0/members/{hex}/raftAttributes").as_bytes(),
                );
                out.push_str(",\"value\":");
                push_go_str(&mut out, value.as_bytes());
                out.push_str(",\"modifiedIndex\":");
                out.push_str(&k.to_string());
                out.push_str(",\"createdIndex\":");
                out.push_str(&k.to_string());
                out.push_str("}}");
            }
        }
    }
    out.push_str("],");
    push_num(&mut out, "Size", size as u64);
    out.push(',');
    push_num(&mut out, "Front", front as u64);
    out.push(',');
    push_num(&mut out, "Back", back as u64);
    out.push(',');
    push_num(&mut out, "Capacity", cap as u64);
    out.push_str("},");
    push_num(&mut out, "StartIndex", start_index);
    out.push(',');
    push_num(&mut out, "LastIndex", n);
    out.push_str("}},");
    push_num(&mut out, "CurrentIndex", n);
    out.push_str(",\"Stats\":{");
    let gets_fail = match flavour {
        Flavour::V34 | Flavour::V35 => 0,
        Flavour::V36 | Flavour::V37 => 1,
    };
    let stats: [(&str, u64); 16] = [
        ("getsSuccess", 0),
        ("getsFail", gets_fail),
        ("setsSuccess", 0),
        ("setsFail", 0),
        ("deleteSuccess", 0),
        ("deleteFail", 0),
        ("updateSuccess", 0),
        ("updateFail", 0),
        ("createSuccess", n),
        ("createFail", 0),
        ("compareAndSwapSuccess", 0),
        ("compareAndSwapFail", 0),
        ("compareAndDeleteSuccess", 0),
        ("compareAndDeleteFail", 0),
        ("expireCount", 0),
        ("watchers", 0),
    ];
    for (i, (name, v)) in stats.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_num(&mut out, name, *v);
    }
    out.push_str("},\"CurrentVersion\":2}");
    Ok(out)
}

/// `"key":`
fn push_key(out: &mut String, key: &str) {
    push_go_str(out, key.as_bytes());
    out.push(':');
}

/// `"name":value`
fn push_num(out: &mut String, name: &str, v: u64) {
    push_key(out, name);
    out.push_str(&v.to_string());
}

/// The fields of a node up to its `Value`, shared by directories and leaves.
fn node_head(out: &mut String, path: &str, index: u64, value: &str) {
    out.push_str("{\"Path\":");
    push_go_str(out, path.as_bytes());
    out.push(',');
    push_num(out, "CreatedIndex", index);
    out.push(',');
    push_num(out, "ModifiedIndex", index);
    out.push_str(",\"ExpireTime\":");
    push_go_str(out, ZERO_TIME.as_bytes());
    out.push_str(",\"Value\":");
    push_go_str(out, value.as_bytes());
}

/// A directory node, left open inside its `Children` object: the caller
/// writes the children and closes with `}}`.
fn open_node(out: &mut String, path: &str, index: u64, value: &str) {
    node_head(out, path, index, value);
    out.push_str(",\"Children\":{");
}

/// A complete leaf node (`Children` is `null`).
fn leaf_node(out: &mut String, path: &str, index: u64, value: &str) {
    node_head(out, path, index, value);
    out.push_str(",\"Children\":null}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64) -> StoreMember {
        StoreMember {
            id,
            peer_urls: vec![format!("http://127.0.0.1:{}", id % 60000)],
        }
    }

    #[test]
    fn output_is_valid_json_with_a_full_event_ring() {
        let members: Vec<StoreMember> = [3u64, 0x10, 0xabc].into_iter().map(member).collect();
        let json = store_json(&members, Flavour::V35).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let events = v["WatcherHub"]["EventHistory"]["Queue"]["Events"]
            .as_array()
            .unwrap();
        assert_eq!(events.len(), EVENT_HISTORY_CAPACITY);
        assert_eq!(events.iter().filter(|e| e.is_null()).count(), 997);
        assert_eq!(events[2]["node"]["createdIndex"], 3);
        assert_eq!(v["Stats"]["createSuccess"], 3);
        assert_eq!(v["Stats"]["getsFail"], 0);
        // Children are keyed by hex ID; "10" < "3" < "abc" bytewise.
        let children = &v["Root"]["Children"]["0"]["Children"]["members"]["Children"];
        assert_eq!(children["10"]["CreatedIndex"], 2);
        assert_eq!(children["3"]["CreatedIndex"], 1);
        let pos = |s: &str| json.find(&format!("\"/0/members/{s}\"")).unwrap();
        assert!(pos("10") < pos("3") && pos("3") < pos("abc"));
    }

    #[test]
    fn v36_counts_one_failed_get() {
        let members = [member(1)];
        let v35 = store_json(&members, Flavour::V35).unwrap();
        let v36 = store_json(&members, Flavour::V36).unwrap();
        assert_eq!(v35.replace("\"getsFail\":0", "\"getsFail\":1"), v36);
    }

    #[test]
    fn ring_wraps_past_capacity() {
        let members: Vec<StoreMember> = (1..=1002u64).map(member).collect();
        let json = store_json(&members, Flavour::V34).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let eh = &v["WatcherHub"]["EventHistory"];
        assert_eq!(eh["Queue"]["Size"], 1000);
        assert_eq!(eh["Queue"]["Front"], 2);
        assert_eq!(eh["Queue"]["Back"], 2);
        assert_eq!(eh["StartIndex"], 3);
        assert_eq!(eh["LastIndex"], 1002);
        assert_eq!(eh["Queue"]["Events"][0]["node"]["createdIndex"], 1001);
        assert_eq!(eh["Queue"]["Events"][2]["node"]["createdIndex"], 3);
    }

    #[test]
    fn rejects_bad_member_lists() {
        assert!(store_json(&[], Flavour::V35).is_err());
        assert!(store_json(&[member(2), member(1)], Flavour::V35).is_err());
        let no_urls = StoreMember {
            id: 1,
            peer_urls: vec![],
        };
        assert!(store_json(&[no_urls], Flavour::V35).is_err());
    }

    #[test]
    fn attribute_values_are_escaped_twice() {
        let members = [StoreMember {
            id: 1,
            peer_urls: vec!["http://a<b>:1".into()],
        }];
        let json = store_json(&members, Flavour::V35).unwrap();
        assert!(
            json.contains(r#""Value":"{\"peerURLs\":[\"http://a\\u003cb\\u003e:1\"]}""#),
            "{json}"
        );
    }
}
