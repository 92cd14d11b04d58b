//! Read-only memory maps, and what happens when the file shrinks under
//! one: the only module with `unsafe` code.
//!
//! Mapping a file is unsafe in Rust because the bytes behind the returned
//! slice can change, or vanish, if another process writes or truncates the
//! file while it is mapped. We map read-only (`PROT_READ`, `MAP_SHARED`),
//! never write through the map, and the callers take a shared `flock` on
//! the file, which excludes a running etcd (it holds an exclusive one on
//! its db) and any Go bbolt writer.
//!
//! A process that ignores advisory locks can still truncate the file. Then
//! a read of a page past the new end raises SIGBUS, which would kill the
//! process without a word and leave a restore's staged directories behind.
//! So every map registers its address range in a fixed table, and a
//! process-wide SIGBUS handler (installed on the first map) checks whether
//! the faulting address lies in a registered map: if it does, the handler
//! maps an anonymous zero-filled page over the faulting page
//! (`MAP_FIXED`), marks the map as faulted and returns; the CPU retries the
//! load, which now reads zeros. The reader sees zeros where the file was
//! cut, reports whatever those zeros make of the structure, and the caller
//! asks [`Mapped::faulted`] at the end and turns the whole outcome into a
//! "the file changed while it was read" error. A SIGBUS anywhere else goes
//! to the handler that was installed before ours (or the default action).
//!
//! Measured on a 1.4 GB snapshot against the alternatives (reading every
//! page with `pread(2)` into buffers, or copying the file to private memory
//! first): this costs nothing until a fault happens, where the others cost
//! a copy of every byte read (see the README's guarantees section).
//!
//! Backup repository packs are mapped the same way: they are immutable by
//! design (written under a temporary name, renamed into place, never
//! written again), readers hold a shared lock on the pack file, and prune
//! only ever unlinks a pack, which leaves an existing mapping intact; a pack
//! truncated by someone else faults into zeros as above, which the chunk
//! checks then refuse.
//!
//! # Soundness
//!
//! * The map is read-only and only read through `&[u8]`. Every access in the
//!   crate is bounds-checked against the slice length (which never changes),
//!   so changed contents are just different untrusted input: they can make
//!   the results wrong, which the fault flag and the callers' length and
//!   mtime checks turn into an error, but not make an access go out of
//!   bounds. (That the bytes behind a shared reference can change at all is
//!   the general caveat of mapping a file that another process may modify;
//!   the zero page does not widen it.)
//! * The handler only performs atomic loads and stores, `mmap` over a page
//!   inside a mapping this process owns, and `sigaction`; all are plain
//!   system calls with no locks or allocation, safe in a signal handler.
//! * A slot is registered after the map exists and cleared before it is
//!   unmapped, so the handler never replaces a page of memory that is not
//!   one of our file maps. The zero pages lie inside the original mapping's
//!   range, so the mapping's own `munmap` removes them.
//! * With more than [`SLOTS`] maps alive at once, further maps are not
//!   registered and a truncation kills the process, as before.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// Maps that can be protected at the same time.
const SLOTS: usize = 64;

/// One registered map: its address range and whether it faulted.
struct Slot {
    /// Start address, 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build REGISTRY
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];
/// The OS page size, set before the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS disposition before ours; set once, before ours is installed.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// A copy of the `sigaction` that was in place (kept as plain data so the
/// handler can read it without locking).
struct Previous(libc::sigaction);

// SAFETY: `sigaction` is plain data (a handler address, a mask and flags);
// it is written once before the handler is installed and only read after.
unsafe impl Sync for Previous {}
unsafe impl Send for Previous {}

type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler.
    let addr = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_addr() as usize }
    };
    let page = PAGE.load(Ordering::Relaxed);
    for slot in &REGISTRY {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start {
            continue;
        }
        let len = slot.len.load(Ordering::Acquire);
        if addr - start >= len {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is the start of an OS page inside a live read-only
        // file mapping of ours (registered after mmap, cleared before
        // munmap); replacing it with a private zero page changes only what
        // our own readers see there.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
    }
    // Not one of ours: what was there before decides.
    match PREVIOUS.get() {
        Some(Previous(prev))
            if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN =>
        {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: a handler installed with SA_SIGINFO has this type.
                let f: Handler = unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a handler installed without SA_SIGINFO has this type.
                let f: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Restore the default action and return: the faulting access is
            // retried and the process dies of SIGBUS as it would have.
            // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// Installs the SIGBUS handler once per process.
fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(ps) = usize::try_from(ps)
            && ps.is_power_of_two()
        {
            PAGE.store(ps, Ordering::Relaxed);
        }
        // SAFETY: plain sigaction calls with valid, initialised structs; the
        // handler is an extern "C" fn of the SA_SIGINFO signature.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(Previous(old));
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: Handler = on_sigbus;
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) == 0
        }
    })
}

/// Claims a free slot for `start..start + len`.
fn register(start: usize, len: usize) -> Option<usize> {
    if !install() {
        return None;
    }
    for (i, slot) in REGISTRY.iter().enumerate() {
        // Reserve with a placeholder address no map can have, then publish.
        if slot
            .start
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.faulted.store(false, Ordering::Relaxed);
            slot.len.store(len, Ordering::Release);
            slot.start.store(start, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// A read-only map of a whole file (empty files are not mapped).
#[derive(Debug)]
pub(crate) struct Mapped {
    map: Option<Mmap>,
    slot: Option<usize>,
}

impl Mapped {
    /// Maps `file` (see the module docs for what happens if it changes).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapped> {
        if len == 0 {
            return Ok(Mapped {
                map: None,
                slot: None,
            });
        }
        // SAFETY: read-only shared mapping of a file we hold a shared flock
        // on; see the module documentation for what remains.
        let map = unsafe { Mmap::map(file)? };
        let slot = register(map.as_ptr() as usize, map.len());
        Ok(Mapped {
            map: Some(map),
            slot,
        })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Whether a read hit a page the file no longer has (it shrank while
    /// mapped); those pages read as zeros.
    pub(crate) fn faulted(&self) -> bool {
        self.slot
            .and_then(|i| REGISTRY.get(i))
            .is_some_and(|s| s.faulted.load(Ordering::Acquire))
    }

    /// Hints the kernel about the access pattern; failures are harmless.
    pub(crate) fn advise(&self, advice: Advice) {
        if let Some(m) = &self.map {
            let _ = m.advise(advice);
        }
    }

    /// Drops the process's page table entries for the whole map, so that
    /// pages already read stop counting towards the resident set. The data
    /// stays in the page cache and is faulted back in on the next access.
    pub(crate) fn release(&self) {
        if let Some(m) = &self.map {
            // SAFETY: MADV_DONTNEED on a read-only MAP_SHARED file mapping
            // only discards page table entries; later reads fault the same
            // file contents back in (or, past a truncation, raise SIGBUS and
            // read zeros, see above), so no slice into the map is
            // invalidated.
            let _ = unsafe { m.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Unregister before the map (a field) is unmapped.
        if let Some(slot) = self.slot.and_then(|i| REGISTRY.get(i)) {
            slot.start.store(0, Ordering::Release);
        }
    }
}

/// Gives the heap's free pages back to the kernel (glibc's
/// `malloc_trim`; nothing with another allocator). glibc keeps what the
/// threads of a finished job freed in their arenas, and once a large
/// block was freed it serves blocks up to that size from the heap instead
/// of fresh maps, so a long-running process that now and then makes large
/// temporary buffers (the agent's full snapshots and sealed segments)
/// keeps the most it ever needed resident without this. Here with the
/// maps because it is the other call that hands pages to the kernel, and
/// this is the module `unsafe` is confined to.
#[cfg(feature = "agent")]
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and has no preconditions; it
    // only returns free memory of the allocator's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reading_past_a_truncation_gives_zeros_and_a_flag() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(&vec![0xabu8; 64 << 10]).expect("write");
        let file = File::open(f.path()).expect("open");
        let map = Mapped::new(&file, 64 << 10).expect("map");
        assert_eq!(map.bytes()[40 << 10], 0xab);
        assert!(!map.faulted());
        f.as_file().set_len(8 << 10).expect("truncate");
        // The first page is still there; the cut part reads as zeros.
        assert_eq!(map.bytes()[100], 0xab);
        let tail = &map.bytes()[(16 << 10)..];
        assert!(tail.iter().all(|&b| b == 0));
        assert!(map.faulted());
        drop(map);
        // The slot is free again.
        let again = Mapped::new(&file, 8 << 10).expect("map");
        assert!(!again.faulted());
    }
}
