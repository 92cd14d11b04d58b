//! The copy path: the snapshot body into a new file, in the kernel
//! (`copy_file_range` through `std::io::copy`), so the data never passes
//! through this process's memory.

use std::fs::File;
use std::io::{self, Read};

/// Bytes copied between progress reports.
const STEP: u64 = 64 << 20;

/// Copies the first `len` bytes of `src` (from offset 0) to the start of
/// `dst`, reporting the bytes copied so far to `progress`.
pub fn copy_prefix(src: &File, dst: &File, len: u64, progress: &dyn Fn(u64)) -> io::Result<()> {
    copy(src, dst, len, false, progress)
}

/// [`copy_prefix`], flushing each 64 MiB step to disk (`fdatasync`) before
/// the next: the disk writes while other threads work, instead of all at
/// once in a final `fsync`, and dirty pages never pile up.
pub fn copy_prefix_synced(
    src: &File,
    dst: &File,
    len: u64,
    progress: &dyn Fn(u64),
) -> io::Result<()> {
    copy(src, dst, len, true, progress)
}

fn copy(src: &File, dst: &File, len: u64, sync: bool, progress: &dyn Fn(u64)) -> io::Result<()> {
    // Fresh handles: copy_file_range works on the file offsets, which the
    // callers' handles may share with other readers.
    let mut from = src.try_clone()?;
    let mut to = dst.try_clone()?;
    io::Seek::seek(&mut from, io::SeekFrom::Start(0))?;
    io::Seek::seek(&mut to, io::SeekFrom::Start(0))?;
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(STEP);
        let n = io::copy(&mut (&mut from).take(want), &mut to)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("source ended after {done} of {len} bytes"),
            ));
        }
        done += n;
        if sync {
            to.sync_data()?;
        }
        progress(done);
    }
    Ok(())
}
