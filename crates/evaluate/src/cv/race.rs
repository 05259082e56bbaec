//! Racing the folds (`[evaluate] race`): a candidate's folds are compared, fold by fold, with the incumbent's
//! scores on the same folds, and it stops once it is behind the incumbent with 80% confidence.
//!
//! The rule: after k ≥ 1 folds (of K), with d_i = candidate_i − incumbent_i its paired differences, the
//! candidate stops when mean(d) + t(ν) · s / √k < 0, t the one-sided Student quantile at [`CONFIDENCE`]:
//! even a somewhat optimistic estimate of how much better it is per fold is negative. Paired, because both
//! were scored on the same held-out rows (the folds depend only on the seed), which removes the folds' own
//! difficulty from the comparison; one-sided, because only a worse candidate stops; t rather than normal,
//! because ν is small.
//!
//! s is the pooled standard deviation of a paired difference: the spread of d about its mean, summed over the
//! candidate's own folds and those of every earlier candidate that trained at least two folds against the same
//! incumbent (ν: the degrees of freedom of all of them together). Pooling assumes a fold's paired difference
//! varies about as much for one candidate as for another, which is what lets a candidate that is clearly
//! behind stop after its first fold (its own spread needs two); without earlier candidates it is the
//! candidate's own standard deviation (ν = k − 1), as the rule was before pooling.
//! It is a heuristic: fold scores share training rows, so they are not independent, and the bound is
//! narrower than it would be for independent samples. Bergman et al. (2024) stopped cross-validation with a
//! simpler rule (the running mean against the incumbent's, stopping any candidate behind it after one fold)
//! and lost nothing on 94% of 36 data sets.
//!
//! The decision depends only on fold scores, checked on each prefix of folds in order, so it is the same
//! whatever order the folds finish in, on any number of threads, and on a resumed run (the incumbent and the
//! pool come from earlier batches, which all have results before a batch is made).

use space::{Entry, ResultFile};

/// The confidence of the bound, in percent: a candidate stops once it is behind the incumbent at this level.
///
/// 80 rather than the textbook 95, because what a wrong stop costs here is small and what a late stop costs is
/// not. In units of σ, a fold's paired difference's standard deviation (`bench/race_power.py` simulates the
/// rule over five folds with a well-estimated σ): at 80% a candidate truly better by σ is stopped 4% of the
/// time (0% at 95%) and one better by σ/2 14% (2%), while a tie trains 3.8 folds on average (4.7) and one
/// σ behind 1.9 (3.0). A fold's σ is √5 times the standard error of a five-fold mean, so a candidate σ/2
/// better is within the noise of its own CV mean and of the selection; the folds saved go to more candidates.
/// On session 19–20's fashion10k searches, replayed, it trains 24–34% fewer folds than at 95%. Bergman et al.
/// (2024) stopped at the running mean alone (about 50% here) and lost nothing on 94% of 36 data sets.
pub(super) const CONFIDENCE: u32 = 80;

/// One-sided 80% quantiles of Student's t for 1..=30 degrees of freedom.
const T80: [f64; 30] = [
    1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870,
    0.868, 0.866, 0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856,
    0.855, 0.855, 0.854, 0.854,
];

/// The one-sided 80% quantile of Student's t with `df` ≥ 1 degrees of freedom: the table, then (above 30)
/// the normal's 0.8416 with the first two terms of the Cornish-Fisher expansion (within 10⁻⁶ there).
fn t80(df: usize) -> f64 {
    if df <= T80.len() {
        return T80[df - 1];
    }
    let (z, v) = (0.841_621_f64, df as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

/// The mean of `d` (at least one) and the sum of its squared deviations from it.
fn deviations(d: &[f64]) -> (f64, f64) {
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    (mean, d.iter().map(|x| (x - mean).powi(2)).sum())
}

/// What a candidate races against: the incumbent's id and fold scores, and the pool of earlier candidates'
/// paired differences with it (the sum of their squared deviations about each candidate's mean, and its
/// degrees of freedom).
#[derive(Clone, Debug)]
pub(crate) struct Rival {
    pub(crate) id: u64,
    pub(crate) scores: Vec<f64>,
    pub(crate) pooled_ss: f64,
    pub(crate) pooled_df: usize,
}

impl Rival {
    /// An incumbent with no pool: a candidate's own spread decides, from its second fold.
    #[cfg(test)]
    pub(crate) fn alone(id: u64, scores: Vec<f64>) -> Rival {
        Rival {
            id,
            scores,
            pooled_ss: 0.0,
            pooled_df: 0,
        }
    }

    /// The paired differences of `scores` (a prefix of folds) with the incumbent's.
    fn differences(&self, scores: &[f64]) -> Vec<f64> {
        scores
            .iter()
            .zip(&self.scores)
            .map(|(s, i)| s - i)
            .collect()
    }

    /// The upper bound (at [`CONFIDENCE`]) on the mean of the paired differences `d` (at least one), with
    /// the pool's spread; `None` when there is no spread to go by (one fold and no pool).
    fn upper_bound(&self, d: &[f64]) -> Option<f64> {
        let k = d.len();
        let (mean, own_ss) = deviations(d);
        let df = self.pooled_df + k - 1;
        if df == 0 {
            return None;
        }
        let s = ((self.pooled_ss + own_ss) / df as f64).sqrt();
        Some(mean + t80(df) * s / (k as f64).sqrt())
    }

    /// The estimate of a candidate's mean over every fold from `scores` on its first folds (at least one):
    /// the incumbent's mean plus their paired differences' mean, which takes the difficulty of those folds
    /// out ([`space::ResultFile::paired_mean`]).
    pub(super) fn paired_mean(&self, scores: &[f64]) -> f64 {
        deviations(&self.scores).0 + deviations(&self.differences(scores)).0
    }

    /// Whether a candidate scoring `scores` on its first folds stops: the bound when it does. A candidate
    /// with a score on every fold is finished, not stopped.
    pub(super) fn stops(&self, scores: &[f64]) -> Option<f64> {
        if scores.is_empty() || scores.len() >= self.scores.len() {
            return None;
        }
        self.upper_bound(&self.differences(scores))
            .filter(|&b| b < 0.0)
    }
}

/// The rival each of `claimed` races against: the incumbent is the best ok result (highest CV mean, then the
/// earlier candidate) among candidates of earlier batches trained at its rung, with a score on each of `k`
/// folds; the pool is every other such candidate's folds (at least two, ok or raced out) paired with it.
pub(crate) fn incumbents(
    history: &[Entry],
    claimed: &[Entry],
    full_epochs: usize,
    k: usize,
) -> Vec<Option<Rival>> {
    claimed
        .iter()
        .map(|c| {
            let epochs = c.candidate.epochs_or(full_epochs);
            let earlier: Vec<&ResultFile> = history
                .iter()
                .filter(|e| {
                    e.candidate.batch < c.candidate.batch
                        && e.candidate.epochs_or(full_epochs) == epochs
                })
                .filter_map(|e| e.result.as_ref())
                .collect();
            let best = earlier
                .iter()
                .filter(|r| r.ok() && r.fold_scores.len() == k)
                .max_by(|a, b| a.cv_mean.total_cmp(&b.cv_mean).then(b.id.cmp(&a.id)))?;
            let mut rival = Rival {
                id: best.id,
                scores: best.fold_scores.clone(),
                pooled_ss: 0.0,
                pooled_df: 0,
            };
            for r in earlier.iter().filter(|r| r.id != best.id) {
                if !r.scored() || r.fold_scores.len() < 2 {
                    continue;
                }
                rival.pooled_ss += deviations(&rival.differences(&r.fold_scores)).1;
                rival.pooled_df += r.fold_scores.len() - 1;
            }
            Some(rival)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INC: [f64; 5] = [0.95, 0.96, 0.94, 0.95, 0.96];

    #[test]
    fn a_clearly_worse_candidate_stops_and_a_close_one_does_not() {
        let alone = Rival::alone(1, INC.to_vec());
        assert!(alone.stops(&[0.80, 0.82]).is_some());
        // Worse on average but not consistently: the spread keeps the bound above zero.
        assert!(alone.stops(&[0.97, 0.90]).is_none());
        // Better: never stops.
        assert!(alone.stops(&[0.97, 0.98, 0.95]).is_none());
        // Without a pool one fold is not enough, and a candidate with every fold is finished, not stopped.
        assert!(alone.stops(&[0.10]).is_none());
        assert!(alone.stops(&[0.1; 5]).is_none());
    }

    #[test]
    fn a_pool_of_earlier_candidates_lets_one_fold_decide() {
        // Earlier candidates' paired differences spread by about 0.005 a fold (ν = 20).
        let pooled = Rival {
            pooled_ss: 20.0 * 0.005f64.powi(2),
            pooled_df: 20,
            ..Rival::alone(1, INC.to_vec())
        };
        // 0.02 behind on the first fold: 0.02 > 0.860 · 0.005, so it stops; 0.003 behind does not.
        let b = pooled.stops(&[0.93]).unwrap();
        assert!((b - (-0.02 + 0.860 * 0.005)).abs() < 1e-9, "{b}");
        assert!(pooled.stops(&[0.947]).is_none());
        assert!(pooled.stops(&[0.97]).is_none());
        // Its estimate of the mean over every fold: the incumbent's 0.952 plus −0.02.
        assert!((pooled.paired_mean(&[0.93]) - 0.932).abs() < 1e-12);
    }

    #[test]
    fn the_bound_uses_students_t() {
        // d = (−0.1, −0.2): mean −0.15, sd 0.0707, t(1) = 1.376: −0.15 + 1.376 · 0.05 = −0.0812.
        let b = Rival::alone(1, INC.to_vec()).upper_bound(&[-0.1, -0.2]);
        assert!((b.unwrap() + 0.081_2).abs() < 1e-4);
        // The expansion above the table joins it and tends to the normal quantile.
        assert!((t80(31) - 0.853_4).abs() < 1e-4 && (t80(120) - 0.844_6).abs() < 1e-4);
        assert!((t80(100_000) - 0.841_6).abs() < 1e-4);
    }
}
