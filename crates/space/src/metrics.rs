//! Classification metrics of predicted against true classes: what a fold is scored by (`[evaluate] metric`).

string_enum!(
    /// The metric that scores, ranks and selects candidates (`[evaluate] metric`).
    Metric, "[evaluate] metric", {
        /// Share of rows predicted right.
        Accuracy = "accuracy",
        /// Mean over classes of the share of each class's rows predicted right (recall).
        BalancedAccuracy = "balanced_accuracy",
        /// Mean over classes of F1 (harmonic mean of precision and recall; 0 for a class never predicted
        /// right).
        MacroF1 = "macro_f1",
    }
);

/// The index of the largest of `v`, the first on a tie (as candle's `argmax`, which `nn::train::predict`
/// uses): the predicted class of a row of outputs.
pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
}

/// `v` (a row of outputs) made class probabilities in place (softmax).
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for o in v.iter_mut() {
        *o = (*o - max).exp();
        sum += *o;
    }
    v.iter_mut().for_each(|o| *o /= sum);
}

impl Metric {
    /// The metric of `pred` against `truth` (class indices below `classes`).
    pub fn score(self, pred: &[u32], truth: &[u32], classes: usize) -> f64 {
        match self {
            Metric::Accuracy => {
                let hit = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
                hit as f64 / truth.len().max(1) as f64
            }
            Metric::BalancedAccuracy | Metric::MacroF1 => {
                // Per class: true positives, predicted count, true count.
                let mut tp = vec![0usize; classes];
                let mut predicted = vec![0usize; classes];
                let mut actual = vec![0usize; classes];
                for (&p, &t) in pred.iter().zip(truth) {
                    predicted[p as usize] += 1;
                    actual[t as usize] += 1;
                    tp[t as usize] += usize::from(p == t);
                }
                // Classes present in the truth (those absent have no recall).
                let present: Vec<usize> = (0..classes).filter(|&c| actual[c] > 0).collect();
                let per = |c: usize| -> f64 {
                    let recall = tp[c] as f64 / actual[c] as f64;
                    if self == Metric::BalancedAccuracy {
                        return recall;
                    }
                    if tp[c] == 0 {
                        return 0.0;
                    }
                    let precision = tp[c] as f64 / predicted[c] as f64;
                    2.0 * precision * recall / (precision + recall)
                };
                present.iter().map(|&c| per(c)).sum::<f64>() / present.len().max(1) as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        // Truth: 4 of class 0, 2 of class 1. Predicted: 0 0 0 1 | 1 0.
        let truth = [0, 0, 0, 0, 1, 1];
        let pred = [0, 0, 0, 1, 1, 0];
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(Metric::Accuracy.score(&pred, &truth, 2), 4.0 / 6.0);
        // Recall: class 0 3/4, class 1 1/2.
        close(
            Metric::BalancedAccuracy.score(&pred, &truth, 2),
            (0.75 + 0.5) / 2.0,
        );
        // Class 0: precision 3/4, recall 3/4, F1 3/4. Class 1: precision 1/2, recall 1/2, F1 1/2.
        close(Metric::MacroF1.score(&pred, &truth, 2), (0.75 + 0.5) / 2.0);
        // A class never predicted right counts 0 in macro-F1; a class absent from the truth is left out.
        // Class 0: precision 1/2 (rows 0, 1 predicted 0), recall 1/2, F1 1/2; class 1: 0; class 2: left out.
        close(
            Metric::MacroF1.score(&[0, 0, 2], &[0, 1, 0], 3),
            (0.5 + 0.0) / 2.0,
        );
        assert_eq!("macro_f1".parse::<Metric>().unwrap(), Metric::MacroF1);
        assert!("f2"
            .parse::<Metric>()
            .unwrap_err()
            .to_string()
            .contains("[evaluate] metric"));
    }
}
