//! 3×3 average pooling, stride 1, padded cells not counted (NAS-Bench-201's `avg_pool_3x3`), as one CPU op
//! with its backward, over the window of [`crate::conv_op::Window`].

use crate::conv_op::Window;
use crate::cpu::{on_floats, slice, Elem};
use candle_core::{bail, CpuStorage, Layout, Result, Shape, Tensor};

/// 3×3 average pooling, stride 1, padding 1, padded cells not counted (NAS-Bench-201's `avg_pool_3x3`) on
/// `[B, hw, C]`: `x.apply_op1(AvgPool3(win))` with the window of `Window::new(h, w, 3, 1, 1)`. Built from
/// candle ops it was a gather of nine copies, a sum and a scatter-add backward.
#[derive(Clone)]
struct AvgPool3(Window);
/// Its backward: `gy.apply_op1_no_bwd(AvgPool3Grad(win))`.
struct AvgPool3Grad(AvgPool3);

impl AvgPool3 {
    /// Forward, `y[o] = Σ x[p] / |win(o)|` over the pixels p in o's window; backward, since a 3×3 stride-1
    /// window is symmetric (p is in o's window exactly when o is in p's), `dx[p] = Σ gy[o] / |win(o)|`
    /// over the pixels o in p's window.
    fn run<T: Elem>(&self, x: &[T], l: &Layout, backward: bool) -> Result<(Vec<T>, Shape)> {
        let win = &self.0;
        let (b, hw, c) = l.shape().dims3()?;
        if hw != win.hw || win.n_out() != hw {
            bail!("avg-pool3: {:?} does not fit the window", l.shape());
        }
        let x = slice(x, l)?;
        let inv: Vec<T> = win
            .idx
            .chunks_exact(win.taps)
            .map(|w| T::one() / T::from(w.iter().filter(|&&i| i as usize != hw).count()).unwrap())
            .collect();
        let mut y = vec![T::zero(); x.len()];
        for (xb, yb) in x
            .chunks_exact(hw * c)
            .zip(y.chunks_exact_mut(hw * c))
            .take(b)
        {
            for (o, (taps, out)) in win
                .idx
                .chunks_exact(win.taps)
                .zip(yb.chunks_exact_mut(c))
                .enumerate()
            {
                for &src in taps.iter().filter(|&&i| i as usize != hw) {
                    let s = src as usize;
                    let (xs, k) = (
                        &xb[s * c..(s + 1) * c],
                        if backward { inv[s] } else { T::one() },
                    );
                    for (v, &xv) in out.iter_mut().zip(xs) {
                        *v += k * xv;
                    }
                }
                if !backward {
                    out.iter_mut().for_each(|v| *v *= inv[o]);
                }
            }
        }
        Ok((y, l.shape().clone()))
    }
}

impl candle_core::CustomOp1 for AvgPool3 {
    fn name(&self) -> &'static str {
        "avg-pool3"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        on_floats!("avg-pool3", [s => v], self.run(v, l, false)?)
    }
    fn bwd(&self, _x: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            gy.contiguous()?
                .apply_op1_no_bwd(&AvgPool3Grad(self.clone()))?,
        ))
    }
}

impl candle_core::CustomOp1 for AvgPool3Grad {
    fn name(&self) -> &'static str {
        "avg-pool3-grad"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        on_floats!("avg-pool3-grad", [s => v], self.0.run(v, l, true)?)
    }
}

/// 3×3 average pooling (stride 1, padding 1, padded cells not counted) as one CPU op with its own backward.
pub fn avg_pool3(x: &Tensor, win: &Window) -> Result<Tensor> {
    x.contiguous()?.apply_op1(AvgPool3(win.clone()))
}
