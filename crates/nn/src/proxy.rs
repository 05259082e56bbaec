//! Zero-cost proxies: scores of an untrained network that rank architectures without training them.
//!
//! - [`synflow`] (Tanaka et al., 2020; as a NAS proxy, Abdelfattah et al., 2021): the network with every
//!   parameter replaced by its absolute value, in double precision, batch norm in inference mode with fresh
//!   statistics (an identity), fed one all-ones input; R is the sum of its logits, and the score is
//!   Σ |θ ⊙ ∂R/∂θ| over every parameter. It needs no data.
//! - [`naswot`] (Mellor et al., 2021): the activation pattern of a batch of real inputs: each sample's binary
//!   code is the sign of every pre-activation of every activation layer; K[i][j] counts the positions where
//!   samples i and j agree, and the score is ln |det K|. Networks that tell inputs apart score higher.
//! - parameter count: the space's own `cost` (no network needed).
//!
//! Every proxy is deterministic: the weights come from the stream (seed, "proxy").

use crate::{ops, Model};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use space::{Arch, InputInfo, Rng, SpaceDef};

fn untrained(space: &SpaceDef, arch: &Arch, input: &InputInfo, seed: u64) -> Result<Model> {
    let mut rng = Rng::derive(seed, "proxy", &[]);
    Ok(Model::new(
        space,
        arch,
        input,
        &mut rng,
        DType::F64,
        &Device::Cpu,
    )?)
}

/// The synflow score of `arch` (see the module documentation).
pub fn synflow(space: &SpaceDef, arch: &Arch, input: &InputInfo, seed: u64) -> Result<f64> {
    crate::init_threads();
    let mut model = untrained(space, arch, input, seed)?;
    for v in model.vars() {
        v.set(&v.as_tensor().abs()?)?;
    }
    let x = Tensor::ones((1, input.features), DType::F64, &Device::Cpu)?;
    let mut rng = Rng::derive(seed, "proxy-dropout", &[]);
    let r = model.forward(&x, false, &mut rng)?.sum_all()?;
    let grads = r.backward()?;
    let mut score = 0.0;
    for v in model.vars() {
        if let Some(g) = grads.get(v.as_tensor()) {
            score += (v.as_tensor() * g)?.abs()?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    Ok(score)
}

/// The NASWOT score of `arch` on the rows `x` (`[rows, features]`, standardised as training sees them).
/// The network runs on candle's ops, so that every activation is its own op whose input is recorded.
pub fn naswot(
    space: &SpaceDef,
    arch: &Arch,
    input: &InputInfo,
    seed: u64,
    x: &[f32],
) -> Result<f64> {
    crate::init_threads();
    let rows = x.len() / input.features;
    let mut model = untrained(space, arch, input, seed)?;
    let x = Tensor::from_slice(x, (rows, input.features), &Device::Cpu)?.to_dtype(DType::F64)?;
    let mut rng = Rng::derive(seed, "proxy-dropout", &[]);
    let (out, codes) = ops::recording_activations(|| model.forward(&x, false, &mut rng));
    out?;
    let mut k = vec![0.0f64; rows * rows];
    for t in codes {
        let c = t.flatten_from(1)?.ge(0.0)?.to_dtype(DType::F64)?;
        let n = c.dim(1)? as f64;
        // Agreements: c·cᵀ + (1 − c)(1 − c)ᵀ = n − rowsum_i − rowsum_j + 2 c·cᵀ.
        let dot: Vec<Vec<f64>> = c.matmul(&c.t()?)?.to_vec2()?;
        let ones: Vec<f64> = c.sum(1)?.to_vec1()?;
        for i in 0..rows {
            for j in 0..rows {
                k[i * rows + j] += n - ones[i] - ones[j] + 2.0 * dot[i][j];
            }
        }
    }
    Ok(ln_abs_det(k, rows))
}

/// ln |det A| of the n×n row-major `a`, by LU with partial pivoting; −∞ when singular.
pub fn ln_abs_det(mut a: Vec<f64>, n: usize) -> f64 {
    let mut s = 0.0;
    for col in 0..n {
        let p = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .expect("col < n");
        if a[p * n + col] == 0.0 {
            return f64::NEG_INFINITY;
        }
        if p != col {
            for j in 0..n {
                a.swap(p * n + j, col * n + j);
            }
        }
        let d = a[col * n + col];
        s += d.abs().ln();
        for i in col + 1..n {
            let f = a[i * n + col] / d;
            for j in col..n {
                a[i * n + j] -= f * a[col * n + j];
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(width: usize) -> (SpaceDef, InputInfo) {
        let mut e = space::Experiment::default();
        e.space.block = Some(space::BlockKind::Dense);
        e.space.pool = None;
        e.space.width = Some(vec![width]);
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let input = InputInfo {
            features: 3,
            shape: None,
            classes: 2,
            text: Vec::new(),
        };
        (def, input)
    }

    fn weights(def: &SpaceDef, arch: &Arch, input: &InputInfo) -> Vec<(String, Vec<f64>)> {
        let mut m = untrained(def, arch, input, 5).unwrap();
        m.tensors()
            .into_iter()
            .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f64>().unwrap()))
            .collect()
    }

    /// For x → W2 relu(W1 x + b1) + b2 with every θ ≥ 0 and x = 1: R = Σ_k (Σ_j W2kj h_j + b2k) with
    /// h_j = Σ_i W1ji + b1j, so ∂R/∂W1ji = ∂R/∂b1j = Σ_k W2kj, ∂R/∂W2kj = h_j, ∂R/∂b2k = 1.
    #[test]
    fn synflow_of_a_one_layer_network_is_the_hand_computed_sum() {
        let (def, input) = dense(4);
        let arch = def.parse("fc4-relu").unwrap();
        let w = weights(&def, &arch, &input);
        let names: Vec<&str> = w.iter().map(|(n, _)| n.as_str()).collect();
        let get = |suffix: &str, skip_head: bool| -> Vec<f64> {
            w.iter()
                .find(|(n, _)| n.ends_with(suffix) && n.starts_with("head") != skip_head)
                .unwrap_or_else(|| panic!("{suffix} in {names:?}"))
                .1
                .iter()
                .map(|v| v.abs())
                .collect()
        };
        let (w1, b1) = (get("weight", true), get("bias", true));
        let (w2, b2) = (get("weight", false), get("bias", false));
        assert_eq!(
            (w1.len(), b1.len(), w2.len(), b2.len()),
            (12, 4, 8, 2),
            "{names:?}"
        );
        // Linear weights are stored [in, out].
        let score = |w1_unit: &dyn Fn(usize, usize) -> f64,
                     w2_unit: &dyn Fn(usize, usize) -> f64| {
            let h: Vec<f64> = (0..4)
                .map(|j| (0..3).map(|i| w1_unit(i, j)).sum::<f64>() + b1[j])
                .collect();
            let out_sum: Vec<f64> = (0..4)
                .map(|j| (0..2).map(|k| w2_unit(k, j)).sum())
                .collect();
            let mut s = 0.0;
            for j in 0..4 {
                s += (0..3).map(|i| w1_unit(i, j)).sum::<f64>() * out_sum[j];
                s += b1[j] * out_sum[j];
                s += (0..2).map(|k| w2_unit(k, j) * h[j]).sum::<f64>();
            }
            s + b2.iter().sum::<f64>()
        };
        let want = score(&|i, j| w1[i * 4 + j], &|k, j| w2[j * 2 + k]);
        let got = synflow(&def, &arch, &input, 5).unwrap();
        assert!(
            (got - want).abs() < 1e-12 * want,
            "synflow {got}, by hand {want}"
        );
    }

    /// Two inputs, one ReLU layer whose pre-activations have known signs: K = [[n, a], [a, n]] with a the
    /// number of units where the two codes agree, so the score is ln(n² − a²).
    #[test]
    fn naswot_of_two_samples_is_the_log_determinant_of_their_agreements() {
        let (def, input) = dense(4);
        let arch = def.parse("fc4-relu").unwrap();
        let x = [1.0f32, -2.0, 0.5, -1.0, 0.25, 3.0];
        // The pre-activations, from the model's own first layer.
        let mut m = untrained(&def, &arch, &input, 5).unwrap();
        let xt = Tensor::from_slice(&x, (2, 3), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let (out, pre) =
            ops::recording_activations(|| m.forward(&xt, false, &mut Rng::derive(0, "t", &[])));
        out.unwrap();
        assert_eq!(pre.len(), 1, "one activation layer");
        let z: Vec<Vec<f64>> = pre[0].to_vec2().unwrap();
        let agree = (0..4)
            .filter(|&u| (z[0][u] >= 0.0) == (z[1][u] >= 0.0))
            .count() as f64;
        let want = (16.0 - agree * agree).ln();
        assert!(
            (1.0..4.0).contains(&agree),
            "a case where the codes differ somewhere: {agree}"
        );
        let got = naswot(&def, &arch, &input, 5, &x).unwrap();
        assert!((got - want).abs() < 1e-12, "naswot {got}, by hand {want}");
        // The same two rows twice: equal codes make K singular.
        let twice = [&x[..3], &x[..3]].concat();
        assert_eq!(
            naswot(&def, &arch, &input, 5, &twice).unwrap(),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn log_determinant_matches_a_hand_computed_one() {
        // det [[2, 1, 0], [1, 3, 1], [0, 1, 4]] = 2·11 − 1·4 = 18.
        let a = vec![2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0];
        assert!((ln_abs_det(a, 3) - 18f64.ln()).abs() < 1e-12);
        assert_eq!(ln_abs_det(vec![1.0, 2.0, 2.0, 4.0], 2), f64::NEG_INFINITY);
    }

    #[test]
    fn synflow_runs_on_cells_and_chains_and_prefers_connected_cells() {
        let mut e = space::Experiment::default();
        e.space.family = space::SpaceFamily::Cell;
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let input = InputInfo {
            features: 3 * 8 * 8,
            shape: Some([3, 8, 8]),
            classes: 10,
            text: Vec::new(),
        };
        let conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
        let s = |a: &str| synflow(&def, &def.parse(a).unwrap(), &input, 1).unwrap();
        let (sc, sn) = (s(conv), s(none));
        assert!(sc.is_finite() && sc > sn, "conv cell {sc}, empty cell {sn}");
    }
}
