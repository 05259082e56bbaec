//! `evaluate`: the stage that scores the candidates that have no result yet.
//!
//! The stage is [`evaluate_pending`] ([`stage`]): it claims pending candidates of a run directory under
//! leases ([`lease`]), scores them — stratified k-fold cross-validation over the [`nn`] training library
//! ([`cross_validate`]), or a lookup in a tabular benchmark ([`table`]) — and writes one result file per
//! candidate the moment its last fold finishes, so an interrupted evaluation loses at most the candidates in
//! flight. [`retry_failed`] makes failed candidates pending again.
//!
//! Key design decision: parallel trainings, not parallel ops. The networks are small, so candle's own
//! threading costs more than it gives; each (candidate, fold) training runs single-threaded on one worker of
//! a rayon pool, taking jobs in order from a shared counter. Every random stream is derived from
//! (seed, purpose, candidate, fold), so scores do not depend on the thread count or the schedule.
//! This crate never chooses which architectures to try, and writes only `results/`, `leases/` and
//! `retried/`.
#![deny(missing_docs)]

mod cv;
pub mod evaluator;
/// Leases: many workers on one run directory.
pub mod lease;
pub mod proxy;
pub mod stage;
pub mod table;

pub use cv::baseline::baselines;
pub use cv::{cross_validate, cross_validate_until, CrossValidation, PEAK_MIB};
pub use nn::{init_threads, thread_count};
pub use stage::{check_plan, evaluate_pending, queue, retry_failed, Options, Outcome, Queue};

use space::ResultFile;

/// Progress of an evaluation.
#[derive(Clone, Debug)]
pub enum Event {
    /// Evaluation of `total` candidates (× folds) begins.
    Begin {
        /// Candidates to evaluate.
        total: usize,
        /// Folds per candidate.
        folds: usize,
    },
    /// A fold finished.
    Fold {
        /// Candidate id.
        id: u64,
        /// Fold index.
        fold: usize,
        /// Held-out score in the run's metric (None when the fold failed, diverged or was abandoned).
        score: Option<f64>,
    },
    /// A training took an optimiser step.
    Step {
        /// Candidate id.
        id: u64,
        /// Fold index.
        fold: usize,
        /// Where the training is.
        tick: nn::train::Tick,
    },
    /// A candidate finished and its result file is written.
    Done(Box<ResultFile>),
}
