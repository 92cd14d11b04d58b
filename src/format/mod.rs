//! Renderings that match etcdutl's output byte for byte: go-humanize sizes,
//! olekukonko/tablewriter tables, and the `snapshot status` and `hashkv`
//! formats.

pub mod get;
pub(crate) mod hashkv;
pub mod humanize;
#[cfg(feature = "save")]
pub(crate) mod save;
pub(crate) mod status;
pub mod table;
pub mod time;

pub use hashkv::render_hashkv;
#[cfg(feature = "save")]
pub use save::render_saved;
pub use status::{OutputFormat, render_status};
