//! The checks Go's `tx.Check` lacks, on images built here.

use super::*;
use crate::bolt::freelist;
use crate::bolt::tx::{self, BucketChanges, WriteOptions};

const PS: usize = 4096;

/// A synced-freelist image with one bucket holding a 10,000-byte value
/// (a leaf with two overflow pages); returns it with that leaf's id.
fn image_with_overflow() -> (Vec<u8>, u64) {
    let mut img = tx::new_image(PS);
    let mut ch = BucketChanges::new();
    ch.bucket(b"b".to_vec())
        .put(b"k".to_vec(), vec![7u8; 10_000]);
    let db = Db::open(&img).expect("open");
    let plan = tx::plan(db, &ch, WriteOptions::default()).expect("plan");
    plan.apply_to(&mut img);
    let db = Db::open(&img).expect("reopen");
    assert!(db.meta().has_synced_freelist());
    let leaf = (2..db.hwm())
        .find(|&id| {
            db.raw_page(id)
                .is_ok_and(|p| p.header().id == id && p.header().overflow == 2)
        })
        .expect("a leaf with overflow pages");
    assert!(check(db).is_ok(), "{:?}", check(db).problems);
    (img, leaf)
}

/// Rewrites the freelist page in place with `ids` (same page, one page).
fn set_free(img: &mut [u8], ids: &[u64]) {
    let db = Db::open(img).expect("open");
    let id = db.meta().freelist;
    let page = freelist::encode(id, ids, PS);
    assert_eq!(page.len(), PS);
    let at = id as usize * PS;
    img[at..at + PS].copy_from_slice(&page);
}

#[test]
fn a_freed_overflow_page_of_a_live_leaf_is_reported() {
    let (mut img, leaf) = image_with_overflow();
    let db = Db::open(&img).expect("open");
    let mut ids = freelist::read(&db).expect("read").expect("synced").ids;
    ids.push(leaf + 2);
    ids.sort_unstable();
    set_free(&mut img, &ids);
    let report = check(Db::open(&img).expect("open"));
    let p = report
        .problems
        .iter()
        .find(|p| p.page == Some(leaf + 2))
        .unwrap_or_else(|| panic!("no problem on page {}: {:?}", leaf + 2, report.problems));
    assert_eq!(p.kind, ProblemKind::ReachableFreedOverflow { head: leaf });
    assert_eq!(p.bucket, vec![b"b".to_vec()]);
    assert_eq!(
        p.to_string(),
        format!(
            "page {}: reachable freed (overflow page of page {leaf}, listed in the freelist)",
            leaf + 2
        )
    );
}

#[test]
fn a_freelist_that_lists_its_own_page_is_reported() {
    let (mut img, _) = image_with_overflow();
    let db = Db::open(&img).expect("open");
    let fl = db.meta().freelist;
    let mut ids = freelist::read(&db).expect("read").expect("synced").ids;
    ids.push(fl);
    ids.sort_unstable();
    set_free(&mut img, &ids);
    let report = check(Db::open(&img).expect("open"));
    assert!(
        report.problems.iter().any(
            |p| p.page == Some(fl) && p.kind == ProblemKind::FreelistPageFreed { freelist: fl }
        ),
        "{:?}",
        report.problems
    );
}

#[test]
fn the_head_of_a_run_is_reported_as_go_words_it() {
    let (mut img, leaf) = image_with_overflow();
    let db = Db::open(&img).expect("open");
    let mut ids = freelist::read(&db).expect("read").expect("synced").ids;
    ids.push(leaf);
    ids.sort_unstable();
    set_free(&mut img, &ids);
    let report = check(Db::open(&img).expect("open"));
    let lines: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&format!("page {leaf}: reachable freed")),
        "{lines:?}"
    );
}
