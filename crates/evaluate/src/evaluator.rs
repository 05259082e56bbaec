//! The swap point between ways of scoring: [`Evaluator`] scores a batch of claimed candidates and records
//! each result as it exists. Cross-validated training (`cv::CrossValidation`), a tabular benchmark
//! ([`crate::table::Table`]) and a zero-cost proxy ([`crate::proxy::Proxies`]) implement it; the stage
//! ([`crate::evaluate_pending`]) picks one by `[evaluate] evaluator`, claims, renews leases and writes,
//! whatever the evaluator. Every result is made by one constructor, [`result`]. This module names none of
//! its implementations.

use crate::Event;
use anyhow::Result;
use space::{CandidateFile, Entry, EvaluatedBy, ResultFile, Status, ARTIFACT_VERSION};
use std::collections::BTreeMap;

/// Called with each result as soon as it exists (the stage writes it and releases its lease).
pub type Record<'a> = &'a (dyn Fn(&ResultFile) -> Result<()> + Sync);

/// Scores candidates.
pub trait Evaluator: Sync {
    /// Scores `claimed`, calling `record` with each result as it is made; returns them (a candidate the
    /// evaluation abandoned, at a deadline, has none and stays pending).
    fn evaluate(
        &self,
        claimed: &[Entry],
        on_event: &(dyn Fn(Event) + Sync),
        record: Record,
    ) -> Result<Vec<ResultFile>>;
}

/// An evaluator that scores one candidate at a time without training (a table lookup, a proxy).
pub trait Lookup: Sync {
    /// The result of `e`.
    fn score(&self, e: &Entry) -> ResultFile;
}

impl<L: Lookup> Evaluator for L {
    fn evaluate(
        &self,
        claimed: &[Entry],
        on_event: &(dyn Fn(Event) + Sync),
        record: Record,
    ) -> Result<Vec<ResultFile>> {
        on_event(Event::Begin {
            total: claimed.len(),
            folds: 1,
        });
        let mut rs = Vec::new();
        for e in claimed {
            let r = self.score(e);
            record(&r)?;
            on_event(Event::Done(Box::new(r.clone())));
            rs.push(r);
        }
        Ok(rs)
    }
}

/// A candidate's fold scores in the run's metric, or why it has none.
pub enum Folds {
    /// Every fold scored: status `ok`.
    Scored(Vec<f64>),
    /// Raced out after these folds, with the bound that stopped it and its paired estimate of the full
    /// mean ([`ResultFile::paired_mean`]): status `stopped`.
    Stopped(Vec<f64>, String, f64),
    /// No score: the status (`failed`, `diverged`) and why.
    Unscored(Status, String),
}

/// How an evaluation of a candidate came out.
pub struct Scored {
    /// The folds' scores, or why there are none.
    pub folds: Folds,
    /// Other figures (every metric's mean, a proxy's raw value, memory).
    pub metrics: BTreeMap<String, f64>,
    /// Seconds spent.
    pub wall_s: f64,
    /// Epochs each fold trained (None for evaluators that do not train).
    pub epochs: Option<usize>,
    /// Each trained fold's curve (empty for evaluators that do not train).
    pub curves: Vec<space::Curve>,
}

/// The result file of candidate `c` evaluated by `by`: the one constructor of every evaluator's results.
pub fn result(c: &CandidateFile, by: EvaluatedBy, s: Scored) -> ResultFile {
    let (status, fold_scores, error, paired_mean) = match s.folds {
        Folds::Scored(scores) => (Status::Ok, scores, String::new(), None),
        Folds::Stopped(scores, why, est) => (Status::Stopped, scores, why, Some(est)),
        Folds::Unscored(st, why) => (st, Vec::new(), why, None),
    };
    let (cv_mean, cv_std) = space::mean_std(&fold_scores);
    ResultFile {
        version: ARTIFACT_VERSION,
        kind: "nas.result".into(),
        id: c.id,
        arch: c.arch.clone(),
        status,
        fold_scores,
        cv_mean,
        cv_std,
        paired_mean,
        params: c.params,
        flops: c.flops,
        wall_s: s.wall_s,
        evaluator: by,
        epochs: s.epochs,
        error,
        metrics: s.metrics,
        per_class: None,
        curves: s.curves,
    }
}

/// The result of an evaluator that scores without training (a table lookup, a proxy): one score and other
/// figures, or why there is none (status `failed`).
pub(crate) fn single_score(
    c: &space::CandidateFile,
    by: space::EvaluatedBy,
    scored: std::result::Result<(f64, std::collections::BTreeMap<String, f64>), String>,
    wall_s: f64,
) -> ResultFile {
    let (folds, metrics) = match scored {
        Ok((s, metrics)) => (Folds::Scored(vec![s]), metrics),
        Err(why) => (
            Folds::Unscored(space::Status::Failed, why),
            Default::default(),
        ),
    };
    result(
        c,
        by,
        Scored {
            folds,
            metrics,
            wall_s,
            epochs: None,
            curves: Vec::new(),
        },
    )
}
