//! Baselines on the run's own folds, to say whether a result is good: the majority class of each training
//! fold, and a linear model (multinomial logistic regression on the same preprocessed inputs the networks
//! read; a text column as TF-IDF over its tokens, as a user's scikit-learn baseline would read it).
//! Both take seconds; neither is searched or tuned, so they are a floor, not a competitor.

use super::folds::FoldPlan;
use anyhow::Result;
use data::Dataset;
use rayon::prelude::*;
use space::{BaselineFile, BaselineScore, Plan, Rng, ARTIFACT_VERSION};

/// Epochs of the linear model at the least, and optimiser steps at the least (small data gets more epochs):
/// enough for a convex problem on standardised inputs to settle.
const LINEAR_EPOCHS: usize = 20;
const LINEAR_STEPS: usize = 2000;

/// The baselines of `plan` on `data`, scored fold by fold in the run's metric on the run's folds.
pub fn baselines(plan: &Plan, data: &Dataset) -> Result<BaselineFile> {
    let folds = FoldPlan::new(plan, data)?;
    let metric = plan.exp().evaluate.metric;
    let classes = data.classes.len();
    let seed = plan.exp().seed;
    let balanced = plan.exp().evaluate.balanced();
    let per_fold: Vec<(f64, f64)> = (0..folds.len())
        .into_par_iter()
        .map(|f| {
            let ((xt, yt), (xv, yv)) = folds.split(data, f);
            let input = folds.input(f);
            let majority = majority(&yt, classes);
            let m = metric.score(&vec![majority; yv.len()], &yv, classes);
            let ((mut xt, width), (mut xv, _)) = (sparse(&xt, &input), sparse(&xv, &input));
            let dense = input.dense_features();
            let fitted = xt.clone();
            tf_idf(&fitted, &mut xt, dense, width);
            tf_idf(&fitted, &mut xv, dense, width);
            let model = Linear::fit(
                &xt,
                &yt,
                (width, classes),
                nn::train::class_weights(&yt, balanced).as_deref(),
                Rng::derive(seed, "baseline", &[f as u64]),
            );
            let l = metric.score(&model.predict(&xv), &yv, classes);
            (m, l)
        })
        .collect();
    let score = |name: &str, v: Vec<f64>| {
        let (cv_mean, cv_std) = space::mean_std(&v);
        BaselineScore {
            name: name.into(),
            cv_mean,
            cv_std,
            fold_scores: v,
        }
    };
    Ok(BaselineFile {
        version: ARTIFACT_VERSION,
        kind: "nas.baseline".into(),
        metric,
        baseline: vec![
            score("majority class", per_fold.iter().map(|p| p.0).collect()),
            score("linear model", per_fold.iter().map(|p| p.1).collect()),
        ],
    })
}

/// The most frequent class of `y` (the lowest index on a tie).
fn majority(y: &[u32], classes: usize) -> u32 {
    let mut counts = vec![0usize; classes];
    for &c in y {
        counts[c as usize] += 1;
    }
    (0..classes).fold(0, |b, c| if counts[c] > counts[b] { c } else { b }) as u32
}

/// A row's non-zero inputs as (index, value).
type Sparse = Vec<(u32, f32)>;

/// The rows of `x` (network inputs described by `input`) as sparse rows over the linear model's inputs, and
/// their number: the dense inputs as they are, then per text column one input per vocabulary id holding the
/// id's count in the text (see [`tf_idf`]).
fn sparse(x: &[f32], input: &space::InputInfo) -> (Vec<Sparse>, usize) {
    let dense = input.dense_features();
    let width = dense + input.text.iter().map(|t| t.vocab).sum::<usize>();
    let rows = x
        .chunks(input.features)
        .map(|row| {
            let mut out: Sparse = (0..dense)
                .filter(|&j| row[j] != 0.0)
                .map(|j| (j as u32, row[j]))
                .collect();
            let (mut at, mut base) = (dense, dense);
            for t in &input.text {
                let mut ids: Vec<u32> = row[at..at + t.len]
                    .iter()
                    .map(|&v| v as usize)
                    .filter(|&id| id >= data::text::RESERVED)
                    .map(|id| (base + id) as u32)
                    .collect();
                ids.sort_unstable();
                for id in ids {
                    match out.last_mut() {
                        Some(last) if last.0 == id => last.1 += 1.0,
                        _ => out.push((id, 1.0)),
                    }
                }
                at += t.inputs();
                base += t.vocab;
            }
            out
        })
        .collect();
    (rows, width)
}

/// Text counts made TF-IDF as scikit-learn's `TfidfVectorizer(sublinear_tf=True)` makes them: each count `c`
/// of an input from `dense` on becomes `(1 + ln c) · idf`, idf `ln((1 + n) / (1 + df)) + 1` over the `n`
/// rows of `fitted` (the training rows), and each row's text part is scaled to unit length.
fn tf_idf(fitted: &[Sparse], rows: &mut [Sparse], dense: usize, width: usize) {
    let mut df = vec![0u32; width];
    for r in fitted {
        r.iter()
            .filter(|e| e.0 as usize >= dense)
            .for_each(|e| df[e.0 as usize] += 1);
    }
    let n = fitted.len() as f32;
    for r in rows.iter_mut() {
        let mut norm = 0f32;
        for e in r.iter_mut().filter(|e| e.0 as usize >= dense) {
            let idf = ((1.0 + n) / (1.0 + df[e.0 as usize] as f32)).ln() + 1.0;
            e.1 = (1.0 + e.1.ln()) * idf;
            norm += e.1 * e.1;
        }
        let norm = norm.sqrt().max(1e-12);
        r.iter_mut()
            .filter(|e| e.0 as usize >= dense)
            .for_each(|e| e.1 /= norm);
    }
}

/// Multinomial logistic regression: `classes` outputs of `width` weights and a bias.
struct Linear {
    width: usize,
    classes: usize,
    /// Row-major `classes × width`.
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Linear {
    /// Trains on rows `x` (`width` each) and labels `y`: mini-batches of 64 in an order drawn from `rng`,
    /// Adam with a cosine-decayed rate from 0.01 and a little weight decay, [`LINEAR_EPOCHS`] epochs or
    /// [`LINEAR_STEPS`] steps, whichever is more. With `class_w` (per class) each row's loss is weighted by its
    /// class's, as the networks' loss is (`[evaluate] class_weight`).
    fn fit(
        x: &[Sparse],
        y: &[u32],
        (width, classes): (usize, usize),
        class_w: Option<&[f32]>,
        mut rng: Rng,
    ) -> Linear {
        let mut m = Linear {
            width,
            classes,
            w: vec![0.0; classes * width],
            b: vec![0.0; classes],
        };
        let n = y.len();
        let params = classes * (width + 1);
        let (mut m1, mut m2) = (vec![0f32; params], vec![0f32; params]);
        let (b1, b2, eps, decay) = (0.9f32, 0.999f32, 1e-8f32, 1e-4f32);
        let batches = n.div_ceil(64).max(1);
        let epochs = LINEAR_EPOCHS.max(LINEAR_STEPS.div_ceil(batches));
        let total = (epochs * batches) as f32;
        let mut order: Vec<usize> = (0..n).collect();
        let mut grad = vec![0f32; params];
        let mut probs = vec![0f32; classes];
        let mut t = 0f32;
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for batch in order.chunks(64) {
                grad.iter_mut().for_each(|g| *g = 0.0);
                let mut weight_sum = 0.0;
                for &r in batch {
                    let row = &x[r];
                    let rw = class_w.map_or(1.0, |w| w[y[r] as usize]);
                    weight_sum += rw;
                    m.softmax(row, &mut probs);
                    probs[y[r] as usize] -= 1.0;
                    for (c, &p) in probs.iter().enumerate() {
                        let p = p * rw;
                        let g = &mut grad[c * width..(c + 1) * width];
                        row.iter().for_each(|&(j, v)| g[j as usize] += p * v);
                        grad[classes * width + c] += p;
                    }
                }
                t += 1.0;
                let lr = 0.005 * (1.0 + (std::f32::consts::PI * (t - 1.0) / total).cos());
                let scale = 1.0 / weight_sum;
                let (c1, c2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
                for i in 0..params {
                    let g = grad[i] * scale;
                    m1[i] = b1 * m1[i] + (1.0 - b1) * g;
                    m2[i] = b2 * m2[i] + (1.0 - b2) * g * g;
                    let step = lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
                    let p = if i < classes * width {
                        &mut m.w[i]
                    } else {
                        &mut m.b[i - classes * width]
                    };
                    *p -= step + lr * decay * *p;
                }
            }
        }
        m
    }

    /// The class probabilities of one row, into `out`.
    fn softmax(&self, row: &Sparse, out: &mut [f32]) {
        for (c, o) in out.iter_mut().enumerate() {
            let w = &self.w[c * self.width..(c + 1) * self.width];
            *o = self.b[c] + row.iter().map(|&(j, v)| w[j as usize] * v).sum::<f32>();
        }
        space::metrics::softmax(out);
    }

    /// The most probable class of each row of `x`.
    fn predict(&self, x: &[Sparse]) -> Vec<u32> {
        let mut probs = vec![0f32; self.classes];
        x.iter()
            .map(|row| {
                self.softmax(row, &mut probs);
                space::metrics::argmax(&probs) as u32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_model_separates_what_a_line_separates_and_the_majority_is_the_most_frequent() {
        // Two classes split by x0 + x1 > 0, on a grid; the majority class of [1, 1, 0] is 1.
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in -10..10 {
            for j in -10..10 {
                if i + j != 0 {
                    x.extend([i as f32 / 5.0, j as f32 / 5.0]);
                    y.push(u32::from(i + j > 0));
                }
            }
        }
        let input = space::InputInfo {
            features: 2,
            classes: 2,
            ..Default::default()
        };
        let (x, width) = sparse(&x, &input);
        let m = Linear::fit(&x, &y, (width, 2), None, Rng::derive(1, "t", &[]));
        let hit = m.predict(&x).iter().zip(&y).filter(|(p, t)| p == t).count();
        assert!(hit as f64 / y.len() as f64 > 0.97, "{hit} of {}", y.len());
        assert_eq!(majority(&[1, 1, 0], 2), 1);
        assert_eq!(majority(&[0, 1], 2), 0);
    }

    #[test]
    fn class_weights_make_the_linear_model_predict_a_rare_overlapping_class_more_often() {
        // One feature; class 1 (10 of 110 rows) sits at x = 1, class 0 spreads over -1..1: unweighted, the
        // model hardly ever says 1; weighted by class, it says 1 around x = 1.
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..100 {
            x.push(-1.0 + 2.0 * i as f32 / 99.0);
            y.push(0);
        }
        for _ in 0..10 {
            x.push(1.0);
            y.push(1);
        }
        let input = space::InputInfo {
            features: 1,
            classes: 2,
            ..Default::default()
        };
        let (x, width) = sparse(&x, &input);
        let ones = |w: Option<&[f32]>| {
            let m = Linear::fit(&x, &y, (width, 2), w, Rng::derive(1, "t", &[]));
            m.predict(&x).iter().filter(|&&p| p == 1).count()
        };
        let weights = nn::train::class_weights(&y, true).unwrap();
        let (plain, weighted) = (ones(None), ones(Some(&weights)));
        assert!(weighted > plain && weighted >= 10, "{plain} → {weighted}");
    }
}
