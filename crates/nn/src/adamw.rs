//! AdamW with decoupled weight decay, candle's formula, as one pass over each parameter on the CPU.
//!
//! candle's `AdamW` updates a parameter in about fifteen tensor ops, each a pass over it and an allocation;
//! a text's embedding table (20,000 × 64) made that most of a training step. Here the moments live in plain
//! vectors and each parameter is updated in place, in one pass, by an in-place op. Elsewhere (a GPU, or
//! [`crate::ops::with_candle_ops`]) candle's `AdamW` runs, with the same formula.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use std::cell::RefCell;

/// AdamW over `vars` (β₁ 0.9, β₂ 0.999, ε 1e-8): fused on the CPU, candle's elsewhere.
pub struct AdamW(Inner);

enum Inner {
    /// The CPU's: each parameter's moments, and the step count.
    Fused {
        vars: Vec<Var>,
        moments: Vec<(Vec<f32>, Vec<f32>)>,
        t: i32,
        lr: f64,
        wd: f64,
    },
    /// candle's.
    Candle(candle_nn::AdamW),
}

const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// One parameter's update, in place: the gradient is the second operand.
struct Step<'a> {
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    /// (1 − lr·wd, lr, 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ)).
    k: (f32, f32, f32, f32),
}

impl InplaceOp2 for Step<'_> {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(g)) = (s1, s2) else {
            candle_core::bail!("adamw-step: f32 only");
        };
        let (Some((a1, b1)), Some((a2, b2))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("adamw-step: contiguous tensors only");
        };
        let (theta, g) = (&mut theta[a1..b1], &g[a2..b2]);
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has the feature the function is compiled for.
            unsafe { update_avx2(theta, g, &mut m, &mut v, self.k) };
            return Ok(());
        }
        update(theta, g, &mut m, &mut v, self.k);
        Ok(())
    }
}

/// [`update`] compiled for AVX2 (8 lanes; the same operations, so the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_avx2(
    theta: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    k: (f32, f32, f32, f32),
) {
    update(theta, g, m, v, k)
}

/// The step on each element, as one loop without bounds checks, which the compiler vectorises (a text's
/// embedding tables are millions of parameters, updated every step).
#[inline(always)]
fn update(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: (f32, f32, f32, f32)) {
    let (decay, lr, sm, sv) = k;
    let (b1, b2, eps) = (B1 as f32, B2 as f32, EPS as f32);
    let n = theta.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for (((t, &gi), mi), vi) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let m1 = *mi * b1 + gi * (1.0 - b1);
        let v1 = *vi * b2 + gi * gi * (1.0 - b2);
        *mi = m1;
        *vi = v1;
        *t = *t * decay - (m1 * sm) / ((v1 * sv).sqrt() + eps) * lr;
    }
}

impl AdamW {
    /// AdamW over `vars` at rate `lr` and weight decay `wd`; fused when every parameter is an f32 CPU tensor
    /// and the CPU kernels are on ([`crate::ops::kernels`]).
    pub fn new(vars: Vec<Var>, lr: f64, wd: f64) -> Result<AdamW> {
        let fused = vars
            .iter()
            .all(|v| crate::ops::kernels(v.as_tensor()) && v.dtype() == DType::F32);
        Ok(AdamW(match fused {
            true => Inner::Fused {
                moments: vars
                    .iter()
                    .map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()]))
                    .collect(),
                vars,
                t: 0,
                lr,
                wd,
            },
            false => Inner::Candle(candle_nn::AdamW::new(
                vars,
                ParamsAdamW {
                    lr,
                    weight_decay: wd,
                    beta1: B1,
                    beta2: B2,
                    eps: EPS,
                },
            )?),
        }))
    }

    /// Sets the rate of the next steps.
    pub fn set_learning_rate(&mut self, rate: f64) {
        match &mut self.0 {
            Inner::Fused { lr, .. } => *lr = rate,
            Inner::Candle(o) => o.set_learning_rate(rate),
        }
    }

    /// Back-propagates `loss` and steps.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// One step with `grads` (parameters without a gradient keep their moments and values).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        match &mut self.0 {
            Inner::Candle(o) => o.step(grads),
            Inner::Fused {
                vars,
                moments,
                t,
                lr,
                wd,
            } => {
                *t += 1;
                let k = (
                    (1.0 - *lr * *wd) as f32,
                    *lr as f32,
                    (1.0 / (1.0 - B1.powi(*t))) as f32,
                    (1.0 / (1.0 - B2.powi(*t))) as f32,
                );
                for (var, (m, v)) in vars.iter().zip(moments.iter_mut()) {
                    if let Some(g) = grads.get(var.as_tensor()) {
                        let step = Step {
                            m: RefCell::new(m),
                            v: RefCell::new(v),
                            k,
                        };
                        var.as_tensor().inplace_op2(&g.contiguous()?, &step)?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The fused steps give candle's AdamW's parameters (within float rounding), on a small quadratic.
    #[test]
    fn the_fused_step_is_candles_adamw() {
        let run = |candle: bool| {
            let go = || {
                let w =
                    Var::from_tensor(&Tensor::new(&[1.5f32, -2.0, 0.25], &Device::Cpu).unwrap())
                        .unwrap();
                let mut opt = AdamW::new(vec![w.clone()], 0.05, 0.01).unwrap();
                assert_eq!(matches!(opt.0, Inner::Candle(_)), candle);
                for s in 0..20 {
                    opt.set_learning_rate(0.05 / (1.0 + s as f64));
                    let target = Tensor::new(&[0.5f32, 1.0, -1.0], &Device::Cpu).unwrap();
                    let loss = (w.as_tensor() - target)
                        .unwrap()
                        .sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap();
                    opt.backward_step(&loss).unwrap();
                }
                w.as_tensor().to_vec1::<f32>().unwrap()
            };
            if candle {
                crate::ops::with_candle_ops(go)
            } else {
                go()
            }
        };
        let (fused, candle) = (run(false), run(true));
        for (a, b) in fused.iter().zip(&candle) {
            assert!((a - b).abs() < 1e-5, "{fused:?} against {candle:?}");
        }
        assert!((fused[0] - 1.5).abs() > 0.1, "it moved: {fused:?}");
    }
}
