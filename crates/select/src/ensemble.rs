//! Ensemble selection (Caruana et al., 2004) over the ranked candidates' out-of-fold predictions: greedy
//! forward selection with replacement, each step adding the candidate whose probabilities, averaged in,
//! score best; the ensemble is the best prefix of those steps, its weights how often each was picked.
//!
//! Each candidate's probabilities are first calibrated by a temperature fitted on the rows selected on
//! ([`temperature`]; Guo et al., 2017), and the model divides the member's logits by it.
//!
//! Its estimate is nested, so it is never scored on the rows it was chosen on: for each of the run's folds,
//! the selection is made on the other folds' rows and scored on that fold's. The single best is estimated the
//! same way (the candidate best on the other folds' rows, scored on the fold), so the two compare like with
//! like; the ensemble is used when its nested estimate is higher. What both share: the pool is the top of a
//! ranking made on every row, as the single best's plain CV score is.

use anyhow::Result;
use space::{
    folds, metrics::argmax, Ensemble, EnsembleUse, Member, Metric, Oof, Plan, Ranked, RunDir,
};

/// The most candidates, from the top of the ranking, the selection picks from.
pub const POOL: usize = 5;
/// Steps of the greedy selection (the ensemble is the best prefix of them).
pub const STEPS: usize = 10;

/// The mean cross-entropy on `rows` of `sum` (each row's summed probabilities, `classes` wide, in the order
/// of `rows`) plus `extra`'s probabilities for those rows, divided by `n`.
fn loss(sum: &[f64], extra: &Oof, rows: &[usize], n: f64) -> f64 {
    let classes = extra.classes;
    let total: f64 = rows
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let l = extra.labels[r] as usize;
            let p = (sum[i * classes + l] + f64::from(extra.row(r)[l])) / n;
            -p.max(1e-7).ln()
        })
        .sum();
    total / rows.len().max(1) as f64
}

/// Greedy selection with replacement from `pool` (best ranked first; ties go to the earlier) on `rows`, at
/// most `steps` steps, each adding the member that gives the averaged probabilities the lowest
/// cross-entropy: how often each member is picked in the best prefix (the shortest on a tie). Cross-entropy
/// rather than the run's metric: it is smooth where a metric on a few hundred rows ties and jumps, and it
/// measured better (docs/benchmarks.md); the metric judges the result.
pub fn greedy(pool: &[&Oof], rows: &[usize], steps: usize) -> Vec<usize> {
    let Some(first) = pool.first() else {
        return Vec::new();
    };
    let classes = first.classes;
    let mut sum = vec![0f64; rows.len() * classes];
    let mut picks = vec![0usize; pool.len()];
    let mut best: Option<(f64, Vec<usize>)> = None;
    for step in 0..steps {
        let n = (step + 1) as f64;
        let (m, l) = pool
            .iter()
            .enumerate()
            .map(|(m, o)| (m, loss(&sum, o, rows, n)))
            .fold(None::<(usize, f64)>, |acc, (m, l)| match acc {
                Some((_, b)) if l >= b => acc,
                _ => Some((m, l)),
            })
            .expect("a non-empty pool");
        picks[m] += 1;
        for (i, &r) in rows.iter().enumerate() {
            let p = pool[m].row(r);
            for c in 0..classes {
                sum[i * classes + c] += f64::from(p[c]);
            }
        }
        if best.as_ref().is_none_or(|(b, _)| l < *b) {
            best = Some((l, picks.clone()));
        }
    }
    best.map(|(_, p)| p).unwrap_or(picks)
}

/// The temperature that calibrates `o`'s probabilities on `rows`: of 2^(i/4) for i in −8..=8 (¼ to 4), the
/// one whose tempered probabilities ([`tempered`]) have the lowest cross-entropy (on a tie, the first).
/// Networks trained to a near-zero training loss are over-confident out of fold (T > 1), a linear model
/// after a few epochs under-confident (T < 1); selecting by cross-entropy without it passes over an
/// accurate but under-confident candidate (docs/benchmarks.md).
pub fn temperature(o: &Oof, rows: &[usize]) -> f64 {
    let loss = |t: f64| {
        let total: f64 = (rows.iter())
            .map(|&r| {
                -temper(o.row(r), t)
                    .nth(o.labels[r] as usize)
                    .unwrap_or(0.0)
                    .max(1e-7)
                    .ln()
            })
            .sum();
        total / rows.len().max(1) as f64
    };
    let mut best = (f64::INFINITY, 1.0);
    for i in -8..=8 {
        let t = 2f64.powf(f64::from(i) / 4.0);
        let l = loss(t);
        if l < best.0 {
            best = (l, t);
        }
    }
    best.1
}

/// Probabilities `p` at temperature `t`: each `p^(1/t)` over their sum (a softmax of the logits over `t`).
fn temper(p: &[f32], t: f64) -> impl Iterator<Item = f64> + '_ {
    let z: f64 = p.iter().map(|&q| f64::from(q).powf(1.0 / t)).sum();
    p.iter()
        .map(move |&q| f64::from(q).powf(1.0 / t) / z.max(1e-300))
}

/// `o`'s probabilities at temperature `t` ([`temper`] on each row).
pub fn tempered(o: &Oof, t: f64) -> Oof {
    let mut out = o.clone();
    for (r, row) in out.probs.chunks_mut(o.classes).enumerate() {
        for (v, q) in row.iter_mut().zip(temper(o.row(r), t)) {
            *v = q as f32;
        }
    }
    out
}

/// `pool` calibrated on `rows`: each member's temperature ([`temperature`]) and its tempered predictions.
pub fn calibrated(pool: &[&Oof], rows: &[usize]) -> (Vec<f64>, Vec<Oof>) {
    let temps: Vec<f64> = pool.iter().map(|o| temperature(o, rows)).collect();
    let oofs = pool
        .iter()
        .zip(&temps)
        .map(|(o, &t)| tempered(o, t))
        .collect();
    (temps, oofs)
}

/// The metric of the ensemble `picks` of `pool` (weights in proportion) on `rows`.
pub fn score_of(pool: &[&Oof], picks: &[usize], rows: &[usize], metric: Metric) -> f64 {
    let classes = pool[0].classes;
    let mut p = vec![0f32; classes];
    let pred: Vec<u32> = rows
        .iter()
        .map(|&r| {
            p.fill(0.0);
            for (o, &k) in pool.iter().zip(picks) {
                for (v, q) in p.iter_mut().zip(o.row(r)) {
                    *v += k as f32 * q;
                }
            }
            argmax(&p) as u32
        })
        .collect();
    let truth: Vec<u32> = rows.iter().map(|&r| pool[0].labels[r]).collect();
    metric.score(&pred, &truth, classes)
}

/// The nested estimates on the run's `k` folds (stream `seed`): each fold's score of the ensemble selected
/// on the other folds' rows, and of the single candidate best on them.
pub fn nested(
    pool: &[&Oof],
    k: usize,
    seed: u64,
    metric: Metric,
    steps: usize,
) -> (Vec<f64>, Vec<f64>) {
    let fold_of = folds::stratified_folds(&pool[0].labels, k, seed);
    (0..k)
        .map(|f| {
            let (inner, outer): (Vec<usize>, Vec<usize>) =
                (0..fold_of.len()).partition(|&r| fold_of[r] != f);
            // Calibrated on the rows it selects on, as the selection on every row is.
            let (_, cal) = calibrated(pool, &inner);
            let cal: Vec<&Oof> = cal.iter().collect();
            let ens = greedy(&cal, &inner, steps);
            let one = greedy(&cal, &inner, 1);
            (
                score_of(&cal, &ens, &outer, metric),
                score_of(&cal, &one, &outer, metric),
            )
        })
        .unzip()
}

/// The ensemble of the run's `ranking` (best first), selected from the out-of-fold predictions of its first
/// [`POOL`]; `None` when fewer than two were ranked or one of them has no predictions (an older run's, or a
/// GPU training's). `using` says when it is the model.
pub fn build(
    run: &RunDir,
    plan: &Plan,
    ranking: &[Ranked],
    using: EnsembleUse,
) -> Result<Option<Ensemble>> {
    let top = &ranking[..ranking.len().min(POOL)];
    if top.len() < 2 {
        return Ok(None);
    }
    let mut oofs = Vec::with_capacity(top.len());
    for r in top {
        let path = run.oof(r.id);
        if !path.exists() {
            return Ok(None);
        }
        let o = Oof::read(&path)?;
        if o.probs.iter().any(|p| !p.is_finite()) {
            return Ok(None);
        }
        oofs.push(o);
    }
    let pool: Vec<&Oof> = oofs.iter().collect();
    let e = plan.exp();
    let (metric, k) = (e.evaluate.metric, e.evaluate.folds);
    let (fold_scores, single) = nested(&pool, k, e.seed, metric, STEPS);
    let all: Vec<usize> = (0..pool[0].labels.len()).collect();
    let (temps, cal) = calibrated(&pool, &all);
    let picks = greedy(&cal.iter().collect::<Vec<_>>(), &all, STEPS);
    let mut members: Vec<Member> = (top.iter().zip(&picks).zip(temps))
        .filter(|((_, &p), _)| p > 0)
        .map(|((r, &picks), temperature)| Member {
            id: r.id,
            arch: r.arch.clone(),
            picks,
            temperature,
        })
        .collect();
    members.sort_by_key(|m| std::cmp::Reverse(m.picks));
    let (cv_mean, cv_std) = space::mean_std(&fold_scores);
    let (single_cv_mean, _) = space::mean_std(&single);
    Ok(Some(Ensemble {
        used: members.len() > 1
            && match using {
                EnsembleUse::Auto => cv_mean > single_cv_mean,
                EnsembleUse::Always => true,
                EnsembleUse::Off => false,
            },
        fold_scores,
        cv_mean,
        cv_std,
        single_fold_scores: single,
        single_cv_mean,
        members,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Oof` of `labels` whose row r puts probability `right[r]` on its label and the rest on the next class.
    fn oof(labels: &[u32], right: &[f32]) -> Oof {
        let mut o = Oof::empty(labels.to_vec(), 3);
        for (r, &l) in labels.iter().enumerate() {
            let mut p = [0f32; 3];
            p[l as usize] = right[r];
            p[(l as usize + 1) % 3] = 1.0 - right[r];
            o.set_row(r, &p);
        }
        o
    }

    #[test]
    fn complementary_candidates_make_an_ensemble_better_than_either() {
        // a is right on rows 0-3 and sure and wrong on 4-5; b the other way round, less sure where wrong.
        let labels = [0, 1, 2, 0, 1, 2];
        let a = oof(&labels, &[0.9, 0.9, 0.9, 0.9, 0.1, 0.1]);
        let b = oof(&labels, &[0.45, 0.45, 0.45, 0.45, 0.95, 0.95]);
        let rows: Vec<usize> = (0..6).collect();
        let pool = [&a, &b];
        assert_eq!(score_of(&pool, &[1, 0], &rows, Metric::Accuracy), 4.0 / 6.0);
        let picks = greedy(&pool, &rows, 10);
        assert_eq!(score_of(&pool, &picks, &rows, Metric::Accuracy), 1.0);
        assert!(picks[0] >= 1 && picks[1] >= 1, "{picks:?}");
        // A pool of one is that candidate, picked once (the shortest best prefix).
        assert_eq!(greedy(&[&a], &rows, 10), vec![1]);
    }

    #[test]
    fn a_worse_duplicate_is_never_picked_over_the_best() {
        let labels = [0, 1, 2, 0, 1, 2];
        let a = oof(&labels, &[0.9; 6]);
        let worse = oof(&labels, &[0.6; 6]);
        let rows: Vec<usize> = (0..6).collect();
        assert_eq!(greedy(&[&worse, &a], &rows, 5), vec![0, 1]);
    }

    #[test]
    fn nested_scores_each_fold_on_rows_it_did_not_select_on() {
        // b is right and sure on fold 0's rows only; a is wrong everywhere but never sure. Chosen on any
        // other folds' rows, a has the lower loss; so fold 0 is scored with a, not with the b it favours.
        let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
        let fold_of = folds::stratified_folds(&labels, 5, 0);
        let a = oof(&labels, &[0.4; 30]);
        let right: Vec<f32> = (0..30)
            .map(|r| if fold_of[r] == 0 { 0.99 } else { 0.01 })
            .collect();
        let b = oof(&labels, &right);
        let (ens, one) = nested(&[&a, &b], 5, 0, Metric::Accuracy, 5);
        assert_eq!(one, vec![0.0; 5]);
        assert_eq!(ens, vec![0.0; 5]);
        // In-sample, on fold 0's rows, b alone would have scored 1.
        let fold0: Vec<usize> = (0..30).filter(|&r| fold_of[r] == 0).collect();
        assert_eq!(score_of(&[&a, &b], &[0, 1], &fold0, Metric::Accuracy), 1.0);
    }

    /// An `Oof` whose row r is `rows[r % rows.len()]` rotated so its first value falls on the label.
    fn rotated(labels: &[u32], rows: &[[f32; 3]]) -> Oof {
        let mut o = Oof::empty(labels.to_vec(), 3);
        for (r, &l) in labels.iter().enumerate() {
            let v = rows[r % rows.len()];
            let mut p = [0f32; 3];
            for (c, q) in v.iter().enumerate() {
                p[(l as usize + c) % 3] = *q;
            }
            o.set_row(r, &p);
        }
        o
    }

    #[test]
    fn temperatures_sharpen_the_under_confident_and_soften_the_over_confident() {
        let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
        let rows: Vec<usize> = (0..30).collect();
        let ce = |o: &Oof| loss(&vec![0.0; 30 * 3], o, &rows, 1.0);
        // Always right, never sure: the sharpest temperature tried.
        let under = rotated(&labels, &[[0.5, 0.25, 0.25]]);
        assert_eq!(temperature(&under, &rows), 0.25);
        assert!(ce(&tempered(&under, 0.25)) < ce(&under) / 4.0);
        // Sure, and wrong on a third of the rows: softer.
        let over = rotated(
            &labels,
            &[[0.98, 0.01, 0.01], [0.98, 0.01, 0.01], [0.01, 0.98, 0.01]],
        );
        let t = temperature(&over, &rows);
        assert!(t > 1.0, "{t}");
        assert!(ce(&tempered(&over, t)) < ce(&over));
        // Tempering keeps each row's order, so a network's own predictions.
        let back = tempered(&over, t);
        assert!((0..30).all(|r| argmax(back.row(r)) == argmax(over.row(r))));
    }

    #[test]
    fn an_accurate_under_confident_candidate_is_picked_once_calibrated() {
        let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
        let rows: Vec<usize> = (0..30).collect();
        // b is sure and right on five rows in six, unsure on the sixth; a is right on every row, unsure.
        let sure = [0.95, 0.04, 0.01];
        let b = rotated(&labels, &[sure, sure, sure, sure, sure, [0.2, 0.7, 0.1]]);
        let a = rotated(&labels, &[[0.5, 0.25, 0.25]]);
        assert_eq!(
            greedy(&[&b, &a], &rows, 1),
            vec![1, 0],
            "by raw cross-entropy"
        );
        let (temps, cal) = calibrated(&[&b, &a], &rows);
        assert_eq!(temps[1], 0.25);
        assert_eq!(greedy(&[&cal[0], &cal[1]], &rows, 1), vec![0, 1]);
    }
}
