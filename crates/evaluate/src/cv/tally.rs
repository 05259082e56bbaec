//! The tally of a cross-validation: each candidate's fold outcomes as its jobs end (in any order), and its
//! [`ResultFile`] once its last fold is in.

use super::FoldOutcome;
use crate::evaluator::Scored;
use space::{mean_std, Entry, EvaluatedBy, Metric, ResultFile, Status};

/// A candidate's folds so far.
pub(super) struct Pending {
    /// Each fold's scores, one per [`Metric::ALL`].
    scores: Vec<Option<Vec<f64>>>,
    problem: Option<(Status, String)>,
    /// A job of this candidate was abandoned at the deadline: it gets no result (it stays pending).
    abandoned: bool,
    secs: f64,
    /// The most bytes one of its trainings held at once (0 when not measured, see [`nn::mem`]).
    peak: u64,
    left: usize,
}

impl Pending {
    /// A candidate of `k` folds, none done.
    pub(super) fn new(k: usize) -> Pending {
        Pending {
            scores: vec![None; k],
            problem: None,
            abandoned: false,
            secs: 0.0,
            peak: 0,
            left: k,
        }
    }

    /// Records a job's `folds`: their outcomes (`None`: abandoned at the deadline), its seconds and peak bytes.
    pub(super) fn add(
        &mut self,
        folds: &[usize],
        outcomes: Option<Vec<FoldOutcome>>,
        secs: f64,
        peak: u64,
    ) {
        self.secs += secs;
        self.peak = self.peak.max(peak);
        match outcomes {
            None => self.abandoned = true,
            Some(outcomes) => {
                for (&f, o) in folds.iter().zip(outcomes) {
                    match o {
                        Ok(s) => self.scores[f] = Some(s),
                        Err(prob) => {
                            self.problem.get_or_insert(prob);
                        }
                    }
                }
            }
        }
        self.left -= folds.len();
    }

    /// Whether every fold is in and none was abandoned: the candidate gets its result.
    pub(super) fn finished(&self) -> bool {
        self.left == 0 && !self.abandoned
    }
}

/// A job's outcome per fold: what it returned, or its error or panic as every fold's failure.
pub(super) fn outcomes(
    outcome: std::thread::Result<anyhow::Result<Option<Vec<FoldOutcome>>>>,
    folds: &[usize],
) -> Option<Vec<FoldOutcome>> {
    let f0 = folds[0];
    let failed = |msg: String| {
        Some(vec![
            Err((Status::Failed, format!("fold {f0}: {msg}")));
            folds.len()
        ])
    };
    match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(err)) => failed(err.to_string().replace('\n', " ")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed(format!("panic: {msg}"))
        }
    }
}

/// The key in a result's `metrics` of the most memory (MiB) one training of the candidate held at once.
pub const PEAK_MIB: &str = "peak_mib";

/// The result of a candidate whose folds are all done: scored by `metric`, every metric's mean in `metrics`.
pub(super) fn make_result(
    entry: &Entry,
    p: &Pending,
    by: EvaluatedBy,
    metric: Metric,
    full_epochs: usize,
) -> ResultFile {
    let column =
        |i: usize| -> Vec<f64> { p.scores.iter().map(|s| s.as_ref().unwrap()[i]).collect() };
    let mut metrics = std::collections::BTreeMap::new();
    let folds = match &p.problem {
        None => {
            for (i, m) in Metric::ALL.iter().enumerate() {
                let (mean, _) = mean_std(&column(i));
                metrics.insert(m.name().to_string(), (mean * 1e6).round() / 1e6);
            }
            if p.peak > 0 {
                let mib = p.peak as f64 / (1u64 << 20) as f64;
                metrics.insert(PEAK_MIB.to_string(), (mib * 10.0).round() / 10.0);
            }
            let chosen = Metric::ALL
                .iter()
                .position(|&m| m == metric)
                .expect("listed");
            Ok(column(chosen))
        }
        Some(problem) => Err(problem.clone()),
    };
    crate::evaluator::result(
        &entry.candidate,
        by,
        Scored {
            folds,
            metrics,
            wall_s: (p.secs * 1000.0).round() / 1000.0,
            epochs: Some(entry.candidate.epochs_or(full_epochs)),
        },
    )
}
