//! The command line: every command's arguments, and how the experiment flags become an [`Experiment`].

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use space::{DataSource, DeviceSetting, Experiment, Plan, Strategy};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "nas",
    version,
    about = "Neural architecture search: search a space of networks, score them by k-fold cross-validation, pick the best."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Run a whole search (or resume one): space, then generate/evaluate until the budget is spent, then select.
    Run(RunArgs),
    /// Validate an experiment and write the run directory's space.toml.
    Space(SpaceArgs),
    /// Write the next batch of candidates (or complete a half-written one). Prints `generated …`, `pending …` or `done …`.
    Generate(DirArg),
    /// Train and score every candidate that has no result yet.
    Evaluate(EvalArgs),
    /// Rank the results and write selection.toml; optionally retrain the winner on all data.
    Select(SelectArgs),
    /// Show what is done, what is pending, and the best so far.
    Status(DirArg),
    /// Compare search strategies on a tabular benchmark (NAS-Bench-201 format), in seconds, without training.
    Bench(crate::bench::BenchArgs),
    /// Write a self-contained HTML report with plots (and optionally the candidate table as CSV).
    Report(ReportArgs),
    /// Copy the retrained winner (weights, architecture, input normalisation) to a folder; retrains if needed.
    Export(ExportArgs),
    /// Predict the class of every row of a CSV (or builtin:digits) with an exported model.
    Predict(PredictArgs),
    /// Show the devices training can use: CPU cores, and CUDA GPUs with their free memory.
    Devices,
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Run directory.
    pub(crate) dir: PathBuf,
    /// HTML file to write (default: DIR/report.html).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Also write the table of all candidates as CSV.
    #[arg(long)]
    pub(crate) csv: Option<PathBuf>,
    /// Stop at a result file that cannot be read, instead of naming it and going on without it.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Run directory.
    pub(crate) dir: PathBuf,
    /// Where to write: a folder (native: model.toml and the weights; pytorch: model.py and
    /// weights.safetensors; onnx: model.onnx), or for onnx a file ending in .onnx.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// native (what nas predict reads), onnx (opset 17) or pytorch.
    #[arg(long, default_value = "native")]
    pub(crate) format: space::ExportFormat,
}

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// Folder of an exported model (model.toml + weights).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// Data: a CSV with the training columns (the label column is optional), a folder of images with one
    /// subfolder per class, an IDX images file or a NumPy .npy array, or builtin:digits.
    #[arg(long)]
    pub(crate) data: String,
    /// The labels file of an IDX or .npy --data (optional: with it, the accuracy is printed).
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
    /// Also write each class's logit (the network's raw output) as columns `logit:CLASS`.
    #[arg(long)]
    pub(crate) logits: bool,
}

#[derive(Args, Clone, Default)]
pub(crate) struct ExpArgs {
    /// Experiment file (TOML). Without it: built-in digits, a small CNN chain space, regularized evolution.
    #[arg(long, short = 'c')]
    pub(crate) config: Option<PathBuf>,
    /// Candidates to evaluate in all.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) budget: Option<usize>,
    /// Seed of every random stream.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) seed: Option<u64>,
    /// Stop after this long in this session (e.g. 90s, 10m, 1h30m) and select from what is done; trainings
    /// still running are abandoned (they stay pending for a resumed run). Default when neither this nor --budget is given: 30m for images, 5m for tables.
    #[arg(long)]
    pub(crate) time: Option<space::TimeLimit>,
    /// Training epochs per fold.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) epochs: Option<usize>,
    /// Cross-validation folds (k, default 5).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) folds: Option<usize>,
    /// Data: a CSV (plain or .gz; a table, or images with --shape), a folder of images with one subfolder per
    /// class, an IDX images file or a NumPy .npy array (each with --labels), or builtin:digits.
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Label column of the CSV (default: `label`).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// The labels file (IDX or .npy), when --data is an IDX images file or a NumPy array.
    #[arg(long)]
    pub(crate) labels: Option<String>,
    /// Resize every image of an image folder to H,W.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub(crate) resize: Option<Vec<usize>>,
    /// Image shape of the feature columns, channels first: C,H,W (e.g. 1,28,28). Without it a CSV is a table.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub(crate) shape: Option<Vec<usize>>,
    /// Search strategy: random, evolution, ga, annealing, local or surrogate.
    #[arg(long)]
    pub(crate) strategy: Option<Strategy>,
    /// What scores, ranks and selects: accuracy, balanced_accuracy or macro_f1.
    #[arg(long)]
    pub(crate) metric: Option<space::Metric>,
    /// How long candidates train: full, halving or hyperband (`[search] fidelity`).
    #[arg(long)]
    pub(crate) fidelity: Option<space::Fidelity>,
}

impl ExpArgs {
    /// Where the experiment came from, for error messages.
    pub(crate) fn origin(&self) -> String {
        self.config
            .as_ref()
            .map_or("command line".into(), |p| p.display().to_string())
    }

    /// The experiment resolved against its data (what `space.toml` holds), and the data; errors name the
    /// experiment file.
    pub(crate) fn resolve(&self) -> Result<(Plan, data::Dataset)> {
        data::resolve(self.experiment()?).map_err(|e| anyhow!("{}: {e}", self.origin()))
    }

    pub(crate) fn experiment(&self) -> Result<Experiment> {
        let base = match &self.config {
            Some(p) => Experiment::load(p)?,
            None => Experiment::default(),
        };
        self.apply(base)
    }

    /// `e` with the flags given applied (validated when resolved, or by the caller).
    pub(crate) fn apply(&self, mut e: Experiment) -> Result<Experiment> {
        if let Some(v) = self.budget {
            e.search.budget = Some(v);
        }
        if let Some(v) = self.seed {
            e.seed = v;
        }
        if let Some(v) = self.epochs {
            e.evaluate.epochs = Some(v);
        }
        if let Some(v) = self.folds {
            e.evaluate.folds = v;
        }
        if let Some(v) = &self.data {
            e.data.source = v
                .parse::<DataSource>()
                .map_err(|err| anyhow!("--data: {err}"))?
                .relative_to(&std::env::current_dir().unwrap_or_default());
        }
        if let Some(v) = &self.label {
            e.data.label = v.clone();
        }
        if let Some(v) = &self.labels {
            e.data.labels = Some(absolute(v));
        }
        if let Some(v) = &self.resize {
            e.data.resize = Some(v.clone());
        }
        if let Some(v) = &self.shape {
            e.data.shape = Some(v.clone());
        }
        if let Some(v) = self.strategy {
            e.search.strategy = v;
        }
        if let Some(v) = self.time {
            e.search.time = Some(v);
        }
        if let Some(v) = self.metric {
            e.evaluate.metric = v;
        }
        if let Some(v) = self.fidelity {
            e.search.fidelity = v;
        }
        Ok(e)
    }
}

pub(crate) fn absolute(p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() {
        p.to_string()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path).to_string_lossy().into_owned())
            .unwrap_or_else(|_| p.to_string())
    }
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) exp: ExpArgs,
    /// Run directory (created, or resumed when it exists).
    #[arg(long, short = 'o', default_value = "nas-run")]
    pub(crate) out: PathBuf,
    /// Concurrent trainings (default: one per core).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) threads: usize,
    /// Where to train: cpu, cuda (every GPU), cuda:N or auto (default: the experiment's `[evaluate] device`).
    #[arg(long)]
    pub(crate) device: Option<DeviceSetting>,
    /// Skip retraining the winner on all data at the end.
    #[arg(long)]
    pub(crate) no_retrain: bool,
    /// No progress bar or log lines.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct SpaceArgs {
    #[command(flatten)]
    pub(crate) exp: ExpArgs,
    /// Run directory to create.
    #[arg(long, short = 'o')]
    pub(crate) out: PathBuf,
}

#[derive(Args)]
pub(crate) struct DirArg {
    /// Run directory.
    pub(crate) dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Run directory.
    pub(crate) dir: PathBuf,
    /// Concurrent trainings (default: the experiment's setting, else one per core).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) threads: usize,
    /// No progress bar or log lines.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// Where to train: cpu, cuda (every GPU), cuda:N or auto (default: the experiment's `[evaluate] device`).
    #[arg(long)]
    pub(crate) device: Option<DeviceSetting>,
    /// Keep going until the search is done: take pending candidates one at a time, make the next batch when
    /// none is left, wait while other workers hold the rest. Any number of workers may share a run directory.
    #[arg(long)]
    pub(crate) worker: bool,
    /// Seconds after which a lease that was not renewed is taken over (a worker renews every quarter of it).
    #[arg(long, default_value_t = 120.0, allow_negative_numbers = true)]
    pub(crate) lease_timeout: f64,
    /// First set aside the results of failed and diverged candidates (to retried/), so they are evaluated again.
    #[arg(long)]
    pub(crate) retry_failed: bool,
}

#[derive(Args)]
pub(crate) struct SelectArgs {
    /// Run directory.
    pub(crate) dir: PathBuf,
    /// Retrain the winner on all data and write model/ (weights as safetensors next to model.toml).
    #[arg(long)]
    pub(crate) retrain: bool,
    /// Select the most accurate candidate with at most this many parameters.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) max_params: Option<u64>,
    /// When the model is the ensemble selected from the candidates' out-of-fold predictions: auto (when its
    /// nested CV estimate beats the single best's), always, or off (the single best)
    #[arg(long, default_value = "auto")]
    pub(crate) ensemble: space::EnsembleUse,
    /// Stop at a result file that cannot be read, instead of naming it and going on without it.
    #[arg(long)]
    pub(crate) strict: bool,
}
