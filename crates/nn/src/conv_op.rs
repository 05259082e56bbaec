//! A hand-written convolution for the CPU: im2col into one scratch buffer and one `gemm` call forward; the
//! input gradient as one `gemm` and a scatter-add (col2im), the weight gradient as one `gemm` over recomputed
//! columns. 3×3 windows of stride 1 and padding 1 run on [`crate::direct3`]'s kernels instead, without
//! im2col, where the channels fit them. Built from candle ops the same convolution spends about half of each
//! step in autograd bookkeeping (zero-filled gradient buffers, a generic scatter for `index_select`); this
//! op has none of it.
//!
//! Layout as in [`crate::ops`]: input `[B, h·w, C]` (channel-last), weight `[taps·C, Cout]` (tap-major,
//! channel-minor rows), output `[B, n_out, Cout]`. The window index lists, for every output pixel and tap,
//! the input pixel, or `h·w` for padding. Every (candidate, fold) training is single-threaded, so `gemm` runs
//! without parallelism. f32 and f64 (the gradient checks run in f64).

use crate::cpu::{on_floats, slice, Elem};
use crate::direct3;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::Arc;

/// Gather indices of every k×k window (row-major over output pixels, then taps); `h·w` is the zero pixel.
pub fn window_index(
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> (Vec<u32>, usize, usize) {
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (w + 2 * pad - k) / stride + 1;
    let zero = (h * w) as u32;
    let mut idx = Vec::with_capacity(ho * wo * k * k);
    for oy in 0..ho {
        for ox in 0..wo {
            for ky in 0..k {
                for kx in 0..k {
                    let iy = (oy * stride + ky) as isize - pad as isize;
                    let ix = (ox * stride + kx) as isize - pad as isize;
                    idx.push(
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            (iy as usize * w + ix as usize) as u32
                        } else {
                            zero
                        },
                    );
                }
            }
        }
    }
    (idx, ho, wo)
}

/// The geometry of one convolution (or 3×3 pooling) layer.
#[derive(Clone, Debug)]
pub struct Window {
    /// Input pixel of every (output pixel, tap); `hw` stands for the zero padding.
    pub idx: Arc<Vec<u32>>,
    /// The same index as a tensor on the model's device (for the candle-ops path).
    pub tensor: Tensor,
    /// Input pixels (h·w).
    pub hw: usize,
    /// Taps per window (k²).
    pub taps: usize,
    /// The index as runs of consecutive input pixels (or of padding), in order: im2col copies a run's
    /// `len·C` values at once, three runs per 3×3 window inside the image instead of nine copies.
    runs: Arc<Vec<Run>>,
    /// Which kernels the convolution runs on.
    kind: Kind,
}

/// The narrowest input on which the direct 3×3 kernels run: on narrower maps the zero border is a large
/// share of the padded copy (100 values for an 8×8 map's 64) and a row holds few 4-pixel blocks. Measured
/// against im2col: slower on the digits' 8×8 maps, even on NB201's 8×8 stage, faster on 14×14 (the 28×28
/// residual CNN's second block, +7–19%).
const DIRECT3_MIN_WIDTH: usize = 12;

/// The convolution's path for a window's geometry.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// im2col and gemm.
    Gather,
    /// A 1×1 window of stride 1: the input is its own im2col, and the convolution one matrix product.
    Identity,
    /// A 3×3 window of stride 1 and padding 1 on an h×w input at least [`DIRECT3_MIN_WIDTH`] wide: the
    /// convolution and its gradients run on [`crate::direct3`] where the channels allow.
    Direct3 { h: u32, w: u32 },
}

/// `len` taps of the window index from position `at` whose input pixels are `src, src + 1, …` (`src` is
/// `hw` for a run of padding).
#[derive(Clone, Copy, Debug)]
struct Run {
    at: u32,
    src: u32,
    len: u32,
}

/// Splits each window's taps into [`Run`]s.
fn runs(idx: &[u32], taps: usize, hw: u32) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (j, &src) in idx.iter().enumerate() {
        if let Some(r) = runs.last_mut() {
            let next = if src == hw { hw } else { r.src + r.len };
            let pad = (r.src == hw) == (src == hw);
            if j % taps != 0 && pad && src == next {
                r.len += 1;
                continue;
            }
        }
        runs.push(Run {
            at: j as u32,
            src,
            len: 1,
        });
    }
    runs
}

impl Window {
    /// The window of a k×k convolution with `stride` and `pad` on an h×w input, and the output size.
    pub fn new(
        h: usize,
        w: usize,
        k: usize,
        stride: usize,
        pad: usize,
        dev: &candle_core::Device,
    ) -> Result<(Window, usize, usize)> {
        let (idx, ho, wo) = window_index(h, w, k, stride, pad);
        let tensor = Tensor::from_slice(&idx, idx.len(), dev)?;
        let runs = Arc::new(runs(&idx, k * k, (h * w) as u32));
        let kind = if k == 1 && idx.iter().enumerate().all(|(i, &p)| p as usize == i) {
            Kind::Identity
        } else if k == 3 && stride == 1 && pad == 1 && w >= DIRECT3_MIN_WIDTH {
            let (h, w) = (h as u32, w as u32);
            Kind::Direct3 { h, w }
        } else {
            Kind::Gather
        };
        let win = Window {
            kind,
            runs,
            idx: Arc::new(idx),
            tensor,
            hw: h * w,
            taps: k * k,
        };
        Ok((win, ho, wo))
    }

    /// Output pixels.
    pub fn n_out(&self) -> usize {
        self.idx.len() / self.taps
    }

    /// `(h, w)` when the direct 3×3 kernels apply and `ok` (the channels fit them).
    fn direct3(&self, ok: bool) -> Option<(usize, usize)> {
        match self.kind {
            Kind::Direct3 { h, w } if ok => Some((h as usize, w as usize)),
            _ => None,
        }
    }
}

/// Row-major matrix view for `gemm`: pointer, rows, columns, row stride and column stride.
pub(crate) struct Mat<T> {
    p: *const T,
    rs: isize,
    cs: isize,
}

pub(crate) fn row_major<T>(s: &[T], cols: usize) -> Mat<T> {
    Mat {
        p: s.as_ptr(),
        rs: cols as isize,
        cs: 1,
    }
}

pub(crate) fn transposed<T>(s: &[T], cols: usize) -> Mat<T> {
    Mat {
        p: s.as_ptr(),
        rs: 1,
        cs: cols as isize,
    }
}

/// `dst[m×n] = a[m×k] · b[k×n]`, or with `acc` `dst += a · b` (dst row-major).
///
/// # Safety
/// `dst` must be valid for m×n writes (and reads with `acc`), and `a`, `b` must hold m×k and k×n elements
/// under their strides.
unsafe fn gemm_into<T: Elem>(
    dst: *mut T,
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    acc: bool,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        n as isize,
        acc,
        a.p,
        a.cs,
        a.rs,
        b.p,
        b.cs,
        b.rs,
        T::ONE,
        T::ONE,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// `dst[m×n] = a[m×k] · b[k×n]` (dst row-major, overwritten), or `+=` with `acc`.
pub(crate) fn matmul<T: Elem>(
    dst: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    acc: bool,
) {
    assert!(dst.len() >= m * n);
    // SAFETY: the destination is asserted above; the sources are sized by construction in the callers
    // (this module and `word_conv`, whose taps stay within each text's rows).
    unsafe { gemm_into(dst.as_mut_ptr(), m, n, k, a, b, acc) }
}

/// Walks every run of taps of `b` samples: `f(at, src, n)` with `at` the offset of its `n` values (taps ×
/// channels) in the columns `[B·n_out, taps·C]`, and `src` the offset of the input pixels' channels in `x`
/// `[B, hw, C]`, or `None` for padding. im2col and col2im are the two directions of this one mapping.
fn for_each_run(b: usize, c: usize, win: &Window, mut f: impl FnMut(usize, Option<usize>, usize)) {
    let per_sample = win.idx.len() * c;
    for bi in 0..b {
        let base = bi * win.hw;
        for r in win.runs.iter() {
            let src = (r.src as usize != win.hw).then(|| (base + r.src as usize) * c);
            f(bi * per_sample + r.at as usize * c, src, r.len as usize * c);
        }
    }
}

/// Gathers `[B, hw, C]` into `cols` `[B·n_out, taps·C]` (every element written).
fn im2col<T: Elem>(x: &[T], b: usize, c: usize, win: &Window, cols: &mut [T]) {
    if c == 1 {
        // The first layer of a grey-scale image: one value per tap, no slice copies.
        for (bi, out) in cols.chunks_exact_mut(win.idx.len()).take(b).enumerate() {
            let img = &x[bi * win.hw..(bi + 1) * win.hw];
            for (o, &src) in out.iter_mut().zip(win.idx.iter()) {
                *o = img.get(src as usize).copied().unwrap_or_default();
            }
        }
        return;
    }
    for_each_run(b, c, win, |at, src, n| match src {
        Some(s) => cols[at..at + n].copy_from_slice(&x[s..s + n]),
        None => cols[at..at + n].fill(T::default()),
    });
}

/// The forward convolution: `x.apply_op2(w, Conv(win))`, or with a bias `x.apply_op3(w, b, Conv(win))`.
struct Conv(Window);
/// Input gradient: `grad_y.apply_op2_no_bwd(w, ConvGradInput(win, c))`.
struct ConvGradInput(Window, usize);
/// Weight gradient: `x.apply_op2_no_bwd(grad_y, ConvGradWeight(win))`.
struct ConvGradWeight(Window);

/// `y = im2col(x) · w (+ bias)`; with a bias, `y` starts as the bias rows and the product is added to it.
fn fwd<T: Elem>(
    x: &[T],
    lx: &Layout,
    w: &[T],
    lw: &Layout,
    bias: Option<&[T]>,
    win: &Window,
) -> Result<(Vec<T>, Shape)> {
    let (b, hw, c) = lx.shape().dims3()?;
    let (kc, co) = lw.shape().dims2()?;
    if hw != win.hw || kc != win.taps * c || bias.is_some_and(|b| b.len() != co) {
        bail!(
            "conv: input {:?} / weight {:?} do not fit the window",
            lx.shape(),
            lw.shape()
        );
    }
    let (x, w) = (slice(x, lx)?, slice(w, lw)?);
    let (n, m) = (win.n_out(), b * win.n_out());
    let mut y = match bias {
        Some(bias) => bias.repeat(m),
        None => Vec::with_capacity(m * co),
    };
    // A single-channel input stays on im2col: its columns are a plain gather (one value per tap), which
    // measured faster than the direct kernel's one-channel blocks (digits' first layer).
    if let Some((h, w_)) = win.direct3(c > 1 && co.is_multiple_of(direct3::LANES)) {
        y.resize(m * co, T::zero());
        direct3::conv3(x, (b, h, w_, c), w, co, &mut y);
        return Ok((y, Shape::from((b, n, co))));
    }
    let dst = y.as_mut_ptr();
    if win.kind == Kind::Identity {
        // SAFETY: as below, with the input itself as the columns (m rows of kc = C values).
        unsafe {
            let (a, wm) = (row_major(x, kc), row_major(w, co));
            gemm_into(dst, m, co, kc, a, wm, bias.is_some());
            y.set_len(m * co);
        }
        return Ok((y, Shape::from((b, n, co))));
    }
    for (s0, sn) in tiles(b, n * kc) {
        T::with_scratch(sn * n * kc, |cols| {
            im2col(&x[s0 * hw * c..], sn, c, win, cols);
            // SAFETY: y holds m×co elements (capacity), the tile's rows are s0·n … (s0 + sn)·n; with a bias
            // they are initialised and the product is added, else gemm writes them without reading.
            unsafe {
                let (a, wm) = (row_major(cols, kc), row_major(w, co));
                gemm_into(dst.add(s0 * n * co), sn * n, co, kc, a, wm, bias.is_some())
            }
        });
    }
    // SAFETY: every tile has been written, so all m×co elements are initialised.
    unsafe { y.set_len(m * co) };
    Ok((y, Shape::from((b, n, co))))
}

/// Samples per im2col tile: the columns of a whole batch of a wide 5×5 layer at 28×28 are hundreds of
/// megabytes, so im2col and its gemm run on tiles of samples whose columns fit [`TILE_ELEMS`].
#[cfg(not(test))]
const TILE_ELEMS: usize = 4 << 20;
/// Tiny in `nn`'s own tests, so that every convolution they check runs on several tiles.
#[cfg(test)]
const TILE_ELEMS: usize = 64;

/// `(first sample, samples)` of each tile of `b` samples whose columns are `per_sample` elements each.
fn tiles(b: usize, per_sample: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = (TILE_ELEMS / per_sample.max(1)).max(1);
    (0..b).step_by(step).map(move |s0| (s0, step.min(b - s0)))
}

fn grad_input<T: Elem>(
    gy: &[T],
    lg: &Layout,
    w: &[T],
    lw: &Layout,
    win: &Window,
    c: usize,
) -> Result<(Vec<T>, Shape)> {
    let (b, n, co) = lg.shape().dims3()?;
    let kc = win.taps * c;
    let (gy, w) = (slice(gy, lg)?, slice(w, lw)?);
    let mut dx = vec![T::default(); b * win.hw * c];
    if let Some((h, w_)) = win.direct3(c.is_multiple_of(direct3::LANES)) {
        let flipped = direct3::flip(w, c, co);
        direct3::conv3(gy, (b, h, w_, co), &flipped, c, &mut dx);
        return Ok((dx, Shape::from((b, win.hw, c))));
    }
    if win.kind == Kind::Identity {
        matmul(
            &mut dx,
            b * n,
            kc,
            co,
            row_major(gy, co),
            transposed(w, co),
            false,
        );
        return Ok((dx, Shape::from((b, win.hw, c))));
    }
    for (s0, sn) in tiles(b, n * kc) {
        T::with_scratch(sn * n * kc, |dcols| {
            // dcols = gy · wᵀ for the tile's rows, then scatter-added into its samples of dx (col2im).
            let g = row_major(&gy[s0 * n * co..], co);
            matmul(dcols, sn * n, kc, co, g, transposed(w, co), false);
            let dx = &mut dx[s0 * win.hw * c..];
            for_each_run(sn, c, win, |at, src, len| {
                if let Some(s) = src {
                    for (d, g) in dx[s..s + len].iter_mut().zip(&dcols[at..at + len]) {
                        *d += *g;
                    }
                }
            });
        });
    }
    Ok((dx, Shape::from((b, win.hw, c))))
}

fn grad_weight<T: Elem>(
    x: &[T],
    lx: &Layout,
    gy: &[T],
    lg: &Layout,
    win: &Window,
) -> Result<(Vec<T>, Shape)> {
    let (b, hw, c) = lx.shape().dims3()?;
    let (_, n, co) = lg.shape().dims3()?;
    let kc = win.taps * c;
    let (x, gy) = (slice(x, lx)?, slice(gy, lg)?);
    let mut dw = vec![T::default(); kc * co];
    if let Some((h, w_)) =
        win.direct3(c.is_multiple_of(direct3::LANES) && co.is_multiple_of(direct3::LANES))
    {
        direct3::conv3_grad_weight(x, (b, h, w_, c), gy, co, &mut dw);
        return Ok((dw, Shape::from((kc, co))));
    }
    if win.kind == Kind::Identity {
        matmul(
            &mut dw,
            kc,
            co,
            b * n,
            transposed(x, kc),
            row_major(gy, co),
            false,
        );
        return Ok((dw, Shape::from((kc, co))));
    }
    for (s0, sn) in tiles(b, n * kc) {
        T::with_scratch(sn * n * kc, |cols| {
            im2col(&x[s0 * hw * c..], sn, c, win, cols);
            // dw[kc×co] += colsᵀ[kc×rows] · gy[rows×co] over the tile's rows
            let g = row_major(&gy[s0 * n * co..], co);
            matmul(&mut dw, kc, co, sn * n, transposed(cols, kc), g, s0 > 0);
        });
    }
    Ok((dw, Shape::from((kc, co))))
}

impl Conv {
    /// The input gradient (only when the input is itself computed or trained: never for the data) and the
    /// weight gradient.
    fn grads(&self, x: &Tensor, w: &Tensor, gy: &Tensor) -> Result<(Option<Tensor>, Tensor)> {
        let c = x.dim(2)?;
        let dx = match x.track_op() {
            true => Some(gy.apply_op2_no_bwd(w, &ConvGradInput(self.0.clone(), c))?),
            false => None,
        };
        Ok((dx, x.apply_op2_no_bwd(gy, &ConvGradWeight(self.0.clone()))?))
    }
}

/// The forward of the convolution without a bias on CPU storages (for an op that fuses more after it).
pub(crate) fn forward<T: Elem>(
    x: &[T],
    lx: &Layout,
    w: &[T],
    lw: &Layout,
    win: &Window,
) -> Result<(Vec<T>, Shape)> {
    fwd(x, lx, w, lw, None, win)
}

/// Gradients of the convolution (without bias) from the gradient `gz` of its output: input (when it
/// tracks) and weight.
pub(crate) fn grads(
    win: &Window,
    x: &Tensor,
    w: &Tensor,
    gz: &Tensor,
) -> Result<(Option<Tensor>, Tensor)> {
    Conv(win.clone()).grads(x, w, gz)
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "im2col-conv"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        on_floats!("im2col-conv", [s1 => x, s2 => w], fwd(x, l1, w, l2, None, &self.0)?)
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.grads(x, w, &gy.contiguous()?)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for Conv {
    fn name(&self) -> &'static str {
        "im2col-conv-bias"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        on_floats!("im2col-conv-bias", [s1 => x, s2 => w, s3 => b],
            fwd(x, l1, w, l2, Some(slice(b, l3)?), &self.0)?)
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gy = gy.contiguous()?;
        let (dx, dw) = self.grads(x, w, &gy)?;
        Ok((dx, Some(dw), Some(crate::bias::column_sum(&gy)?)))
    }
}

impl CustomOp2 for ConvGradInput {
    fn name(&self) -> &'static str {
        "im2col-conv-grad-input"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        on_floats!("im2col-conv-grad-input", [s1 => g, s2 => w],
            grad_input(g, l1, w, l2, &self.0, self.1)?)
    }
}

impl CustomOp2 for ConvGradWeight {
    fn name(&self) -> &'static str {
        "im2col-conv-grad-weight"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        on_floats!("im2col-conv-grad-weight", [s1 => x, s2 => g],
            grad_weight(x, l1, g, l2, &self.0)?)
    }
}

/// The convolution `[B, hw, C]` × `[taps·C, Cout]` (+ bias `[Cout]`) → `[B, n_out, Cout]` as one CPU op
/// with its own backward.
pub fn conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, win: &Window) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        None => x.apply_op2(&w, Conv(win.clone())),
        Some(b) => x.apply_op3(&w, &b.contiguous()?, Conv(win.clone())),
    }
}
