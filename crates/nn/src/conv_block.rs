//! A convolution and what follows it as one CPU op: `x.apply_op3(w, third, ConvTail)`, where `third` is the
//! convolution's bias (then the activation and 2×2 pooling follow, [`conv_act_pool`]) or batch norm's γ‖β
//! (batch norm in training mode follows, [`conv_bn`]). The convolution's output is not a node of the autograd
//! graph, so candle does not allocate, zero and add a gradient buffer for it; the op keeps it for its
//! backward. Checked against the separate ops and finite differences in `ops`' tests.

use crate::conv_op::{self, Window};
use crate::cpu::{on_floats, slice, Elem};
use crate::pointwise::{Pool2, Tail, TailGrad};
use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use space::arch::Act;
use std::sync::{Arc, Mutex};

struct ConvTail {
    win: Window,
    tail: Tail,
    z: Arc<Mutex<Option<Tensor>>>,
}

impl ConvTail {
    fn new(win: &Window, tail: Tail) -> ConvTail {
        let z = Arc::new(Mutex::new(None));
        let win = win.clone();
        ConvTail { win, tail, z }
    }

    fn run<T: Elem>(
        &self,
        (x, l1): (&[T], &Layout),
        (w, l2): (&[T], &Layout),
        (third, l3): (&[T], &Layout),
    ) -> Result<(Vec<T>, Shape)> {
        let (z, zs) = conv_op::forward(x, l1, w, l2, &self.win)?;
        let zl = Layout::contiguous(&zs);
        let (n, c) = self.tail.dims(&zl)?;
        let third = slice(third, l3)?;
        let y = match (&self.tail.bn, &self.tail.pool) {
            (Some(_), _) if third.len() == 2 * c => {
                self.tail.forward(&z, Some(third.split_at(c)), n, c)
            }
            (None, Some(pool)) if third.len() == c => {
                // The bias is added in the pooling loop, not as a pass of its own before the gemm.
                *T::part(&mut pool.bias.lock().unwrap()) = third.to_vec();
                self.tail.forward(&z, None, n, c)
            }
            _ => bail!("conv-tail: third operand {:?} for {c} channels", l3.shape()),
        };
        let shape = self.tail.out_shape(&zl)?;
        *self.z.lock().unwrap() = Some(Tensor::from_vec(z, zs, &Device::Cpu)?);
        Ok((y, shape))
    }
}

impl CustomOp3 for ConvTail {
    fn name(&self) -> &'static str {
        "conv-tail"
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
        on_floats!("conv-tail", [s1 => x, s2 => w, s3 => b], self.run((x, l1), (w, l2), (b, l3))?)
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        third: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(z) = self.z.lock().unwrap().take() else {
            bail!("conv-tail: backward without a forward")
        };
        let gy = gy.contiguous()?;
        let grad = TailGrad(self.tail.clone());
        let (gz, d_third) = match self.tail.bn {
            // Batch norm: the tail's gradient is dz, then dγ‖dβ.
            Some(_) => {
                let n = z.elem_count();
                let all = z.apply_op3_no_bwd(third, &gy, &grad)?;
                let gz = all.narrow(0, 0, n)?.reshape(z.shape())?;
                (
                    gz,
                    all.narrow(0, n, third.elem_count())?
                        .reshape(third.shape())?,
                )
            }
            // A bias: its gradient is the column sum of dz.
            None => {
                let gz = z.apply_op2_no_bwd(&gy, &grad)?;
                let db = crate::bias::column_sum(&gz)?;
                (gz, db)
            }
        };
        let (dx, dw) = conv_op::grads(&self.win, x, w, &gz)?;
        Ok((dx, Some(dw), Some(d_third)))
    }
}

/// The convolution `[B, hw, C]` × `[taps·C, Cout]` + bias, then the activation and 2×2 pooling (of its
/// `h`×`w` output), as one CPU op.
pub fn conv_act_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    win: &Window,
    act: Act,
    pool: Pool2,
) -> Result<Tensor> {
    let op = ConvTail::new(win, Tail::new(None, Some(act), Some(pool)));
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// The convolution (no bias) then batch norm in training mode (γ, β, ε), as one CPU op: the output, and the
/// batch mean and biased variance (`[1, C]` each).
pub fn conv_bn(
    x: &Tensor,
    w: &Tensor,
    win: &Window,
    (gamma, beta, eps): (&Tensor, &Tensor, f64),
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = ConvTail::new(win, Tail::new(Some(eps), None, None));
    let stats = op.tail.stats.clone();
    let gb = Tensor::cat(&[gamma.flatten_all()?, beta.flatten_all()?], 0)?;
    let y = x.contiguous()?.apply_op3(&w.contiguous()?, &gb, op)?;
    let (mean, var) = crate::pointwise::batch_stats(&stats, x)?;
    Ok((y, mean, var))
}
