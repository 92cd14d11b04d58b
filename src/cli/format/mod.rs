//! Renderings that match etcdutl's output byte for byte: go-humanize sizes,
//! olekukonko/tablewriter tables, and the `snapshot status` and `hashkv`
//! formats.

pub mod get;
pub(crate) mod hashkv;
pub mod humanize;
#[cfg(feature = "save")]
pub(crate) mod save;
pub(crate) mod status;
pub mod svg;
pub mod table;
pub mod time;

pub use hashkv::render_hashkv;
#[cfg(feature = "save")]
pub use save::render_saved;
pub use status::{OutputFormat, render_status};

#[cfg(test)]
mod tests {
    use etcdsnap::TargetVersion;
    use etcdsnap::mvcc::Store;

    use super::table::{Borders, render_with};
    use super::{OutputFormat, get, humanize, render_hashkv, render_status, table, time};

    const SMALL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/snapshots/small-v35.db"
    );

    #[test]
    fn sizes_are_go_humanize() {
        assert_eq!(humanize::bytes(20480), "20 kB");
        assert_eq!(humanize::bytes(10698752), "11 MB");
        assert_eq!(humanize::bytes(1500), "1.5 kB");
        assert_eq!(humanize::bytes(7), "7 B");
    }

    #[test]
    fn hashkv_and_status_render_as_etcdutl() {
        let snap = etcdsnap::Snapshot::open(SMALL).expect("open");
        let h = Store::open(&snap)
            .expect("store")
            .with_rules(TargetVersion::V3_6)
            .hash_kv(4)
            .expect("hashkv");
        assert_eq!(
            render_hashkv(&h, OutputFormat::Simple, TargetVersion::V3_6),
            "2905696941, 4, -1\n"
        );
        assert_eq!(
            render_hashkv(&h, OutputFormat::Json, TargetVersion::V3_6),
            "{\"hash\":2905696941,\"hashRevision\":4,\"compactRevision\":-1}\n"
        );
        let s = snap.status(TargetVersion::V3_5).expect("status");
        assert_eq!(
            render_status(&s, OutputFormat::Simple),
            "be2ae5ec, 4, 11, 20 kB\n"
        );
        assert_eq!(
            render_status(&s, OutputFormat::Json),
            "{\"hash\":3190482412,\"revision\":4,\"totalKey\":11,\"totalSize\":20480}\n"
        );
    }

    #[test]
    fn base64_is_std_with_padding() {
        assert_eq!(get::base64(b"foo"), "Zm9v");
        assert_eq!(get::base64(b"\x01\xff\xfe"), "Af/+");
        assert_eq!(get::base64(b"b"), "Yg==");
    }

    #[test]
    fn tables_are_tablewriter() {
        let t = table::render(&["hash", "revision"], &[vec!["ef854b5".into(), "4".into()]]);
        assert_eq!(
            t,
            "+---------+----------+\n\
             |  HASH   | REVISION |\n\
             +---------+----------+\n\
             | ef854b5 |        4 |\n\
             +---------+----------+\n"
        );
        let t = render_with(&["hash"], &[vec!["ef854b5".into()]], Borders::Unicode);
        assert_eq!(
            t,
            "┌─────────┐\n\
             │  HASH   │\n\
             ├─────────┤\n\
             │ ef854b5 │\n\
             └─────────┘\n"
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |ns: u64| UNIX_EPOCH + Duration::from_nanos(ns);
        assert_eq!(time::utc(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            time::utc(at(1_704_067_200_999_999_999)),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            time::utc(at(951_782_400_000_000_000)),
            "2000-02-29T00:00:00Z"
        );
        let before = |ns: u64| UNIX_EPOCH - Duration::from_nanos(ns);
        assert_eq!(time::utc(before(1_000_000_000)), "1969-12-31T23:59:59Z");
        assert_eq!(time::utc(before(500_000_000)), "1969-12-31T23:59:59Z");
        assert_eq!(time::utc(before(1_500_000_000)), "1969-12-31T23:59:58Z");
    }
}
