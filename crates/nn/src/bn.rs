//! Batch normalisation with running statistics, as the networks of [`crate::model`] use it: training mode
//! (batch statistics, folded into the running ones), inference mode, and on the CPU fused with the
//! activation and pooling after it ([`crate::pointwise`]).

use crate::{ops, pointwise};
use candle_core::{DType, Device, Result, Tensor, Var, D};
use space::Act;

/// ε of every batch norm.
pub(crate) const EPS: f64 = 1e-5;
/// Weight of a batch's statistics in the running ones.
const MOMENTUM: f64 = 0.1;

/// Batch norm with running statistics.
pub struct BatchNorm {
    pub(crate) gamma: Var,
    pub(crate) beta: Var,
    pub(crate) mean: Tensor,
    pub(crate) var: Tensor,
    pub(crate) name: String,
}

impl BatchNorm {
    /// A batch norm named `name` (its buffers' keys) with parameters γ, β and running statistics 0 and 1.
    pub(crate) fn new(
        name: &str,
        gamma: Var,
        beta: Var,
        shape: Vec<usize>,
        dtype: DType,
        dev: &Device,
    ) -> Result<BatchNorm> {
        Ok(BatchNorm {
            gamma,
            beta,
            mean: Tensor::zeros(shape.clone(), dtype, dev)?,
            var: Tensor::ones(shape, dtype, dev)?,
            name: name.to_string(),
        })
    }

    /// `x`: `[N, C]` or `[B, L, C]` (grouped: `N` or `B` is groups × rows).
    pub(crate) fn forward(
        &mut self,
        x: &Tensor,
        train: bool,
        grp: Option<&ops::Groups>,
    ) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let c = *dims.last().unwrap();
        let x2 = x.reshape(((), c))?;
        let y = match (train, grp) {
            (true, None) => {
                let (y, m, v) = ops::batch_norm_train(&x2, &self.gamma, &self.beta, EPS)?;
                let n = x2.dim(0)? as f64;
                let unbiased = (v.squeeze(0)?.detach() * (n / (n - 1.0).max(1.0)))?;
                self.update(&m.squeeze(0)?, &unbiased)?;
                y
            }
            (true, Some(g)) => {
                let (y, m, v) =
                    ops::batch_norm_train_grouped(&x2, &self.gamma, &self.beta, EPS, g)?;
                let unbiased = g.unbiased(&v.detach(), x2.dim(0)?)?;
                self.update(&m, &unbiased)?;
                y
            }
            (false, None) => {
                ops::batch_norm_eval(&x2, &self.gamma, &self.beta, &self.mean, &self.var, EPS)?
            }
            (false, Some(g)) => ops::batch_norm_eval(
                &x2.reshape((g.g, (), c))?,
                &self.gamma,
                &self.beta,
                &self.mean,
                &self.var,
                EPS,
            )?,
        };
        y.reshape(dims)
    }

    /// Training mode on the CPU, followed by the activation and optionally pooling, as one op.
    pub(crate) fn forward_fused(
        &mut self,
        x: &Tensor,
        act: Act,
        pool: Option<pointwise::Pool2>,
    ) -> Result<Tensor> {
        let args = (self.gamma.as_tensor(), self.beta.as_tensor(), EPS);
        let (y, stats) = pointwise::tail(x, Some(args), Some(act), pool)?;
        let (m, v) = stats.expect("batch norm returns its statistics");
        self.record(&y, &m, &v)?;
        Ok(y)
    }

    /// Folds a batch's mean and biased variance (`[1, C]`, over the rows of `y`) into the running ones.
    pub(crate) fn record(&mut self, y: &Tensor, mean: &Tensor, var: &Tensor) -> Result<()> {
        let n = (y.elem_count() / y.dim(D::Minus1)?) as f64;
        let unbiased = (var.squeeze(0)? * (n / (n - 1.0).max(1.0)))?;
        self.update(&mean.squeeze(0)?, &unbiased)
    }

    fn update(&mut self, mean: &Tensor, unbiased_var: &Tensor) -> Result<()> {
        self.mean = ((&self.mean * (1.0 - MOMENTUM))? + (mean.detach() * MOMENTUM)?)?;
        self.var = ((&self.var * (1.0 - MOMENTUM))? + (unbiased_var * MOMENTUM)?)?;
        Ok(())
    }
}
