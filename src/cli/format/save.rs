//! What `etcdctl snapshot save` prints on stdout when it succeeds.

use etcdsnap::SaveSummary;

/// `Snapshot saved at FILE`, and `Server version V` when the server sent
/// its storage version (etcd 3.6+), each on its own line, as etcdctl
/// 3.4-3.7 print them.
pub fn render_saved(summary: &SaveSummary) -> String {
    let mut out = format!("Snapshot saved at {}\n", summary.location);
    if let Some(v) = &summary.server_version {
        out.push_str(&format!("Server version {v}\n"));
    }
    out
}
