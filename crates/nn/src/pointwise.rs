//! One-pass CPU ops for what follows a convolution: the activation, 2×2 pooling and batch normalisation,
//! each with a backward that is one op too. Built from candle ops, an activation's backward is three passes
//! (compare, convert, multiply), a 2×2 max pool's forward a copy and two reductions and its backward several
//! broadcast comparisons, and batch norm a dozen passes each way; on a 28×28 CNN those passes took more time
//! than the convolutions' matrix products.
//!
//! Layout as in [`crate::ops`]: channel-last `[B, h·w, C]`. f32 and f64 (the gradient checks run in f64).
//! Each op is checked against finite differences and against the candle-op path in `ops`' tests.

use crate::act_fn::{lit, with_act, ActFn, Gelu, Identity, Relu, Silu, Tanh};
use crate::cpu::{on_floats, slice, Elem, Scratch};
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor,
};
use space::arch::Act;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// 2×2 pooling, stride 2, of `[B, h·w, C]` (odd last row/column dropped). A max pool's forward leaves the
/// position (0–3) of each output's first maximum in `arg` and the activation's input there in `sel`, which
/// its backward reads: recomputing them there branched on every tie (the zeros after a ReLU) and read the
/// whole input again, and cost more than the convolution's backward.
#[derive(Clone)]
pub struct Pool2 {
    h: usize,
    w: usize,
    max: bool,
    arg: Arc<Mutex<Vec<u32>>>,
    sel: Arc<Mutex<Scratch>>,
    /// Per-channel values added to the input first (a convolution's bias, see [`conv_act_pool`]); empty
    /// for none.
    pub(crate) bias: Arc<Mutex<Scratch>>,
}

impl Pool2 {
    /// Calls `f(out, top, bottom)` for every output pixel: the offset of its channels, and the offsets of
    /// its window's top and bottom pairs of input pixels (each pair `2·C` adjacent values).
    fn windows(&self, b: usize, c: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (h2, w2, w) = (self.h / 2, self.w / 2, self.w);
        let mut out = 0;
        for bi in 0..b {
            for oy in 0..h2 {
                for ox in 0..w2 {
                    let p = (bi * self.h + 2 * oy) * w + 2 * ox;
                    f(out, p * c, (p + w) * c);
                    out += c;
                }
            }
        }
    }

    /// 2×2 max (`max`) or average pooling of an h×w map.
    pub fn new(h: usize, w: usize, max: bool) -> Pool2 {
        let arg = Arc::new(Mutex::new(Vec::new()));
        let sel = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let bias = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        Pool2 {
            h,
            w,
            max,
            arg,
            sel,
            bias,
        }
    }

    /// The bias to add per channel (zeros for none).
    fn bias<T: Elem>(&self, c: usize) -> Vec<T> {
        let mut bias = self.bias.lock().unwrap();
        let bias = T::part(&mut bias);
        match bias.len() == c {
            true => bias.clone(),
            false => vec![T::zero(); c],
        }
    }

    /// Pools `act(x + bias)`, the bias and the activation applied on the fly.
    fn forward<T: Elem, A: ActFn<T>>(&self, x: &[T], b: usize, c: usize) -> Vec<T> {
        let bs = &self.bias::<T>(c)[..];
        let n = b * (self.h / 2) * (self.w / 2) * c;
        let mut y = vec![T::zero(); n];
        let q = lit::<T>(0.25);
        let mut arg = self.arg.lock().unwrap();
        let mut sel = self.sel.lock().unwrap();
        let sel = T::part(&mut sel);
        if self.max {
            arg.resize(n, 0);
            sel.resize(n, T::zero());
        }
        self.windows(b, c, |o, t, u| {
            let (x0, x1) = x[t..t + 2 * c].split_at(c);
            let (x2, x3) = x[u..u + 2 * c].split_at(c);
            // Every slice exactly C long, so that the loops run without bounds checks.
            let (out, bs) = (&mut y[o..o + c], &bs[..c]);
            if !self.max {
                for i in 0..c {
                    let (a, b, cc, d) =
                        (x0[i] + bs[i], x1[i] + bs[i], x2[i] + bs[i], x3[i] + bs[i]);
                    out[i] = (A::f(a) + A::f(b) + A::f(cc) + A::f(d)) * q;
                }
                return;
            }
            let (at, pre) = (&mut arg[o..o + c], &mut sel[o..o + c]);
            for i in 0..c {
                let (p0, p1, p2, p3) = (x0[i] + bs[i], x1[i] + bs[i], x2[i] + bs[i], x3[i] + bs[i]);
                let (a, b, cc, d) = (A::f(p0), A::f(p1), A::f(p2), A::f(p3));
                // Strict comparisons keep the earlier position on a tie.
                let (m1, k1, p1) = if b > a { (b, 1, p1) } else { (a, 0, p0) };
                let (m2, k2, p2) = if d > cc { (d, 3, p3) } else { (cc, 2, p2) };
                (out[i], at[i], pre[i]) = if m2 > m1 { (m2, k2, p2) } else { (m1, k1, p1) };
            }
        });
        y
    }

    /// The gradient with respect to the pre-activation `pre` (`[B, h·w, C]`) of pooling `act(pre)`. Max:
    /// the gradient goes to the first maximum of each window (as in PyTorch); average: a quarter to each.
    fn backward<T: Elem, A: ActFn<T>>(&self, pre: &[T], gy: &[T], b: usize, c: usize) -> Vec<T> {
        let bs = &self.bias::<T>(c)[..];
        let mut dx = vec![T::zero(); pre.len()];
        let q = lit::<T>(0.25);
        let arg = self.arg.lock().unwrap();
        let mut sel = self.sel.lock().unwrap();
        let sel = T::part(&mut sel);
        self.windows(b, c, |o, t, u| {
            let g = &gy[o..o + c];
            if self.max {
                // One store per output, at its maximum's place (found by table, not by branches: ties,
                // the zeros after a ReLU, make branches unpredictable); the rest of dx stays zero.
                let (at, pre) = (&arg[o..o + c], &sel[o..o + c]);
                let place = [t, t + c, u, u + c];
                for i in 0..c {
                    dx[place[at[i] as usize & 3] + i] = A::df(pre[i], g[i]);
                }
                return;
            }
            let (top, rest) = dx.split_at_mut(u);
            // Every slice exactly C long, so that the loop runs without bounds checks.
            let (d0, d1) = top[t..t + 2 * c].split_at_mut(c);
            let (d2, d3) = rest[..2 * c].split_at_mut(c);
            let (p0, p1) = pre[t..t + 2 * c].split_at(c);
            let (p2, p3) = pre[u..u + 2 * c].split_at(c);
            let (g, bs) = (&g[..c], &bs[..c]);
            for i in 0..c {
                let v = g[i] * q;
                d0[i] = A::df(p0[i] + bs[i], v);
                d1[i] = A::df(p1[i] + bs[i], v);
                d2[i] = A::df(p2[i] + bs[i], v);
                d3[i] = A::df(p3[i] + bs[i], v);
            }
        });
        dx
    }
}

/// Per-channel mean, biased variance and 1/√(var + eps) of `[N, C]` rows (two passes, as the candle-op
/// version computes them).
fn moments<T: Elem>(x: &[T], c: usize, eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let n = lit::<T>((x.len() / c) as f64);
    let mut mean = vec![T::zero(); c];
    for row in x.chunks_exact(c) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![T::zero(); c];
    for row in x.chunks_exact(c) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    var.iter_mut().for_each(|s| *s /= n);
    let inv = var
        .iter()
        .map(|&v| T::one() / (v + lit::<T>(eps)).sqrt())
        .collect();
    (mean, var, inv)
}

/// dx, then dγ and dβ (`N·C + 2C` values): with x̂ the normalised input,
/// dx = γ/σ · (gy − mean(gy) − x̂ · mean(gy · x̂)), dγ = Σ gy · x̂, dβ = Σ gy.
fn batch_norm_backward<T: Elem>(x: &[T], g: &[T], gy: &[T], mean: &[T], inv: &[T]) -> Vec<T> {
    let c = g.len();
    let (mut dg, mut db) = (vec![T::zero(); c], vec![T::zero(); c]);
    for (row, grow) in x.chunks_exact(c).zip(gy.chunks_exact(c)) {
        for i in 0..c {
            db[i] += grow[i];
            dg[i] += grow[i] * (row[i] - mean[i]) * inv[i];
        }
    }
    // dx = a·gy + b·x + k per channel, with a = γ/σ, b = −a·dγ/(nσ), k = −a·dβ/n − b·mean.
    let n = lit::<T>((x.len() / c) as f64);
    let a: Vec<T> = (0..c).map(|i| g[i] * inv[i]).collect();
    let bx: Vec<T> = (0..c).map(|i| -a[i] * inv[i] * dg[i] / n).collect();
    let k: Vec<T> = (0..c)
        .map(|i| -a[i] * db[i] / n - bx[i] * mean[i])
        .collect();
    let mut dx = vec![T::zero(); x.len() + 2 * c];
    let (body, tail) = dx.split_at_mut(x.len());
    for ((out, row), grow) in body
        .chunks_exact_mut(c)
        .zip(x.chunks_exact(c))
        .zip(gy.chunks_exact(c))
    {
        for i in 0..c {
            out[i] = a[i] * grow[i] + bx[i] * row[i] + k[i];
        }
    }
    tail[..c].copy_from_slice(&dg);
    tail[c..].copy_from_slice(&db);
    dx
}

/// Batch normalisation in training mode over the rows of `[N, C]` (or `[B, L, C]`): `(x − mean) / √(var + eps)
/// · γ + β` with the batch's mean and biased variance.
fn batch_norm_forward<T: Elem>(x: &[T], g: &[T], b: &[T], eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (mean, var, inv) = moments(x, g.len(), eps);
    (normalize(x, g, b, &mean, &inv), mean, var)
}

/// `(x − mean) · inv · γ + β` per channel.
fn normalize<T: Elem>(x: &[T], g: &[T], b: &[T], mean: &[T], inv: &[T]) -> Vec<T> {
    let c = g.len();
    let scale: Vec<T> = inv.iter().zip(g).map(|(&i, &g)| i * g).collect();
    let shift: Vec<T> = (0..c).map(|i| b[i] - mean[i] * scale[i]).collect();
    let mut y = vec![T::zero(); x.len()];
    for (out, row) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for i in 0..c {
            out[i] = row[i] * scale[i] + shift[i];
        }
    }
    y
}

/// What follows a convolution or dense layer, as one op: batch norm in training mode (γ and β are the op's
/// second and third operands; the batch statistics are left in `stats`, mean then variance), the activation,
/// then 2×2 pooling, each optional. One node in the autograd graph instead of one per step: candle's
/// backward allocates, zeroes and adds a gradient buffer for every node.
#[derive(Clone)]
pub(crate) struct Tail {
    pub(crate) bn: Option<f64>,
    act: Option<Act>,
    pub(crate) pool: Option<Pool2>,
    pub(crate) stats: Arc<Mutex<Vec<f64>>>,
}

impl Tail {
    /// `x` is `[B, h·w, C]` with pooling, else any shape with C last.
    pub(crate) fn dims(&self, l: &Layout) -> Result<(usize, usize)> {
        let dims = l.shape().dims();
        let c = *dims.last().unwrap_or(&1);
        if let Some(p) = &self.pool {
            if dims.len() != 3 || dims[1] != p.h * p.w {
                bail!("pool2: {:?} is not {}×{}", l.shape(), p.h, p.w);
            }
        }
        Ok((dims.first().copied().unwrap_or(1), c))
    }

    pub(crate) fn out_shape(&self, l: &Layout) -> Result<Shape> {
        let (b, c) = self.dims(l)?;
        Ok(match &self.pool {
            Some(p) => Shape::from((b, (p.h / 2) * (p.w / 2), c)),
            None => l.shape().clone(),
        })
    }

    pub(crate) fn forward<T: Elem>(
        &self,
        x: &[T],
        bn: Option<(&[T], &[T])>,
        b: usize,
        c: usize,
    ) -> Vec<T> {
        let normed = match (self.bn, bn) {
            (Some(eps), Some((g, beta))) => {
                let (y, mean, var) = batch_norm_forward(x, g, beta, eps);
                let mut stats = self.stats.lock().unwrap();
                stats.clear();
                stats.extend(mean.iter().chain(&var).map(|v| v.to_f64().unwrap()));
                Cow::Owned(y)
            }
            _ => Cow::Borrowed(x),
        };
        with_act!(self.act, A => match &self.pool {
            Some(p) => p.forward::<T, A>(&normed, b, c),
            None if self.act.is_none() => normed.into_owned(),
            None => normed.iter().map(|&v| A::f(v)).collect(),
        })
    }

    /// dx, followed by dγ and dβ with batch norm.
    fn backward<T: Elem>(
        &self,
        x: &[T],
        bn: Option<(&[T], &[T])>,
        gy: &[T],
        b: usize,
        c: usize,
    ) -> Vec<T> {
        let bn = self.bn.zip(bn).map(|(eps, (g, beta))| {
            // The forward's statistics (exact: f32 → f64 → f32); a backward always follows its forward.
            let stats = self.stats.lock().unwrap();
            assert_eq!(
                stats.len(),
                2 * c,
                "batch-norm backward without its forward"
            );
            let t = |v: &f64| T::from(*v).unwrap();
            let mean: Vec<T> = stats[..c].iter().map(t).collect();
            let inv = stats[c..]
                .iter()
                .map(|v| T::one() / (t(v) + lit::<T>(eps)).sqrt())
                .collect::<Vec<T>>();
            (g, beta, mean, inv)
        });
        // The activation's input: the batch norm's output, recomputed.
        let pre = match &bn {
            Some((g, beta, mean, inv)) if self.act.is_some() => {
                Cow::Owned(normalize(x, g, beta, mean, inv))
            }
            _ => Cow::Borrowed(x),
        };
        let g_norm = with_act!(self.act, A => match &self.pool {
            Some(p) => p.backward::<T, A>(&pre, gy, b, c),
            None if self.act.is_none() => gy.to_vec(),
            None => pre.iter().zip(gy).map(|(&v, &g)| A::df(v, g)).collect(),
        });
        match bn {
            Some((g, _, mean, inv)) => batch_norm_backward(x, g, &g_norm, &mean, &inv),
            None => g_norm,
        }
    }
}

/// The backward of [`Tail`]: operands `x`, `gy` (and `γ`, `β` between them with batch norm).
pub(crate) struct TailGrad(pub(crate) Tail);

impl CustomOp1 for Tail {
    fn name(&self) -> &'static str {
        "tail"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c) = self.dims(l)?;
        on_floats!("tail", [s => x], (self.forward(slice(x, l)?, None, b, c), self.out_shape(l)?))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(
            &gy.contiguous()?,
            &TailGrad(self.clone()),
        )?))
    }
}

impl CustomOp2 for TailGrad {
    fn name(&self) -> &'static str {
        "tail-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c) = self.0.dims(l1)?;
        on_floats!("tail-grad", [s1 => x, s2 => g], {
            let dx = self.0.backward(slice(x, l1)?, None, slice(g, l2)?, b, c);
            (dx, l1.shape().clone())
        })
    }
}

impl CustomOp3 for Tail {
    fn name(&self) -> &'static str {
        "tail-bn"
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
        let (b, c) = self.dims(l1)?;
        if l2.shape().elem_count() != c || l3.shape().elem_count() != c {
            bail!(
                "batch-norm: {:?} with γ {:?}, β {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        on_floats!("tail-bn", [s1 => x, s2 => g, s3 => beta], {
            let bn = (slice(g, l2)?, slice(beta, l3)?);
            (self.forward(slice(x, l1)?, Some(bn), b, c), self.out_shape(l1)?)
        })
    }
    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c) = (x.elem_count(), g.elem_count());
        let gb = Tensor::cat(&[g.flatten_all()?, beta.flatten_all()?], 0)?;
        let all = x.apply_op3_no_bwd(&gb, &gy.contiguous()?, &TailGrad(self.clone()))?;
        Ok((
            Some(all.narrow(0, 0, n)?.reshape(x.shape())?),
            Some(all.narrow(0, n, c)?.reshape(g.shape())?),
            Some(all.narrow(0, n + c, c)?.reshape(beta.shape())?),
        ))
    }
}

impl CustomOp3 for TailGrad {
    fn name(&self) -> &'static str {
        "tail-bn-grad"
    }
    /// Operands `x`, γ and β concatenated, `gy`; the result is dx, dγ, dβ flattened into one vector.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c) = self.0.dims(l1)?;
        let n = l1.shape().elem_count();
        on_floats!("tail-bn-grad", [s1 => x, s2 => gb, s3 => g], {
            let gb = slice(gb, l2)?;
            let all = self.0.backward(slice(x, l1)?, Some(gb.split_at(c)), slice(g, l3)?, b, c);
            (all, Shape::from(n + 2 * c))
        })
    }
}

impl Tail {
    pub(crate) fn new(bn: Option<f64>, act: Option<Act>, pool: Option<Pool2>) -> Tail {
        let stats = Arc::new(Mutex::new(Vec::new()));
        Tail {
            bn,
            act,
            pool,
            stats,
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self)
    }
}

/// The activation `a` of `x` as one CPU op with a one-pass backward.
pub fn activation(x: &Tensor, a: Act) -> Result<Tensor> {
    Tail::new(None, Some(a), None).apply(x)
}

/// 2×2 max or average pooling, stride 2, of `[B, h·w, C]` as one CPU op with a one-pass backward.
pub fn pool2(x: &Tensor, h: usize, w: usize, max: bool) -> Result<Tensor> {
    Tail::new(None, None, Some(Pool2::new(h, w, max))).apply(x)
}

/// Batch norm in training mode: γ, β, ε.
pub type BatchNormArgs<'a> = (&'a Tensor, &'a Tensor, f64);

/// [`Tail`]: optional batch norm in training mode (γ, β, ε), activation and 2×2 pooling of `x` as one CPU op;
/// returns the output and, with batch norm, the batch mean and biased variance (`[1, C]` each).
pub fn tail(
    x: &Tensor,
    bn: Option<BatchNormArgs>,
    act: Option<Act>,
    pool: Option<Pool2>,
) -> Result<(Tensor, Option<(Tensor, Tensor)>)> {
    let Some((gamma, beta, eps)) = bn else {
        return Ok((Tail::new(None, act, pool).apply(x)?, None));
    };
    let op = Tail::new(Some(eps), act, pool);
    let stats = op.stats.clone();
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, Some(batch_stats(&stats, x)?)))
}

/// The batch mean and biased variance (`[1, C]` each, of `x`'s dtype and device) that a batch-norm
/// [`Tail`]'s forward left in its `stats`.
pub(crate) fn batch_stats(stats: &Mutex<Vec<f64>>, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let stats = stats.lock().unwrap();
    let c = stats.len() / 2;
    let stat = |i: usize| {
        Tensor::from_slice(&stats[i * c..(i + 1) * c], (1, c), x.device())?.to_dtype(x.dtype())
    };
    Ok((stat(0)?, stat(1)?))
}

/// Batch normalisation in training mode of `[N, C]` as one CPU op: the output, the batch mean `[1, C]` and
/// the biased batch variance `[1, C]` (as [`crate::ops::batch_norm_train`] returns them).
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (y, stats) = tail(x, Some((gamma, beta, eps)), None, None)?;
    let (mean, var) = stats.expect("batch norm returns its statistics");
    Ok((y, mean, var))
}
