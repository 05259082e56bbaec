//! Adding a bias along the last dimension as one CPU op, with a backward that sums the gradient's columns
//! directly (candle's reduction over leading dimensions took a fifth of a CNN step).

use crate::cpu::{on_floats, slice, Elem};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// Column sums of a `[…, n]` gradient (a bias's gradient).
pub(crate) fn column_sum(g: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op1_no_bwd(&ColumnSum)
}

/// `x + b` with `b` broadcast over the last dimension, and a backward that sums the gradient over rows
/// directly (candle's reduction over leading dimensions took a fifth of a CNN step).
struct AddBias;
/// Column sums of a `[rows, n]` gradient: `gy.apply_op1_no_bwd(&ColumnSum)`.
pub(crate) struct ColumnSum;

impl candle_core::CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "column-sum"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn sum<T: Elem>(g: &[T], n: usize) -> Vec<T> {
            let mut out = vec![T::default(); n];
            for row in g.chunks_exact(n) {
                for (o, v) in out.iter_mut().zip(row) {
                    *o += *v;
                }
            }
            out
        }
        let n = *l.shape().dims().last().unwrap_or(&1);
        on_floats!("column-sum", [s => v], (sum(slice(v, l)?, n), Shape::from(n)))
    }
}

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn add<T: Elem>(x: &[T], b: &[T]) -> Vec<T> {
            let mut y = x.to_vec();
            for row in y.chunks_exact_mut(b.len()) {
                for (o, v) in row.iter_mut().zip(b) {
                    *o += *v;
                }
            }
            y
        }
        let n = l2.shape().elem_count();
        if l1.shape().dims().last() != Some(&n) {
            bail!("add-bias: {:?} + {:?}", l1.shape(), l2.shape());
        }
        let shape = l1.shape().clone();
        on_floats!("add-bias", [s1 => x, s2 => b], (add(slice(x, l1)?, slice(b, l2)?), shape))
    }
    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = gy.contiguous()?.apply_op1_no_bwd(&ColumnSum)?;
        Ok((Some(gy.clone()), Some(db)))
    }
}

/// `x + bias` over the last dimension, as one CPU op with its own backward.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}
