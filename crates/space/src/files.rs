//! The run artifact formats every stage reads and writes: `space.toml`, candidates, results, leases,
//! `selection.toml` (`model.toml` is in `model_file`). Documented for other programs in `docs/artifacts.md`; keep the two in step.

use crate::arch::InputInfo;
use crate::experiment::Experiment;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Version of every run artifact format written by this build. Version 2 added the rungs of multi-fidelity
/// search (`epochs` of candidates and results, the `promotion of N` origin); version 3 the `stopped` status of
/// racing folds.
pub const ARTIFACT_VERSION: u32 = 3;

/// The run artifact versions this build reads: every change so far only added keys with defaults, so a
/// version-1 run directory is resumed as it is.
pub const ARTIFACTS_READ: std::ops::RangeInclusive<u32> = 1..=ARTIFACT_VERSION;

/// `leases/cNNNNN.toml`: who evaluates a candidate. Created atomically (exclusive), its modification time
/// renewed while the worker trains; a lease older than the lease timeout, or held by a process of this host
/// that no longer exists, is expired and may be taken over.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeaseFile {
    /// Format version.
    pub version: u32,
    /// `nas.lease`.
    pub kind: String,
    /// Candidate id.
    pub id: u64,
    /// Host name of the worker.
    pub host: String,
    /// Process id of the worker.
    pub pid: u32,
    /// Unique per claim (host, pid, time, counter), to tell one claim from another.
    pub token: String,
    /// When the claim was made, seconds since the Unix epoch.
    pub since: f64,
    /// The holder renews the lease at least every quarter of this; not renewed for this long, it is expired.
    pub timeout_s: f64,
}

/// `space.toml`: the resolved experiment and what the data looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.space`.
    pub kind: String,
    /// Number of architectures in the space (decimal text; may exceed 64 bits).
    pub size: String,
    /// Data rows.
    pub rows: usize,
    /// FNV-1a of the data bytes.
    pub data_fingerprint: String,
    /// Class names in class-index order.
    pub class_names: Vec<String>,
    /// Input description.
    pub input: InputInfo,
    /// How the inputs are standardised (a `space.toml` without it: per feature).
    #[serde(default = "crate::encoding::Standardize::before_key")]
    pub standardize: crate::encoding::Standardize,
    /// The resolved experiment (defaults filled in, data path absolute).
    pub experiment: Experiment,
}

/// How a candidate was made (`origin` of a candidate file). Strategies that replay their state from the
/// history (annealing's walk, local search's climb, the surrogate's restarts) match on it, so it is typed;
/// text another program wrote is kept as [`Origin::Other`] and never taken for replay state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Origin {
    /// Sampled uniformly from the space: `random`.
    Random,
    /// Given by the experiment (`[search] initial`), evaluated before anything is proposed: `given`.
    Given,
    /// One edit of candidate N: `mutation of N`.
    Mutation(u64),
    /// A child of two candidates: `crossover of A and B`.
    Crossover(u64, u64),
    /// A neighbour of candidate N (local search): `neighbour of N`.
    Neighbour(u64),
    /// An annealing move from candidate N: `move from N`.
    Move(u64),
    /// The surrogate's pick among random samples: `surrogate restart`.
    SurrogateRestart,
    /// The surrogate's pick among the neighbours of candidate N: `surrogate pick near N`.
    SurrogatePick(u64),
    /// Candidate N (first trained at a lower rung) promoted to a higher rung: `promotion of N`.
    Promotion(u64),
    /// Anything else (written by another program).
    Other(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Random => f.write_str("random"),
            Origin::Given => f.write_str("given"),
            Origin::Mutation(n) => write!(f, "mutation of {n}"),
            Origin::Crossover(a, b) => write!(f, "crossover of {a} and {b}"),
            Origin::Neighbour(n) => write!(f, "neighbour of {n}"),
            Origin::Move(n) => write!(f, "move from {n}"),
            Origin::SurrogateRestart => f.write_str("surrogate restart"),
            Origin::SurrogatePick(n) => write!(f, "surrogate pick near {n}"),
            Origin::Promotion(n) => write!(f, "promotion of {n}"),
            Origin::Other(s) => f.write_str(s),
        }
    }
}

impl std::str::FromStr for Origin {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Origin> {
        let id = |t: &str| t.trim().parse::<u64>().ok();
        Ok(match s {
            "random" => Origin::Random,
            "given" => Origin::Given,
            "surrogate restart" => Origin::SurrogateRestart,
            _ => {
                let parsed = if let Some(n) = s.strip_prefix("mutation of ").and_then(id) {
                    Some(Origin::Mutation(n))
                } else if let Some(n) = s.strip_prefix("neighbour of ").and_then(id) {
                    Some(Origin::Neighbour(n))
                } else if let Some(n) = s.strip_prefix("move from ").and_then(id) {
                    Some(Origin::Move(n))
                } else if let Some(n) = s.strip_prefix("surrogate pick near ").and_then(id) {
                    Some(Origin::SurrogatePick(n))
                } else if let Some(n) = s.strip_prefix("promotion of ").and_then(id) {
                    Some(Origin::Promotion(n))
                } else {
                    s.strip_prefix("crossover of ")
                        .and_then(|r| r.split_once(" and "))
                        .and_then(|(a, b)| Some(Origin::Crossover(id(a)?, id(b)?)))
                };
                parsed.unwrap_or_else(|| Origin::Other(s.to_string()))
            }
        })
    }
}

serde_via_str!(Origin);

/// Which evaluator produced a result (`evaluator` of a result file). Typed for nas's own evaluators; another
/// program's label is kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EvaluatedBy {
    /// k-fold training on the CPU: `candle-cpu-kfold`.
    CpuKfold,
    /// k-fold training on a GPU, folds grouped: `candle-cuda-kfold`.
    CudaKfold,
    /// Lookup in a tabular benchmark: `table`.
    Table,
    /// A zero-cost proxy of the untrained network: `proxy-<name>`.
    Proxy(crate::Proxy),
    /// Anything else (written by another program).
    Other(String),
}

impl std::fmt::Display for EvaluatedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvaluatedBy::CpuKfold => f.write_str("candle-cpu-kfold"),
            EvaluatedBy::CudaKfold => f.write_str("candle-cuda-kfold"),
            EvaluatedBy::Table => f.write_str("table"),
            EvaluatedBy::Proxy(p) => write!(f, "proxy-{p}"),
            EvaluatedBy::Other(s) => f.write_str(s),
        }
    }
}

impl std::str::FromStr for EvaluatedBy {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<EvaluatedBy> {
        let known = [
            EvaluatedBy::CpuKfold,
            EvaluatedBy::CudaKfold,
            EvaluatedBy::Table,
        ]
        .into_iter()
        .chain(crate::Proxy::ALL.iter().map(|&p| EvaluatedBy::Proxy(p)));
        Ok(known
            .into_iter()
            .find(|e| e.to_string() == s)
            .unwrap_or_else(|| EvaluatedBy::Other(s.to_string())))
    }
}

serde_via_str!(EvaluatedBy);

/// `candidates/cNNNNN.toml`: one architecture to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.candidate`.
    pub kind: String,
    /// Candidate id (1, 2, …), also in the file name.
    pub id: u64,
    /// Generation batch (0, 1, …).
    pub batch: u64,
    /// Number of candidates in that batch.
    pub batch_size: u64,
    /// The architecture, in the space's notation.
    pub arch: String,
    /// Canonical encoding, used to recognise duplicates.
    pub key: String,
    /// How it was made (`random`, `mutation of 3`, …).
    pub origin: Origin,
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per sample.
    pub flops: u64,
    /// Multi-fidelity search: train for this many epochs (the candidate's rung); absent: `[evaluate] epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
}

impl CandidateFile {
    /// The epochs it trains for, given the full `[evaluate] epochs`.
    pub fn epochs_or(&self, full: usize) -> usize {
        self.epochs.unwrap_or(full)
    }

    /// The id its random streams are keyed by: a promotion's is the candidate it was first trained as, so a
    /// promoted candidate scores exactly what a direct training at its epochs would.
    pub fn stream_id(&self) -> u64 {
        match self.origin {
            Origin::Promotion(n) => n,
            _ => self.id,
        }
    }
}

string_enum!(
    /// How a candidate's evaluation ended (`status` of a result).
    Status, "status", {
        /// Scored.
        Ok = "ok",
        /// The loss became NaN or infinite.
        Diverged = "diverged",
        /// Training or lookup failed (the result's `error` says why).
        Failed = "failed",
        /// Raced out (`[evaluate] race`): its first folds showed it cannot plausibly beat the incumbent, so
        /// the rest were not trained; `fold_scores` holds those folds and `error` the bound that stopped it.
        /// Never ranked or selected.
        Stopped = "stopped",
    }
);

/// `results/cNNNNN.toml`: the score of one candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.result`.
    pub kind: String,
    /// Candidate id.
    pub id: u64,
    /// The architecture (copied from the candidate).
    pub arch: String,
    /// `ok`, `diverged` or `failed`.
    pub status: Status,
    /// Held-out accuracy per fold, 0–1.
    pub fold_scores: Vec<f64>,
    /// Mean of `fold_scores` (0 when not ok).
    pub cv_mean: f64,
    /// Sample standard deviation of `fold_scores`.
    pub cv_std: f64,
    /// A `stopped` candidate's estimate of its mean over every fold: the incumbent's CV mean plus the mean
    /// of its paired differences with the incumbent on the folds it trained. Its `cv_mean` carries those
    /// folds' difficulty (a partial mean over a hard first fold looks worse than the candidate is); this
    /// does not, so it is what search strategies rank a stopped candidate by ([`ResultFile::fitness`]).
    /// Absent for every other status, and in results from before 2026-12-05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_mean: Option<f64>,
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per sample.
    pub flops: u64,
    /// Seconds spent evaluating.
    pub wall_s: f64,
    /// Which evaluator produced it.
    pub evaluator: EvaluatedBy,
    /// Epochs of each fold's training, its rung (with early stopping, the most it could train); absent for
    /// evaluators that do not train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// What went wrong, when status is not `ok`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Other measurements, for reporting only; never visible to a search strategy (e.g. a tabular
    /// benchmark's test accuracy).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// Each class's precision, recall and F1 over the held-out rows of every fold trained
    /// ([`crate::metrics::PerClass`]); absent without out-of-fold predictions. For reporting only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class: Option<crate::metrics::PerClass>,
    /// Each trained fold's training, epoch by epoch, in fold order (a stopped candidate's prefix); empty for
    /// evaluators that do not train, for grouped GPU folds, and in results of earlier versions. For reporting
    /// only, like `metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curves: Vec<Curve>,
}

/// One fold's training, epoch by epoch: the mean training loss over the epoch's batches, and the
/// cross-entropy and accuracy on a sample of the fold's held-out rows (every k-th, at most
/// [`Curve::SAMPLE`]) after the epoch. The fold's score in `fold_scores` is on all its held-out rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// Mean cross-entropy of the epoch's mini-batches (training mode: dropout on).
    pub train_loss: Vec<f64>,
    /// Cross-entropy on the held-out sample after each epoch.
    pub heldout_loss: Vec<f64>,
    /// Accuracy on the held-out sample after each epoch.
    pub heldout_accuracy: Vec<f64>,
}

impl Curve {
    /// Held-out rows a curve is measured on, at most: a forward pass over them each epoch costs a few
    /// percent of the epoch's training on a few thousand rows (1/3 of a training step's work per row).
    pub const SAMPLE: usize = 512;

    /// Rounds every value to 4 decimals, which is all a drawing needs, to keep result files small.
    pub fn rounded(mut self) -> Curve {
        for v in [
            &mut self.train_loss,
            &mut self.heldout_loss,
            &mut self.heldout_accuracy,
        ] {
            v.iter_mut().for_each(|x| *x = (*x * 1e4).round() / 1e4);
        }
        self
    }
}

impl ResultFile {
    /// Whether the candidate was scored.
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// Whether the candidate has a score a search may use: ok, or raced out (from the folds it trained,
    /// which were worse than the incumbent's; see [`ResultFile::fitness`]).
    pub fn scored(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Stopped)
    }

    /// What a search strategy ranks the candidate by: its CV mean when ok, a stopped candidate's
    /// [`paired_mean`](ResultFile::paired_mean) (its `cv_mean` in results from before there was one), and −1
    /// when it has no score.
    pub fn fitness(&self) -> f64 {
        match self.status {
            Status::Ok => self.cv_mean,
            Status::Stopped => self.paired_mean.unwrap_or(self.cv_mean),
            _ => -1.0,
        }
    }

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.ok() && (self.fold_scores.is_empty() || !(0.0..=1.0).contains(&self.cv_mean)) {
            return Err("status ok needs fold_scores and a cv_mean in [0, 1]".into());
        }
        Ok(())
    }
}

/// `baseline.toml`: what simple models score on the run's own folds, in its metric, to judge a result by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.baseline`.
    pub kind: String,
    /// The metric of the scores (`[evaluate] metric`).
    pub metric: crate::Metric,
    /// Each baseline, simplest first.
    pub baseline: Vec<BaselineScore>,
}

/// One baseline's cross-validated score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineScore {
    /// What it is, e.g. `majority class`.
    pub name: String,
    /// Mean of the fold scores.
    pub cv_mean: f64,
    /// Sample standard deviation of the fold scores.
    pub cv_std: f64,
    /// Held-out score of each fold, in fold order.
    pub fold_scores: Vec<f64>,
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// One ranked candidate in `selection.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ranked {
    /// Candidate id.
    pub id: u64,
    /// Architecture.
    pub arch: String,
    /// Mean CV accuracy.
    pub cv_mean: f64,
    /// Std of CV accuracy.
    pub cv_std: f64,
    /// Per-fold accuracy.
    pub fold_scores: Vec<f64>,
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per sample.
    pub flops: u64,
}

string_enum!(
    /// Why a search stopped before spending its budget (`ended` of `selection.toml`).
    Ended, "ended", {
        /// The `[search] time` limit passed.
        Time = "time",
        /// No architecture was left untried.
        Space = "space",
    }
);

/// `selection.toml`: the winner and the ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.selection`.
    pub kind: String,
    /// Candidates with results, and how many were ok.
    pub evaluated: usize,
    /// Of which scored (status ok).
    pub ok: usize,
    /// The constraint the best candidate satisfies (`nas select --max-params`), if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_params: Option<u64>,
    /// The best candidate: the most accurate (within the constraint).
    pub best: Ranked,
    /// The Pareto front of accuracy against parameters and multiply-accumulates: every ok candidate that no
    /// other is at least as good as on all three and better on one; fewest parameters first.
    #[serde(default)]
    pub front: Vec<Ranked>,
    /// All ok candidates, best first.
    pub ranking: Vec<Ranked>,
    /// Why the search that made this selection stopped, when not because the budget was spent: `time`
    /// (the `[search] time` limit) or `space` (no architecture left untried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// The ensemble selected from the top of the ranking's out-of-fold predictions, when they were there to
    /// select from (absent with `max_params`, with fewer than two candidates or with a candidate of the pool
    /// that has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<Ensemble>,
    /// When the ensemble is the model (`nas select --ensemble`; absent: `auto`).
    #[serde(default, skip_serializing_if = "EnsembleUse::is_auto")]
    pub ensemble_use: EnsembleUse,
}

string_enum!(
    /// When the ensemble is the run's model (`nas select --ensemble`).
    #[derive(Default)]
    EnsembleUse, "ensemble", {
        /// When its nested estimate beats the single best's.
        #[default]
        Auto = "auto",
        /// Whenever it has two members or more.
        Always = "always",
        /// Never: the model is the single best (the ensemble is still estimated and shown).
        Off = "off",
    }
);

impl EnsembleUse {
    /// Whether it is the default, `auto` (not written).
    pub fn is_auto(&self) -> bool {
        *self == EnsembleUse::Auto
    }
}

/// `selection.toml`'s `[ensemble]`: greedy ensemble selection over the out-of-fold predictions
/// (`select::ensemble`), with nested estimates on the run's folds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ensemble {
    /// Whether the ensemble is the run's model: it has two members or more and (with `ensemble_use` auto)
    /// its nested estimate is higher than the single best's.
    pub used: bool,
    /// Nested estimate of the ensemble, in the run's metric: each fold scored with the ensemble selected on
    /// the other folds' rows.
    pub fold_scores: Vec<f64>,
    /// Mean of `fold_scores`.
    pub cv_mean: f64,
    /// Sample standard deviation of `fold_scores`.
    pub cv_std: f64,
    /// The single best estimated the same way: each fold scored with the candidate best on the other folds'
    /// rows.
    pub single_fold_scores: Vec<f64>,
    /// Mean of `single_fold_scores`.
    pub single_cv_mean: f64,
    /// The members, selected on every row, most picked first: the model averages their class probabilities
    /// with weights `picks` / the sum of `picks`.
    pub members: Vec<Member>,
}

/// A member of an [`Ensemble`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Candidate id.
    pub id: u64,
    /// Architecture.
    pub arch: String,
    /// How often the greedy selection picked it (its weight, relative to the others').
    pub picks: usize,
    /// The temperature the selection calibrated its out-of-fold probabilities with (fitted on them by
    /// cross-entropy): the retrained network's logits are divided by it, so the model averages what the
    /// selection did. 1 for a model of one network, and in selections from before 2026-12-04.
    #[serde(default = "unit", skip_serializing_if = "is_unit")]
    pub temperature: f64,
}

/// A temperature of 1 (serde's default).
pub fn unit() -> f64 {
    1.0
}

/// Whether a temperature is 1 (left out of files).
pub fn is_unit(t: &f64) -> bool {
    *t == 1.0
}

impl Member {
    /// Each of `members`' weight in the averaged probabilities: its `picks` over their sum.
    pub fn weights(members: &[Member]) -> Vec<f64> {
        let total: usize = members.iter().map(|m| m.picks).sum();
        (members.iter())
            .map(|m| m.picks as f64 / total.max(1) as f64)
            .collect()
    }
}

impl SelectionFile {
    /// What the run's model is: the ensemble's members when it is used, else the best, alone.
    pub fn model_members(&self) -> Vec<Member> {
        match &self.ensemble {
            Some(e) if e.used => e.members.clone(),
            _ => vec![Member {
                id: self.best.id,
                arch: self.best.arch.clone(),
                picks: 1,
                temperature: 1.0,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip_and_foreign_text_is_kept() {
        for text in [
            "random",
            "mutation of 3",
            "crossover of 4 and 12",
            "neighbour of 7",
            "move from 9",
            "surrogate restart",
            "surrogate pick near 5",
            "my python strategy",
            "mutation of x",
        ] {
            let o: Origin = text.parse().unwrap();
            assert_eq!(o.to_string(), text);
        }
        assert_eq!(
            "mutation of x".parse::<Origin>().unwrap(),
            Origin::Other("mutation of x".into())
        );
        assert_eq!(
            "crossover of 4 and 12".parse::<Origin>().unwrap(),
            Origin::Crossover(4, 12)
        );
    }

    /// A stopped candidate is ranked by its paired estimate when it has one (by its partial mean in older
    /// results), an ok one by its CV mean, and one without a score below both.
    #[test]
    fn fitness_is_the_paired_estimate_of_a_stopped_candidate() {
        let text = r#"
            version = 3
            kind = "nas.result"
            id = 2
            arch = "conv8x3-relu"
            status = "stopped"
            fold_scores = [0.85]
            cv_mean = 0.85
            cv_std = 0.0
            params = 1
            flops = 1
            wall_s = 1.0
            evaluator = "candle-cpu-kfold"
        "#;
        let old: ResultFile = toml::from_str(text).unwrap();
        assert_eq!((old.paired_mean, old.fitness()), (None, 0.85));
        let new = ResultFile {
            paired_mean: Some(0.87),
            ..old.clone()
        };
        let back: ResultFile = toml::from_str(&toml::to_string(&new).unwrap()).unwrap();
        assert_eq!((back.paired_mean, back.fitness()), (Some(0.87), 0.87));
        let ok = ResultFile {
            status: Status::Ok,
            ..old.clone()
        };
        let failed = ResultFile {
            status: Status::Failed,
            ..old
        };
        assert_eq!((ok.fitness(), failed.fitness()), (0.85, -1.0));
    }

    #[test]
    fn evaluator_labels_round_trip_and_foreign_ones_are_kept() {
        for text in [
            "candle-cpu-kfold",
            "candle-cuda-kfold",
            "table",
            "proxy-synflow",
            "my-evaluator",
        ] {
            let e: EvaluatedBy = text.parse().unwrap();
            assert_eq!(e.to_string(), text);
        }
        assert_eq!(
            "proxy-naswot".parse::<EvaluatedBy>().unwrap(),
            EvaluatedBy::Proxy(crate::Proxy::Naswot)
        );
        assert_eq!(
            "fake".parse::<EvaluatedBy>().unwrap(),
            EvaluatedBy::Other("fake".into())
        );
    }
}
