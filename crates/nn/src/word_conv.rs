//! The 1-D convolution over words and the maximum over words as CPU ops. Each text of the batch has its
//! words in its first `lens[b]` slots; everything after is padding, which these ops neither read nor
//! write (a convolution writes zeros there): so no mask is multiplied in between, and the convolution is one
//! matrix product per tap and text on the input as it lies, without the shifted copies candle's
//! concatenation made (with the masks' broadcasts, half of a step). Checked against finite differences
//! and the candle ops (which mask instead) in `ops`' tests.

use crate::conv_op::{matmul, row_major, transposed};
use crate::cpu::{on_floats, slice, Elem};
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use std::sync::Arc;

/// The geometry of a convolution over words: kernel, dilation, each text's word count.
#[derive(Clone)]
struct Geometry {
    k: usize,
    d: usize,
    lens: Arc<[usize]>,
}

impl Geometry {
    /// For text `b`, each tap's (tap, first output slot, input offset from it, slots): the slots `t` whose
    /// input `t + offset` is a word.
    fn taps(&self, b: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        let (n, p) = (self.lens[b], (self.k / 2) * self.d);
        (0..self.k).filter_map(move |j| {
            let o = (j * self.d) as isize - p as isize;
            let t0 = (-o).max(0) as usize;
            let t1 = (n as isize - o).min(n as isize).max(0) as usize;
            (t1 > t0).then(|| (j, t0, (t0 as isize + o) as usize, t1 - t0))
        })
    }
}

fn dims3(l: &Layout, what: &str) -> Result<[usize; 3]> {
    match l.shape().dims() {
        &[a, b, c] => Ok([a, b, c]),
        d => bail!("{what}: expected three dimensions, got {d:?}"),
    }
}

/// `h` `[B, L, C]`, `w` `[k·C, C']` → `[B, L, C']`.
struct Conv1d(Geometry);
/// The input's gradient: the output's gradient and `w` → `[B, L, C]`.
struct Conv1dGradInput(Geometry);
/// The weights' gradient: `h` and the output's gradient → `[k·C, C']`.
struct Conv1dGradWeight(Geometry);

impl CustomOp2 for Conv1d {
    fn name(&self) -> &'static str {
        "word-conv1d"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let [b, l, c] = dims3(l1, self.name())?;
        let co = l2.shape().elem_count() / (g.k * c).max(1);
        if l2.shape().dims() != [g.k * c, co] || g.lens.len() != b || g.lens.iter().any(|&n| n > l)
        {
            bail!(
                "word-conv1d: weights {:?}, {} texts, for input {:?}",
                l2.shape(),
                g.lens.len(),
                l1.shape()
            );
        }
        on_floats!("word-conv1d", [s1 => h, s2 => w], (forward(g, slice(h, l1)?, slice(w, l2)?, [b, l, c], co), Shape::from((b, l, co))))
    }
    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dh = grad.apply_op2_no_bwd(w, &Conv1dGradInput(self.0.clone()))?;
        let dw = h.apply_op2_no_bwd(&grad, &Conv1dGradWeight(self.0.clone()))?;
        Ok((Some(dh), Some(dw)))
    }
}

fn forward<T: Elem>(g: &Geometry, h: &[T], w: &[T], [b, l, c]: [usize; 3], co: usize) -> Vec<T> {
    let mut y = vec![T::default(); b * l * co];
    for bi in 0..b {
        for (j, t0, i0, m) in g.taps(bi) {
            let x = &h[(bi * l + i0) * c..];
            let dst = &mut y[(bi * l + t0) * co..];
            matmul(
                dst,
                m,
                co,
                c,
                row_major(x, c),
                row_major(&w[j * c * co..], co),
                true,
            );
        }
    }
    y
}

impl CustomOp2 for Conv1dGradInput {
    fn name(&self) -> &'static str {
        "word-conv1d-grad-input"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Elem>(
            g: &Geometry,
            dy: &[T],
            w: &[T],
            [b, l, co]: [usize; 3],
            c: usize,
        ) -> Vec<T> {
            let mut dh = vec![T::default(); b * l * c];
            for bi in 0..b {
                for (j, t0, i0, m) in g.taps(bi) {
                    let gy = &dy[(bi * l + t0) * co..];
                    let dst = &mut dh[(bi * l + i0) * c..];
                    matmul(
                        dst,
                        m,
                        c,
                        co,
                        row_major(gy, co),
                        transposed(&w[j * c * co..], co),
                        true,
                    );
                }
            }
            dh
        }
        let g = &self.0;
        let [b, l, co] = dims3(l1, self.name())?;
        let c = l2.shape().dims()[0] / g.k;
        on_floats!("word-conv1d-grad-input", [s1 => dy, s2 => w], (run(g, slice(dy, l1)?, slice(w, l2)?, [b, l, co], c), Shape::from((b, l, c))))
    }
}

impl CustomOp2 for Conv1dGradWeight {
    fn name(&self) -> &'static str {
        "word-conv1d-grad-weight"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Elem>(
            g: &Geometry,
            h: &[T],
            dy: &[T],
            [b, l, c]: [usize; 3],
            co: usize,
        ) -> Vec<T> {
            let mut dw = vec![T::default(); g.k * c * co];
            for bi in 0..b {
                for (j, t0, i0, m) in g.taps(bi) {
                    let x = transposed(&h[(bi * l + i0) * c..], c);
                    let gy = row_major(&dy[(bi * l + t0) * co..], co);
                    matmul(&mut dw[j * c * co..], c, co, m, x, gy, true);
                }
            }
            dw
        }
        let g = &self.0;
        let [b, l, c] = dims3(l1, self.name())?;
        let co = dims3(l2, self.name())?[2];
        on_floats!("word-conv1d-grad-weight", [s1 => h, s2 => dy], (run(g, slice(h, l1)?, slice(dy, l2)?, [b, l, c], co), Shape::from((g.k * c, co))))
    }
}

/// `h` `[B, L, C]` → `[B, C]`: each channel's maximum over text b's first `lens[b]` slots (0 without any).
struct MaxOverWords(Arc<[usize]>);
/// Its gradient: `h` and the output's gradient → `[B, L, C]`, each text's gradient at its first maximum.
struct MaxOverWordsGrad(Arc<[usize]>);

/// Per text and channel, the slot of the first maximum over its words (`None` without words).
fn argmax<T: Elem>(h: &[T], lens: &[usize], [_, l, c]: [usize; 3]) -> Vec<Option<usize>> {
    let mut at = Vec::with_capacity(lens.len() * c);
    for (bi, &n) in lens.iter().enumerate() {
        let text = &h[bi * l * c..];
        at.extend((0..c).map(|ch| {
            (0..n).reduce(|a, t| {
                if text[t * c + ch] > text[a * c + ch] {
                    t
                } else {
                    a
                }
            })
        }));
    }
    at
}

impl CustomOp1 for MaxOverWords {
    fn name(&self) -> &'static str {
        "max-over-words"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Elem>(h: &[T], lens: &[usize], dims: [usize; 3]) -> Vec<T> {
            let [_, l, c] = dims;
            let at = argmax(h, lens, dims);
            at.iter()
                .enumerate()
                .map(|(i, a)| a.map_or(T::default(), |t| h[((i / c) * l + t) * c + i % c]))
                .collect()
        }
        let dims = dims3(l, self.name())?;
        if dims[0] != self.0.len() || self.0.iter().any(|&n| n > dims[1]) {
            bail!(
                "max-over-words: {} texts for input {:?}",
                self.0.len(),
                l.shape()
            );
        }
        on_floats!("max-over-words", [s => h], (run(slice(h, l)?, &self.0, dims), Shape::from((dims[0], dims[2]))))
    }
    fn bwd(&self, h: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let op = MaxOverWordsGrad(self.0.clone());
        Ok(Some(h.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

impl CustomOp2 for MaxOverWordsGrad {
    fn name(&self) -> &'static str {
        "max-over-words-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Elem>(h: &[T], gy: &[T], lens: &[usize], dims: [usize; 3]) -> Vec<T> {
            let [b, l, c] = dims;
            let mut dh = vec![T::default(); b * l * c];
            for (i, a) in argmax(h, lens, dims).into_iter().enumerate() {
                if let Some(t) = a {
                    dh[((i / c) * l + t) * c + i % c] = gy[i];
                }
            }
            dh
        }
        let dims = dims3(l1, self.name())?;
        on_floats!("max-over-words-grad", [s1 => h, s2 => g], (run(slice(h, l1)?, slice(g, l2)?, &self.0, dims), l1.shape().clone()))
    }
}

/// Each text's word count: the slots before its first padding id (0) in `ids` `[B, L]`.
pub fn word_counts(ids: &Tensor) -> Result<Arc<[usize]>> {
    let ids = ids.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
    Ok(ids
        .iter()
        .map(|r| r.iter().take_while(|&&v| v >= 0.5).count())
        .collect())
}

/// The convolution of `h` `[B, L, C]` with `w` `[k·C, C']` over each text's first `lens[b]` slots (see
/// [`crate::ops::conv1d`]): `[B, L, C']`, zeros after each text's words.
pub fn conv1d(h: &Tensor, w: &Tensor, k: usize, d: usize, lens: &Arc<[usize]>) -> Result<Tensor> {
    let g = Geometry {
        k,
        d,
        lens: lens.clone(),
    };
    h.contiguous()?.apply_op2(&w.contiguous()?, Conv1d(g))
}

/// Each channel's maximum over each text's first `lens[b]` slots of `h` `[B, L, C]`: `[B, C]`.
pub fn max_over_words(h: &Tensor, lens: &Arc<[usize]>) -> Result<Tensor> {
    h.contiguous()?.apply_op1(MaxOverWords(lens.clone()))
}
