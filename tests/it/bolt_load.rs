//! Property test of the bulk loader: random buckets (nested ones too), keys
//! and values, at random page sizes and fill percents, written by
//! [`etcdsnap::bolt::Loader`], read back identically, pass etcdsnap's
//! check and Go bbolt's (boltcheck, when it is installed), and have no
//! free page.

use crate::support;

use std::collections::BTreeMap;
use std::io::Cursor;

use etcdsnap::bolt::{Bucket, Db, check};
use etcdsnap::internal::bolt::{LoadOptions, Loader};
use proptest::prelude::*;
use support::{oracles, tools};

#[derive(Debug, Clone, Default, PartialEq)]
struct Tree {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    buckets: BTreeMap<Vec<u8>, Tree>,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..12),
        support::corrupt::arb_bytes(1..300),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..64),
        2 => support::corrupt::arb_bytes(0..1500),
        1 => support::corrupt::arb_bytes(3000..9000),
    ]
}

fn leaf_tree() -> impl Strategy<Value = Tree> {
    proptest::collection::btree_map(key(), value(), 0..120).prop_map(|values| Tree {
        values,
        buckets: BTreeMap::new(),
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    leaf_tree().prop_recursive(2, 8, 4, |inner| {
        (
            proptest::collection::btree_map(key(), value(), 0..40),
            proptest::collection::btree_map(key(), inner, 0..4),
        )
            .prop_map(|(mut values, buckets)| {
                // A name is either a bucket or a value.
                values.retain(|k, _| !buckets.contains_key(k));
                Tree { values, buckets }
            })
    })
}

fn load_tree(l: &mut Loader<'_, Cursor<Vec<u8>>>, t: &Tree) {
    let mut names: Vec<&Vec<u8>> = t.values.keys().chain(t.buckets.keys()).collect();
    names.sort();
    for n in names {
        match t.buckets.get(n) {
            Some(sub) => {
                l.begin_bucket(n.clone(), n.len() as u64).expect("begin");
                load_tree(l, sub);
                l.end_bucket().expect("end");
            }
            None => l.put(n.clone(), t.values[n].clone()).expect("put"),
        }
    }
}

fn read_tree(b: &Bucket<'_>) -> Tree {
    let mut t = Tree::default();
    for e in b.iter() {
        let e = e.expect("entry");
        if e.is_bucket() {
            let sub = b.bucket(e.key).expect("open").expect("bucket");
            assert_eq!(sub.sequence(), e.key.len() as u64);
            t.buckets.insert(e.key.to_vec(), read_tree(&sub));
        } else {
            t.values.insert(e.key.to_vec(), e.value.to_vec());
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn loaded_files_read_back_and_check_clean(
        top in proptest::collection::btree_map(key(), tree(), 1..5),
        page_size in prop_oneof![Just(512u32), Just(1024), Just(4096), Just(8192)],
        fill in 0.1f64..=1.0,
        synced in any::<bool>(),
    ) {
        let opts = LoadOptions::default().with_page_size(page_size).with_fill(fill).with_freelist(synced);
        let mut l = Loader::new(Cursor::new(Vec::new()), opts).expect("loader");
        let root = Tree { values: BTreeMap::new(), buckets: top };
        load_tree(&mut l, &root);
        let (out, summary) = l.finish().expect("finish");
        let img = out.into_inner();
        prop_assert_eq!(img.len() as u64, summary.pages * u64::from(page_size));
        let db = Db::open(&img).expect("open");
        let report = check(db);
        prop_assert!(report.is_ok(), "{:?}", report.problems);
        prop_assert_eq!(report.stats.free_pages, 0);
        prop_assert_eq!(read_tree(&db.root()), root);
        // Go's bbolt reads the first 4 KiB of a file to find its page size
        // and refuses a shorter file as "invalid database" whatever it
        // holds (a few pages of 512 or 1024 bytes); those are checked by our
        // checker above only.
        if tools::boltcheck().is_ok() && img.len() >= 4096 {
            let out = oracles::run_boltcheck_bytes("check", &img);
            prop_assert!(out.success() && out.stdout.contains("OK"), "{}{}", out.stdout, out.stderr);
        }
    }
}
