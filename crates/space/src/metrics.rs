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

string_enum!(
    /// How the training loss weighs each row's class (`[evaluate] class_weight`).
    ClassWeight, "[evaluate] class_weight", {
        /// Each class in proportion to its rows (plain cross-entropy).
        Uniform = "none",
        /// Each class as much as any other: a row of class c weighs n / (k · n_c) on its training rows
        /// (scikit-learn's "balanced"), the loss of a mini-batch divided by its rows' summed weights.
        Balanced = "balanced",
    }
);

impl Metric {
    /// The class weighting that trains for this metric: balanced for the metrics that weigh classes
    /// equally, none for accuracy.
    pub fn class_weight(self) -> ClassWeight {
        match self {
            Metric::Accuracy => ClassWeight::Uniform,
            Metric::BalancedAccuracy | Metric::MacroF1 => ClassWeight::Balanced,
        }
    }
}

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

/// Each class's scores from a confusion matrix (`[true][predicted]`), in class order; 0 where undefined. A
/// result's `[per_class]`: pooled over the held-out rows of every fold it trained (its out-of-fold
/// predictions), 4 decimals.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerClass {
    /// Rows of each class.
    pub support: Vec<usize>,
    /// Of the rows predicted as the class, the share that are.
    pub precision: Vec<f64>,
    /// Of the class's rows, the share predicted as it.
    pub recall: Vec<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Vec<f64>,
}

impl PerClass {
    /// The scores of confusion matrix `m`.
    pub fn of(m: &[Vec<usize>]) -> PerClass {
        let round = |v: f64| (v * 1e4).round() / 1e4;
        let mut s = PerClass {
            support: Vec::new(),
            precision: Vec::new(),
            recall: Vec::new(),
            f1: Vec::new(),
        };
        for c in 0..m.len() {
            let tp = m[c][c] as f64;
            let support: usize = m[c].iter().sum();
            let predicted: usize = m.iter().map(|row| row[c]).sum();
            let ratio = |a: f64, b: usize| if b == 0 { 0.0 } else { a / b as f64 };
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            s.support.push(support);
            s.precision.push(round(precision));
            s.recall.push(round(recall));
            s.f1.push(round(f1));
        }
        s
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

    #[test]
    fn per_class_scores_follow_the_confusion_matrix() {
        // Class 0: 8 right, 2 taken for 1; class 1: 5 right, 5 taken for 0; class 2 never seen nor predicted.
        let s = PerClass::of(&[vec![8, 2, 0], vec![5, 5, 0], vec![0, 0, 0]]);
        assert_eq!(s.support, [10, 10, 0]);
        let r = |v: f64| (v * 1e4).round() / 1e4;
        assert_eq!(s.precision, [r(8.0 / 13.0), r(5.0 / 7.0), 0.0]);
        assert_eq!(s.recall, [0.8, 0.5, 0.0]);
        assert_eq!(s.f1[1], r(2.0 * (5.0 / 7.0) * 0.5 / (5.0 / 7.0 + 0.5)));
        assert_eq!(s.f1[2], 0.0);
    }
}
