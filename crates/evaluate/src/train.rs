//! One training: folds, standardisation, the AdamW loop, accuracy.

use crate::model::Model;
use crate::ops;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use space::experiment::EvalSpec;
use space::{Arch, Dataset, InputInfo, Rng, SpaceDef};

/// Rows as the networks read them: images reordered channel-last (`h, w, c`), other data as is.
pub fn network_layout(data: &Dataset, input: &InputInfo) -> Vec<f32> {
    rows_to_network_layout(&data.x, data.features, input)
}

/// [`network_layout`] of raw row-major rows with `features` columns.
pub fn rows_to_network_layout(x: &[f32], features: usize, input: &InputInfo) -> Vec<f32> {
    match &input.shape {
        Some(s) if s[0] > 1 => {
            let (c, hw) = (s[0], s[1] * s[2]);
            let mut out = vec![0.0; x.len()];
            for (r, row) in x.chunks(features).enumerate() {
                for ci in 0..c {
                    for p in 0..hw {
                        out[r * features + p * c + ci] = row[ci * hw + p];
                    }
                }
            }
            out
        }
        _ => x.to_vec(),
    }
}

/// Stratified fold of every row: each class shuffled (stream `(seed, "folds")`) and dealt round-robin.
pub fn stratified_folds(y: &[u32], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::derive(seed, "folds", &[k as u64]);
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut fold = vec![0; y.len()];
    let mut next = 0;
    for c in 0..classes {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] as usize == c).collect();
        rng.shuffle(&mut rows);
        for r in rows {
            fold[r] = next % k;
            next += 1;
        }
    }
    fold
}

/// Per-feature mean and standard deviation, fitted on training rows only.
#[derive(Clone, Debug)]
pub struct Standardizer {
    /// Feature means.
    pub mean: Vec<f32>,
    /// Feature standard deviations (1 where a feature is constant).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `rows` of `x` (`features` columns).
    pub fn fit(x: &[f32], features: usize, rows: &[usize]) -> Standardizer {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; features];
        let mut sq = vec![0f64; features];
        for &r in rows {
            for (j, v) in x[r * features..(r + 1) * features].iter().enumerate() {
                mean[j] += *v as f64;
                sq[j] += (*v as f64) * (*v as f64);
            }
        }
        let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
        let std = sq.iter().zip(&mean).map(|(s, m)| {
            let sd = (s / n - m * m).max(0.0).sqrt();
            if sd < 1e-6 {
                1.0
            } else {
                sd as f32
            }
        });
        Standardizer {
            std: std.collect(),
            mean: mean.iter().map(|&m| m as f32).collect(),
        }
    }

    /// Standardised copy of `rows`.
    pub fn apply(&self, x: &[f32], rows: &[usize]) -> Vec<f32> {
        let f = self.mean.len();
        let mut out = Vec::with_capacity(rows.len() * f);
        for &r in rows {
            for j in 0..f {
                out.push((x[r * f + j] - self.mean[j]) / self.std[j]);
            }
        }
        out
    }
}

/// How a training ended.
pub enum Trained {
    /// The model, trained.
    Ok(Model),
    /// The loss became NaN or infinite.
    Diverged(String),
}

/// Trains `arch` on the standardised rows `x`/`y` with AdamW; `stream` names the random streams
/// (initialisation, batch order, dropout), e.g. `[candidate, fold]`; `on_epoch` hears each finished epoch.
#[allow(clippy::too_many_arguments)]
pub fn train(
    space: &SpaceDef,
    arch: &Arch,
    input: &InputInfo,
    spec: &EvalSpec,
    seed: u64,
    stream: &[u64],
    x: &[f32],
    y: &[u32],
    dev: &Device,
    on_epoch: &dyn Fn(usize),
) -> anyhow::Result<Trained> {
    let upload_once = !dev.is_cpu();
    train_with(
        space,
        arch,
        input,
        spec,
        seed,
        stream,
        x,
        y,
        dev,
        upload_once,
        on_epoch,
    )
}

/// [`train`], with the batches either copied from host memory each step (`upload_once` false: the CPU path)
/// or gathered on the device from the training rows uploaded once (`upload_once` true: the GPU path, which
/// also checks the loss for divergence once per epoch instead of synchronising every step).
#[allow(clippy::too_many_arguments)]
fn train_with(
    space: &SpaceDef,
    arch: &Arch,
    input: &InputInfo,
    spec: &EvalSpec,
    seed: u64,
    stream: &[u64],
    x: &[f32],
    y: &[u32],
    dev: &Device,
    upload_once: bool,
    on_epoch: &dyn Fn(usize),
) -> anyhow::Result<Trained> {
    let dev = dev.clone();
    let f = input.features;
    let mut init = Rng::derive(seed, "init", stream);
    let mut model = Model::new(space, arch, input, &mut init, DType::F32, &dev)?;
    let mut opt = AdamW::new(
        model.vars(),
        ParamsAdamW {
            lr: spec.lr,
            weight_decay: spec.weight_decay,
            ..Default::default()
        },
    )?;
    let mut drop_rng = Rng::derive(seed, "dropout", stream);
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut xb = Vec::with_capacity(spec.batch_size * f);
    let mut yb = Vec::with_capacity(spec.batch_size);
    let all = if upload_once {
        Some((
            Tensor::from_slice(x, (n, f), &dev)?,
            Tensor::from_slice(y, n, &dev)?,
        ))
    } else {
        None
    };
    let diverged = |l: f32, epoch: usize| {
        Ok(Trained::Diverged(format!(
            "loss became {l} in epoch {}",
            epoch + 1
        )))
    };
    for epoch in 0..spec.epochs {
        let mut shuf = Rng::derive(seed, "batches", &[stream, &[epoch as u64]].concat());
        shuf.shuffle(&mut order);
        let mut epoch_loss: Option<Tensor> = None;
        for chunk in order.chunks(spec.batch_size) {
            let (xt, yt) = match &all {
                Some((xa, ya)) => {
                    let idx: Vec<u32> = chunk.iter().map(|&r| r as u32).collect();
                    let idx = Tensor::from_vec(idx, chunk.len(), &dev)?;
                    (xa.index_select(&idx, 0)?, ya.index_select(&idx, 0)?)
                }
                None => {
                    xb.clear();
                    yb.clear();
                    for &r in chunk {
                        xb.extend_from_slice(&x[r * f..(r + 1) * f]);
                        yb.push(y[r]);
                    }
                    (
                        Tensor::from_slice(&xb, (chunk.len(), f), &dev)?,
                        Tensor::from_slice(&yb, chunk.len(), &dev)?,
                    )
                }
            };
            let logits = model.forward(&xt, true, &mut drop_rng)?;
            let loss = ops::cross_entropy(&logits, &yt)?;
            if upload_once {
                epoch_loss = Some(match epoch_loss {
                    Some(s) => (s + loss.detach())?,
                    None => loss.detach(),
                });
            } else {
                let l = loss.to_scalar::<f32>()?;
                if !l.is_finite() {
                    return diverged(l, epoch);
                }
            }
            opt.backward_step(&loss)?;
        }
        if let Some(s) = epoch_loss {
            let l = s.to_scalar::<f32>()?;
            if !l.is_finite() {
                return diverged(l, epoch);
            }
        }
        on_epoch(epoch + 1);
    }
    Ok(Trained::Ok(model))
}

/// Predicted class of every row of `x` (inference mode).
pub fn predict(model: &mut Model, x: &[f32], features: usize) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::with_capacity(x.len() / features);
    let mut rng = Rng::derive(0, "unused", &[]);
    for chunk in x.chunks(512 * features) {
        let t = Tensor::from_slice(chunk, (chunk.len() / features, features), &model.device())?;
        let logits = model.forward(&t, false, &mut rng)?;
        out.extend(logits.argmax(1)?.to_vec1::<u32>()?);
    }
    Ok(out)
}

/// Fraction of predictions equal to the labels.
pub fn accuracy(pred: &[u32], y: &[u32]) -> f64 {
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_balanced() {
        let y: Vec<u32> = (0..103).map(|i| (i % 3) as u32).collect();
        let f = stratified_folds(&y, 5, 1);
        for k in 0..5 {
            let n = f.iter().filter(|&&x| x == k).count();
            assert!((20..=21).contains(&n), "fold {k}: {n}");
            for c in 0..3 {
                let m = (0..103).filter(|&i| f[i] == k && y[i] == c).count();
                assert!((6..=8).contains(&m));
            }
        }
        assert_eq!(f, stratified_folds(&y, 5, 1));
        assert_ne!(f, stratified_folds(&y, 5, 2));
    }

    #[test]
    fn standardizer_uses_only_given_rows() {
        let x = vec![1.0, 10.0, 3.0, 10.0, 100.0, 0.0];
        let s = Standardizer::fit(&x, 2, &[0, 1]);
        assert_eq!(s.mean, vec![2.0, 10.0]);
        assert_eq!(s.std, vec![1.0, 1.0]);
        assert_eq!(s.apply(&x, &[2]), vec![98.0, -10.0]);
    }

    #[test]
    fn uploading_the_rows_once_trains_the_same_model_as_copying_each_batch() {
        let mut e = space::Experiment::default();
        e.evaluate.epochs = 2;
        let (sf, def, data) = space::SpaceFile::resolve(e).unwrap();
        let arch = def.parse("conv8x3-relu-bn-maxpool-drop0.1").unwrap();
        let rows: Vec<usize> = (0..300).collect();
        let x = network_layout(&data, &sf.input);
        let st = Standardizer::fit(&x, data.features, &rows);
        let xs = st.apply(&x, &rows);
        let ys: Vec<u32> = rows.iter().map(|&r| data.y[r]).collect();
        let run = |once: bool| {
            let e = &sf.experiment.evaluate;
            match train_with(
                &def,
                &arch,
                &sf.input,
                e,
                1,
                &[1, 0],
                &xs,
                &ys,
                &Device::Cpu,
                once,
                &|_| {},
            )
            .unwrap()
            {
                Trained::Ok(mut m) => m
                    .tensors()
                    .into_iter()
                    .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                    .collect::<Vec<_>>(),
                Trained::Diverged(m) => panic!("{m}"),
            }
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn channel_last_reorders_images() {
        let d = Dataset {
            x: vec![1., 2., 3., 4., 5., 6., 7., 8.],
            y: vec![0],
            features: 8,
            classes: vec!["a".into()],
            fingerprint: String::new(),
        };
        let inp = InputInfo {
            features: 8,
            shape: Some(vec![2, 2, 2]),
            classes: 2,
        };
        assert_eq!(
            network_layout(&d, &inp),
            vec![1., 5., 2., 6., 3., 7., 4., 8.]
        );
    }
}
