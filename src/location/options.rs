//! How locations are read and written: retries, timeouts, upload part
//! size and concurrency, compression, where temporary copies go.

use std::path::PathBuf;
use std::time::Duration;

use super::compression::CompressOptions;

/// Smallest part an upload may use (S3's limit for all parts but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The largest part S3 accepts (5 GiB): larger ones are clamped to it.
pub(crate) const MAX_PART_SIZE: usize = 5 << 30;

/// Settings for reading and writing locations. Credentials and endpoints
/// are not here: they come from the environment, as the `object_store`
/// crate reads it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `GOOGLE_*`,
/// `AZURE_*`...).
///
/// ```
/// let opts = etcdsnap::LocationOptions::default().with_part_size(8 << 20);
/// assert_eq!(opts.part_size, 8 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocationOptions {
    /// Retries of a failed request (with exponential backoff). Default 3.
    pub retries: usize,
    /// No retry starts later than this after the first attempt. Default 30 s.
    pub retry_timeout: Duration,
    /// A response that sends nothing for this long fails. Default 30 s.
    pub read_timeout: Duration,
    /// Bytes per part of a multipart upload (5 MiB to 5 GiB). Default 16 MiB.
    pub part_size: usize,
    /// Parts uploaded at once. Default 4.
    pub upload_concurrency: usize,
    /// How `.zst` and `.gz` destinations are compressed.
    pub compress: CompressOptions,
    /// Where a snapshot read from a URL or a compressed file is put while
    /// it is checked (an unnamed file, gone when closed). Default: the
    /// system's temporary directory (`$TMPDIR`).
    pub temp_dir: Option<PathBuf>,
    /// Store settings applied after the environment's, by the
    /// `object_store` builders' key names (`aws_endpoint`,
    /// `aws_access_key_id`, `aws_allow_http`, `google_service_account`,
    /// `azure_storage_account_name`...): for a caller that configures a
    /// store without environment variables. Unknown keys are ignored.
    pub config: Vec<(String, String)>,
}

impl Default for LocationOptions {
    fn default() -> Self {
        LocationOptions {
            retries: 3,
            retry_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            part_size: 16 << 20,
            upload_concurrency: 4,
            compress: CompressOptions::default(),
            temp_dir: None,
            config: Vec::new(),
        }
    }
}

impl LocationOptions {
    /// Bytes per upload part (raised to 5 MiB if smaller).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        self
    }

    /// How `.zst` and `.gz` destinations are compressed.
    pub fn with_compress(mut self, compress: CompressOptions) -> Self {
        self.compress = compress;
        self
    }

    /// Retries of a failed request.
    pub fn with_retries(mut self, retries: usize) -> Self {
        self.retries = retries;
        self
    }

    /// No retry starts later than this after the first attempt.
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// A response that sends nothing for this long fails.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Parts uploaded at once (0 is taken as 1).
    pub fn with_upload_concurrency(mut self, parts: usize) -> Self {
        self.upload_concurrency = parts;
        self
    }

    /// Where temporary copies go (see [`temp_dir`](Self::temp_dir)).
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Adds a store setting (see [`config`](Self::config)).
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config
            .push((key.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// The directory for temporary copies.
    pub fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}
