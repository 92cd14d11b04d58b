//! Local locations: `.zst` and `.gz` files (made by the zstd and flate2 crates, not by
//! etcdsnap) and `file://` URLs read by status, verify and restore exactly as the plain file;
//! a compressed file under a plain name gets a hint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use support::fixtures;

fn etcdsnap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .output()
        .expect("run etcdsnap")
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if p.is_dir() {
                stack.push(p);
                out.push((rel, Vec::new()));
            } else {
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn compressed_files_and_file_urls_read_as_the_plain_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = fixtures::snapshot("k8s-v34.db");
    let bytes = std::fs::read(&plain).expect("fixture");
    let zst = tmp.path().join("k8s.db.zst");
    std::fs::write(&zst, zstd::encode_all(&bytes[..], 3).expect("zstd")).expect("write");
    let gz = tmp.path().join("k8s.db.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&bytes).expect("gzip");
    std::fs::write(&gz, e.finish().expect("gzip")).expect("write");
    let url = format!("file://{}", plain.display());

    let p = plain.to_str().expect("utf-8");
    let want_status = etcdsnap(&["snapshot", "status", "-w", "json", p]);
    assert!(want_status.status.success());
    let want_dir = tmp.path().join("plain.etcd");
    let o = etcdsnap(&[
        "snapshot",
        "restore",
        p,
        "--data-dir",
        want_dir.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want_tree = tree(&want_dir);
    assert!(want_tree.len() > 5);

    for (i, src) in [zst.display().to_string(), gz.display().to_string(), url]
        .iter()
        .enumerate()
    {
        let st = etcdsnap(&["snapshot", "status", "-w", "json", src]);
        assert_eq!(st.stdout, want_status.stdout, "{src}");
        let v = etcdsnap(&["snapshot", "verify", src]);
        assert!(
            v.status.success(),
            "{src}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        let dir = tmp.path().join(format!("m{i}.etcd"));
        let o = etcdsnap(&[
            "snapshot",
            "restore",
            src,
            "--data-dir",
            dir.to_str().expect("utf-8"),
        ]);
        assert!(
            o.status.success(),
            "{src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(tree(&dir), want_tree, "{src}: restored files differ");
    }
}

#[test]
fn a_compressed_file_under_a_plain_name_gets_a_hint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("backup.db");
    let bytes = fixtures::read_snapshot("small-v35.db");
    std::fs::write(&f, zstd::encode_all(&bytes[..], 3).expect("zstd")).expect("write");
    let o = etcdsnap(&["snapshot", "status", f.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.trim_end()
            .ends_with("(it looks zstd-compressed: name it .zst)"),
        "{err}"
    );
    // restore says what etcdutl says (there is no trailer where it looks),
    // then the same hint, and leaves nothing; gzip under a plain name too.
    let out = tmp.path().join("m1.etcd");
    let o = etcdsnap(&[
        "snapshot",
        "restore",
        f.to_str().expect("utf-8"),
        "--data-dir",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error: snapshot missing hash but --skip-hash-check=false (it looks zstd-compressed: name it .zst)\n"
    );
    let g = tmp.path().join("backup2.db");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &bytes).expect("gzip");
    std::fs::write(&g, enc.finish().expect("gzip")).expect("write");
    let o = etcdsnap(&[
        "snapshot",
        "restore",
        g.to_str().expect("utf-8"),
        "--skip-hash-check",
        "--data-dir",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.trim_end()
            .ends_with("(it looks gzip-compressed: name it .gz)"),
        "{err}"
    );
    assert!(!out.exists());
    // A location that is no location is a bad argument, for restore as for
    // status (etcdutl's exit code 128).
    for cmd in [
        &["snapshot", "status", "ftp://host/x.db"][..],
        &[
            "snapshot",
            "restore",
            "ftp://host/x.db",
            "--data-dir",
            out.to_str().expect("utf-8"),
        ],
    ] {
        let o = etcdsnap(cmd);
        assert_eq!(o.status.code(), Some(128), "{cmd:?}");
    }
    // A truncated .zst is a decompression error naming the file.
    let z = tmp.path().join("cut.db.zst");
    let packed = zstd::encode_all(&bytes[..], 3).expect("zstd");
    std::fs::write(&z, &packed[..packed.len() / 2]).expect("write");
    let o = etcdsnap(&["snapshot", "verify", z.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "Error: {}: zstd decompression failed: incomplete frame\n",
            z.display()
        )
    );
}
