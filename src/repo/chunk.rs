//! Chunks: page-aligned pieces of a snapshot, named by the hash of their
//! content, stored zstd-compressed (or raw when that is not smaller) and,
//! in an encrypted repository, sealed. Every decode checks the content
//! against the name, so a damaged chunk is never handed out.

use super::codec::hex;
use super::crypto::Crypto;
use super::error::{RepoError, Result};

/// Stored as is.
pub(crate) const CODEC_RAW: u8 = 0;
/// One zstd frame.
pub(crate) const CODEC_ZSTD: u8 = 1;

/// Smallest chunk: pages smaller than this are grouped so a chunk is at
/// least 4 KiB (fewer index entries for 512-byte-page databases).
pub(crate) const MIN_CHUNK: u32 = 4096;
/// Largest chunk (bbolt's largest page size).
pub(crate) const MAX_CHUNK: u32 = crate::bolt::db::MAX_PAGE_SIZE;
/// Largest stored chunk: raw (zstd is kept only when smaller) plus the
/// nonce and tag of a sealed one.
pub(crate) const MAX_STORED: u32 =
    MAX_CHUNK + (super::crypto::NONCE_LEN + super::crypto::TAG_LEN) as u32;

/// Why a chunk's recorded lengths cannot be right, if they cannot.
pub(crate) fn bad_lengths(stored_len: u32, raw_len: u32) -> Option<String> {
    if raw_len > MAX_CHUNK {
        Some(format!("raw length {raw_len} over {MAX_CHUNK}"))
    } else if stored_len > MAX_STORED {
        Some(format!("stored length {stored_len} over {MAX_STORED}"))
    } else {
        None
    }
}

/// The chunk size for a database with pages of `page_size` bytes: a whole
/// number of pages, at least [`MIN_CHUNK`].
pub(crate) fn chunk_size(page_size: u32) -> u32 {
    if !(crate::bolt::db::MIN_PAGE_SIZE..=MAX_CHUNK).contains(&page_size)
        || !page_size.is_power_of_two()
    {
        return MIN_CHUNK;
    }
    page_size.max(MIN_CHUNK)
}

/// Bytes sampled by [`looks_incompressible`].
const SAMPLE: usize = 1024;

/// Whether `raw` is so close to random bytes that compressing it is not
/// worth trying (encrypted or already compressed values): the order-0
/// entropy of a sample of its bytes, every fourth byte of a 4 KiB page,
/// is above 7.5 bits a byte. A histogram costs a fraction of a zstd try,
/// which on such data spends the most time for nothing; a chunk with any
/// run or repeated text has a far lower entropy and is compressed.
pub(crate) fn looks_incompressible(raw: &[u8]) -> bool {
    let step = (raw.len() / SAMPLE).max(1);
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in raw.iter().step_by(step) {
        counts[usize::from(*b)] += 1;
        n += 1;
    }
    if n < 256 {
        return false;
    }
    // H = log2(n) - sum(c log2 c) / n
    let nf = f64::from(n);
    let sum: f64 = counts.iter().map(|&c| c_log2_c(c)).sum();
    let bits = nf.log2() - sum / nf;
    bits > 7.5
}

/// `c log2 c` (0 for 0 and 1), from a table for the counts a sample can
/// have: 256 calls of `log2` a chunk were 2.4% of a push's CPU.
fn c_log2_c(c: u32) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let of = |c: u32| {
        let c = f64::from(c);
        if c > 1.0 { c * c.log2() } else { 0.0 }
    };
    let table = TABLE.get_or_init(|| (0..=2 * SAMPLE as u32).map(of).collect());
    table.get(c as usize).copied().unwrap_or_else(|| of(c))
}

/// zstd's fastest setting (matches only, literals left as they are): five
/// times the speed of level 3 on 4 KiB pages, and as small where what
/// does not repeat inside a page is random bytes (values that are
/// encrypted, compressed or random: every literal stays a byte either
/// way).
const FAST_LEVEL: i32 = -1;
/// Of the chunks a coder compresses in a block, the first and every
/// `TRY_EVERY`-th after it are compressed at both levels.
const TRY_EVERY: u32 = 16;

/// What the chunks of this block compressed at both levels came to.
#[derive(Debug, Default, Clone, Copy)]
struct Trial {
    chunks: u32,
    level_bytes: u64,
    fast_bytes: u64,
}

impl Trial {
    /// Whether the fast level did as well as the chosen one (within 1/64)
    /// on the chunks tried.
    fn fast_will_do(&self) -> bool {
        self.fast_bytes <= self.level_bytes + self.level_bytes / 64
    }
}

/// Associated data binding a sealed chunk to its ID.
fn aad(id: &[u8; 32]) -> [u8; 37] {
    let mut a = [0u8; 37];
    a[..5].copy_from_slice(b"chunk");
    a[5..].copy_from_slice(id);
    a
}

/// Reusable compression state (one per thread).
///
/// Chunks are compressed at the chosen level, or at [`FAST_LEVEL`] where
/// that does as well: a sample of each block's chunks (see
/// [`new_block`](Self::new_block)) is compressed both ways, and the rest of
/// the block follows what it showed. The choice depends only on the
/// block's content; either way the chunk is one zstd frame, decoded alike.
pub(crate) struct Coder {
    level: i32,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    fast: Option<zstd::bulk::Compressor<'static>>,
    trial: Trial,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

/// A compressor at `level`, without what a chunk does not need.
fn compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    let mut c =
        zstd::bulk::Compressor::new(level).map_err(RepoError::io("zstd init", "compressor"))?;
    // The content is checked by its hash: no frame checksum.
    c.include_checksum(false)
        .and_then(|()| c.include_dictid(false))
        .map_err(RepoError::io("zstd init", "compressor"))?;
    Ok(c)
}

impl std::fmt::Debug for Coder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coder").field("level", &self.level).finish()
    }
}

impl Coder {
    /// A coder compressing at zstd `level`.
    pub(crate) fn new(level: i32) -> Coder {
        Coder {
            level,
            compressor: None,
            fast: None,
            trial: Trial::default(),
            decompressor: None,
        }
    }

    /// Starts a block: the chunks compressed from here on are tried at
    /// both levels afresh.
    pub(crate) fn new_block(&mut self) {
        self.trial = Trial::default();
    }

    /// `raw` compressed (possibly longer than `raw`).
    fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>> {
        let level = self.level;
        let c = match &mut self.compressor {
            Some(c) => c,
            None => self.compressor.insert(compressor(level)?),
        };
        let f = match &mut self.fast {
            Some(f) => f,
            None => self.fast.insert(compressor(FAST_LEVEL)?),
        };
        let zerr = || RepoError::io("zstd compress", "chunk");
        let t = &mut self.trial;
        let tried = t.chunks.is_multiple_of(TRY_EVERY);
        t.chunks = t.chunks.wrapping_add(1);
        if !tried {
            let z = if t.fast_will_do() { f } else { c };
            return z.compress(raw).map_err(zerr());
        }
        let z = c.compress(raw).map_err(zerr())?;
        let fz = f.compress(raw).map_err(zerr())?;
        let cap = |n: usize| n.min(raw.len()) as u64;
        t.level_bytes += cap(z.len());
        t.fast_bytes += cap(fz.len());
        Ok(if fz.len() < z.len() { fz } else { z })
    }

    /// Compresses (when it helps) and seals `raw`, whose ID is `id`.
    /// Returns the stored bytes and the codec.
    pub(crate) fn encode(
        &mut self,
        crypto: &Crypto,
        raw: &[u8],
        id: &[u8; 32],
    ) -> Result<(Vec<u8>, u8)> {
        let z = if looks_incompressible(raw) {
            Vec::new()
        } else {
            self.compress(raw)?
        };
        let (plain, codec) = if !z.is_empty() && z.len() < raw.len() {
            // zstd's buffer is sized for the worst case; the blocks a push
            // has in flight hold thousands of these (8.5 MB of a 1.4 GB
            // push's peak for 3 MB of data).
            let mut z = z;
            z.shrink_to_fit();
            (z, CODEC_ZSTD)
        } else {
            (raw.to_vec(), CODEC_RAW)
        };
        Ok((crypto.seal(plain, &aad(id))?, codec))
    }

    /// Opens, decompresses and verifies a stored chunk into `out` (resized
    /// to `raw_len`). Fails if anything does not match: the result is
    /// exactly the content named `id`.
    pub(crate) fn decode(
        &mut self,
        crypto: &Crypto,
        stored: &[u8],
        codec: u8,
        raw_len: u32,
        id: &[u8; 32],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if raw_len > MAX_CHUNK {
            return Err(too_long(id, raw_len));
        }
        out.resize(raw_len as usize, 0);
        self.decode_to(crypto, stored, codec, id, out, true)
    }

    /// [`decode`](Self::decode) into exactly `out`, whose length is the
    /// chunk's raw length, so a reader can decode into its caller's buffer
    /// without another copy. Without `verify` the content is not hashed
    /// against `id` (decryption, which authenticates, and the lengths are
    /// still checked): only for a reader whose consumer checks a digest
    /// over the whole content anyway, and looks for the damaged chunk with
    /// `verify` when that digest does not match.
    pub(crate) fn decode_to(
        &mut self,
        crypto: &Crypto,
        stored: &[u8],
        codec: u8,
        id: &[u8; 32],
        out: &mut [u8],
        verify: bool,
    ) -> Result<()> {
        let what = || format!("chunk {}", hex(id));
        let raw_len = out.len();
        if raw_len > MAX_CHUNK as usize {
            return Err(too_long(id, raw_len));
        }
        let plain = crypto.open(stored, &aad(id), &what)?;
        let got = match codec {
            CODEC_RAW => match out.get_mut(..plain.len()) {
                Some(dst) if plain.len() == raw_len => {
                    dst.copy_from_slice(&plain);
                    raw_len
                }
                _ => plain.len(),
            },
            CODEC_ZSTD => {
                let d = match &mut self.decompressor {
                    Some(d) => d,
                    None => self.decompressor.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(RepoError::io("zstd init", "decompressor"))?,
                    ),
                };
                // A frame that claims more than `out` holds fails here.
                d.decompress_to_buffer(&plain[..], &mut *out)
                    .map_err(|e| RepoError::damaged(what(), format!("zstd: {e}")))?
            }
            other => return Err(RepoError::damaged(what(), format!("unknown codec {other}"))),
        };
        if got != raw_len {
            return Err(RepoError::damaged(
                what(),
                format!("{got} bytes, {raw_len} expected"),
            ));
        }
        if verify && &crypto.id(out) != id {
            return Err(RepoError::damaged(
                what(),
                "content does not match its hash",
            ));
        }
        Ok(())
    }
}

/// A raw length no chunk can have.
fn too_long(id: &[u8; 32], raw_len: impl std::fmt::Display) -> RepoError {
    RepoError::damaged(
        format!("chunk {}", hex(id)),
        format!("length {raw_len} over {MAX_CHUNK}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let crypto = Crypto::plain();
        let mut coder = Coder::new(3);
        let mut page = vec![0u8; 4096];
        page[100..200].fill(7);
        let id = crypto.id(&page);
        let (stored, codec) = coder.encode(&crypto, &page, &id).expect("encode");
        assert_eq!(codec, CODEC_ZSTD);
        assert!(stored.len() < 200);
        let mut out = Vec::new();
        coder
            .decode(&crypto, &stored, codec, 4096, &id, &mut out)
            .expect("decode");
        assert_eq!(out, page);
        // A flip either fails or (a bit zstd ignores) still gives exactly
        // the content: what comes out is never wrong.
        for i in 0..stored.len() {
            for bit in 0..8 {
                let mut bad = stored.clone();
                bad[i] ^= 1 << bit;
                if coder
                    .decode(&crypto, &bad, codec, 4096, &id, &mut out)
                    .is_ok()
                {
                    assert_eq!(out, page, "flip at {i}");
                }
            }
        }
        assert!(
            coder
                .decode(&crypto, &stored, codec, 4095, &id, &mut out)
                .is_err()
        );
        // Incompressible content is stored raw.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let nid = crypto.id(&noise);
        let (s, c) = coder.encode(&crypto, &noise, &nid).expect("encode");
        assert_eq!((c, s.len()), (CODEC_RAW, 4096));
    }

    /// Random bytes are not tried; text, a page of keys, and a page that
    /// is three quarters random and one quarter zeros are.
    #[test]
    fn incompressible_chunks_are_told_cheaply() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut noise = vec![0u8; 4096];
        noise.iter_mut().for_each(|b| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        });
        assert!(looks_incompressible(&noise));
        assert!(looks_incompressible(&noise[..]));
        let mut mostly = noise.clone();
        mostly[3072..].fill(0);
        assert!(!looks_incompressible(&mostly));
        let text: Vec<u8> = (0..4096)
            .map(|i| b"/registry/pods/default/pod-"[i % 27])
            .collect();
        assert!(!looks_incompressible(&text));
        assert!(!looks_incompressible(&[0u8; 4096]));
        assert!(!looks_incompressible(&noise[..200]), "too short to tell");
    }

    /// Pages of random bytes and zeros (what the 1.4 GB bench snapshot
    /// holds) go to the fast level after the first tries, pages of text
    /// stay at the chosen one (the fast level would store them far larger),
    /// and every chunk decodes to itself either way.
    #[test]
    fn the_fast_level_is_taken_only_where_it_does_as_well() {
        let crypto = Crypto::plain();
        let mut coder = Coder::new(3);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = [
            "metadata",
            "name",
            "namespace",
            "default",
            "kube-system",
            "labels",
            "app",
            "spec",
            "containers",
            "image",
            "nginx",
            "resources",
            "limits",
            "status",
        ];
        let mut out = Vec::new();
        for text in [false, true] {
            coder.new_block();
            let mut stored = 0;
            for _ in 0..64 {
                let page: Vec<u8> = if text {
                    let mut t = String::new();
                    while t.len() < 4096 {
                        t.push_str(words[next() as usize % words.len()]);
                        t.push_str(if next() % 3 == 0 { "\":\"" } else { " " });
                    }
                    t.into_bytes()[..4096].to_vec()
                } else {
                    let mut p = vec![0u8; 4096];
                    p[..3000].iter_mut().for_each(|b| *b = next() as u8);
                    p
                };
                let id = crypto.id(&page);
                let (s, codec) = coder.encode(&crypto, &page, &id).expect("encode");
                assert_eq!(codec, CODEC_ZSTD);
                stored += s.len();
                coder
                    .decode(&crypto, &s, codec, 4096, &id, &mut out)
                    .expect("decode");
                assert_eq!(out, page);
            }
            let t = coder.trial;
            assert_eq!(t.chunks, 64);
            assert_eq!(t.fast_will_do(), !text, "{t:?}");
            if text {
                assert!(t.fast_bytes > t.level_bytes * 21 / 20, "{t:?}");
                assert!(
                    stored < 64 * 4096 / 2,
                    "text is stored at level 3: {stored}"
                );
            } else {
                assert!(stored < 64 * 3100, "{stored}");
            }
        }
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(4096), 4096);
        assert_eq!(chunk_size(512), 4096);
        assert_eq!(chunk_size(65536), 65536);
        assert_eq!(chunk_size(3000), 4096);
        assert_eq!(chunk_size(0), 4096);
    }
}
