//! What the CPU kernels share ([`crate::conv_op`], [`crate::direct3`], [`crate::pointwise`],
//! [`crate::conv_block`]): the element types they run on, per-thread scratch buffers, contiguous operand
//! slices and the f32/f64 dispatch of a custom op.

use candle_core::{bail, Layout, Result};

/// Element types the ops run on.
pub(crate) trait Elem:
    num_traits::Float
    + candle_core::WithDType
    + Default
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + 'static
{
    const ONE: Self;
    /// This type's vector of a pair kept for either type (`Scratch`).
    fn part(s: &mut Scratch) -> &mut Vec<Self>;
    /// Runs `f` on a thread-local scratch buffer of `n` elements (contents unspecified).
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
        with_scratch(Self::part, n, f)
    }
}

thread_local! {
    /// Scratch buffers for columns, reused across calls: each training runs on one thread, and a fresh
    /// multi-megabyte buffer per call paid page faults and zeroing (a fifth of a CNN step).
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The per-thread scratch buffers, one per element type.
pub(crate) type Scratch = (Vec<f32>, Vec<f64>);

/// Frees this thread's scratch buffers, so that the next training's memory (see [`crate::mem::peak_of`])
/// includes the scratch it grows, whichever training ran on the thread before.
pub fn free_scratch() {
    SCRATCH.with(|s| *s.borrow_mut() = (Vec::new(), Vec::new()));
}

/// Runs `f` on the first `n` elements of the scratch vector `pick` selects, grown as needed.
fn with_scratch<T: Copy + Default, R>(
    pick: fn(&mut Scratch) -> &mut Vec<T>,
    n: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    SCRATCH.with(|s| {
        // Taken out while `f` runs, so that a nested call cannot alias it.
        let mut buf = std::mem::take(pick(&mut s.borrow_mut()));
        buf.resize(n.max(buf.len()), T::default());
        let r = f(&mut buf[..n]);
        *pick(&mut s.borrow_mut()) = buf;
        r
    })
}

impl Elem for f32 {
    const ONE: f32 = 1.0;
    fn part(s: &mut Scratch) -> &mut Vec<f32> {
        &mut s.0
    }
}
impl Elem for f64 {
    const ONE: f64 = 1.0;
    fn part(s: &mut Scratch) -> &mut Vec<f64> {
        &mut s.1
    }
}

/// The contiguous elements of an operand (the kernels take no strided views).
pub(crate) fn slice<'a, T>(v: &'a [T], l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("cpu kernel: operand is not contiguous"),
    }
}

/// Runs `$body`, which gives `(Vec<T>, Shape)`, with every storage bound to its vector of f32 or of f64
/// (all of one type), and wraps the vector back into a storage: the dtype dispatch of every CPU op. `$name`
/// names the op in the error for other dtypes.
macro_rules! on_floats {
    ($name:expr, [$($s:ident => $v:ident),+], $body:expr) => {
        match ($($s,)+) {
            ($(candle_core::CpuStorage::F32($v),)+) => {
                let (v, shape) = $body;
                Ok((candle_core::CpuStorage::F32(v), shape))
            }
            ($(candle_core::CpuStorage::F64($v),)+) => {
                let (v, shape) = $body;
                Ok((candle_core::CpuStorage::F64(v), shape))
            }
            _ => candle_core::bail!("{}: only f32 and f64", $name),
        }
    };
}
pub(crate) use on_floats;
