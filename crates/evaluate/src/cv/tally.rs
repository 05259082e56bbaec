//! The tally of a cross-validation: each candidate's fold outcomes as its jobs end (in any order), and its
//! [`ResultFile`] once its last fold is in.

use super::folds::FoldPlan;
use super::FoldOutcome;
use crate::evaluator::{Folds, Scored};
use space::{mean_std, Entry, EvaluatedBy, Metric, ResultFile, Status};

/// Where `metric` is in [`Metric::ALL`], the order of a fold's scores.
pub(super) fn metric_index(metric: Metric) -> usize {
    Metric::ALL
        .iter()
        .position(|&m| m == metric)
        .expect("listed")
}

/// Why and where racing stopped a candidate.
struct Stop {
    /// After this many folds (a prefix).
    folds: usize,
    /// The bound, in words.
    why: String,
    /// Its paired estimate of the mean over every fold ([`space::ResultFile::paired_mean`]).
    paired_mean: f64,
}

/// A candidate's folds so far.
pub(super) struct Pending {
    /// Each fold's scores, one per [`Metric::ALL`].
    scores: Vec<Option<Vec<f64>>>,
    /// Each fold's held-out class probabilities (see [`super::FoldScore`]).
    probs: Vec<Option<Vec<f32>>>,
    /// Each fold's curve, when it has one (see [`super::FoldScore`]).
    curves: Vec<Option<space::Curve>>,
    problem: Option<(Status, String)>,
    /// A job of this candidate was abandoned at the deadline: it gets no result (it stays pending).
    abandoned: bool,
    secs: f64,
    /// The most bytes one of its trainings held at once (0 when not measured, see [`nn::mem`]).
    peak: u64,
    /// Racing stopped it.
    stopped: Option<Stop>,
    /// Its result was made (later folds, trained before it stopped, change nothing).
    reported: bool,
    /// Which folds have ended (scored, failed or abandoned).
    ended: Vec<bool>,
}

impl Pending {
    /// A candidate of `k` folds, none done.
    pub(super) fn new(k: usize) -> Pending {
        Pending {
            scores: vec![None; k],
            probs: vec![None; k],
            curves: vec![None; k],
            problem: None,
            abandoned: false,
            secs: 0.0,
            peak: 0,
            stopped: None,
            reported: false,
            ended: vec![false; k],
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
        for &f in folds {
            self.ended[f] = true;
        }
        match outcomes {
            None => self.abandoned = true,
            Some(outcomes) => {
                for (&f, o) in folds.iter().zip(outcomes) {
                    match o {
                        Ok(s) => {
                            self.scores[f] = Some(s.scores);
                            self.probs[f] = Some(s.probs);
                            self.curves[f] = s.curve;
                        }
                        Err(prob) => {
                            self.problem.get_or_insert(prob);
                        }
                    }
                }
            }
        }
    }

    /// Whether the candidate gets its result now: every fold is in and none was abandoned, or racing
    /// stopped it; once only.
    pub(super) fn finished(&self) -> bool {
        !self.reported
            && (self.stopped.is_some() || (self.ended.iter().all(|&e| e) && !self.abandoned))
    }

    /// Whether fold `f` has ended.
    pub(super) fn has_fold(&self, f: usize) -> bool {
        self.ended[f]
    }

    /// Its out-of-fold predictions over the rows of `data` (labels `y`, `classes` classes): the folds of its
    /// result (racing's prefix when stopped); `None` when a fold of those has no probabilities (grouped GPU
    /// folds) or none has.
    pub(super) fn oof(&self, folds: &FoldPlan, y: &[u32], classes: usize) -> Option<space::Oof> {
        let used = self.stopped.as_ref().map_or(self.probs.len(), |s| s.folds);
        let mut o = space::Oof::empty(y.to_vec(), classes);
        let mut any = false;
        for (f, p) in self.probs.iter().enumerate().take(used) {
            let Some(p) = p else { continue };
            let rows = folds.held_out(f);
            if p.len() != rows.len() * classes {
                return None;
            }
            for (i, &r) in rows.iter().enumerate() {
                o.set_row(r, &p[i * classes..(i + 1) * classes]);
            }
            any = true;
        }
        any.then_some(o)
    }

    /// Whether its result was made (a later job of it changes nothing).
    pub(super) fn reported(&self) -> bool {
        self.reported
    }

    /// Whether racing stopped it (its jobs not yet started are skipped).
    pub(super) fn stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Races the folds done so far (in the metric at `metric_at`) against `rival`: stops at the shortest
    /// prefix of folds whose bound is below zero ([`super::race::Rival::stops`]).
    pub(super) fn race(&mut self, rival: &super::race::Rival, metric_at: usize) {
        if self.stopped.is_some() || self.problem.is_some() {
            return;
        }
        let prefix: Vec<f64> = self
            .scores
            .iter()
            .map_while(|s| s.as_ref().map(|s| s[metric_at]))
            .collect();
        for n in 1..=prefix.len() {
            if let Some(b) = rival.stops(&prefix[..n]) {
                let why = format!(
                    "after {n} of {} folds the {}% upper bound on its paired difference with c{:05} is {b:.4}",
                    self.scores.len(),
                    super::race::CONFIDENCE,
                    rival.id
                );
                self.stopped = Some(Stop {
                    folds: n,
                    why,
                    paired_mean: rival.paired_mean(&prefix[..n]),
                });
                return;
            }
        }
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
    p: &mut Pending,
    by: EvaluatedBy,
    metric: Metric,
    full_epochs: usize,
) -> ResultFile {
    p.reported = true;
    // A stopped candidate's folds are the prefix it was stopped after.
    let n = p.stopped.as_ref().map_or(p.scores.len(), |s| s.folds);
    let column = |i: usize| -> Vec<f64> {
        p.scores[..n]
            .iter()
            .map(|s| s.as_ref().unwrap()[i])
            .collect()
    };
    let mut metrics = std::collections::BTreeMap::new();
    // Curves when every fold of the result has one (grouped GPU folds have none).
    let curves = match &p.problem {
        None => p.curves[..n].iter().cloned().collect::<Option<Vec<_>>>(),
        Some(_) => None,
    };
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
            let chosen = metric_index(metric);
            match &p.stopped {
                Some(s) => Folds::Stopped(column(chosen), s.why.clone(), s.paired_mean),
                None => Folds::Scored(column(chosen)),
            }
        }
        Some((st, why)) => Folds::Unscored(*st, why.clone()),
    };
    crate::evaluator::result(
        &entry.candidate,
        by,
        Scored {
            folds,
            metrics,
            wall_s: (p.secs * 1000.0).round() / 1000.0,
            epochs: Some(entry.candidate.epochs_or(full_epochs)),
            curves: curves.unwrap_or_default(),
        },
    )
}
