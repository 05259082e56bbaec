//! Racing the folds (`[evaluate] race`): a candidate's folds are compared, fold by fold, with the incumbent's
//! scores on the same folds, and it stops once it cannot plausibly beat the incumbent.
//!
//! The rule: after k ≥ 2 folds (of K), with d_i = candidate_i − incumbent_i its paired differences, the
//! candidate stops when mean(d) + t(k−1) · sd(d) / √k < 0, t the one-sided 95% Student quantile: even an
//! optimistic estimate of how much better it is per fold is negative. Paired, because both were scored on the
//! same held-out rows (the folds depend only on the seed), which removes the folds' own difficulty from the
//! comparison; one-sided, because only a worse candidate stops; t rather than normal, because k is 2 to 10.
//! It is a heuristic: fold scores share training rows, so they are not independent, and the bound is
//! narrower than it would be for independent samples. Bergman et al. (2024) stopped cross-validation with a
//! simpler rule (the running mean against the incumbent's) and lost nothing on 94% of 36 data sets.
//!
//! The decision depends only on fold scores, checked on each prefix of folds in order, so it is the same
//! whatever order the folds finish in, on any number of threads, and on a resumed run (the incumbent comes
//! from earlier batches, which all have results before a batch is made).

use space::{Entry, ResultFile};

/// One-sided 95% quantiles of Student's t for 1..=10 degrees of freedom (the 10th also serves above).
const T95: [f64; 10] = [
    6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
];

/// The upper 95% bound on the mean of the paired differences `d` (at least two).
pub(super) fn upper_bound(d: &[f64]) -> f64 {
    let (mean, sd) = space::mean_std(d);
    let t = T95[(d.len() - 2).min(T95.len() - 1)];
    mean + t * sd / (d.len() as f64).sqrt()
}

/// Whether a candidate scoring `scores` on its first folds stops against `incumbent` (scores on every fold):
/// the bound when it does.
pub(super) fn stops(scores: &[f64], incumbent: &[f64]) -> Option<f64> {
    if scores.len() < 2 || scores.len() >= incumbent.len() {
        return None;
    }
    let d: Vec<f64> = scores.iter().zip(incumbent).map(|(s, i)| s - i).collect();
    let b = upper_bound(&d);
    (b < 0.0).then_some(b)
}

/// The incumbent each of `claimed` races against: the best ok result (highest CV mean, then the earlier
/// candidate) among candidates of earlier batches trained at its rung, with a score on each of `k` folds;
/// its id and fold scores.
pub(crate) fn incumbents(
    history: &[Entry],
    claimed: &[Entry],
    full_epochs: usize,
    k: usize,
) -> Vec<Option<(u64, Vec<f64>)>> {
    claimed
        .iter()
        .map(|c| {
            let epochs = c.candidate.epochs_or(full_epochs);
            history
                .iter()
                .filter(|e| {
                    e.candidate.batch < c.candidate.batch
                        && e.candidate.epochs_or(full_epochs) == epochs
                })
                .filter_map(|e| e.result.as_ref())
                .filter(|r| r.ok() && r.fold_scores.len() == k)
                .max_by(|a: &&ResultFile, b| a.cv_mean.total_cmp(&b.cv_mean).then(b.id.cmp(&a.id)))
                .map(|r| (r.id, r.fold_scores.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clearly_worse_candidate_stops_and_a_close_one_does_not() {
        let inc = [0.95, 0.96, 0.94, 0.95, 0.96];
        assert!(stops(&[0.80, 0.82], &inc).is_some());
        // Worse on average but not consistently: the spread keeps the bound above zero.
        assert!(stops(&[0.97, 0.90], &inc).is_none());
        // Better: never stops.
        assert!(stops(&[0.97, 0.98, 0.95], &inc).is_none());
        // One fold is not enough, and a candidate with every fold is finished, not stopped.
        assert!(stops(&[0.10], &inc).is_none());
        assert!(stops(&[0.1; 5], &inc).is_none());
    }

    #[test]
    fn the_bound_uses_students_t() {
        // d = (−0.1, −0.2): mean −0.15, sd 0.0707, t(1) = 6.314: −0.15 + 6.314 · 0.05 = 0.1657.
        assert!((upper_bound(&[-0.1, -0.2]) - 0.165_7).abs() < 1e-3);
    }
}
