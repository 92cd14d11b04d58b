//! The location layer over `object_store`'s in-memory and local stores:
//! what is written reads back as the same snapshot, compressed or not,
//! and nothing is visible under a key until it is published. The real
//! S3 protocol (multipart, failures) is covered by tests/location_s3.rs
//! against s3s-fs.

use std::sync::Arc;

use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::memory::InMemory;

use super::*;
use crate::etcd::TargetVersion;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/testdata/snapshots/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn keys(store: &Arc<dyn ObjectStore>, loc: &Location) -> Vec<String> {
    let super::parse::Target::Remote(r) = loc.target() else {
        panic!("not remote")
    };
    r.block_on(async {
        store
            .list(None)
            .map(|m| m.expect("list").location.to_string())
            .collect::<Vec<_>>()
            .await
    })
    .expect("runtime")
}

fn small_parts() -> LocationOptions {
    LocationOptions::default().with_part_size(options::MIN_PART_SIZE)
}

#[test]
fn written_objects_read_back_as_the_same_snapshot() {
    let file = fixture("k8s-v35.db");
    let want = crate::snapshot::Snapshot::open(format!(
        "{}/testdata/snapshots/k8s-v35.db",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("open")
    .status(TargetVersion::V3_5)
    .expect("status");
    for key in ["b/snap.db", "b/snap.db.zst", "b/snap.db.gz"] {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let text = format!("mem://{key}");
        let loc = Location::in_store(store.clone(), key, &text, &small_parts());
        let mut w = loc.create().expect("create");
        // Odd-sized writes, as a stream delivers them.
        for chunk in file.chunks(100_003) {
            w.write_all(chunk).expect("write");
        }
        w.finish().expect("finish");
        assert!(
            keys(&store, &loc).is_empty(),
            "{key}: visible before publish"
        );
        if key.ends_with(".db") {
            assert_eq!(w.parts(), 3, "10.7 MB in 5 MiB parts");
        }
        assert_eq!(w.publish().expect("publish"), text);
        assert_eq!(keys(&store, &loc), vec![key.to_string()]);
        let snap = loc.open_snapshot(&|_| {}).expect("read back");
        assert_eq!(snap.path().to_str(), Some(text.as_str()));
        assert_eq!(snap.file_len(), file.len() as u64);
        assert!(snap.verify(&Default::default()).is_ok(), "{key}");
        assert_eq!(snap.status(TargetVersion::V3_5).expect("status"), want);
    }
}

#[test]
fn a_dropped_writer_leaves_nothing() {
    let file = fixture("k8s-v35.db");
    for key in ["b/snap.db", "b/snap.db.zst"] {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let loc = Location::in_store(store.clone(), key, "mem", &small_parts());
        {
            let mut w = loc.create().expect("create");
            w.write_all(&file).expect("write");
            w.finish().expect("all parts uploaded");
        }
        assert!(keys(&store, &loc).is_empty(), "{key}");
        assert!(matches!(
            loc.open_snapshot(&|_| {}),
            Err(LocationError::NotFound { .. })
        ));
    }
}

#[test]
fn local_files_publish_by_rename() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = fixture("small-v35.db");
    for name in ["s.db", "s.db.zst", "s.db.gz"] {
        let dest = dir.path().join(name);
        std::fs::write(&dest, b"older").expect("older");
        let loc = Location::parse(dest.to_str().expect("utf-8")).expect("parse");
        {
            let mut w = loc.create().expect("create");
            w.write_all(&file).expect("write");
        }
        // Dropped: the older file is untouched, no .part left.
        assert_eq!(std::fs::read(&dest).expect("older"), b"older");
        let mut w = loc.create().expect("create");
        w.write_all(&file).expect("write");
        w.publish().expect("publish");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        let snap = loc.open_snapshot(&|_| {}).expect("open");
        assert!(snap.verify(&Default::default()).is_ok(), "{name}");
        assert_eq!(snap.file_len(), file.len() as u64);
    }
}

#[test]
fn corrupt_compressed_data_is_a_decompression_error() {
    use object_store::ObjectStoreExt;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let loc = Location::in_store(
        store.clone(),
        "b/x.db.gz",
        "mem://b/x.db.gz",
        &small_parts(),
    );
    let super::parse::Target::Remote(r) = loc.target() else {
        panic!("not remote")
    };
    // zstd bytes under a name that says gzip.
    let zst = zstd::encode_all(&fixture("small-v35.db")[..], 3).expect("zstd");
    r.block_on(store.put(&r.path, zst.into()))
        .expect("runtime")
        .expect("put");
    let e = loc.open_snapshot(&|_| {}).expect_err("not gzip");
    assert!(
        matches!(e, LocationError::Decompress { format: "gzip", .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("mem://b/x.db.gz: gzip decompression failed"),
        "{e}"
    );
}

#[test]
fn prune_works_on_a_local_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = fixture("small-v35.db");
    let names = [
        "snap-20250106T120000Z.db",
        "snap-20250106T110000Z.db",
        "snap-20250105T120000Z.db",
        "notes.txt",
    ];
    for n in names {
        std::fs::write(dir.path().join(n), &good).expect("write");
    }
    let template = format!("{}/snap-{{time}}.db", dir.path().display());
    let loc = Location::parse(&template).expect("parse");
    let opts = LocationPruneOptions::new(RetentionPolicy::last(1));
    let report = prune(&loc, &opts, &|_| {}).expect("prune");
    let deleted: Vec<&str> = report.deleted().map(|s| s.location.as_str()).collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["notes.txt", "snap-20250106T120000Z.db"]);
    assert_eq!(
        report.snapshots[0].keep,
        vec![KeepReason::Last, KeepReason::NewestSound]
    );
}

/// An embedder's async code may call the synchronous API: reading a
/// location from inside a tokio runtime (current-thread or multi-thread)
/// must work, not panic.
#[test]
fn a_location_can_be_read_from_inside_a_runtime() {
    use object_store::ObjectStoreExt;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let loc = Location::in_store(
        store.clone(),
        "b/x.db.zst",
        "mem://b/x.db.zst",
        &small_parts(),
    );
    let super::parse::Target::Remote(r) = loc.target() else {
        panic!("not remote")
    };
    let file = fixture("small-v35.db");
    let zst = zstd::encode_all(&file[..], 3).expect("zstd");
    r.block_on(store.put(&r.path, zst.into()))
        .expect("runtime")
        .expect("put");
    for multi in [false, true] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread().build()
        }
        .expect("runtime");
        let len = rt.block_on(async {
            let snap = loc.open_snapshot(&|_| {}).expect("open inside a runtime");
            snap.file_len()
        });
        assert_eq!(len, file.len() as u64, "multi-thread: {multi}");
    }
}

/// What the location layer returns may be dropped inside a runtime of
/// either flavour: the location (the last owner of its store), the
/// snapshot read from it, and a writer that never published (whose abort
/// then runs in the background). Dropping a runtime there panics, so none
/// of them may own one.
#[test]
fn what_a_location_returns_can_be_dropped_inside_a_runtime() {
    use object_store::ObjectStoreExt;
    let file = fixture("small-v35.db");
    for multi in [false, true] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .expect("runtime");
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        rt.block_on(async {
            let loc = Location::in_store(store.clone(), "b/x.db", "mem://b/x.db", &small_parts());
            let mut w = loc.create().expect("create");
            w.write_all(&file).expect("write");
            w.publish().expect("publish");
            let snap = loc.open_snapshot(&|_| {}).expect("open inside a runtime");
            assert_eq!(snap.file_len(), file.len() as u64, "multi-thread: {multi}");
            let other = loc.sibling("mem://b/y.db".into(), "b/y.db");
            let mut abandoned = other.create().expect("create");
            abandoned.write_all(&file).expect("write");
            drop(abandoned);
            drop(other);
            drop(snap);
            drop(loc);
            // The runtime goes on, and the abandoned object never appeared.
            tokio::task::yield_now().await;
            assert!(matches!(
                store.head(&"b/y.db".into()).await,
                Err(object_store::Error::NotFound { .. })
            ));
        });
    }
}

/// The error a location error was read from stays reachable through
/// `source()`: the OS's for a missing file, the store's for a missing
/// object, the decoder's for bad compressed bytes.
#[test]
fn errors_keep_their_source() {
    use std::error::Error as _;
    let dir = tempfile::tempdir().expect("tempdir");
    // Compressed, so it is read through the location layer.
    let missing = dir.path().join("absent.db.zst");
    let e = Location::parse(missing.to_str().expect("utf-8"))
        .expect("parse")
        .open_snapshot(&|_| {})
        .expect_err("absent");
    assert_eq!(e.to_string(), format!("{}: not found", missing.display()));
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("io source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let loc = Location::in_store(store.clone(), "b/x.db", "mem", &small_parts());
    let e = loc.open_snapshot(&|_| {}).expect_err("absent");
    assert!(
        e.source()
            .and_then(|s| s.downcast_ref::<object_store::Error>())
            .is_some_and(|s| matches!(s, object_store::Error::NotFound { .. })),
        "{e:?}"
    );

    let e = LocationError::io(
        "/x",
        "open",
        std::io::Error::from_raw_os_error(libc::EACCES),
    );
    assert!(e.is_permission_denied(), "{e:?}");
    assert_eq!(e.to_string(), "/x: open: permission denied");
    assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
}
