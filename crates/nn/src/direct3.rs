//! A direct 3×3 convolution, stride 1, padding 1, channel-last, without im2col: each sample is copied once
//! into a zero-bordered scratch image, and each block of 4 output pixels × 16 output channels (or 8 × 8) is
//! accumulated in registers over the 9 taps and the input channels. It serves the forward of such a layer
//! and, with the kernel flipped and transposed ([`flip`]), its input gradient; the weight gradient sums
//! 8 × 8 channel blocks over each sample's pixels ([`conv3_grad_weight`]). With 8–16 channels (NAS-Bench-201's
//! cells) im2col's copies were a fifth of a step and the gemm's 6-wide micro-tiles fit 8 columns badly.
//!
//! Summation order is fixed (taps, then input channels, per output value), so results do not depend on the
//! thread count. Fused multiply-add is used where the CPU has it (as `gemm` does).

use crate::cpu::Elem;

/// Output channels per register block: a kernel layer qualifies when its output channels are a multiple.
pub(crate) const LANES: usize = 8;

/// `y[B, h·w, co] += conv3x3(x[B, h·w, c], wt[9·c, co])`: stride 1, padding 1; `co` a multiple of
/// [`LANES`].
pub(crate) fn conv3<T: Elem>(
    x: &[T],
    (b, h, w, c): (usize, usize, usize, usize),
    wt: &[T],
    co: usize,
    y: &mut [T],
) {
    assert!(co.is_multiple_of(LANES) && wt.len() == 9 * c * co);
    assert!(x.len() >= b * h * w * c && y.len() >= b * h * w * co);
    T::with_scratch((h + 2) * (w + 2) * c, |pad| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { conv3_fma(x, (b, h, w, c), wt, co, y, pad) };
        }
        conv3_with::<T, false>(x, (b, h, w, c), wt, co, y, pad)
    })
}

/// [`conv3_with`] compiled for AVX2 and FMA (the loops hold no closure, which would not inherit them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn conv3_fma<T: Elem>(
    x: &[T],
    dims: (usize, usize, usize, usize),
    wt: &[T],
    co: usize,
    y: &mut [T],
    pad: &mut [T],
) {
    conv3_with::<T, true>(x, dims, wt, co, y, pad)
}

#[inline(always)]
fn conv3_with<T: Elem, const FMA: bool>(
    x: &[T],
    (b, h, w, c): (usize, usize, usize, usize),
    wt: &[T],
    co: usize,
    y: &mut [T],
    pad: &mut [T],
) {
    pad.fill(T::zero());
    for bi in 0..b {
        pad_image(&x[bi * h * w * c..(bi + 1) * h * w * c], (w, c), pad);
        let out = &mut y[bi * h * w * co..(bi + 1) * h * w * co];
        // Eight accumulators either way: two lane blocks × 4 pixels, or one × 8 (an FMA's latency is
        // hidden only with enough independent sums in flight).
        if co.is_multiple_of(2 * LANES) {
            rows::<T, FMA, 2, 4>(pad, wt, (h, w, c, co), out);
        } else {
            rows::<T, FMA, 1, 8>(pad, wt, (h, w, c, co), out);
        }
    }
}

/// Copies one `[h·w, c]` image into the inside of the `(h+2)×(w+2)` zero-bordered `pad`.
#[inline(always)]
fn pad_image<T: Elem>(img: &[T], (w, c): (usize, usize), pad: &mut [T]) {
    for (r, row) in img.chunks_exact(w * c).enumerate() {
        let at = ((r + 1) * (w + 2) + 1) * c;
        pad[at..at + w * c].copy_from_slice(row);
    }
}

/// The weight gradient of [`conv3`]: `dw[9·c, co] += Σ` over output pixels of `x`'s window ⊗ `gy`'s pixel,
/// sample by sample; `c` and `co` multiples of [`LANES`].
pub(crate) fn conv3_grad_weight<T: Elem>(
    x: &[T],
    (b, h, w, c): (usize, usize, usize, usize),
    gy: &[T],
    co: usize,
    dw: &mut [T],
) {
    assert!(c.is_multiple_of(LANES) && co.is_multiple_of(LANES) && dw.len() == 9 * c * co);
    assert!(x.len() >= b * h * w * c && gy.len() >= b * h * w * co);
    T::with_scratch((h + 2) * (w + 2) * c, |pad| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { grad_weight_fma(x, (b, h, w, c), gy, co, dw, pad) };
        }
        grad_weight_with::<T, false>(x, (b, h, w, c), gy, co, dw, pad)
    })
}

/// [`grad_weight_with`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn grad_weight_fma<T: Elem>(
    x: &[T],
    dims: (usize, usize, usize, usize),
    gy: &[T],
    co: usize,
    dw: &mut [T],
    pad: &mut [T],
) {
    grad_weight_with::<T, true>(x, dims, gy, co, dw, pad)
}

#[inline(always)]
fn grad_weight_with<T: Elem, const FMA: bool>(
    x: &[T],
    (b, h, w, c): (usize, usize, usize, usize),
    gy: &[T],
    co: usize,
    dw: &mut [T],
    pad: &mut [T],
) {
    let wp = w + 2;
    pad.fill(T::zero());
    for bi in 0..b {
        pad_image(&x[bi * h * w * c..(bi + 1) * h * w * c], (w, c), pad);
        let g = &gy[bi * h * w * co..(bi + 1) * h * w * co];
        for t in 0..9 {
            let (ky, kx) = (t / 3, t % 3);
            for c0 in (0..c).step_by(LANES) {
                for o0 in (0..co).step_by(LANES) {
                    // Eight input × eight output channels of tap t, summed over the sample's pixels.
                    let mut acc = [[T::zero(); LANES]; LANES];
                    for oy in 0..h {
                        let xrow = &pad[((oy + ky) * wp + kx) * c + c0..][..(w - 1) * c + LANES];
                        let grow = &g[oy * w * co + o0..][..(w - 1) * co + LANES];
                        for ox in 0..w {
                            let gv: &[T; LANES] = grow[ox * co..][..LANES].try_into().unwrap();
                            let xv: &[T; LANES] = xrow[ox * c..][..LANES].try_into().unwrap();
                            for (a, &xi) in acc.iter_mut().zip(xv) {
                                for (a, &gj) in a.iter_mut().zip(gv) {
                                    *a = if FMA {
                                        xi.mul_add(gj, *a)
                                    } else {
                                        *a + xi * gj
                                    };
                                }
                            }
                        }
                    }
                    for (i, a) in acc.iter().enumerate() {
                        let dst = &mut dw[(t * c + c0 + i) * co + o0..][..LANES];
                        for (d, &v) in dst.iter_mut().zip(a) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// Every output row of one sample, in blocks of `P` pixels × `L`·[`LANES`] channels (then single pixels).
#[inline(always)]
fn rows<T: Elem, const FMA: bool, const L: usize, const P: usize>(
    pad: &[T],
    wt: &[T],
    (h, w, c, co): (usize, usize, usize, usize),
    out: &mut [T],
) {
    let dims = (w, c, co);
    for oy in 0..h {
        for o0 in (0..co).step_by(L * LANES) {
            let mut ox = 0;
            while ox + P <= w {
                block::<T, FMA, L, P>(pad, wt, (oy, ox, o0), dims, out);
                ox += P;
            }
            while ox < w {
                block::<T, FMA, L, 1>(pad, wt, (oy, ox, o0), dims, out);
                ox += 1;
            }
        }
    }
}

/// Output pixels `(oy, ox … ox + P)`, channels `o0 … o0 + L·LANES`, added into `out` (`[h·w, co]`).
#[inline(always)]
fn block<T: Elem, const FMA: bool, const L: usize, const P: usize>(
    pad: &[T],
    wt: &[T],
    (oy, ox, o0): (usize, usize, usize),
    (w, c, co): (usize, usize, usize),
    out: &mut [T],
) {
    let wp = w + 2;
    // Every index below stays inside these two ranges (checked once, not per multiply-add).
    assert!(((oy + 2) * wp + ox + 2 + P) * c <= pad.len() && o0 + L * LANES <= co);
    assert!(9 * c * co <= wt.len());
    let mut acc = [[[T::zero(); LANES]; L]; P];
    for ky in 0..3 {
        for kx in 0..3 {
            let x0 = ((oy + ky) * wp + ox + kx) * c;
            let w0 = (ky * 3 + kx) * c * co + o0;
            for ci in 0..c {
                for l in 0..L {
                    // SAFETY: w0 + ci·co + l·LANES + LANES ≤ 9·c·co ≤ wt.len() (asserted above).
                    let wv: [T; LANES] = unsafe {
                        std::ptr::read_unaligned(wt.as_ptr().add(w0 + ci * co + l * LANES).cast())
                    };
                    for (p, a) in acc.iter_mut().enumerate() {
                        // SAFETY: x0 + p·c + ci < ((oy + 2)·wp + ox + 2 + P)·c ≤ pad.len() (asserted).
                        let xv = unsafe { *pad.get_unchecked(x0 + p * c + ci) };
                        for (a, &wj) in a[l].iter_mut().zip(&wv) {
                            *a = if FMA {
                                xv.mul_add(wj, *a)
                            } else {
                                *a + xv * wj
                            };
                        }
                    }
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        let dst = &mut out[(oy * w + ox + p) * co + o0..][..L * LANES];
        for (d, &v) in dst.iter_mut().zip(a.iter().flatten()) {
            *d += v;
        }
    }
}

/// The kernel of the input gradient: `flipped[t′·co + o][i] = wt[t·c + i][o]` with `t′ = 8 − t`, so that
/// `dx = conv3(gy, flipped)` (a 3×3 stride-1 window is its own mirror image).
pub(crate) fn flip<T: Elem>(wt: &[T], c: usize, co: usize) -> Vec<T> {
    let mut f = vec![T::zero(); wt.len()];
    for t in 0..9 {
        for i in 0..c {
            for o in 0..co {
                f[((8 - t) * co + o) * c + i] = wt[(t * c + i) * co + o];
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_op::window_index;
    use space::Rng;

    /// The plain definition: every output value as a sum over the window index.
    fn reference(
        x: &[f64],
        (b, h, w, c): (usize, usize, usize, usize),
        wt: &[f64],
        co: usize,
    ) -> Vec<f64> {
        let (idx, _, _) = window_index(h, w, 3, 1, 1);
        let mut y = vec![0.0; b * h * w * co];
        for bi in 0..b {
            for (p, taps) in idx.chunks_exact(9).enumerate() {
                for (t, &src) in taps.iter().enumerate() {
                    if src as usize == h * w {
                        continue;
                    }
                    for i in 0..c {
                        let xv = x[(bi * h * w + src as usize) * c + i];
                        for o in 0..co {
                            y[(bi * h * w + p) * co + o] += xv * wt[(t * c + i) * co + o];
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn direct_conv_and_its_flip_match_the_window_sums() {
        let mut rng = Rng::derive(4, "direct3", &[]);
        // Widths with and without a remainder of 4-pixel blocks, one to three lane blocks, one channel.
        for (b, h, w, c, co) in [
            (2, 5, 7, 3, 8),
            (1, 4, 4, 8, 16),
            (2, 3, 9, 1, 24),
            (1, 1, 1, 2, 8),
            (2, 5, 6, 16, 8),
        ] {
            let x: Vec<f64> = (0..b * h * w * c).map(|_| rng.normal()).collect();
            let wt: Vec<f64> = (0..9 * c * co).map(|_| rng.normal()).collect();
            let mut y = vec![0.5; b * h * w * co];
            conv3(&x, (b, h, w, c), &wt, co, &mut y);
            let want = reference(&x, (b, h, w, c), &wt, co);
            for (g, r) in y.iter().zip(&want) {
                assert!(
                    (g - 0.5 - r).abs() < 1e-12,
                    "{b}×{h}×{w}×{c}→{co}: {g} vs {r}"
                );
            }
            // The input gradient of Σ y·gy is conv3(gy, flip(wt)): check it against the adjoint identity
            // ⟨conv(x), gy⟩ = ⟨x, dx⟩ on a random gy.
            if c % LANES == 0 {
                let gy: Vec<f64> = (0..b * h * w * co).map(|_| rng.normal()).collect();
                let mut dx = vec![0.0; x.len()];
                conv3(&gy, (b, h, w, co), &flip(&wt, c, co), c, &mut dx);
                let lhs: f64 = want.iter().zip(&gy).map(|(a, b)| a * b).sum();
                let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
                assert!(
                    (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
                    "{lhs} vs {rhs}"
                );
                // And the weight gradient: ⟨conv(x; wt), gy⟩ = ⟨wt, dw⟩, the convolution being linear in wt.
                let mut dw = vec![0.0; wt.len()];
                conv3_grad_weight(&x, (b, h, w, c), &gy, co, &mut dw);
                let rhs: f64 = wt.iter().zip(&dw).map(|(a, b)| a * b).sum();
                assert!(
                    (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
                    "dw: {lhs} vs {rhs}"
                );
            }
        }
    }
}
