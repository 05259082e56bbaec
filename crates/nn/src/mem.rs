//! The memory a training holds: a counting wrapper around the global allocator ([`Counting`], installed by
//! the `nas` binary and the benchmark) and [`peak_of`], which measures the most bytes a closure held at once.
//!
//! Counts are per thread: a training runs on one thread (its ops are single-threaded), so the bytes its
//! thread allocates and frees are the training's. Data shared between trainings (the data set, loaded
//! before) is not counted; a fold's own copies (its standardised rows) are.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// A global allocator that counts every thread's live bytes and their peak.
pub struct Counting<A>(pub A);

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down still frees memory after its locals are gone.
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(v)));
    });
}

// SAFETY: every call is forwarded to the wrapped allocator unchanged; the counting touches only
// thread-local cells that never allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = self.0.alloc(l);
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(l);
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        self.0.dealloc(p, l);
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = self.0.realloc(p, l, new);
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

/// Runs `f` and returns, with its result, the most bytes this thread held at once while it ran beyond what
/// it held before: 0 when the global allocator is not [`Counting`].
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let base = LIVE.get();
    let outer = PEAK.replace(base);
    let r = f();
    let peak = PEAK.get();
    PEAK.set(outer.max(peak));
    (r, (peak - base).max(0) as u64)
}

#[cfg(test)]
mod tests {
    /// Without the counting allocator (unit tests run on the system one) nothing is counted.
    #[test]
    fn without_the_counting_allocator_the_peak_is_zero() {
        let (v, peak) = super::peak_of(|| vec![0u8; 1 << 20]);
        assert_eq!((v.len(), peak), (1 << 20, 0));
    }
}
