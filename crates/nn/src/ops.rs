//! The differentiable operations training uses, built from candle ops whose gradients we check
//! (see the finite-difference tests below). Feature maps are channel-last: `[batch, height·width, channels]`.
//!
//! Convolution is im2col — a gather (`index_select`) of every k×k window, zero padding via an extra zero pixel
//! — then one matmul: several times faster than candle's direct `conv2d` on CPU, exact, and differentiated by
//! autograd (`index_select` backward is a scatter-add). Pooling is our own: candle's `max_pool2d` backward is
//! wrong (scaled by 1/k², leaks on odd sizes).

use candle_core::{DType, Device, Result, Tensor, D};
use space::arch::Act;

thread_local! {
    static KERNELS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    /// The inputs of every [`activation`] while [`recording_activations`] runs.
    static RECORDED: std::cell::RefCell<Option<Vec<Tensor>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on candle's ops (so every activation is its own op) and returns, with its result, the input of
/// every activation it computed, in order: the pre-activations NASWOT reads ([`crate::proxy::naswot`]).
pub fn recording_activations<R>(f: impl FnOnce() -> R) -> (R, Vec<Tensor>) {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = with_candle_ops(f);
    let inputs = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, inputs)
}

/// Whether `x` goes through the hand-written CPU kernels ([`crate::conv_op`], [`crate::pointwise`]): on the
/// CPU, unless [`with_candle_ops`] turned them off.
pub fn kernels(x: &Tensor) -> bool {
    x.device().is_cpu() && KERNELS.get()
}

/// Runs `f` with every op on this thread built from candle ops, as on a GPU: tests compare whole trainings
/// of the two paths whose rounding must agree (the kernels themselves are compared op by op below).
pub fn with_candle_ops<R>(f: impl FnOnce() -> R) -> R {
    let before = KERNELS.replace(false);
    let r = f();
    KERNELS.set(before);
    r
}

/// Gathers the windows: `[B, h·w, C]` → `[B·ho·wo, k²·C]` (tap-major, channel-minor).
pub fn im2col(x: &Tensor, idx: &Tensor, taps: usize) -> Result<Tensor> {
    let (b, _, c) = x.dims3()?;
    let zero = Tensor::zeros((b, 1, c), x.dtype(), x.device())?;
    let xp = Tensor::cat(&[x, &zero], 1)?;
    let cols = xp.index_select(idx, 1)?;
    let n = idx.dim(0)? / taps;
    cols.reshape((b * n, taps * c))
}

pub use crate::conv_op::{window_index, Window};

/// Convolution `[B, h·w, C]` × `w` `[k²·C, Cout]` (+ bias) → `[B, ho·wo, Cout]`; `win` is `None` for a 1×1
/// stride-1 convolution. On the CPU the hand-written op of [`crate::conv_op`]; elsewhere, and for a grouped
/// network (weights `[G, k²·C, Cout]`, see [`Groups`]), [`conv_gather`].
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    win: Option<&Window>,
    grp: Option<&Groups>,
) -> Result<Tensor> {
    let (b, hw, c) = x.dims3()?;
    let y = match win {
        Some(win) if kernels(x) && grp.is_none() => return crate::conv_op::conv(x, w, bias, win),
        Some(win) => {
            let cols = im2col(x, &win.tensor, win.taps)?;
            matmul(&cols, w, grp)?.reshape((b, win.n_out(), ()))?
        }
        None => matmul(&x.reshape((b * hw, c))?, w, grp)?.reshape((b, hw, ()))?,
    };
    match bias {
        Some(bias) => add_bias(&y, bias, grp),
        None => Ok(y),
    }
}

/// `x` `[N, F]` × `w` `[F, U]` → `[N, U]`; grouped, `w` is `[G, F, U]` and block i of `x`'s rows meets `w[i]`.
pub fn matmul(x: &Tensor, w: &Tensor, grp: Option<&Groups>) -> Result<Tensor> {
    match grp {
        None => x.matmul(w),
        Some(g) => {
            let (n, f) = x.dims2()?;
            x.reshape((g.g, n / g.g, f))?
                .matmul(w)?
                .reshape((n, w.dim(2)?))
        }
    }
}

/// `x + bias` over the last dimension: the hand-written op on the CPU, `broadcast_add` elsewhere; grouped,
/// `bias` is `[G, 1, U]` and block i of `x` gets `bias[i]`.
pub fn add_bias(x: &Tensor, bias: &Tensor, grp: Option<&Groups>) -> Result<Tensor> {
    match grp {
        Some(g) => {
            let u = bias.dim(2)?;
            x.reshape((g.g, (), u))?
                .broadcast_add(bias)?
                .reshape(x.dims())
        }
        None if kernels(x) => crate::bias::add_bias(x, bias),
        None => x.broadcast_add(bias),
    }
}

/// Convolution from candle ops: im2col by `index_select`, then one matmul; autograd differentiates it.
pub fn conv_gather(x: &Tensor, w: &Tensor, win: &Window) -> Result<Tensor> {
    let b = x.dim(0)?;
    let cols = im2col(x, &win.tensor, win.taps)?;
    cols.matmul(w)?.reshape((b, win.n_out(), w.dim(1)?))
}

/// A batch of texts' words: the padding mask `[B, L, 1]` (1 for a word, 0 after a text's words) and each
/// text's word count (its words fill its first slots).
pub struct Words {
    mask: Tensor,
    lens: std::sync::Arc<[usize]>,
}

/// `table`'s rows `[V, E]` named by `ids` `[B, L]` (word ids as floats, 0 padding after a text's words):
/// `[B, L, E]` (padding rows zero on the candle path; on the CPU's, which never reads them, the table's row
/// 0), and the words' [`Words`].
pub fn embed_words(table: &Tensor, ids: &Tensor) -> Result<(Tensor, Words)> {
    let (b, l) = ids.dims2()?;
    let mask = ids.ge(0.5)?.to_dtype(table.dtype())?.reshape((b, l, 1))?;
    let rows = table.index_select(&ids.to_dtype(DType::U32)?.flatten_all()?, 0)?;
    let rows = rows.reshape((b, l, table.dim(1)?))?;
    // The counts only where the CPU ops read them (elsewhere they would copy the ids to the host).
    match kernels(table) {
        true => {
            let lens = crate::word_conv::word_counts(ids)?;
            Ok((rows, Words { mask, lens }))
        }
        false => {
            let rows = rows.broadcast_mul(&mask)?;
            Ok((
                rows,
                Words {
                    mask,
                    lens: std::sync::Arc::from([]),
                },
            ))
        }
    }
}

/// A same-length 1-D convolution over the words of `h` `[B, L, C]` with `w` `[k · C, C']` (the taps in
/// order, each C inputs: PyTorch's `weight[o, c, j]` is `w[j·C + c, o]`), dilation `d`, zeros outside each
/// text's words: `[B, L, C']`. On the CPU one op reading only the words ([`crate::word_conv`]); elsewhere
/// the window's shifted copies side by side times one matrix (the padding must be zero, [`mask_words`]).
pub fn conv1d(h: &Tensor, w: &Tensor, k: usize, d: usize, words: &Words) -> Result<Tensor> {
    if kernels(h) {
        return crate::word_conv::conv1d(h, w, k, d, &words.lens);
    }
    let (b, l, c) = h.dims3()?;
    let cols = if k == 1 {
        h.clone()
    } else {
        let z = Tensor::zeros((b, (k / 2) * d, c), h.dtype(), h.device())?;
        let padded = Tensor::cat(&[&z, h, &z], 1)?;
        let taps: Vec<Tensor> = (0..k)
            .map(|j| padded.narrow(1, j * d, l))
            .collect::<Result<_>>()?;
        Tensor::cat(&taps, D::Minus1)?
    };
    cols.reshape((b * l, k * c))?
        .matmul(w)?
        .reshape((b, l, w.dim(1)?))
}

/// `h` `[B, L, C]` with the slots after each text's words set to zero, which the candle path's next
/// convolution needs; the CPU ops never read them, so there it is `h`.
pub fn mask_words(h: &Tensor, words: &Words) -> Result<Tensor> {
    match kernels(h) {
        true => Ok(h.clone()),
        false => h.broadcast_mul(&words.mask),
    }
}

/// The maximum of `h` `[B, L, C]` over each text's words, per channel: `[B, C]` (zeros for a text without
/// any). On the CPU one op; elsewhere candle ops on the mask.
pub fn max_over_words(h: &Tensor, words: &Words) -> Result<Tensor> {
    if kernels(h) {
        return crate::word_conv::max_over_words(h, &words.lens);
    }
    // Padding slots get minus a billion, so never win where there is a word.
    let shifted = h.broadcast_add(&words.mask.affine(1e9, -1e9)?)?;
    shifted.max(1)?.broadcast_mul(&words.mask.max(1)?)
}

/// The mean of `table`'s rows `[V, U]` named by each row of `ids` `[B, L]` (token ids as floats; ids 0 and
/// 1, padding and unknown, are left out; a row without other ids gives zeros): an embedding bag, `[B, U]`;
/// the weighted bag with each known id's weight one over their count (models from before 2026-12-04).
pub fn bag_mean(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let mask = ids
        .ge(space::TextInput::RESERVED as f64)?
        .to_dtype(table.dtype())?;
    let count = mask.sum_keepdim(1)?.maximum(1.0)?;
    bag_weighted(table, ids, &mask.broadcast_div(&count)?)
}

/// The sum of `table`'s rows `[V, U]` named by each row of `ids` `[B, L]`, each times its weight in
/// `weights` `[B, L]` (ids 0 and 1 left out): a weighted embedding bag (a text's TF-IDF vector times the
/// table), `[B, U]`. On the CPU one op ([`crate::bag`]), elsewhere candle ops; the gradient reaches `table`
/// only.
pub fn bag_weighted(table: &Tensor, ids: &Tensor, weights: &Tensor) -> Result<Tensor> {
    if kernels(table) {
        return crate::bag::bag_weighted(table, ids, weights);
    }
    let (b, l) = ids.dims2()?;
    let rows = table
        .index_select(&ids.to_dtype(DType::U32)?.flatten_all()?, 0)?
        .reshape((b, l, table.dim(1)?))?;
    let mask = ids
        .ge(space::TextInput::RESERVED as f64)?
        .to_dtype(table.dtype())?;
    (mask * weights)?.unsqueeze(1)?.matmul(&rows)?.squeeze(1)
}

/// Fully connected layer: `[B, F]` × `[F, U]` + `[U]` (grouped: see [`matmul`], [`add_bias`]).
pub fn dense(x: &Tensor, w: &Tensor, b: &Tensor, grp: Option<&Groups>) -> Result<Tensor> {
    add_bias(&matmul(x, w, grp)?, b, grp)
}

/// The batch of a grouped network (several networks stacked into one, see
/// [`crate::model::Model::new_grouped`]): `g` blocks of `b` rows, of which the first `rows[i]` of block i are
/// real and the rest padding (the groups' batches differ in size at the end of an epoch).
pub struct Groups {
    /// Number of groups.
    pub g: usize,
    /// Rows per block.
    pub b: usize,
    /// Real rows of each block.
    pub rows: Vec<usize>,
    /// `[g, b, 1]`: 1 for real rows, 0 for padding; `None` when there is no padding.
    mask: Option<Tensor>,
    dtype: DType,
    dev: Device,
}

impl Groups {
    /// Blocks of `max(rows)` rows, the first `rows[i]` of block i real; masks and counts in `dtype`.
    pub fn new(rows: Vec<usize>, dtype: DType, dev: &Device) -> Result<Groups> {
        let b = rows.iter().copied().max().unwrap_or(0);
        let mask = if rows.iter().all(|&r| r == b) {
            None
        } else {
            let m: Vec<f64> = rows
                .iter()
                .flat_map(|&r| (0..b).map(move |i| if i < r { 1.0 } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (rows.len(), b, 1), dev)?.to_dtype(dtype)?)
        };
        Ok(Groups {
            g: rows.len(),
            b,
            rows,
            mask,
            dtype,
            dev: dev.clone(),
        })
    }

    /// `[g, 1, 1]` of a per-group number of the group's real positions, for rows that are `n / (g·b)`
    /// positions each.
    fn per_group(&self, f: impl Fn(f64) -> f64, n: usize) -> Result<Tensor> {
        let l = n / (self.g * self.b);
        let v: Vec<f64> = self.rows.iter().map(|&r| f((r * l) as f64)).collect();
        Tensor::from_vec(v, (self.g, 1, 1), &self.dev)?.to_dtype(self.dtype)
    }

    /// The mask over `n` positions (`[g, n/g, 1]`), each row's `n / (g·b)` positions sharing its flag.
    fn position_mask(&self, n: usize) -> Result<Option<Tensor>> {
        let Some(m) = &self.mask else { return Ok(None) };
        let l = n / (self.g * self.b);
        Ok(Some(
            m.unsqueeze(2)?
                .broadcast_as((self.g, self.b, l, 1))?
                .reshape((self.g, self.b * l, 1))?,
        ))
    }

    /// Unbiased variance from the biased batch variance `var` `[g, 1, C]` of `n` positions.
    pub fn unbiased(&self, var: &Tensor, n: usize) -> Result<Tensor> {
        match &self.mask {
            None => {
                let m = (n / self.g) as f64;
                var * (m / (m - 1.0).max(1.0))
            }
            Some(_) => var.broadcast_mul(&self.per_group(|m| m / (m - 1.0).max(1.0), n)?),
        }
    }
}

/// 2×2 pooling with stride 2 on `[B, h·w, C]` (odd rows/columns dropped, like floor mode): the one-pass op
/// of [`crate::pointwise`] on the CPU, candle ops elsewhere.
pub fn pool2(x: &Tensor, h: usize, w: usize, max: bool) -> Result<Tensor> {
    match kernels(x) {
        true => crate::pointwise::pool2(x, h, w, max),
        false => pool2_candle(x, h, w, max),
    }
}

/// [`pool2`] from candle ops.
fn pool2_candle(x: &Tensor, h: usize, w: usize, max: bool) -> Result<Tensor> {
    let (b, _, c) = x.dims3()?;
    let (h2, w2) = (h / 2, w / 2);
    let mut x4 = x.reshape((b, h, w, c))?;
    if h % 2 == 1 {
        x4 = x4.narrow(1, 0, 2 * h2)?;
    }
    if w % 2 == 1 {
        x4 = x4.narrow(2, 0, 2 * w2)?;
    }
    let x6 = x4.contiguous()?.reshape((b, h2, 2, w2, 2, c))?;
    let y = if max {
        x6.max(4)?.max(2)?
    } else {
        x6.mean(4)?.mean(2)?
    };
    y.reshape((b, h2 * w2, c))
}

/// The activation `a`: the one-pass op of [`crate::pointwise`] on the CPU, candle's elsewhere.
pub fn activation(x: &Tensor, a: Act) -> Result<Tensor> {
    RECORDED.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push(x.clone());
        }
    });
    if kernels(x) {
        return crate::pointwise::activation(x, a);
    }
    activation_candle(x, a)
}

/// [`activation`] from candle ops.
fn activation_candle(x: &Tensor, a: Act) -> Result<Tensor> {
    match a {
        Act::Relu => x.relu(),
        Act::Gelu => x.gelu(),
        Act::Tanh => x.tanh(),
        Act::Silu => x.silu(),
    }
}

/// 3×3 average pooling, stride 1, padding 1, padded cells not counted (NAS-Bench-201's `avg_pool_3x3`).
/// `win` from `Window::new(h, w, 3, 1, 1)`, `inv_count`: `[1, h·w, 1]` of 1/(cells in the window).
/// The CPU kernel of [`crate::conv_op`] on the CPU, candle ops elsewhere.
pub fn avg_pool3(x: &Tensor, win: &Window, inv_count: &Tensor) -> Result<Tensor> {
    if kernels(x) {
        return crate::avg_pool3::avg_pool3(x, win);
    }
    let (b, hw, c) = x.dims3()?;
    let cols = im2col(x, &win.tensor, 9)?.reshape((b, hw, 9, c))?;
    cols.sum(2)?.broadcast_mul(inv_count)
}

/// `inv_count` for [`avg_pool3`].
pub fn avg_pool3_counts(h: usize, w: usize, dtype: DType, dev: &Device) -> Result<Tensor> {
    let (idx, _, _) = window_index(h, w, 3, 1, 1);
    let zero = (h * w) as u32;
    let inv: Vec<f64> = idx
        .chunks(9)
        .map(|win| 1.0 / win.iter().filter(|&&i| i != zero).count() as f64)
        .collect();
    Tensor::from_vec(inv, (1, h * w, 1), dev)?.to_dtype(dtype)
}

/// Batch normalisation in training mode on `[N, C]` (statistics over N); returns the output, the batch mean
/// and the biased batch variance. One op on the CPU ([`crate::pointwise`]), candle ops elsewhere.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    if kernels(x) {
        return crate::pointwise::batch_norm_train(x, gamma, beta, eps);
    }
    batch_norm_train_candle(x, gamma, beta, eps)
}

/// [`batch_norm_train`] from candle ops.
fn batch_norm_train_candle(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let mean = x.mean_keepdim(0)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(0)?;
    let xn = xc.broadcast_div(&(var.clone() + eps)?.sqrt()?)?;
    Ok((xn.broadcast_mul(gamma)?.broadcast_add(beta)?, mean, var))
}

/// [`batch_norm_train`] of a grouped network on `x` `[N, C]` (N = groups × rows × positions): statistics per
/// group over its real rows only; `gamma`, `beta` and the returned mean and variance are `[G, 1, C]`.
pub fn batch_norm_train_grouped(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    grp: &Groups,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, c) = x.dims2()?;
    let x3 = x.reshape((grp.g, n / grp.g, c))?;
    let (mean, xc, var) = match grp.position_mask(n)? {
        None => {
            let mean = x3.mean_keepdim(1)?;
            let xc = x3.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(1)?;
            (mean, xc, var)
        }
        Some(m) => {
            let inv = grp.per_group(|k| 1.0 / k.max(1.0), n)?;
            let mean = x3.broadcast_mul(&m)?.sum_keepdim(1)?.broadcast_mul(&inv)?;
            let xc = x3.broadcast_sub(&mean)?;
            let var = xc
                .sqr()?
                .broadcast_mul(&m)?
                .sum_keepdim(1)?
                .broadcast_mul(&inv)?;
            (mean, xc, var)
        }
    };
    let xn = xc.broadcast_div(&(var.clone() + eps)?.sqrt()?)?;
    let y = xn.broadcast_mul(gamma)?.broadcast_add(beta)?;
    Ok((y.reshape((n, c))?, mean, var))
}

/// Batch normalisation with fixed statistics (inference).
pub fn batch_norm_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let scale = gamma.broadcast_div(&(var + eps)?.sqrt()?)?;
    x.broadcast_sub(mean)?
        .broadcast_mul(&scale)?
        .broadcast_add(beta)
}

/// Softmax cross-entropy, mean over the batch (log-softmax from basic ops).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    target_log_prob(logits, targets)?.mean_all()?.neg()
}

/// Cross-entropy with a weight per row (`weights` `[N, 1]`): Σ wᵢ·(−log pᵢ) / Σ wᵢ, PyTorch's
/// `CrossEntropyLoss(weight=…)` when each row's weight is its class's.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
) -> Result<Tensor> {
    let total = weights.sum_all()?;
    (target_log_prob(logits, targets)? * weights)?
        .sum_all()?
        .div(&total)?
        .neg()
}

/// Log-probability `[N, 1]` of each row's target class under softmax(`logits`), from basic ops (candle's
/// `softmax_last_dim` records no backward).
fn target_log_prob(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let diff = logits.broadcast_sub(&max)?;
    let lse = diff.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = diff.broadcast_sub(&lse)?;
    logp.gather(&targets.unsqueeze(1)?, 1)
}

/// Cross-entropy of a grouped network, per group (`[G]`): the mean over each group's real rows.
pub fn cross_entropy_grouped(logits: &Tensor, targets: &Tensor, grp: &Groups) -> Result<Tensor> {
    let picked = target_log_prob(logits, targets)?.reshape((grp.g, grp.b, 1))?;
    match &grp.mask {
        None => picked.mean(1)?.squeeze(1)?.neg(),
        Some(m) => {
            let inv = grp.per_group(|k| 1.0 / k.max(1.0), grp.g * grp.b)?;
            (picked * m)?
                .sum_keepdim(1)?
                .mul(&inv)?
                .reshape(grp.g)?
                .neg()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use space::Rng;

    fn rand(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|_| rng.normal()).collect::<Vec<f64>>(),
            shape,
            &Device::Cpu,
        )
        .unwrap()
    }

    /// Compares autograd gradients of `sum(f(inputs) * r)` with central differences, on every input.
    fn check(name: &str, inputs: Vec<Tensor>, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
        let mut rng = Rng::derive(1, name, &[]);
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = f(&ts).unwrap();
        let r = rand(out.dims(), &mut rng);
        let loss = |ts: &[Tensor]| -> f64 {
            (f(ts).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = (out * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (vi, v) in vars.iter().enumerate() {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient for input {vi}"));
            let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f64> = inputs[vi].flatten_all().unwrap().to_vec1().unwrap();
            let n = base.len();
            for t in 0..n.min(40) {
                let i = if n <= 40 { t } else { rng.below(n) };
                let eps = 1e-5;
                let at = |d: f64| {
                    let mut b = base.clone();
                    b[i] += d;
                    let mut ts2 = ts.clone();
                    ts2[vi] = Tensor::from_vec(b, inputs[vi].dims(), &Device::Cpu).unwrap();
                    loss(&ts2)
                };
                let num = (at(eps) - at(-eps)) / (2.0 * eps);
                let tol = 1e-5 * (1.0 + num.abs().max(g[i].abs()));
                assert!(
                    (num - g[i]).abs() < tol,
                    "{name}: input {vi} elem {i}: autograd {} vs numeric {num}",
                    g[i]
                );
            }
        }
    }

    /// Largest absolute difference of two f64 tensors of one shape.
    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn grad_conv_same_strided_and_pointwise() {
        let mut rng = Rng::derive(2, "conv", &[]);
        // (h, w, k, stride, pad, channels in, out); 3×3 stride 1 on 12 and more columns with multiples of 8
        // channels runs the direct convolution, the others im2col.
        for (h, w, k, s, p, c, co) in [
            (5, 4, 3, 1, 1, 3, 4),
            (6, 6, 3, 2, 1, 3, 4),
            (5, 5, 5, 1, 2, 3, 4),
            (4, 4, 1, 2, 0, 3, 4),
            (3, 2, 1, 1, 0, 3, 4),
            (2, 17, 3, 1, 1, 8, 8),
            (3, 16, 3, 1, 1, 16, 8),
            (2, 16, 3, 1, 1, 3, 8),
        ] {
            let (win, _, _) = Window::new(h, w, k, s, p, &Device::Cpu).unwrap();
            let x = rand(&[2, h * w, c], &mut rng);
            let wt = rand(&[k * k * c, co], &mut rng);
            let b = rand(&[co], &mut rng);
            check("conv", vec![x.clone(), wt.clone(), b], |t| {
                conv(&t[0], &t[1], Some(&t[2]), Some(&win), None)
            });
            check("conv_gather", vec![x.clone(), wt.clone()], |t| {
                conv_gather(&t[0], &t[1], &win)
            });
            // The hand-written op and the candle-ops path compute the same values.
            let d = max_diff(
                &conv(&x, &wt, None, Some(&win), None).unwrap(),
                &conv_gather(&x, &wt, &win).unwrap(),
            );
            assert!(d < 1e-12, "fused vs gather: {d}");
        }
        let x = rand(&[2, 6, 3], &mut rng);
        let wt = rand(&[3, 5], &mut rng);
        check("conv1x1", vec![x, wt], |t| {
            conv(&t[0], &t[1], None, None, None)
        });
    }

    /// The grouped forms (stacked weights, padded blocks masked out of the statistics and the loss).
    #[test]
    fn grad_grouped_ops_with_padding() {
        let mut rng = Rng::derive(6, "grouped", &[]);
        for rows in [vec![3, 3], vec![3, 1, 2]] {
            let grp = Groups::new(rows.clone(), DType::F64, &Device::Cpu).unwrap();
            let (g, b) = (grp.g, grp.b);
            let (win, _, _) = Window::new(3, 3, 3, 1, 1, &Device::Cpu).unwrap();
            let x = rand(&[g * b, 9, 2], &mut rng);
            check(
                "conv_grouped",
                vec![
                    x.clone(),
                    rand(&[g, 18, 3], &mut rng),
                    rand(&[g, 1, 3], &mut rng),
                ],
                |t| conv(&t[0], &t[1], Some(&t[2]), Some(&win), Some(&grp)),
            );
            check(
                "conv1x1_grouped",
                vec![x.clone(), rand(&[g, 2, 3], &mut rng)],
                |t| conv(&t[0], &t[1], None, None, Some(&grp)),
            );
            let x2 = rand(&[g * b, 4], &mut rng);
            check(
                "dense_grouped",
                vec![
                    x2.clone(),
                    rand(&[g, 4, 3], &mut rng),
                    rand(&[g, 1, 3], &mut rng),
                ],
                |t| dense(&t[0], &t[1], &t[2], Some(&grp)),
            );
            // Batch norm over rows of 9 positions; the loss weight r is zero on padding, as the masked loss is.
            let xs = rand(&[g * b * 9, 2], &mut rng);
            check(
                "batchnorm_grouped",
                vec![xs, rand(&[g, 1, 2], &mut rng), rand(&[g, 1, 2], &mut rng)],
                |t| {
                    let y = batch_norm_train_grouped(&t[0], &t[1], &t[2], 1e-5, &grp)?.0;
                    match grp.position_mask(g * b * 9)? {
                        Some(m) => y.reshape((g, b * 9, 2))?.broadcast_mul(&m),
                        None => Ok(y),
                    }
                },
            );
            let targets: Vec<u32> = (0..g * b).map(|i| (i % 3) as u32).collect();
            let targets = Tensor::new(targets, &Device::Cpu).unwrap();
            check(
                "cross_entropy_grouped",
                vec![rand(&[g * b, 3], &mut rng)],
                |t| cross_entropy_grouped(&t[0], &targets, &grp),
            );
            // Padding changes neither a group's batch-norm statistics nor its loss.
            let logits = rand(&[g * b, 3], &mut rng);
            let mut other = logits.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for (i, &r) in rows.iter().enumerate() {
                for row in r..b {
                    for c in 0..3 {
                        other[(i * b + row) * 3 + c] = 1e3;
                    }
                }
            }
            let other = Tensor::from_vec(other, (g * b, 3), &Device::Cpu).unwrap();
            let d = max_diff(
                &cross_entropy_grouped(&logits, &targets, &grp).unwrap(),
                &cross_entropy_grouped(&other, &targets, &grp).unwrap(),
            );
            assert!(d < 1e-12, "padding leaks into the loss: {d}");
        }
    }

    #[test]
    fn conv_matches_candle_conv2d() {
        let mut rng = Rng::derive(3, "cmp", &[]);
        let (h, w, k, cin, cout) = (5, 6, 3, 2, 3);
        let x = rand(&[1, cin, h, w], &mut rng); // NCHW
        let wk = rand(&[cout, cin, k, k], &mut rng);
        let want = x.conv2d(&wk, 1, 1, 1, 1).unwrap(); // [1, cout, h, w]
        let xn = x
            .permute((0, 2, 3, 1))
            .unwrap()
            .reshape((1, h * w, cin))
            .unwrap();
        let wm = wk
            .permute((2, 3, 1, 0))
            .unwrap()
            .reshape((k * k * cin, cout))
            .unwrap();
        let (win, _, _) = Window::new(h, w, k, 1, 1, &Device::Cpu).unwrap();
        let got = conv(&xn, &wm, None, Some(&win), None).unwrap();
        let want = want
            .permute((0, 2, 3, 1))
            .unwrap()
            .reshape((1, h * w, cout))
            .unwrap();
        let d = max_diff(&got, &want);
        assert!(d < 1e-9, "max diff {d}");
    }

    /// The weighted embedding bag against finite differences (the table's gradient), the candle ops and its
    /// definition.
    #[test]
    fn bag_weighted_matches_finite_differences_and_its_definition() {
        let mut rng = Rng::derive(9, "weighted bag", &[]);
        let table = rand(&[7, 3], &mut rng);
        let ids = Tensor::new(
            &[[2f64, 5., 6., 0.], [1., 6., 0., 0.], [0., 0., 0., 0.]],
            &Device::Cpu,
        )
        .unwrap();
        let w = Tensor::new(
            &[[0.5f64, -0.25, 2.0, 0.0], [3.0, 0.75, 0.0, 0.0], [0.0; 4]],
            &Device::Cpu,
        )
        .unwrap();
        check("weighted bag", vec![table.clone()], |t| {
            bag_weighted(&t[0], &ids, &w)
        });
        let candle = with_candle_ops(|| {
            check("weighted bag candle", vec![table.clone()], |t| {
                bag_weighted(&t[0], &ids, &w)
            });
            bag_weighted(&table, &ids, &w).unwrap()
        });
        let ours = bag_weighted(&table, &ids, &w).unwrap();
        assert!(max_diff(&ours, &candle) < 1e-12);
        let got: Vec<Vec<f64>> = ours.to_vec2().unwrap();
        let t: Vec<Vec<f64>> = table.to_vec2().unwrap();
        for j in 0..3 {
            let want = 0.5 * t[2][j] - 0.25 * t[5][j] + 2.0 * t[6][j];
            assert!((got[0][j] - want).abs() < 1e-12);
            assert!(
                (got[1][j] - 0.75 * t[6][j]).abs() < 1e-12,
                "the unknown id 1 is left out, whatever its weight"
            );
            assert_eq!(got[2][j], 0.0, "an empty text");
        }
    }

    /// The word ops of the 1-D convolutions, the CPU ops and the candle ops, against finite differences and
    /// their definitions, and against each other through a whole branch: the embedding (the table's
    /// gradient), the dilated convolution (input and weights), the maximum over words (padding never wins;
    /// a text without words gives zeros).
    #[test]
    fn word_ops_match_finite_differences_their_definitions_and_each_other() {
        let mut rng = Rng::derive(9, "word ops", &[]);
        let table = rand(&[6, 3], &mut rng);
        // Texts of 5, 3 and no words.
        let ids = Tensor::new(
            &[[3f64, 1., 5., 2., 4.], [2., 5., 1., 0., 0.], [0.; 5]],
            &Device::Cpu,
        )
        .unwrap();
        let w = rand(&[3 * 3, 2], &mut rng);
        let w2 = rand(&[5 * 2, 2], &mut rng);
        // Embedding, a dilated convolution, its activation, another convolution, the maximum.
        let branch = |t: &[Tensor]| -> Result<Tensor> {
            let (h, words) = embed_words(&t[0], &ids)?;
            let y = mask_words(
                &activation(&conv1d(&h, &t[1], 3, 2, &words)?, Act::Tanh)?,
                &words,
            )?;
            let y = mask_words(&conv1d(&y, &t[2], 5, 1, &words)?, &words)?;
            max_over_words(&y, &words)
        };
        let inputs = vec![table.clone(), w.clone(), w2.clone()];
        check("word branch", inputs.clone(), branch);
        let candle = with_candle_ops(|| {
            check("word branch candle", inputs.clone(), branch);
            branch(&inputs).unwrap()
        });
        let ours = branch(&inputs).unwrap();
        assert!(max_diff(&ours, &candle) < 1e-12, "{ours} {candle}");
        let out: Vec<Vec<f64>> = ours.to_vec2().unwrap();
        assert_eq!(out[2], [0.0, 0.0], "a text without words");
        // The convolution by its definition on both paths: output slot 2 of text 0, channel 1, reads slots
        // 0, 2, 4 (dilation 2); slot 0 reads zeros left of the text; text 1's slot 2 reads zeros right.
        for candle in [false, true] {
            let run = || {
                let (h, words) = embed_words(&table, &ids).unwrap();
                (conv1d(&h, &w, 3, 2, &words).unwrap(), h)
            };
            let (y, h) = if candle { with_candle_ops(run) } else { run() };
            let y: Vec<Vec<Vec<f64>>> = y.to_vec3().unwrap();
            let hv: Vec<Vec<Vec<f64>>> = h.to_vec3().unwrap();
            let wv: Vec<Vec<f64>> = w.to_vec2().unwrap();
            let tap = |b: usize, t: isize, o: usize, n: isize| -> f64 {
                (0..3)
                    .map(|j| (j, t + 2 * j as isize - 2))
                    .filter(|&(_, s)| (0..n).contains(&s))
                    .flat_map(|(j, s)| (0..3).map(move |c| (j, s as usize, c)))
                    .map(|(j, s, c)| hv[b][s][c] * wv[j * 3 + c][o])
                    .sum()
            };
            for (b, t, o, n) in [(0, 2, 1, 5), (0, 0, 0, 5), (1, 2, 0, 3), (1, 1, 1, 3)] {
                let want = tap(b, t, o, n);
                assert!(
                    (y[b][t as usize][o] - want).abs() < 1e-12,
                    "{candle} {b} {t} {o}"
                );
            }
        }
    }

    /// The embedding bag against finite differences (the table's gradient) and against its definition.
    #[test]
    fn bag_mean_matches_finite_differences_and_its_definition() {
        let mut rng = Rng::derive(9, "bag", &[]);
        let table = rand(&[7, 3], &mut rng);
        let ids = Tensor::new(
            &[[2f64, 5., 5., 0.], [1., 6., 0., 0.], [0., 0., 0., 0.]],
            &Device::Cpu,
        )
        .unwrap();
        check("bag", vec![table.clone()], |t| bag_mean(&t[0], &ids));
        let candle = with_candle_ops(|| {
            check("bag candle", vec![table.clone()], |t| bag_mean(&t[0], &ids));
            bag_mean(&table, &ids).unwrap()
        });
        assert!(max_diff(&bag_mean(&table, &ids).unwrap(), &candle) < 1e-12);
        let got: Vec<Vec<f64>> = bag_mean(&table, &ids).unwrap().to_vec2().unwrap();
        let t: Vec<Vec<f64>> = table.to_vec2().unwrap();
        for j in 0..3 {
            assert!((got[0][j] - (t[2][j] + 2.0 * t[5][j]) / 3.0).abs() < 1e-12);
            assert!(
                (got[1][j] - t[6][j]).abs() < 1e-12,
                "the unknown id 1 is left out"
            );
            assert_eq!(got[2][j], 0.0, "an empty text");
        }
    }

    #[test]
    fn grad_pools() {
        let mut rng = Rng::derive(4, "pool", &[]);
        for (h, w) in [(4, 4), (5, 3)] {
            let x = rand(&[2, h * w, 3], &mut rng);
            check("maxpool", vec![x.clone()], |t| pool2(&t[0], h, w, true));
            check("avgpool", vec![x], |t| pool2(&t[0], h, w, false));
        }
        let (h, w) = (4, 3);
        let (win, _, _) = Window::new(h, w, 3, 1, 1, &Device::Cpu).unwrap();
        let inv = avg_pool3_counts(h, w, DType::F64, &Device::Cpu).unwrap();
        let x = rand(&[2, h * w, 2], &mut rng);
        check("avgpool3", vec![x.clone()], |t| {
            avg_pool3(&t[0], &win, &inv)
        });
        // corner cell averages its 4 in-bounds neighbours
        let y = avg_pool3(&x, &win, &inv).unwrap();
        let xv: Vec<f64> = x
            .narrow(0, 0, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let corner = (xv[0] + xv[2] + xv[w * 2] + xv[w * 2 + 2]) / 4.0;
        let yv: Vec<f64> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert!((yv[0] - corner).abs() < 1e-12);
        // The kernel against the candle ops, forward and (through the candle path's own check) backward.
        let candle = with_candle_ops(|| {
            check("avgpool3 candle", vec![x.clone()], |t| {
                avg_pool3(&t[0], &win, &inv)
            });
            avg_pool3(&x, &win, &inv).unwrap()
        });
        assert!(max_diff(&y, &candle) < 1e-12);
    }

    /// The fused CPU tail (batch norm, activation, pooling in one op) against finite differences and
    /// against the same steps as separate candle ops, for every combination, on odd and even sizes.
    #[test]
    fn fused_tail_matches_finite_differences_and_the_candle_ops() {
        use crate::pointwise::{tail, Pool2};
        let mut rng = Rng::derive(6, "tail", &[]);
        for (h, w) in [(4, 4), (5, 3)] {
            let x = rand(&[2, h * w, 3], &mut rng);
            let (g, b) = (rand(&[3], &mut rng), rand(&[3], &mut rng));
            for bn in [false, true] {
                for act in [
                    None,
                    Some(Act::Relu),
                    Some(Act::Silu),
                    Some(Act::Gelu),
                    Some(Act::Tanh),
                ] {
                    for pool in [None, Some(true), Some(false)] {
                        let name = format!("tail {h}x{w} bn {bn} {act:?} pool {pool:?}");
                        let fused = |t: &[Tensor]| {
                            let bn = bn.then(|| (&t[1], &t[2], 1e-5));
                            let pool = pool.map(|m| Pool2::new(h, w, m));
                            Ok(tail(&t[0], bn, act, pool)?.0)
                        };
                        let plain = |t: &[Tensor]| {
                            let mut y = t[0].clone();
                            if bn {
                                let y2 = y.reshape((2 * h * w, 3))?;
                                y = batch_norm_train_candle(&y2, &t[1], &t[2], 1e-5)?
                                    .0
                                    .reshape(y.dims())?;
                            }
                            if let Some(a) = act {
                                y = activation_candle(&y, a)?;
                            }
                            match pool {
                                Some(m) => pool2_candle(&y, h, w, m),
                                None => Ok(y),
                            }
                        };
                        let ins = vec![x.clone(), g.clone(), b.clone()];
                        let d = max_diff(&fused(&ins).unwrap(), &plain(&ins).unwrap());
                        assert!(d < 1e-12, "{name}: differs from the candle ops by {d}");
                        match bn {
                            true => check(&name, ins, fused),
                            false => check(&name, vec![x.clone()], fused),
                        }
                    }
                }
            }
        }
    }

    /// The whole block as one op (convolution with bias, activation, pooling) against finite differences
    /// and against the separate candle ops, on even and odd sizes.
    #[test]
    fn fused_conv_act_pool_matches_finite_differences_and_the_candle_ops() {
        use crate::conv_block::conv_act_pool;
        use crate::pointwise::Pool2;
        let mut rng = Rng::derive(7, "conv-tail", &[]);
        for (h, w, k) in [(4, 4, 3), (5, 3, 3), (4, 5, 5)] {
            let (win, _, _) = Window::new(h, w, k, 1, k / 2, &Device::Cpu).unwrap();
            let x = rand(&[2, h * w, 2], &mut rng);
            let wt = rand(&[k * k * 2, 3], &mut rng);
            let b = rand(&[3], &mut rng);
            for act in [Act::Relu, Act::Silu] {
                for max in [true, false] {
                    let name = format!("conv-tail {h}x{w} k{k} {act:?} max {max}");
                    let fused = |t: &[Tensor]| {
                        conv_act_pool(&t[0], &t[1], &t[2], &win, act, Pool2::new(h, w, max))
                    };
                    let ins = vec![x.clone(), wt.clone(), b.clone()];
                    let plain = with_candle_ops(|| {
                        let y = conv(&ins[0], &ins[1], Some(&ins[2]), Some(&win), None)?;
                        pool2(&activation(&y, act)?, h, w, max)
                    })
                    .unwrap();
                    let d = max_diff(&fused(&ins).unwrap(), &plain);
                    assert!(d < 1e-12, "{name}: differs from the candle ops by {d}");
                    check(&name, ins, fused);
                }
            }
        }
    }

    /// A convolution followed by batch norm as one op against finite differences (input, weight, γ, β)
    /// and against the separate candle ops (output and batch statistics).
    #[test]
    fn fused_conv_bn_matches_finite_differences_and_the_candle_ops() {
        use crate::conv_block::conv_bn;
        let mut rng = Rng::derive(8, "conv-bn", &[]);
        for (h, w, k) in [(4, 4, 3), (5, 3, 3)] {
            let (win, _, _) = Window::new(h, w, k, 1, k / 2, &Device::Cpu).unwrap();
            let x = rand(&[2, h * w, 2], &mut rng);
            let wt = rand(&[k * k * 2, 3], &mut rng);
            let (g, b) = (rand(&[3], &mut rng), rand(&[3], &mut rng));
            let ins = vec![x, wt, g, b];
            let (y, m, v) = conv_bn(&ins[0], &ins[1], &win, (&ins[2], &ins[3], 1e-5)).unwrap();
            let (py, pm, pv) = with_candle_ops(|| {
                let z = conv(&ins[0], &ins[1], None, Some(&win), None)?.reshape((2 * h * w, 3))?;
                batch_norm_train(&z, &ins[2], &ins[3], 1e-5)
            })
            .unwrap();
            let d = max_diff(&y.reshape((2 * h * w, 3)).unwrap(), &py)
                .max(max_diff(&m, &pm))
                .max(max_diff(&v, &pv));
            assert!(
                d < 1e-12,
                "conv-bn {h}x{w}: differs from the candle ops by {d}"
            );
            check(&format!("conv-bn {h}x{w}"), ins, |t| {
                Ok(conv_bn(&t[0], &t[1], &win, (&t[2], &t[3], 1e-5))?.0)
            });
        }
    }

    #[test]
    fn max_pool_routes_gradient_to_the_max_only() {
        let x = Var::from_tensor(
            &Tensor::new(&[[[1.0f64], [5.0], [2.0], [3.0]]], &Device::Cpu).unwrap(),
        )
        .unwrap();
        let y = pool2(x.as_tensor(), 2, 2, true).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let gv: Vec<f64> = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(gv, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn grad_batch_norm_dense_activations_loss() {
        let mut rng = Rng::derive(5, "bn", &[]);
        let x = rand(&[6, 3], &mut rng);
        let g = rand(&[3], &mut rng);
        let b = rand(&[3], &mut rng);
        check("batchnorm", vec![x.clone(), g, b], |t| {
            Ok(batch_norm_train(&t[0], &t[1], &t[2], 1e-5)?.0)
        });
        let w = rand(&[3, 4], &mut rng);
        let bb = rand(&[4], &mut rng);
        check("dense", vec![x.clone(), w, bb], |t| {
            dense(&t[0], &t[1], &t[2], None)
        });
        check("relu", vec![x.clone()], |t| t[0].relu());
        check("gelu", vec![x.clone()], |t| t[0].gelu());
        check("tanh", vec![x.clone()], |t| t[0].tanh());
        check("silu", vec![x.clone()], |t| t[0].silu());
        check("mean1", vec![rand(&[2, 5, 3], &mut rng)], |t| t[0].mean(1));
        let mask = Tensor::new(
            &[
                [0.0f64, 2.0, 2.0],
                [2.0, 0.0, 2.0],
                [2.0, 2.0, 2.0],
                [0.0, 0.0, 2.0],
                [2.0, 2.0, 0.0],
                [2.0, 0.0, 0.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        check("dropout", vec![x.clone()], |t| t[0].mul(&mask));
        check("residual", vec![x.clone(), rand(&[6, 3], &mut rng)], |t| {
            t[0].add(&t[1])
        });
        let targets = Tensor::new(&[0u32, 2, 1, 1, 0, 2], &Device::Cpu).unwrap();
        check("cross_entropy", vec![x.clone()], |t| {
            cross_entropy(&t[0], &targets)
        });
        let w = Tensor::new(&[[2.0f64], [0.5], [1.0], [1.0], [2.0], [0.5]], &Device::Cpu).unwrap();
        check("weighted_cross_entropy", vec![x.clone()], |t| {
            weighted_cross_entropy(&t[0], &targets, &w)
        });
        // Equal weights are the plain mean; a weight of 2 counts a row twice.
        let ones = Tensor::ones((6, 1), DType::F64, &Device::Cpu).unwrap();
        let plain = cross_entropy(&x, &targets)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let equal = weighted_cross_entropy(&x, &targets, &ones.affine(3.0, 0.0).unwrap())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((plain - equal).abs() < 1e-12, "{plain} {equal}");
        let twice = Tensor::cat(&[&x, &x.narrow(0, 0, 1).unwrap()], 0).unwrap();
        let t2 = Tensor::new(&[0u32, 2, 1, 1, 0, 2, 0], &Device::Cpu).unwrap();
        let w2 = Tensor::new(&[[2.0f64], [1.0], [1.0], [1.0], [1.0], [1.0]], &Device::Cpu).unwrap();
        let a = cross_entropy(&twice, &t2)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let b = weighted_cross_entropy(&x, &targets, &w2)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((a - b).abs() < 1e-12, "{a} {b}");
    }
}
