//! A small-object allocator for wasm tasks: per-size free lists in front of the system
//! allocator.
//!
//! Rust's `wasm32-wasip1` standard library allocates through wasi-libc's dlmalloc, which
//! pays for bins, boundary tags and coalescing on every call. Tasks that allocate many
//! short-lived small objects (a `String` per word, a `Vec` per record) spent a large
//! part of their time there: the `wordcount` example ran 12% faster with no allocator at
//! all. Native programs have glibc's per-thread caches for the same pattern; this is the
//! wasm counterpart.
//!
//! How it works:
//! - An allocation of at most [`MAX_SMALL`] bytes and alignment at most [`ALIGN`] takes a
//!   block of its size class (a multiple of 16 bytes) from the class's free list, or else
//!   carves one from the current chunk, a 64 KiB block taken from the system allocator.
//! - Freeing a small block pushes it on its class's list; small blocks are never given
//!   back to the system allocator, so memory freed as one size class is reused only by
//!   that class.
//! - Anything larger or more aligned goes to the system allocator unchanged.
//!
//! The class of a block is computed from the `Layout` the caller passes back on `dealloc`
//! and `realloc`, so blocks need no header. The allocator is single-threaded: it is only
//! installed as the global allocator on wasm without the `atomics` feature, where a task
//! has exactly one thread. It is deterministic: the same sequence of calls gives the same
//! addresses on every machine.
//!
//! A task that wants its own allocator turns off the `small-alloc` feature
//! (`default-features = false`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Largest size served from the free lists.
pub const MAX_SMALL: usize = 512;
/// Alignment of every small block (and granularity of the size classes).
pub const ALIGN: usize = 16;
/// Size of the chunks small blocks are carved from.
pub const CHUNK: usize = 64 * 1024;

const CLASSES: usize = MAX_SMALL / ALIGN;

/// The allocator's state: one free list per size class and the chunk being carved.
///
/// A free block's first word points to the next free block of its class.
#[derive(Debug)]
pub struct Pools {
    free: [*mut u8; CLASSES],
    cursor: *mut u8,
    end: *mut u8,
}

impl Default for Pools {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of a layout served from the free lists, or `None` for the system
/// allocator.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() <= MAX_SMALL && layout.align() <= ALIGN {
        Some(layout.size().max(1).div_ceil(ALIGN) - 1)
    } else {
        None
    }
}

impl Pools {
    /// Empty pools.
    pub const fn new() -> Self {
        Self {
            free: [ptr::null_mut(); CLASSES],
            cursor: ptr::null_mut(),
            end: ptr::null_mut(),
        }
    }

    /// Allocates like [`GlobalAlloc::alloc`].
    ///
    /// # Safety
    /// As [`GlobalAlloc::alloc`]; `self` must not be used from two threads at once.
    pub unsafe fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's contract is the system allocator's.
            return unsafe { System.alloc(layout) };
        };
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block starts with the next pointer written by `dealloc`.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = (class + 1) * ALIGN;
        if (self.end as usize) - (self.cursor as usize) < size {
            // The rest of the old chunk (less than one block of this class) is left unused.
            // SAFETY: CHUNK and ALIGN make a valid, non-zero layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, ALIGN)) };
            if chunk.is_null() {
                return chunk;
            }
            self.cursor = chunk;
            // SAFETY: within the chunk just allocated.
            self.end = unsafe { chunk.add(CHUNK) };
        }
        let block = self.cursor;
        // SAFETY: `size` bytes fit before `end`.
        self.cursor = unsafe { block.add(size) };
        block
    }

    /// Frees like [`GlobalAlloc::dealloc`].
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`], with `ptr` allocated by these pools.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => {
                // SAFETY: the block is at least 16 bytes and 16-aligned: room for the link.
                unsafe { ptr.cast::<*mut u8>().write(self.free[class]) };
                self.free[class] = ptr;
            }
            // SAFETY: allocated by the system allocator with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    /// Allocates zeroed memory like [`GlobalAlloc::alloc_zeroed`].
    ///
    /// # Safety
    /// As [`GlobalAlloc::alloc_zeroed`].
    pub unsafe fn alloc_zeroed(&mut self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // SAFETY: the caller's contract is the system allocator's.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as `alloc`.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            // SAFETY: the block holds at least `layout.size()` bytes.
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    /// Resizes like [`GlobalAlloc::realloc`].
    ///
    /// # Safety
    /// As [`GlobalAlloc::realloc`], with `ptr` allocated by these pools.
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid size for this alignment.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new)) {
            (Some(a), Some(b)) if a == b => ptr,
            // SAFETY: both sides belong to the system allocator.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: as `alloc`, `dealloc`; the copy stays within both blocks.
                unsafe {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// [`Pools`] as the global allocator of a single-threaded wasm task.
#[cfg(all(
    feature = "small-alloc",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
mod global {
    use super::Pools;
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;

    struct Global(UnsafeCell<Pools>);

    // SAFETY: without the `atomics` target feature a wasm module has exactly one thread,
    // so the pools are never used concurrently.
    unsafe impl Sync for Global {}

    // SAFETY: every method forwards to `Pools`, which upholds `GlobalAlloc`'s contract; the
    // mutable borrow ends before the call returns and calls never nest (the pools never
    // allocate through the global allocator).
    unsafe impl GlobalAlloc for Global {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            unsafe { (*self.0.get()).alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { (*self.0.get()).dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            unsafe { (*self.0.get()).alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            unsafe { (*self.0.get()).realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Global = Global(UnsafeCell::new(Pools::new()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic mix of sizes, alignments, frees and reallocs; every live block keeps
    /// its own fill pattern, so any overlap or lost byte shows.
    #[test]
    fn blocks_never_overlap_and_keep_their_contents() {
        let mut pools = Pools::new();
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut x: u64 = 12345;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        let check = |p: *mut u8, l: Layout, fill: u8| {
            let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
            assert!(
                bytes.iter().all(|&b| b == fill),
                "block {p:?} {l:?} lost its contents"
            );
        };
        for step in 0..20_000u32 {
            let fill = (step % 251) as u8;
            match next() % 4 {
                0 | 1 => {
                    let size = match next() % 8 {
                        0 => 1 + next() % 4096,
                        _ => 1 + next() % (MAX_SMALL + 32),
                    };
                    let align = [1, 2, 8, 16, 32, 64][next() % 6];
                    let l = Layout::from_size_align(size, align).unwrap();
                    let p = if next() % 5 == 0 {
                        let p = unsafe { pools.alloc_zeroed(l) };
                        check(p, l, 0);
                        p
                    } else {
                        unsafe { pools.alloc(l) }
                    };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "{l:?} misaligned");
                    unsafe { p.write_bytes(fill, size) };
                    live.push((p, l, fill));
                }
                2 if !live.is_empty() => {
                    let (p, l, f) = live.swap_remove(next() % live.len());
                    check(p, l, f);
                    unsafe { pools.dealloc(p, l) };
                }
                _ if !live.is_empty() => {
                    let k = next() % live.len();
                    let (p, l, f) = live[k];
                    check(p, l, f);
                    let new_size = 1 + next() % (2 * MAX_SMALL);
                    let q = unsafe { pools.realloc(p, l, new_size) };
                    assert!(!q.is_null());
                    let nl = Layout::from_size_align(new_size, l.align()).unwrap();
                    assert_eq!(q as usize % l.align(), 0);
                    check(
                        q,
                        Layout::from_size_align(new_size.min(l.size()), 1).unwrap(),
                        f,
                    );
                    unsafe { q.write_bytes(fill, new_size) };
                    live[k] = (q, nl, fill);
                }
                _ => {}
            }
            if step % 1000 == 0 {
                // No two live blocks overlap.
                let mut spans: Vec<(usize, usize)> = live
                    .iter()
                    .map(|&(p, l, _)| (p as usize, p as usize + l.size()))
                    .collect();
                spans.sort_unstable();
                for w in spans.windows(2) {
                    assert!(w[0].1 <= w[1].0, "overlap: {w:?}");
                }
            }
        }
        for (p, l, f) in live {
            check(p, l, f);
            unsafe { pools.dealloc(p, l) };
        }
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_only() {
        let mut pools = Pools::new();
        let small = Layout::from_size_align(24, 8).unwrap();
        let p = unsafe { pools.alloc(small) };
        unsafe { pools.dealloc(p, small) };
        // Same class (17..=32 bytes): the same block, last in, first out.
        let same = Layout::from_size_align(32, 4).unwrap();
        let q = unsafe { pools.alloc(same) };
        assert_eq!(p, q);
        // Another class does not take it.
        unsafe { pools.dealloc(q, same) };
        let other = Layout::from_size_align(40, 8).unwrap();
        let r = unsafe { pools.alloc(other) };
        assert_ne!(p, r);
        // Growing within the class keeps the block; leaving it moves the contents.
        let s = unsafe { pools.alloc(small) };
        assert_eq!(s, p);
        unsafe { s.write_bytes(9, 24) };
        assert_eq!(unsafe { pools.realloc(s, small, 30) }, s);
        let t = unsafe { pools.realloc(s, Layout::from_size_align(30, 8).unwrap(), 100) };
        assert_ne!(t, s);
        assert!(unsafe { std::slice::from_raw_parts(t, 24) }
            .iter()
            .all(|&b| b == 9));
        unsafe {
            pools.dealloc(t, Layout::from_size_align(100, 8).unwrap());
            pools.dealloc(r, other);
        }
    }

    #[test]
    fn large_or_overaligned_layouts_go_to_the_system_allocator() {
        assert_eq!(
            class_of(Layout::from_size_align(MAX_SMALL, 16).unwrap()),
            Some(CLASSES - 1)
        );
        assert_eq!(
            class_of(Layout::from_size_align(MAX_SMALL + 1, 1).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(8, 32).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(16, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(17, 1).unwrap()), Some(1));
    }
}
