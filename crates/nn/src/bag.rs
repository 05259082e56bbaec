//! The embedding bag as one CPU op: each row's sum of the table rows its token ids name (ids 0 and 1 left
//! out), each times its weight; and a backward that adds each row's gradient share into the rows it read,
//! with no `[B, L, U]` intermediate (candle's gather and batched matmul built one, and their backward two
//! more). Checked against finite differences and the candle ops in `ops`' tests.

use crate::cpu::{on_floats, slice, Elem};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

fn dims2(l: &Layout) -> Result<[usize; 2]> {
    match l.shape().dims() {
        &[a, b] => Ok([a, b]),
        d => bail!("embedding-bag: expected two dimensions, got {d:?}"),
    }
}

/// The largest id of `ids`, if any.
fn max_id(s: &CpuStorage, l: &Layout) -> Result<Option<usize>> {
    Ok(match s {
        CpuStorage::F32(v) => slice(v, l)?.iter().map(|&x| x as usize).max(),
        CpuStorage::F64(v) => slice(v, l)?.iter().map(|&x| x as usize).max(),
        _ => None,
    })
}

/// `table` `[V, U]`, `ids` and `weights` `[B, L]` → `[B, U]`: each row's sum of the table rows its known ids
/// name, each times its weight.
struct WeightedBag;

/// The gradient of [`WeightedBag`]'s table: `ids`, `weights` and the output's gradient → `[V, U]`.
struct WeightedBagGrad {
    vocab: usize,
}

/// A row's known ids (from [`space::TextInput::RESERVED`] on) with their weights.
fn weighted<'a, T: Elem>(ids: &'a [T], w: &'a [T]) -> impl Iterator<Item = (usize, T)> + 'a {
    ids.iter()
        .zip(w)
        .map(|(&v, &w)| (candle_core::WithDType::to_f64(v) as usize, w))
        .filter(|&(id, _)| id >= space::TextInput::RESERVED)
}

impl CustomOp3 for WeightedBag {
    fn name(&self) -> &'static str {
        "weighted-bag"
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
        fn run<T: Elem>(table: &[T], ids: &[T], w: &[T], u: usize, l: usize) -> Vec<T> {
            let b = ids.len() / l.max(1);
            let mut out = vec![T::default(); b * u];
            let rows = ids.chunks_exact(l).zip(w.chunks_exact(l));
            for ((row, wr), o) in rows.zip(out.chunks_exact_mut(u)) {
                for (id, wt) in weighted(row, wr) {
                    for (o, t) in o.iter_mut().zip(&table[id * u..(id + 1) * u]) {
                        *o += *t * wt;
                    }
                }
            }
            out
        }
        let ([v, u], [b, l]) = (dims2(l1)?, dims2(l2)?);
        if dims2(l3)? != [b, l] {
            bail!(
                "weighted-bag: weights {:?} for ids {:?}",
                l3.shape(),
                l2.shape()
            );
        }
        if let Some(bad) = max_id(s2, l2)?.filter(|&m| m >= v) {
            bail!("weighted-bag: id {bad} in a table of {v} rows");
        }
        on_floats!("weighted-bag", [s1 => t, s2 => i, s3 => w], (run(slice(t, l1)?, slice(i, l2)?, slice(w, l3)?, u, l), Shape::from((b, u))))
    }
    fn bwd(
        &self,
        table: &Tensor,
        ids: &Tensor,
        weights: &Tensor,
        _out: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = WeightedBagGrad {
            vocab: table.dim(0)?,
        };
        let dt = ids.apply_op3_no_bwd(weights, &g.contiguous()?, &grad)?;
        Ok((Some(dt), None, None))
    }
}

impl CustomOp3 for WeightedBagGrad {
    fn name(&self) -> &'static str {
        "weighted-bag-grad"
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
        fn run<T: Elem>(ids: &[T], w: &[T], g: &[T], vocab: usize, u: usize, l: usize) -> Vec<T> {
            let mut dt = vec![T::default(); vocab * u];
            let rows = ids.chunks_exact(l).zip(w.chunks_exact(l));
            for ((row, wr), gr) in rows.zip(g.chunks_exact(u)) {
                for (id, wt) in weighted(row, wr) {
                    for (d, x) in dt[id * u..(id + 1) * u].iter_mut().zip(gr) {
                        *d += *x * wt;
                    }
                }
            }
            dt
        }
        let ([_, l], [_, u]) = (dims2(l1)?, dims2(l3)?);
        let vocab = self.vocab;
        on_floats!("weighted-bag-grad", [s1 => i, s2 => w, s3 => g], (run(slice(i, l1)?, slice(w, l2)?, slice(g, l3)?, vocab, u, l), Shape::from((vocab, u))))
    }
}

/// The weighted embedding bag of `table` over `ids` and `weights` as one CPU op (see
/// [`crate::ops::bag_weighted`]).
pub fn bag_weighted(table: &Tensor, ids: &Tensor, weights: &Tensor) -> Result<Tensor> {
    table
        .contiguous()?
        .apply_op3(&ids.contiguous()?, &weights.contiguous()?, WeightedBag)
}
