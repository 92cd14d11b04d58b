//! What a location is, and how text becomes one: a plain path, a
//! `file://` URL, or an object in a bucket (`s3://`, `gs://`, `az://`,
//! `azure://`); compressed or not by its name's extension.

use std::path::{Path, PathBuf};
#[cfg(feature = "remote")]
use std::sync::Arc;

#[cfg(feature = "remote")]
use object_store::path::Path as ObjectPath;

use super::compression::Compression;
use super::error::LocationError;
use super::options::LocationOptions;
#[cfg(feature = "remote")]
use super::store::Remote;
use super::store::Scheme;

/// Where a snapshot is (or goes): a local file or an object in a bucket,
/// compressed or not by its name (`.zst`, `.gz`).
///
/// ```
/// use etcdsnap::{Compression, Location};
/// let l = Location::parse("/backups/etcd/snap.db.zst")?;
/// assert_eq!(l.compression(), Compression::Zstd);
/// assert_eq!(l.local_path(), Some(std::path::Path::new("/backups/etcd/snap.db.zst")));
/// assert!(Location::parse("ftp://host/x").is_err());
/// # Ok::<(), etcdsnap::LocationError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Location {
    text: String,
    target: Target,
    compression: Compression,
    opts: LocationOptions,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Local(PathBuf),
    #[cfg(feature = "remote")]
    Remote(Arc<Remote>),
}

impl Location {
    /// Parses `text` with the default [`LocationOptions`].
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        Location::parse_with(text, &LocationOptions::default())
    }

    /// Parses `text`. An object store is set up from the environment (no
    /// request is made yet); anything with `://` that is not `file`, `s3`,
    /// `gs`, `az` or `azure` is refused rather than taken for a path.
    pub fn parse_with(text: &str, opts: &LocationOptions) -> Result<Location, LocationError> {
        let bad = |reason: &str| LocationError::Parse {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("empty location"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::local(text, PathBuf::from(text), opts));
        };
        let scheme_lc = scheme.to_ascii_lowercase();
        if scheme_lc == "file" {
            // file:///abs/path or file://localhost/abs/path
            let path = match rest.strip_prefix("localhost") {
                Some(p) => p,
                None => rest,
            };
            if !path.starts_with('/') {
                return Err(bad(
                    "a file:// URL needs an absolute path (file:///dir/snap.db)",
                ));
            }
            return Ok(Location::local(text, PathBuf::from(path), opts));
        }
        let Some(kind) = Scheme::of(&scheme_lc) else {
            return Err(bad(&format!(
                "unsupported scheme {scheme:?} (use a path, file://, s3://, gs://, az:// or azure://)"
            )));
        };
        if !kind.built() {
            return Err(bad(&kind.not_built()));
        }
        if rest.contains(['?', '#']) {
            return Err(bad(
                "query strings and fragments are not used; configure the store through its environment variables",
            ));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket in the URL"));
        }
        Location::remote(kind, bucket, key, text, opts)
    }

    #[cfg(feature = "remote")]
    fn remote(
        kind: Scheme,
        bucket: &str,
        key: &str,
        text: &str,
        opts: &LocationOptions,
    ) -> Result<Location, LocationError> {
        let remote = Remote::from_env(kind, bucket, key, text, opts)?;
        Ok(Location {
            text: text.to_string(),
            target: Target::Remote(Arc::new(remote)),
            compression: Compression::from_name(key),
            opts: opts.clone(),
        })
    }

    /// Without object stores, `parse_with` has refused every scheme
    /// already.
    #[cfg(not(feature = "remote"))]
    fn remote(
        kind: Scheme,
        _bucket: &str,
        _key: &str,
        text: &str,
        _opts: &LocationOptions,
    ) -> Result<Location, LocationError> {
        Err(LocationError::Parse {
            text: text.to_string(),
            reason: kind.not_built(),
        })
    }

    /// The local file `path`, never taken for a URL (shown lossily where
    /// it is not UTF-8).
    pub(crate) fn local_file(path: PathBuf, opts: &LocationOptions) -> Location {
        let text = path.to_string_lossy().into_owned();
        Location::local(&text, path, opts)
    }

    fn local(text: &str, path: PathBuf, opts: &LocationOptions) -> Location {
        Location {
            compression: Compression::from_name(&path.to_string_lossy()),
            text: text.to_string(),
            target: Target::Local(path),
            opts: opts.clone(),
        }
    }

    /// A location in an object store built by the caller (an in-memory or
    /// local store in tests, or an embedder's own configuration), shown
    /// as `text` in messages.
    #[cfg(test)]
    #[cfg(feature = "remote")]
    pub(crate) fn in_store(
        store: Arc<dyn object_store::ObjectStore>,
        key: &str,
        text: &str,
        opts: &LocationOptions,
    ) -> Location {
        Location {
            text: text.to_string(),
            target: Target::Remote(Arc::new(Remote::new(store, ObjectPath::from(key)))),
            compression: Compression::from_name(key),
            opts: opts.clone(),
        }
    }

    /// Another location beside this one: `text` (as shown) is `key` in the
    /// same store, or `path` for a local one.
    pub(crate) fn sibling(&self, text: String, key_or_path: &str) -> Location {
        let target = match &self.target {
            Target::Local(_) => Target::Local(PathBuf::from(key_or_path)),
            #[cfg(feature = "remote")]
            Target::Remote(r) => Target::Remote(Arc::new(r.at(ObjectPath::from(key_or_path)))),
        };
        Location {
            compression: Compression::from_name(key_or_path),
            text,
            target,
            opts: self.opts.clone(),
        }
    }

    /// The location as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How its bytes are compressed (by its name).
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The local file, when it is one.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.target {
            Target::Local(p) => Some(p),
            #[cfg(feature = "remote")]
            Target::Remote(_) => None,
        }
    }

    /// Whether it is a local, uncompressed file: read in place (memory
    /// map, kernel copies) rather than streamed.
    pub fn is_plain_file(&self) -> bool {
        self.local_path().is_some() && self.compression == Compression::None
    }

    /// The options it was parsed with.
    pub fn options(&self) -> &LocationOptions {
        &self.opts
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "s3", feature = "gcs", feature = "azure"))]
    fn remote_key(l: &Location) -> String {
        match l.target() {
            Target::Remote(r) => r.path.as_ref().to_string(),
            Target::Local(p) => panic!("local {}", p.display()),
        }
    }

    #[test]
    fn paths_and_file_urls_are_local() {
        for (text, path) in [
            ("snap.db", "snap.db"),
            ("./a/b.db.zst", "./a/b.db.zst"),
            ("/abs/snap.db", "/abs/snap.db"),
            ("file:///abs/snap.db.gz", "/abs/snap.db.gz"),
            ("file://localhost/abs/x.db", "/abs/x.db"),
        ] {
            let l = Location::parse(text).expect(text);
            assert_eq!(l.local_path(), Some(Path::new(path)), "{text}");
            assert_eq!(l.as_str(), text);
        }
        assert!(Location::parse("snap.db").expect("plain").is_plain_file());
        assert!(!Location::parse("snap.db.zst").expect("zst").is_plain_file());
    }

    #[test]
    #[cfg(all(feature = "s3", feature = "gcs", feature = "azure"))]
    fn bucket_urls_are_remote_with_their_key() {
        // Building a store makes no request.
        for (text, key, c) in [
            (
                "s3://bucket/etcd/snap.db.zst",
                "etcd/snap.db.zst",
                Compression::Zstd,
            ),
            ("s3://bucket/snap.db", "snap.db", Compression::None),
            ("gs://bucket/a/b.gz", "a/b.gz", Compression::Gzip),
            ("az://container/x.db", "x.db", Compression::None),
            ("azure://container/p/", "p", Compression::None),
            ("s3://bucket", "", Compression::None),
        ] {
            let l = match Location::parse(text) {
                Ok(l) => l,
                // Azure needs an account name from the environment.
                Err(LocationError::Config { .. }) if text.starts_with("az") => continue,
                Err(e) => panic!("{text}: {e}"),
            };
            assert_eq!(remote_key(&l), key, "{text}");
            assert_eq!(l.compression(), c, "{text}");
            assert!(l.local_path().is_none());
        }
    }

    #[test]
    fn refusals_name_the_text() {
        for (text, want) in [
            ("", "empty location"),
            ("ftp://host/x", "unsupported scheme"),
            ("http://127.0.0.1/x", "unsupported scheme"),
            ("s3:///key", "no bucket"),
            ("file://relative/x", "absolute path"),
            ("s3://b/k?versionId=1", "query strings"),
        ] {
            if text.starts_with("s3") && !cfg!(feature = "s3") {
                continue;
            }
            let e = Location::parse(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.starts_with(text), "{text}: {e}");
        }
    }

    #[test]
    #[cfg(not(feature = "s3"))]
    fn a_store_left_out_of_the_build_is_named() {
        let e = Location::parse("s3://bucket/snap.db")
            .expect_err("no s3 in this build")
            .to_string();
        assert!(e.contains("without the \"s3\" feature"), "{e}");
    }
}
