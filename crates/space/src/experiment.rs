//! The experiment file (`nas.toml`), written by the user: data, space, search, evaluation, budget, seed.
//!
//! Every section and key is optional; missing ones take the defaults of the built-in search (digits, a
//! small CNN `chain` space, regularized evolution). Unknown keys are errors.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

string_enum!(
    /// The search strategy (`[search] strategy`).
    Strategy, "[search] strategy", {
        /// Random search.
        Random = "random",
        /// Regularized (aging) evolution.
        Evolution = "evolution",
        /// Genetic algorithm.
        Ga = "ga",
        /// Simulated annealing.
        Annealing = "annealing",
        /// Local search with restarts.
        Local = "local",
        /// Ridge-regression surrogate over a random initial design (ours).
        Surrogate = "surrogate",
    }
);

string_enum!(
    /// How candidates are scored (`[evaluate] evaluator`).
    Evaluator, "[evaluate] evaluator", {
        /// k-fold cross-validated training.
        Train = "train",
        /// Lookup in a tabular benchmark.
        Table = "table",
        /// A zero-cost proxy of the untrained network (`[evaluate] proxy`).
        Proxy = "proxy",
    }
);

string_enum!(
    /// A zero-cost proxy (`[evaluate] proxy`, `[search] prior`): a score of the untrained network.
    Proxy, "proxy", {
        /// Synaptic flow: Σ |θ ⊙ ∂R/∂θ| of the network with |θ|, on an all-ones input (needs no data).
        Synflow = "synflow",
        /// NASWOT: log-determinant of the agreement of activation patterns over a batch of data.
        Naswot = "naswot",
        /// The parameter count.
        Params = "params",
    }
);

pub use crate::execution::{DeviceSetting, TimeLimit};
pub use crate::spec_data::{Builtin, DataSource, DataSpec};
pub use crate::spec_space::{BlockKind, SpaceFamily, SpaceSpec};

/// How a run executes, as opposed to what it computes: changing these never changes a candidate, a score or
/// a selection, so a run may be resumed with other values and they are simply used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Execution {
    /// Where training runs.
    pub device: DeviceSetting,
    /// Concurrent trainings (0: one per core).
    pub threads: usize,
}

/// Current version of the experiment format.
pub const EXPERIMENT_VERSION: u32 = 1;

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Format version (1).
    #[serde(default = "default_version")]
    pub version: u32,
    /// Seed of every random stream of the run.
    #[serde(default)]
    pub seed: u64,
    /// Where the data comes from.
    #[serde(default)]
    pub data: DataSpec,
    /// The search space.
    #[serde(default)]
    pub space: SpaceSpec,
    /// The search strategy and budget.
    #[serde(default)]
    pub search: SearchSpec,
    /// How candidates are trained and scored.
    #[serde(default)]
    pub evaluate: EvalSpec,
}

fn default_version() -> u32 {
    EXPERIMENT_VERSION
}

impl Default for Experiment {
    fn default() -> Self {
        Experiment {
            version: EXPERIMENT_VERSION,
            seed: 0,
            data: DataSpec::default(),
            space: SpaceSpec::default(),
            search: SearchSpec::default(),
            evaluate: EvalSpec::default(),
        }
    }
}

/// `[search]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// `random`, `evolution` (regularized / aging evolution), `ga` (genetic algorithm), `annealing`
    /// (simulated annealing), `local` (local search with restarts), `surrogate` (ours).
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// Number of candidates to evaluate in all (default: [`Defaults`] for the data's kind). Not part of a run's
    /// identity: a run may be resumed with a larger budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<usize>,
    /// Stop once this much time has passed in a `nas run` (or worker) session: trainings still running are
    /// abandoned (their candidates stay pending), and the best of what is done is selected. Like the
    /// budget, not part of a run's identity: resuming with a new `--time` searches on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeLimit>,
    /// Candidates generated per batch (evaluated in parallel).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// evolution: population size (the most recent results).
    #[serde(default = "default_population")]
    pub population: usize,
    /// evolution, ga: tournament sample size.
    #[serde(default = "default_sample")]
    pub sample: usize,
    /// ga: probability that a child is a crossover of two parents (then mutated).
    #[serde(default = "default_crossover")]
    pub crossover: f64,
    /// annealing: initial temperature, in units of the score (accuracy 0–1).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// annealing: the temperature is multiplied by this after every candidate.
    #[serde(default = "default_cooling")]
    pub cooling: f64,
    /// `full`, `halving` or `hyperband` (see [`crate::fidelity`]).
    #[serde(default)]
    pub fidelity: crate::Fidelity,
    /// halving, hyperband: the epochs of the lowest rung (default: [`crate::fidelity::default_min_epochs`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_epochs: Option<usize>,
    /// halving, hyperband: each rung keeps the best 1/eta of its candidates and trains them eta times longer.
    #[serde(default = "default_eta")]
    pub eta: usize,
    /// A zero-cost proxy that guides the strategy: new random candidates are the best by proxy of a pool of
    /// samples, and one-edit moves are tried best by proxy first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Proxy>,
    /// Architectures evaluated first, as a batch of their own, before the strategy proposes anything (in the
    /// space's notation, each in the space): known-good starting points, which the strategy then builds on
    /// and racing measures the others against. Default: the textbook CNN for images of 16×16 and more when
    /// the space holds it ([`crate::plan`]), else none; `[]` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Vec<String>>,
}

fn default_eta() -> usize {
    crate::fidelity::DEFAULT_ETA
}

fn default_crossover() -> f64 {
    0.5
}
fn default_temperature() -> f64 {
    0.01
}
fn default_cooling() -> f64 {
    0.97
}

fn default_strategy() -> Strategy {
    Strategy::Evolution
}
/// The defaults that depend on the kind of data, chosen by measurement (docs/benchmarks.md): images train
/// slowly per candidate, tables fast, and small tables need many epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    /// `[search] budget`.
    pub budget: usize,
    /// `[evaluate] epochs` on small data.
    pub epochs: usize,
    /// Training rows × epochs per training: on large data the default epochs shrink to stay within it (at
    /// least one), so a training is about as many optimiser steps whatever the data's size.
    pub samples: usize,
    /// `[search] time`, when the experiment gives neither a budget nor a time: a default search ends in
    /// bounded time whatever the size of the data (a given budget is searched in full).
    pub time: TimeLimit,
    /// `[evaluate] race`.
    pub race: bool,
    /// `[evaluate] lr`.
    pub lr: f64,
}

/// Defaults for image data (and the built-in digits, whose default search takes about 1.5 minutes).
pub const IMAGE_DEFAULTS: Defaults = Defaults {
    budget: 64,
    epochs: 8,
    samples: 64_000,
    time: TimeLimit(std::time::Duration::from_secs(30 * 60)),
    race: true,
    lr: 0.003,
};

/// Defaults for tabular data.
pub const TABLE_DEFAULTS: Defaults = Defaults {
    budget: 48,
    epochs: 30,
    samples: 480_000,
    time: TimeLimit(std::time::Duration::from_secs(5 * 60)),
    race: false,
    lr: 0.003,
};

/// Defaults for tables with free-text columns. A text's embedding rows each see the steps of the batches
/// holding their token and must move by about one to matter, so AdamW needs a larger rate than elsewhere:
/// on austen (one width-64 block, 3 folds, 5 epochs) 0.003 scored 0.64, 0.01 0.89, 0.02 0.91, 0.05 0.92.
/// At 0.02 the training loss is near zero by the fourth epoch, so 5 epochs (fastText's default), fewer on
/// large data.
pub const TEXT_DEFAULTS: Defaults = Defaults {
    budget: 48,
    epochs: 5,
    samples: 100_000,
    time: TimeLimit(std::time::Duration::from_secs(15 * 60)),
    race: false,
    lr: 0.02,
};

fn default_batch() -> usize {
    4
}
fn default_population() -> usize {
    8
}
fn default_sample() -> usize {
    3
}

impl Default for SearchSpec {
    fn default() -> Self {
        SearchSpec {
            strategy: default_strategy(),
            budget: None,
            time: None,
            batch: default_batch(),
            population: default_population(),
            sample: default_sample(),
            crossover: default_crossover(),
            temperature: default_temperature(),
            cooling: default_cooling(),
            fidelity: crate::Fidelity::Full,
            min_epochs: None,
            eta: default_eta(),
            prior: None,
            initial: None,
        }
    }
}

/// `[evaluate]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Cross-validation folds (k).
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Training epochs per fold (default: [`Defaults`] for the data's kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Mini-batch size.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// AdamW learning rate; absent: the data kind's default ([`Defaults::lr`]), filled in when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// AdamW weight decay.
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Early stopping: each training holds out a tenth of its training rows (stratified, never the held-out
    /// fold), stops after this many epochs without a better accuracy on them, and keeps its best epoch's
    /// weights. Absent: every training runs all its epochs on all its rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Racing the folds: a candidate's folds train in order, and after each it stops when a one-sided 80% t
    /// bound on its paired difference with the incumbent (the best candidate of earlier batches at its rung),
    /// its spread pooled with earlier candidates', is below zero (the rule: `evaluate`'s `cv/race.rs`); it is
    /// recorded as `stopped` with the folds it trained. Default by the data's kind ([`Defaults`]: on for
    /// images, off for tables); a stored plan without it (runs from before it was a default) does not race.
    /// CPU only (a GPU trains a candidate's folds together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub race: Option<bool>,
    /// Concurrent trainings (0: one per core).
    #[serde(default)]
    pub threads: usize,
    /// Where training runs: `cpu`, `cuda` (every GPU), `cuda:N`, or `auto` (the GPUs when the build has CUDA
    /// and there are any, else the CPU). An execution setting: a run may be resumed on another device.
    #[serde(default = "default_device")]
    pub device: DeviceSetting,
    /// `train` (k-fold CV with candle) or `table` (look each architecture up in a tabular benchmark).
    #[serde(default = "default_evaluator")]
    pub evaluator: Evaluator,
    /// What scores a fold, ranks and selects: `accuracy`, `balanced_accuracy` or `macro_f1` (all three are
    /// recorded in each result's `metrics`).
    #[serde(default = "default_metric")]
    pub metric: crate::Metric,
    /// How the loss weighs classes: `balanced` or `none` (default: balanced for `balanced_accuracy` and
    /// `macro_f1`, none for accuracy; a stored plan without it is `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<crate::metrics::ClassWeight>,
    /// What a training does to its images: `none` (the default), `shift` or `shift_flip`
    /// ([`crate::augment::Augment`]: it pays only with more epochs than the default, docs/benchmarks.md).
    /// Images only.
    #[serde(default = "default_augment")]
    pub augment: crate::augment::Augment,
    /// table: the CSV file (relative paths are relative to the experiment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// table: the architecture-string column.
    #[serde(default = "default_arch_column")]
    pub arch_column: String,
    /// table: the column the search sees (its score); values above 1 are read as percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_metric: Option<String>,
    /// table: columns recorded in each result's `metrics` for reporting, never shown to the search.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report_metrics: Vec<String>,
    /// proxy: which zero-cost proxy scores (default synflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
}

fn default_device() -> DeviceSetting {
    DeviceSetting::Auto
}

fn default_augment() -> crate::augment::Augment {
    crate::augment::Augment::Off
}

fn default_metric() -> crate::Metric {
    crate::Metric::Accuracy
}

fn default_evaluator() -> Evaluator {
    Evaluator::Train
}
fn default_arch_column() -> String {
    "arch".into()
}

fn default_folds() -> usize {
    5
}
fn default_batch_size() -> usize {
    64
}
fn default_wd() -> f64 {
    0.0001
}

impl EvalSpec {
    /// Whether the loss weighs classes alike (`class_weight = "balanced"`).
    pub fn balanced(&self) -> bool {
        self.class_weight == Some(crate::metrics::ClassWeight::Balanced)
    }
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            folds: default_folds(),
            epochs: None,
            batch_size: default_batch_size(),
            lr: None,
            weight_decay: default_wd(),
            patience: None,
            race: None,
            threads: 0,
            device: default_device(),
            evaluator: default_evaluator(),
            metric: default_metric(),
            class_weight: None,
            augment: default_augment(),
            table: None,
            arch_column: default_arch_column(),
            search_metric: None,
            report_metrics: Vec::new(),
            proxy: None,
        }
    }
}

impl Experiment {
    /// Reads an experiment file (validated when it is resolved: [`crate::Plan::resolve`]); relative data paths
    /// become relative to its directory.
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let mut exp: Experiment = crate::io::parse_toml(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let near_file = |p: &mut String| {
            if Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).to_string_lossy().into_owned();
            }
        };
        exp.data.source = exp.data.source.relative_to(base);
        if let Some(l) = exp.data.labels.as_mut() {
            near_file(l);
        }
        if let Some(t) = exp.evaluate.table.as_mut() {
            near_file(t);
        }
        Ok(exp)
    }

    /// The execution settings (device, threads).
    pub fn execution(&self) -> Execution {
        Execution {
            device: self.evaluate.device,
            threads: self.evaluate.threads,
        }
    }

    /// The experiment with its execution settings given: what a resumed run uses.
    pub fn with_execution(mut self, x: Execution) -> Experiment {
        self.evaluate.device = x.device;
        self.evaluate.threads = x.threads;
        self
    }

    /// The settings that decide candidates and scores: the experiment without its execution settings and
    /// its budget. Two runs with the same identity compute the same candidates and scores, one continuing
    /// where the other with a smaller budget stopped.
    pub fn identity(&self) -> Experiment {
        let mut e = self
            .clone()
            .with_execution(Experiment::default().execution());
        e.search.budget = None;
        e.search.time = None;
        e
    }

    /// Fills the settings whose default depends on the kind and size of the data (`rows` in all).
    pub fn fill_defaults(&mut self, d: Defaults, rows: usize) {
        if self.search.budget.is_none() && self.search.time.is_none() {
            self.search.time = Some(d.time);
        }
        self.search.budget.get_or_insert(d.budget);
        self.evaluate.race.get_or_insert(d.race);
        self.evaluate.lr.get_or_insert(d.lr);
        let weight = self.evaluate.metric.class_weight();
        self.evaluate.class_weight.get_or_insert(weight);
        let folds = self.evaluate.folds.max(2);
        let training_rows = (rows * (folds - 1) / folds).max(1);
        let epochs = d.samples.div_ceil(training_rows).clamp(1, d.epochs);
        let epochs = *self.evaluate.epochs.get_or_insert(epochs);
        if self.search.fidelity != crate::Fidelity::Full {
            let eta = self.search.eta;
            self.search
                .min_epochs
                .get_or_insert(crate::fidelity::default_min_epochs(epochs, eta).min(epochs));
        }
    }

    /// Checks values that TOML types cannot: ranges, empty choices, keys of the wrong family.
    pub fn validate(&self) -> Result<()> {
        if self.version != EXPERIMENT_VERSION {
            bail!(
                "version: {} is not supported (expected {EXPERIMENT_VERSION})",
                self.version
            );
        }
        let s = &self.search;
        if !(0.0..=1.0).contains(&s.crossover) {
            bail!("[search] crossover: must be a probability in [0, 1]");
        }
        if !(s.temperature.is_finite() && s.temperature > 0.0) {
            bail!("[search] temperature: must be positive");
        }
        if !(s.cooling > 0.0 && s.cooling <= 1.0) {
            bail!("[search] cooling: must be in (0, 1]");
        }
        if s.budget == Some(0) {
            bail!("[search] budget: must be at least 1");
        }
        if s.batch == 0 {
            bail!("[search] batch: must be at least 1");
        }
        if s.population < 2 {
            bail!("[search] population: must be at least 2");
        }
        if s.sample == 0 || s.sample > s.population {
            bail!(
                "[search] sample: must be between 1 and population ({})",
                s.population
            );
        }
        let e = &self.evaluate;
        crate::fidelity::check(s.fidelity, s.eta, s.min_epochs, e.epochs)?;
        if e.proxy.is_some() && e.evaluator != Evaluator::Proxy {
            bail!("[evaluate] proxy: set evaluator = \"proxy\" to score by a proxy (the evaluator is \"{}\")", e.evaluator);
        }
        if let (Some(p), Evaluator::Table) = (s.prior, e.evaluator) {
            bail!("[search] prior = \"{p}\": a table evaluator has no network to compute it on (nas bench --prior computes it for a table)");
        }
        if s.fidelity != crate::Fidelity::Full && e.evaluator != Evaluator::Train {
            bail!(
                "[search] fidelity = \"{}\": only training has epochs; the \"{}\" evaluator has one fidelity",
                s.fidelity, e.evaluator
            );
        }
        if e.folds < 2 {
            bail!("[evaluate] folds: must be at least 2");
        }
        if e.epochs == Some(0) {
            bail!("[evaluate] epochs: must be at least 1");
        }
        if e.patience == Some(0) {
            bail!("[evaluate] patience: must be at least 1 epoch (leave it out for no early stopping)");
        }
        if e.batch_size == 0 {
            bail!("[evaluate] batch_size: must be at least 1");
        }
        if e.lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
            bail!("[evaluate] lr: must be a positive number");
        }
        if !(e.weight_decay.is_finite() && e.weight_decay >= 0.0) {
            bail!("[evaluate] weight_decay: must be zero or positive");
        }
        if e.evaluator == Evaluator::Table && (e.table.is_none() || e.search_metric.is_none()) {
            bail!("[evaluate] evaluator = \"table\" needs `table` (a CSV path) and `search_metric` (a column)");
        }
        if let Some(r) = &self.data.resize {
            if r.len() != 2 || r.contains(&0) || r.iter().any(|&v| v > 4096) {
                bail!("[data] resize: expected [height, width] with sizes in 1..=4096, got {r:?}");
            }
        }
        if let Some(shape) = &self.data.shape {
            if shape.len() != 3 || shape.contains(&0) {
                bail!("[data] shape: expected [channels, height, width] with positive sizes, got {shape:?}");
            }
            if shape[0] > 4 && shape[2] <= 4 {
                bail!(
                    "[data] shape: {shape:?} looks channels-last; nas reads channels first: [{}, {}, {}]",
                    shape[2],
                    shape[0],
                    shape[1]
                );
            }
        }
        crate::SpaceDef::from_spec(&self.space).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_experiment() {
        let e: Experiment = crate::io::parse_toml(Path::new("x"), "").unwrap();
        assert_eq!(e, Experiment::default());
        e.validate().unwrap();
    }

    #[test]
    fn a_default_search_is_bounded_in_time_and_a_given_budget_is_searched_in_full() {
        let mut e = Experiment::default();
        e.fill_defaults(TABLE_DEFAULTS, 200);
        assert_eq!(e.search.time, Some(TABLE_DEFAULTS.time));
        assert_eq!(e.search.budget, Some(48));
        let mut e = Experiment::default();
        e.search.budget = Some(5);
        e.fill_defaults(IMAGE_DEFAULTS, 200);
        assert_eq!((e.search.budget, e.search.time), (Some(5), None));
        let mut e = Experiment::default();
        e.search.time = Some("1h".parse().unwrap());
        e.fill_defaults(IMAGE_DEFAULTS, 200);
        assert_eq!(e.search.time, Some("1h".parse().unwrap()));
        assert_eq!(e.search.budget, Some(IMAGE_DEFAULTS.budget));
    }

    #[test]
    fn default_epochs_shrink_on_large_data_to_about_the_same_training_steps() {
        let epochs = |d: Defaults, rows: usize| {
            let mut e = Experiment::default();
            e.fill_defaults(d, rows);
            e.evaluate.epochs.unwrap()
        };
        // The built-in digits, fashion10k, all 70,000 Fashion-MNIST images (5 folds).
        assert_eq!(epochs(IMAGE_DEFAULTS, 1797), 8);
        assert_eq!(epochs(IMAGE_DEFAULTS, 10_000), 8);
        assert_eq!(epochs(IMAGE_DEFAULTS, 70_000), 2);
        assert_eq!(epochs(IMAGE_DEFAULTS, 10_000_000), 1);
        assert_eq!(epochs(TABLE_DEFAULTS, 20_000), 30);
        assert_eq!(epochs(TABLE_DEFAULTS, 200_000), 3);
        let mut e = Experiment::default();
        e.evaluate.epochs = Some(12);
        e.fill_defaults(IMAGE_DEFAULTS, 70_000);
        assert_eq!(e.evaluate.epochs, Some(12), "given epochs are kept");
    }

    #[test]
    fn bad_values_are_named() {
        let mut e = Experiment::default();
        e.search.budget = Some(0);
        assert!(e.validate().unwrap_err().to_string().contains("budget"));
        let mut e = Experiment::default();
        e.space.width = Some(vec![]);
        assert!(e.validate().unwrap_err().to_string().contains("width"));
        let mut e = Experiment::default();
        e.space.nodes = Some(4);
        assert!(e.validate().unwrap_err().to_string().contains("nodes"));
    }

    #[test]
    fn time_limits_parse_and_print() {
        let secs = |t: &str| t.parse::<TimeLimit>().map(|t| t.0.as_secs_f64());
        assert_eq!(secs("90s").unwrap(), 90.0);
        assert_eq!(secs("10m").unwrap(), 600.0);
        assert_eq!(secs("1h30m").unwrap(), 5400.0);
        assert_eq!(secs("45").unwrap(), 45.0);
        for bad in ["", "0", "-5", "10x", "m", "5m3"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
        // Zero is a well-formed duration, and is named as too short rather than as malformed.
        for zero in ["0s", "0m", "0"] {
            let e = secs(zero).unwrap_err().to_string();
            assert!(e.contains("longer than zero"), "{e}");
        }
        assert_eq!(
            TimeLimit(std::time::Duration::from_secs(600)).to_string(),
            "10m"
        );
        let e: Experiment =
            crate::io::parse_toml(Path::new("x"), "[search]\ntime = \"20s\"\n").unwrap();
        assert_eq!(e.search.time.unwrap().0.as_secs(), 20);
    }
}
