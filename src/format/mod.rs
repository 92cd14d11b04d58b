//! Renderings that match etcdutl's output byte for byte: go-humanize sizes,
//! olekukonko/tablewriter tables, and the `snapshot status` formats.

pub mod get;
pub(crate) mod goprint;
pub mod humanize;
pub mod status;
pub mod table;

pub use status::{OutputFormat, render_status};
