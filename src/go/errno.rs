//! How Go prints an OS error (`syscall.Errno`), so messages read like etcd's
//! (`open x: no such file or directory`).

use std::io;

/// The error text without Rust's ` (os error N)` suffix and with a
/// lower-case first letter, as Go's `syscall.Errno` prints it.
///
/// ```
/// let e = std::fs::File::open("/definitely/not/here").unwrap_err();
/// assert_eq!(etcdsnap::internal::go::errno::text(&e), "no such file or directory");
/// ```
pub fn text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(i)) => s.get(..i).unwrap_or(&s).to_owned(),
        _ => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_like_go() {
        let e = std::fs::File::open("/definitely/not/here").expect_err("missing");
        assert_eq!(super::text(&e), "no such file or directory");
    }
}
