//! One training: the AdamW loop (plain, or several folds grouped), prediction, accuracy.

use crate::adamw::AdamW;
use crate::augment::Augmenter;
use crate::model::Model;
use crate::ops;
use candle_core::{DType, Device, Tensor};
use space::{Arch, InputInfo, Rng, SpaceDef};

/// The training settings that change results: epochs, mini-batch size and AdamW's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Early stopping on an inner validation split ([`train`]); `None`: all epochs on all rows.
    pub patience: Option<usize>,
    /// Whether the loss weighs classes equally (`[evaluate] class_weight = "balanced"`, [`class_weights`]).
    pub balanced: bool,
    /// What the training does to its images ([`crate::augment::Augmenter`]).
    pub augment: space::augment::Augment,
}

impl Hyper {
    /// The `[evaluate]` settings, training for `epochs`.
    pub fn new(e: &space::experiment::EvalSpec, epochs: usize) -> Hyper {
        Hyper {
            epochs,
            batch_size: e.batch_size,
            lr: e.lr.unwrap_or(space::experiment::TABLE_DEFAULTS.lr),
            weight_decay: e.weight_decay,
            patience: e.patience,
            balanced: e.balanced(),
            augment: e.augment,
        }
    }
}

/// Each class's loss weight on the training rows `y`, `n / (k · n_c)` over the `k` classes present (0 for
/// the absent), when `balanced`; `None` (plain cross-entropy) otherwise.
pub fn class_weights(y: &[u32], balanced: bool) -> Option<Vec<f32>> {
    if !balanced {
        return None;
    }
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut n = vec![0usize; classes];
    y.iter().for_each(|&c| n[c as usize] += 1);
    let k = n.iter().filter(|&&c| c > 0).count().max(1);
    Some(
        n.iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    y.len() as f32 / (k * c) as f32
                }
            })
            .collect(),
    )
}

/// A network's tensors by name ([`Model::tensors`]), copied.
type Weights = Vec<(String, Tensor)>;

/// Early stopping's inner split of a training's rows: a stratified tenth (stream `(seed, "inner", stream)`)
/// is held out for validation. Returns (training rows, validation rows); with fewer than 20 rows there is
/// no split (everything trains, nothing validates).
fn inner_split(y: &[u32], seed: u64, stream: &[u64]) -> (Vec<usize>, Vec<usize>) {
    if y.len() < 20 {
        return ((0..y.len()).collect(), Vec::new());
    }
    let part = space::folds::deal(y, 10, Rng::derive(seed, "inner", stream));
    (0..y.len()).partition(|&r| part[r] != 0)
}

/// Where a training is: after step `step` of `steps` in epoch `epoch` (both from 1); `step == steps` ends
/// the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Step within the epoch, from 1.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Epochs of the training.
    pub epochs: usize,
}

/// How a training ended.
#[allow(clippy::large_enum_variant)] // one per training, moved once: boxing buys nothing
pub enum Trained {
    /// The model, trained, and its curve (held-out columns empty without held-out rows to watch).
    Ok(Model, space::Curve),
    /// The loss became NaN or infinite.
    Diverged(String),
    /// Abandoned before the training ended (the deadline passed, or its candidate was raced out meanwhile):
    /// nothing to score.
    Stopped,
}

/// A grouped network's mini-batch (rows `idx` of the folds stacked `nmax` apart, `grp.b` per fold, `f`
/// features a row) with each fold's real rows augmented on the host from its own stream, as [`train`] does.
fn augmented_batch(
    a: &mut Augmenter,
    rngs: &mut [Rng],
    folds: &[FoldRows],
    idx: &[u32],
    grp: &ops::Groups,
    (nmax, f): (usize, usize),
    dev: &Device,
) -> candle_core::Result<Tensor> {
    let mut xb = Vec::with_capacity(idx.len() * f);
    for (i, rows) in idx.chunks(grp.b).enumerate() {
        let start = xb.len();
        for &r in rows {
            let r = r as usize - i * nmax;
            xb.extend_from_slice(&folds[i].x[r * f..(r + 1) * f]);
        }
        a.apply(&mut xb[start..start + grp.rows[i] * f], &mut rngs[i]);
    }
    Tensor::from_vec(xb, (idx.len(), f), dev)
}

/// Why a grouped training ended without a model.
#[derive(Debug)]
pub enum GroupStop {
    /// Group `.0`'s loss became NaN or infinite (the message says when).
    Diverged(usize, String),
    /// Abandoned before the training ended (`abandon` said so, as in [`train`]).
    Abandoned,
}

/// Trains `arch` on the standardised rows `x`/`y` with AdamW; `stream` names the random streams
/// (initialisation, batch order, dropout), e.g. `[candidate, fold]`; `on_step` hears every optimiser step.
/// `abandon` is asked before every mini-batch; once it says so the training ends with [`Trained::Stopped`].
/// With `spec.patience`, a stratified tenth of the rows ([`inner_split`]) only validates: the training stops
/// after that many epochs without a better accuracy on it and returns its best epoch's weights.
/// The CPU path (and retraining); on a GPU, folds train grouped ([`train_grouped`]).
#[allow(clippy::too_many_arguments)]
pub fn train(
    space: &SpaceDef,
    arch: &Arch,
    input: &InputInfo,
    spec: &Hyper,
    seed: u64,
    stream: &[u64],
    x: &[f32],
    y: &[u32],
    dev: &Device,
    on_step: &dyn Fn(Tick),
    abandon: &dyn Fn() -> bool,
    watch: Option<(&[f32], &[u32])>,
) -> anyhow::Result<Trained> {
    let dev = dev.clone();
    let f = input.features;
    let mut init = Rng::derive(seed, "init", stream);
    let mut model = Model::new(space, arch, input, &mut init, DType::F32, &dev)?;
    let mut opt = optimizer(&model, spec)?;
    let mut drop_rng = Rng::derive(seed, "dropout", stream);
    let mut augmenter = Augmenter::new(spec.augment, input.shape);
    let mut aug_rng = Rng::derive(seed, "augment", stream);
    let (mut order, val) = match spec.patience {
        Some(_) => inner_split(y, seed, stream),
        None => ((0..y.len()).collect(), Vec::new()),
    };
    let val_x: Vec<f32> = val
        .iter()
        .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
        .collect();
    let val_y: Vec<u32> = val.iter().map(|&r| y[r]).collect();
    // (accuracy, epoch, weights) of the best epoch on the validation rows.
    let mut best: Option<(f64, usize, Weights)> = None;
    let steps = steps_per_epoch(order.len(), spec);
    let mut xb = Vec::with_capacity(spec.batch_size * f);
    let mut yb = Vec::with_capacity(spec.batch_size);
    let mut curve = space::Curve::default();
    let labels: Vec<u32> = order.iter().map(|&r| y[r]).collect();
    let class_w = class_weights(&labels, spec.balanced);
    let mut wb: Vec<f32> = Vec::with_capacity(spec.batch_size);
    for epoch in 0..spec.epochs {
        let mut loss_sum = 0.0;
        let mut shuf = Rng::derive(seed, "batches", &[stream, &[epoch as u64]].concat());
        shuf.shuffle(&mut order);
        for (s, chunk) in order.chunks(spec.batch_size).enumerate() {
            if abandon() {
                return Ok(Trained::Stopped);
            }
            xb.clear();
            yb.clear();
            for &r in chunk {
                xb.extend_from_slice(&x[r * f..(r + 1) * f]);
                yb.push(y[r]);
            }
            if let Some(a) = augmenter.as_mut() {
                a.apply(&mut xb, &mut aug_rng);
            }
            let xt = Tensor::from_slice(&xb, (chunk.len(), f), &dev)?;
            let yt = Tensor::from_slice(&yb, chunk.len(), &dev)?;
            let logits = model.forward(&xt, true, &mut drop_rng)?;
            let loss = match &class_w {
                None => ops::cross_entropy(&logits, &yt)?,
                Some(w) => {
                    wb.clear();
                    wb.extend(yb.iter().map(|&c| w[c as usize]));
                    let wt = Tensor::from_slice(&wb, (chunk.len(), 1), &dev)?;
                    ops::weighted_cross_entropy(&logits, &yt, &wt)?
                }
            };
            let l = loss.to_scalar::<f32>()?;
            if !l.is_finite() {
                return Ok(Trained::Diverged(format!(
                    "loss became {l} in epoch {}",
                    epoch + 1
                )));
            }
            loss_sum += f64::from(l) * chunk.len() as f64;
            opt.set_learning_rate(lr_at(spec, epoch * steps + s, spec.epochs * steps));
            opt.backward_step(&loss)?;
            on_step(Tick {
                epoch: epoch + 1,
                step: s + 1,
                steps,
                epochs: spec.epochs,
            });
        }
        curve.train_loss.push(loss_sum / order.len().max(1) as f64);
        if let Some((wx, wy)) = watch {
            let (loss, acc) = heldout(&mut model, wx, wy, f)?;
            curve.heldout_loss.push(loss);
            curve.heldout_accuracy.push(acc);
        }
        if let (Some(patience), false) = (spec.patience, val.is_empty()) {
            let acc = accuracy(&predict(&mut model, &val_x, f)?, &val_y);
            if best.as_ref().is_none_or(|b| acc > b.0) {
                let weights = model
                    .tensors()
                    .into_iter()
                    .map(|(n, t)| Ok((n, t.copy()?)))
                    .collect::<candle_core::Result<_>>()?;
                best = Some((acc, epoch, weights));
            } else if best.as_ref().is_some_and(|b| epoch - b.1 >= patience) {
                break;
            }
        }
    }
    if let Some((_, _, weights)) = best {
        model.load_tensors(&weights.into_iter().collect())?;
    }
    Ok(Trained::Ok(model, curve.rounded()))
}

/// Mean cross-entropy and accuracy of `model` on rows `x` (labels `y`), in inference mode.
fn heldout(model: &mut Model, x: &[f32], y: &[u32], features: usize) -> anyhow::Result<(f64, f64)> {
    let mut loss = 0.0;
    let mut right = 0usize;
    for (l, &t) in logits(model, x, features)?.iter().zip(y) {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + l.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
        loss += f64::from(lse - l[t as usize]);
        right += usize::from(space::metrics::argmax(l) == t as usize);
    }
    let n = y.len().max(1) as f64;
    Ok((loss / n, right as f64 / n))
}

/// AdamW over every parameter of `model`, with the experiment's learning rate and weight decay.
fn optimizer(model: &Model, spec: &Hyper) -> candle_core::Result<AdamW> {
    AdamW::new(model.vars(), spec.lr, spec.weight_decay)
}

/// One fold's standardised training rows and random-stream name, for [`train_grouped`].
pub struct FoldRows<'a> {
    /// Rows, `features` columns each.
    pub x: &'a [f32],
    /// Labels.
    pub y: &'a [u32],
    /// Names the fold's random streams, as `stream` of [`train`].
    pub stream: Vec<u64>,
}

/// The learning rate of step `step` (from 0) of `total`: cosine decay from `lr` towards 0 (a fixed number
/// of epochs ends at a small rate instead of wherever a constant one leaves it: fashion10k's reference CNN
/// scored 0.872 against 0.864 with the constant rate; see docs/benchmarks.md).
fn lr_at(spec: &Hyper, step: usize, total: usize) -> f64 {
    spec.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos())
}

/// Steps per epoch for `n` training rows (the last batch may be short).
pub fn steps_per_epoch(n: usize, spec: &Hyper) -> usize {
    n.div_ceil(spec.batch_size)
}

/// Trains the networks of several folds as one grouped network ([`Model::new_grouped`]) on one device:
/// fold i gets the same initialisation, batch order, dropout and AdamW updates as [`train`] would give it
/// alone, so the results agree with separate trainings up to float rounding, in one sequence of kernel
/// launches instead of one per fold. The folds must take the same number of steps per epoch
/// ([`steps_per_epoch`]); their last batches may differ in size (padding rows are masked out).
/// `Err((i, message))` when fold i's loss became NaN or infinite.
#[allow(clippy::too_many_arguments)]
pub fn train_grouped(
    space: &SpaceDef,
    arch: &Arch,
    input: &InputInfo,
    spec: &Hyper,
    seed: u64,
    folds: &[FoldRows],
    dev: &Device,
    on_step: &dyn Fn(Tick),
    abandon: &dyn Fn() -> bool,
) -> anyhow::Result<Result<Model, GroupStop>> {
    let g = folds.len();
    let f = input.features;
    let bs = spec.batch_size;
    let ns: Vec<usize> = folds.iter().map(|d| d.y.len()).collect();
    let steps = steps_per_epoch(ns[0], spec);
    if ns
        .iter()
        .any(|&n| n == 0 || steps_per_epoch(n, spec) != steps)
    {
        anyhow::bail!(
            "folds grouped for one training must take the same number of steps per epoch"
        );
    }
    let mut inits: Vec<Rng> = folds
        .iter()
        .map(|d| Rng::derive(seed, "init", &d.stream))
        .collect();
    let mut model = Model::new_grouped(space, arch, input, &mut inits, DType::F32, dev)?;
    let mut opt = optimizer(&model, spec)?;
    let mut drops: Vec<Rng> = folds
        .iter()
        .map(|d| Rng::derive(seed, "dropout", &d.stream))
        .collect();
    let mut augmenter = Augmenter::new(spec.augment, input.shape);
    let mut aug_rngs: Vec<Rng> = folds
        .iter()
        .map(|d| Rng::derive(seed, "augment", &d.stream))
        .collect();
    // Every fold's rows uploaded once, fold i at rows i·nmax..; batches are gathered on the device.
    let nmax = *ns.iter().max().unwrap();
    let mut xa = vec![0f32; g * nmax * f];
    let mut ya = vec![0u32; g * nmax];
    for (i, d) in folds.iter().enumerate() {
        xa[i * nmax * f..][..d.x.len()].copy_from_slice(d.x);
        ya[i * nmax..][..d.y.len()].copy_from_slice(d.y);
    }
    let xa = Tensor::from_vec(xa, (g * nmax, f), dev)?;
    let ya = Tensor::from_vec(ya, g * nmax, dev)?;
    let mut orders: Vec<Vec<usize>> = ns.iter().map(|&n| (0..n).collect()).collect();
    let mut prof = Profile::new();
    for epoch in 0..spec.epochs {
        for (d, order) in folds.iter().zip(&mut orders) {
            let mut shuf = Rng::derive(seed, "batches", &[&d.stream[..], &[epoch as u64]].concat());
            shuf.shuffle(order);
        }
        let mut epoch_loss: Option<Tensor> = None;
        for s in 0..steps {
            if abandon() {
                return Ok(Err(GroupStop::Abandoned));
            }
            let rows: Vec<usize> = ns.iter().map(|&n| (n - s * bs).min(bs)).collect();
            let grp = ops::Groups::new(rows, DType::F32, dev)?;
            let mut idx = Vec::with_capacity(g * grp.b);
            for (i, order) in orders.iter().enumerate() {
                let chunk = &order[s * bs..s * bs + grp.rows[i]];
                idx.extend(chunk.iter().map(|&r| (i * nmax + r) as u32));
                // Padding repeats a real row, so that every value stays finite; it is masked out.
                idx.extend(std::iter::repeat_n(
                    (i * nmax + chunk[0]) as u32,
                    grp.b - chunk.len(),
                ));
            }
            let augmented = (augmenter.as_mut())
                .map(|a| augmented_batch(a, &mut aug_rngs, folds, &idx, &grp, (nmax, f), dev))
                .transpose()?;
            let idx = Tensor::from_vec(idx, g * grp.b, dev)?;
            let yt = ya.index_select(&idx, 0)?;
            let xt = match augmented {
                Some(xt) => xt,
                None => xa.index_select(&idx, 0)?,
            };
            prof.lap(0, dev)?;
            let logits = model.forward_grouped(&xt, true, &mut drops, &grp)?;
            let losses = ops::cross_entropy_grouped(&logits, &yt, &grp)?;
            prof.lap(1, dev)?;
            epoch_loss = Some(match epoch_loss {
                Some(t) => (t + losses.detach())?,
                None => losses.detach(),
            });
            let grads = losses.sum_all()?.backward()?;
            prof.lap(2, dev)?;
            opt.set_learning_rate(lr_at(spec, epoch * steps + s, spec.epochs * steps));
            opt.step(&grads)?;
            prof.lap(3, dev)?;
            on_step(Tick {
                epoch: epoch + 1,
                step: s + 1,
                steps,
                epochs: spec.epochs,
            });
        }
        if let Some(t) = epoch_loss {
            let ls = t.to_vec1::<f32>()?;
            if let Some((i, l)) = ls.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                return Ok(Err(GroupStop::Diverged(
                    i,
                    format!("loss became {l} in epoch {}", epoch + 1),
                )));
            }
        }
    }
    prof.report(steps * spec.epochs);
    Ok(Ok(model))
}

/// `NAS_PROFILE=1`: the time of each phase of a grouped training step (the device synchronised after each),
/// printed to stderr when the training ends. A measuring aid; off, it costs nothing.
struct Profile {
    on: bool,
    t: std::time::Instant,
    secs: [f64; 4],
}

impl Profile {
    fn new() -> Profile {
        Profile {
            on: std::env::var_os("NAS_PROFILE").is_some(),
            t: std::time::Instant::now(),
            secs: [0.0; 4],
        }
    }
    fn lap(&mut self, phase: usize, dev: &Device) -> candle_core::Result<()> {
        if self.on {
            dev.synchronize()?;
            self.secs[phase] += self.t.elapsed().as_secs_f64();
            self.t = std::time::Instant::now();
        }
        Ok(())
    }
    fn report(&self, steps: usize) {
        if self.on {
            let ms = |s: f64| 1e3 * s / steps.max(1) as f64;
            eprintln!(
                "profile: {steps} steps, per step: batch {:.2} ms, forward+loss {:.2} ms, backward {:.2} ms, AdamW {:.2} ms",
                ms(self.secs[0]),
                ms(self.secs[1]),
                ms(self.secs[2]),
                ms(self.secs[3])
            );
        }
    }
}

/// Predicted class of every row of each group's `xs[i]` for a grouped network (inference mode).
pub fn predict_grouped(
    model: &mut Model,
    xs: &[&[f32]],
    features: usize,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let g = xs.len();
    let ns: Vec<usize> = xs.iter().map(|x| x.len() / features).collect();
    let nmax = ns.iter().copied().max().unwrap_or(0);
    let mut out: Vec<Vec<u32>> = ns.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut rngs: Vec<Rng> = (0..g).map(|_| Rng::derive(0, "unused", &[])).collect();
    let dev = model.device();
    let chunk = predict_rows(features);
    for start in (0..nmax).step_by(chunk) {
        let rows: Vec<usize> = ns
            .iter()
            .map(|&n| n.saturating_sub(start).min(chunk))
            .collect();
        let grp = ops::Groups::new(rows, DType::F32, &dev)?;
        let mut xb = vec![0f32; g * grp.b * features];
        for (i, x) in xs.iter().enumerate() {
            let part = &x[start.min(ns[i]) * features..][..grp.rows[i] * features];
            xb[i * grp.b * features..][..part.len()].copy_from_slice(part);
        }
        let t = Tensor::from_vec(xb, (g * grp.b, features), &dev)?;
        let pred = model
            .forward_grouped(&t, false, &mut rngs, &grp)?
            .argmax(1)?
            .to_vec1::<u32>()?;
        for (i, o) in out.iter_mut().enumerate() {
            o.extend_from_slice(&pred[i * grp.b..][..grp.rows[i]]);
        }
    }
    Ok(out)
}

/// Rows predicted at once: 512 for small inputs, fewer for large ones (a 28×28 image's 5×5 convolution over
/// 32 channels gathers 800 values per pixel, so 512 rows took 1.3 GB for one layer's windows); at least 64.
fn predict_rows(features: usize) -> usize {
    (65_536 / features.max(1)).clamp(64, 512)
}

/// Predicted class of every row of `x` (inference mode).
pub fn predict(model: &mut Model, x: &[f32], features: usize) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::with_capacity(x.len() / features);
    each_chunk(model, x, features, |logits| {
        out.extend(logits.argmax(1)?.to_vec1::<u32>()?);
        Ok(())
    })?;
    Ok(out)
}

/// The network's raw outputs (one row of class logits per row of `x`), as [`predict`] computes them.
pub fn logits(model: &mut Model, x: &[f32], features: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(x.len() / features);
    each_chunk(model, x, features, |logits| {
        out.extend(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with the logits of each chunk of [`predict_rows`] rows of `x`, in order.
fn each_chunk(
    model: &mut Model,
    x: &[f32],
    features: usize,
    mut f: impl FnMut(Tensor) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut rng = Rng::derive(0, "unused", &[]);
    for chunk in x.chunks(predict_rows(features) * features) {
        let t = Tensor::from_slice(chunk, (chunk.len() / features, features), &model.device())?;
        f(model.forward(&t, false, &mut rng)?)?;
    }
    Ok(())
}

/// Fraction of predictions equal to the labels.
pub fn accuracy(pred: &[u32], y: &[u32]) -> f64 {
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_class_weights_make_every_class_weigh_the_same_in_all() {
        let y = [0, 0, 0, 0, 0, 0, 1, 1, 3];
        assert_eq!(class_weights(&y, false), None);
        let w = class_weights(&y, true).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w[2], 0.0);
        // Three classes present: each class's rows weigh 9 / 3 = 3 in all.
        for c in [0usize, 1, 3] {
            let n = y.iter().filter(|&&k| k as usize == c).count() as f32;
            assert!((w[c] * n - 3.0).abs() < 1e-6, "class {c}: {}", w[c] * n);
        }
    }

    /// Large inputs are predicted a few rows at a time: the classes are those of predicting row by row.
    #[test]
    fn chunked_prediction_of_large_inputs_equals_row_by_row() {
        let def = SpaceDef::from_spec(&space::Experiment::default().space).unwrap();
        let arch = def.parse("conv8x3-relu-bn-maxpool/conv8x5-silu").unwrap();
        let input = InputInfo {
            features: 32 * 32,
            shape: Some([1, 32, 32]),
            classes: 10,
            text: Vec::new(),
        };
        assert_eq!(predict_rows(input.features), 64);
        let mut rng = Rng::derive(1, "init", &[]);
        let mut model =
            Model::new(&def, &arch, &input, &mut rng, DType::F32, &Device::Cpu).unwrap();
        let mut data = Rng::derive(2, "x", &[]);
        let x: Vec<f32> = (0..150 * input.features)
            .map(|_| data.uniform() as f32 * 2.0 - 1.0)
            .collect();
        let chunked = predict(&mut model, &x, input.features).unwrap();
        let one_by_one: Vec<u32> = x
            .chunks(input.features)
            .flat_map(|row| predict(&mut model, row, input.features).unwrap())
            .collect();
        assert_eq!(chunked, one_by_one);
    }

    #[test]
    fn the_inner_split_holds_out_a_stratified_tenth() {
        let y: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let (tr, val) = inner_split(&y, 1, &[4, 0]);
        assert_eq!(tr.len() + val.len(), 300);
        assert!(tr.iter().all(|r| !val.contains(r)));
        for c in 0..3 {
            assert_eq!(val.iter().filter(|&&r| y[r] == c).count(), 10);
        }
        assert_eq!(inner_split(&y, 1, &[4, 0]), (tr, val.clone()));
        assert_ne!(
            inner_split(&y, 1, &[4, 1]).1,
            val,
            "each training has its own split"
        );
        assert!(inner_split(&y[..19], 1, &[0]).1.is_empty());
    }

    /// With patience, a training whose validation accuracy stops improving ends before its last epoch, with
    /// weights that do well on its validation rows.
    #[test]
    fn early_stopping_ends_a_saturated_training_with_its_best_weights() {
        let mut e = space::Experiment::default();
        e.space.block = Some(space::BlockKind::Dense);
        e.space.pool = None;
        e.space.width = Some(vec![32]);
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let data = data::Dataset::load(&e.data).unwrap();
        let input = InputInfo {
            features: data.features,
            shape: None,
            classes: data.classes.len(),
            text: Vec::new(),
        };
        let arch = def.parse("fc32-relu").unwrap();
        let rows: Vec<usize> = (0..600).collect();
        let x = data::prep::Standardizer::fit(&data.x, data.features, &rows).apply(&data.x, &rows);
        let y = &data.y[..600];
        let spec = Hyper {
            epochs: 60,
            batch_size: 32,
            lr: 0.003,
            weight_decay: 0.0,
            patience: Some(3),
            balanced: false,
            augment: space::augment::Augment::Off,
        };
        let last = std::sync::Mutex::new(0);
        let Trained::Ok(mut m, _) = train(
            &def,
            &arch,
            &input,
            &spec,
            5,
            &[1],
            &x,
            y,
            &Device::Cpu,
            &|t| *last.lock().unwrap() = t.epoch,
            &|| false,
            None,
        )
        .unwrap() else {
            panic!("training failed")
        };
        let last = *last.lock().unwrap();
        assert!(last < 60, "ran all 60 epochs");
        let (_, val) = inner_split(y, 5, &[1]);
        let f = data.features;
        let vx: Vec<f32> = val
            .iter()
            .flat_map(|&r| x[r * f..(r + 1) * f].to_vec())
            .collect();
        let vy: Vec<u32> = val.iter().map(|&r| y[r]).collect();
        let acc = accuracy(&predict(&mut m, &vx, f).unwrap(), &vy);
        assert!(
            acc > 0.9,
            "validation accuracy of the returned weights: {acc}"
        );
    }

    /// Scoring held-out rows after each epoch for the curve changes no weight; the curve has an entry per
    /// epoch, and a training that learns shows it.
    #[test]
    fn watching_held_out_rows_changes_nothing_and_draws_the_curve() {
        let mut e = space::Experiment::default();
        e.space.block = Some(space::BlockKind::Dense);
        e.space.pool = None;
        e.space.dropout = Some(vec![0.2]);
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let data = data::Dataset::load(&e.data).unwrap();
        let f = data.features;
        let input = InputInfo {
            features: f,
            shape: None,
            classes: data.classes.len(),
            text: Vec::new(),
        };
        let arch = def.parse("fc32-relu-drop0.2").unwrap();
        let rows: Vec<usize> = (0..800).collect();
        let x = data::prep::Standardizer::fit(&data.x, f, &rows).apply(&data.x, &rows);
        let (xt, xv) = x.split_at(600 * f);
        let (yt, yv) = data.y[..800].split_at(600);
        let spec = Hyper {
            epochs: 4,
            batch_size: 32,
            lr: 0.003,
            weight_decay: 0.0,
            patience: None,
            balanced: false,
            augment: space::augment::Augment::Off,
        };
        let go = |on_step: &dyn Fn(Tick), abandon: &dyn Fn() -> bool, watch| {
            train(
                &def,
                &arch,
                &input,
                &spec,
                5,
                &[1],
                xt,
                yt,
                &Device::Cpu,
                on_step,
                abandon,
                watch,
            )
        };
        let run = |watch| match go(&|_| {}, &|| false, watch).unwrap() {
            Trained::Ok(m, c) => (m, c),
            _ => panic!("training failed"),
        };
        let (mut plain, unwatched) = run(None);
        let (mut watched, c) = run(Some((xv, yv)));
        assert_eq!(plain.tensors().len(), watched.tensors().len());
        for ((n, a), (_, b)) in plain.tensors().iter().zip(watched.tensors()) {
            let (a, b) = (a.flatten_all().unwrap(), b.flatten_all().unwrap());
            let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
            assert_eq!(a, b, "{n} differs");
        }
        assert_eq!(unwatched.train_loss, c.train_loss);
        assert!(unwatched.heldout_loss.is_empty());
        assert_eq!(
            (
                c.train_loss.len(),
                c.heldout_loss.len(),
                c.heldout_accuracy.len()
            ),
            (4, 4, 4)
        );
        assert!(
            c.train_loss[3] < c.train_loss[0] && c.heldout_loss[3] < c.heldout_loss[0],
            "{c:?}"
        );
        let acc = accuracy(&predict(&mut watched, xv, f).unwrap(), yv);
        assert!(
            (c.heldout_accuracy[3] - acc).abs() < 1e-4,
            "{c:?} against {acc}"
        );
        assert_eq!(acc, accuracy(&predict(&mut plain, xv, f).unwrap(), yv));
        // Abandoned after its third mini-batch (`abandon` is asked before each): three steps, no model.
        let (asked, steps) = (std::sync::Mutex::new(0), std::sync::Mutex::new(0));
        let abandon = || {
            let mut n = asked.lock().unwrap();
            *n += 1;
            *n > 3
        };
        let on_step = |_| *steps.lock().unwrap() += 1;
        assert!(matches!(
            go(&on_step, &abandon, None).unwrap(),
            Trained::Stopped
        ));
        assert_eq!(*steps.lock().unwrap(), 3);
    }

    #[test]
    fn grouped_folds_train_like_separate_folds() {
        // Both paths on candle ops, so that their rounding agrees: a bias right before a batch norm gets
        // only rounding noise as its gradient, which AdamW turns into steps, and other kernels give other
        // noise. The kernels are compared with the candle ops op by op in `ops`' tests.
        crate::ops::with_candle_ops(grouped_folds_train_like_separate_folds_on_candle_ops)
    }

    fn grouped_folds_train_like_separate_folds_on_candle_ops() {
        for (family, arch, rows) in [
            (
                "conv",
                "conv8x3-relu-bn-maxpool-drop0.1/conv16x3-silu-avgpool-res",
                [150, 149, 147],
            ),
            (
                "mlp",
                "fc32-relu-bn-drop0.2/fc16-tanh-res",
                [150, 151, 136],
            ),
            (
                "cell",
                "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|",
                [100, 99, 100],
            ),
        ] {
            let mut e = space::Experiment::default();
            e.evaluate.epochs = Some(2);
            e.evaluate.batch_size = 32;
            e.space.activation = Some(vec![space::Act::Relu, space::Act::Silu, space::Act::Tanh]);
            e.space.pool = Some(space::Pool::ALL.to_vec());
            e.space.dropout = Some(vec![0.0, 0.1, 0.2]);
            // Mirror images (8×8 is too small to shift), made on the host for the grouped network.
            e.evaluate.augment = space::augment::Augment::ShiftFlip;
            match family {
                "mlp" => {
                    e.space.block = Some(space::BlockKind::Dense);
                    e.space.pool = None;
                    e.space.width = Some(vec![16, 32]);
                }
                "cell" => {
                    e.space = space::experiment::SpaceSpec {
                        family: space::SpaceFamily::Cell,
                        channels: Some(4),
                        ..Default::default()
                    }
                }
                _ => {}
            }
            let def = SpaceDef::from_spec(&e.space).unwrap();
            let data = data::Dataset::load(&e.data).unwrap();
            let input = InputInfo {
                features: data.features,
                shape: Some([1, 8, 8]),
                classes: data.classes.len(),
                text: Vec::new(),
            };
            let arch = def.parse(arch).unwrap();
            let x = data::prep::network_layout(&data.x, data.features, input.shape);
            let f = data.features;
            let spec = &Hyper::new(&e.evaluate, e.evaluate.epochs.unwrap_or(8));
            let folds: Vec<(Vec<f32>, Vec<u32>)> = rows
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let r: Vec<usize> = (i * 200..i * 200 + n).collect();
                    let st = data::prep::Standardizer::fit(&x, f, &r);
                    (st.apply(&x, &r), r.iter().map(|&r| data.y[r]).collect())
                })
                .collect();
            let fr: Vec<FoldRows> = folds
                .iter()
                .enumerate()
                .map(|(i, (x, y))| FoldRows {
                    x,
                    y,
                    stream: vec![7, i as u64],
                })
                .collect();
            let mut grouped =
                match train_grouped(&def, &arch, &input, spec, 3, &fr, &Device::Cpu, &|_| {}, &|| false)
                    .unwrap()
                {
                    Ok(m) => m,
                    Err(e) => panic!("{e:?}"),
                };
            let gt = grouped.tensors();
            let xs: Vec<&[f32]> = folds.iter().map(|(x, _)| &x[..]).collect();
            let gpred = predict_grouped(&mut grouped, &xs, f).unwrap();
            for (i, (xi, yi)) in folds.iter().enumerate() {
                let mut alone = match train(
                    &def,
                    &arch,
                    &input,
                    spec,
                    3,
                    &[7, i as u64],
                    xi,
                    yi,
                    &Device::Cpu,
                    &|_| {},
                    &|| false,
                    None,
                )
                .unwrap()
                {
                    Trained::Ok(m, _) => m,
                    Trained::Diverged(m) => panic!("{m}"),
                    Trained::Stopped => unreachable!("never abandoned"),
                };
                let at = alone.tensors();
                assert_eq!(at.len(), gt.len());
                for ((name, a), (gname, g)) in at.iter().zip(&gt) {
                    assert_eq!(name, gname);
                    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    let g = g
                        .get(i)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                    let d = a
                        .iter()
                        .zip(&g)
                        .map(|(a, g)| (a - g).abs() / (1.0 + a.abs()))
                        .fold(0f32, f32::max);
                    // A bias right before a batch norm gets only rounding noise as gradient, which AdamW
                    // turns into steps of up to lr; the norm cancels it (and its running mean follows it).
                    let block = name.split('.').next().unwrap();
                    let before_bn = at.iter().any(|(n, _)| n == &format!("{block}.bn.gamma"))
                        && (name.ends_with(".bias") && !name.contains(".bn."))
                        || name.ends_with(".running_mean");
                    let tol = if before_bn { 0.05 } else { 1e-5 };
                    assert!(d < tol, "{family} fold {i} {name}: differs by {d}");
                }
                let pred = predict(&mut alone, xi, f).unwrap();
                let same = pred.iter().zip(&gpred[i]).filter(|(a, b)| a == b).count();
                assert!(
                    same + 1 >= pred.len(),
                    "{family} fold {i}: {same} of {} predictions agree",
                    pred.len()
                );
            }
        }
    }
}
