//! Compression by file name: `.zst` (zstd) and `.gz` (gzip), in and out.
//! The compressed bytes are the whole snapshot file, trailer included, so a
//! decompressed file is exactly what `etcdctl snapshot save` wrote.

use std::io::{self, BufReader, Read, Write};

/// How a location's bytes are compressed, from its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is.
    None,
    /// zstd (`.zst`, `.zstd`).
    Zstd,
    /// gzip (`.gz`); several concatenated members are read as one stream
    /// (what `pigz` writes).
    Gzip,
}

/// zstd's magic number, little-endian on disk.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// gzip's first two bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Compression {
    /// The compression a name asks for, by its last extension.
    ///
    /// ```
    /// use etcdsnap::Compression;
    /// assert_eq!(Compression::from_name("backup/snap.db.zst"), Compression::Zstd);
    /// assert_eq!(Compression::from_name("snap.db.gz"), Compression::Gzip);
    /// assert_eq!(Compression::from_name("snap.db"), Compression::None);
    /// ```
    pub fn from_name(name: &str) -> Compression {
        let base = name.rsplit('/').next().unwrap_or(name);
        match base
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
        {
            Some(ext) if ext == "zst" || ext == "zstd" => Compression::Zstd,
            Some(ext) if ext == "gz" => Compression::Gzip,
            _ => Compression::None,
        }
    }

    /// The name of the format (`zstd`, `gzip`), or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// Which compression the first bytes of some data look like, if any:
    /// used to explain why a file that is not named `.zst` or `.gz` is
    /// not a bbolt database.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    /// Wraps `src` in the decoder for this format.
    pub(crate) fn decoder<'a>(self, src: Box<dyn Read + Send + 'a>) -> io::Result<Decoder<'a>> {
        Ok(match self {
            Compression::None => Decoder::Plain(src),
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd => return Err(zstd_not_built()),
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                    256 << 10,
                    src,
                ))?;
                // A 128 MiB window reads `zstd --long` archives (27 is its
                // default) while a frame header cannot make the decoder
                // allocate more than that.
                d.window_log_max(27)?;
                Decoder::Zstd(d)
            }
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(256 << 10, src),
            )),
        })
    }
}

/// A decompressing reader; its errors come from the format (a decoder
/// complaint) or from the source underneath.
pub(crate) enum Decoder<'a> {
    Plain(Box<dyn Read + Send + 'a>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Box<dyn Read + Send + 'a>>>),
    Gzip(flate2::bufread::MultiGzDecoder<BufReader<Box<dyn Read + Send + 'a>>>),
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            #[cfg(feature = "zstd")]
            Decoder::Zstd(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
        }
    }
}

/// How to compress what is written.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CompressOptions {
    /// zstd level (1..=22; negative levels are the fast ones), default 3.
    pub zstd_level: i32,
    /// gzip level (0..=9), default 6.
    pub gzip_level: u32,
    /// zstd worker threads (0: compress on the writing thread). Default:
    /// the available cores.
    pub threads: u32,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            zstd_level: 3,
            gzip_level: 6,
            threads: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        }
    }
}

impl CompressOptions {
    /// The zstd level (1..=22; negative levels are the fast ones).
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// The gzip level (0..=9; higher ones are taken as 9).
    pub fn with_gzip_level(mut self, level: u32) -> Self {
        self.gzip_level = level;
        self
    }

    /// zstd worker threads (0: compress on the writing thread).
    pub fn with_threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }
}

/// A compressing writer over `W`.
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(c: Compression, out: W, opts: &CompressOptions) -> io::Result<Encoder<W>> {
        Ok(match c {
            Compression::None => Encoder::Plain(out),
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd => return Err(zstd_not_built()),
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, opts.zstd_level)?;
                if opts.threads > 0 {
                    e.multithread(opts.threads)?;
                }
                // Lets a reader check the frame as it decompresses.
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(opts.gzip_level.min(9)),
            )),
        })
    }

    /// Ends the compressed stream and returns the writer underneath.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            #[cfg(feature = "zstd")]
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
    }

    /// The writer underneath.
    pub(crate) fn get_mut(&mut self) -> &mut W {
        match self {
            Encoder::Plain(w) => w,
            #[cfg(feature = "zstd")]
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::Gzip(e) => e.get_mut(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            #[cfg(feature = "zstd")]
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            #[cfg(feature = "zstd")]
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
        }
    }
}

/// `.zst` in a build without the `zstd` feature (zstd is C code; the
/// core builds without a C compiler).
#[cfg(not(feature = "zstd"))]
fn zstd_not_built() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this etcdsnap was built without the \"zstd\" feature",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "zstd")]
    fn round_trip(c: Compression, data: &[u8], opts: &CompressOptions) -> Vec<u8> {
        let mut e = Encoder::new(c, Vec::new(), opts).expect("encoder");
        e.write_all(data).expect("write");
        let packed = e.finish().expect("finish");
        assert_eq!(Compression::sniff(&packed), c);
        let mut out = Vec::new();
        let src: Box<dyn Read + Send> = Box::new(io::Cursor::new(packed));
        c.decoder(src)
            .expect("decoder")
            .read_to_end(&mut out)
            .expect("decode");
        out
    }

    #[test]
    #[cfg(feature = "zstd")]
    fn compressed_bytes_decompress_to_the_same_file() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/snapshots/small-v35.db"
        ))
        .expect("fixture");
        for c in [Compression::None, Compression::Zstd, Compression::Gzip] {
            for threads in [0, 2] {
                let opts = CompressOptions {
                    threads,
                    zstd_level: 19,
                    gzip_level: 9,
                };
                assert_eq!(round_trip(c, &data, &opts), data, "{c:?} {threads}");
            }
        }
    }

    #[test]
    fn names_choose_the_format() {
        for (name, want) in [
            ("s3://b/etcd/snap.db.zst", Compression::Zstd),
            ("x.ZST", Compression::Zstd),
            ("x.zstd", Compression::Zstd),
            ("/a.b/c.gz", Compression::Gzip),
            ("/a.gz/c", Compression::None),
            ("snap.db", Compression::None),
            ("zst", Compression::None),
        ] {
            assert_eq!(Compression::from_name(name), want, "{name}");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let opts = CompressOptions::default();
        let mut packed = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut e = Encoder::new(Compression::Gzip, Vec::new(), &opts).expect("enc");
            e.write_all(part).expect("write");
            packed.extend(e.finish().expect("finish"));
        }
        let mut out = String::new();
        let src: Box<dyn Read + Send> = Box::new(io::Cursor::new(packed));
        Compression::Gzip
            .decoder(src)
            .expect("decoder")
            .read_to_string(&mut out)
            .expect("decode");
        assert_eq!(out, "hello world");
    }

    #[test]
    #[cfg(feature = "zstd")]
    fn truncated_streams_are_errors() {
        let data = vec![7u8; 100_000];
        for c in [Compression::Zstd, Compression::Gzip] {
            let mut e = Encoder::new(c, Vec::new(), &CompressOptions::default()).expect("enc");
            e.write_all(&data).expect("write");
            let mut packed = e.finish().expect("finish");
            packed.truncate(packed.len() - 5);
            let src: Box<dyn Read + Send> = Box::new(io::Cursor::new(packed));
            let mut out = Vec::new();
            let r = c.decoder(src).expect("decoder").read_to_end(&mut out);
            assert!(r.is_err(), "{c:?} accepted a truncated stream");
        }
    }

    #[test]
    #[cfg(not(feature = "zstd"))]
    fn zstd_is_refused_without_its_feature() {
        let src: Box<dyn Read + Send> = Box::new(io::Cursor::new(Vec::new()));
        let e = Compression::Zstd.decoder(src).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("\"zstd\" feature")));
        let e = Encoder::new(Compression::Zstd, Vec::new(), &CompressOptions::default());
        assert!(e.is_err());
    }
}
