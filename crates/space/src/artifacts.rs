//! The run directory and its artifacts: the file formats every stage reads and writes.
//! Documented for other programs in `docs/artifacts.md`; keep the two in step.

use crate::arch::{Arch, InputInfo, SpaceDef};
use crate::data::Dataset;
use crate::experiment::Experiment;
use crate::io::{read_artifact, write_toml};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of every run artifact format written by this build. Version 2 added the rungs of multi-fidelity
/// search (`epochs` of candidates and results, the `promotion of N` origin).
pub const ARTIFACT_VERSION: u32 = 2;

/// The run artifact versions this build reads: every change so far only added keys with defaults, so a
/// version-1 run directory is resumed as it is.
pub const ARTIFACTS_READ: std::ops::RangeInclusive<u32> = 1..=ARTIFACT_VERSION;

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The run directory.
    pub root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }
    /// `space.toml`
    pub fn space(&self) -> PathBuf {
        self.root.join("space.toml")
    }
    /// `candidates/`
    pub fn candidates(&self) -> PathBuf {
        self.root.join("candidates")
    }
    /// `results/`
    pub fn results(&self) -> PathBuf {
        self.root.join("results")
    }
    /// `candidates/c00001.toml`
    pub fn candidate(&self, id: u64) -> PathBuf {
        self.candidates().join(format!("c{id:05}.toml"))
    }
    /// `results/c00001.toml`
    pub fn result(&self, id: u64) -> PathBuf {
        self.results().join(format!("c{id:05}.toml"))
    }
    /// `leases/`
    pub fn leases(&self) -> PathBuf {
        self.root.join("leases")
    }
    /// `leases/c00001.toml`: a worker's claim on a candidate while it evaluates it.
    pub fn lease(&self, id: u64) -> PathBuf {
        self.leases().join(format!("c{id:05}.toml"))
    }
    /// `retried/`: results of failed candidates set aside by `nas evaluate --retry-failed`.
    pub fn retried(&self) -> PathBuf {
        self.root.join("retried")
    }
    /// `selection.toml`
    pub fn selection(&self) -> PathBuf {
        self.root.join("selection.toml")
    }
    /// `model/`
    pub fn model(&self) -> PathBuf {
        self.root.join("model")
    }

    /// Creates the directory tree.
    pub fn create(&self) -> Result<()> {
        for d in [
            self.root.clone(),
            self.candidates(),
            self.results(),
            self.leases(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow!("{}: cannot create directory: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Deletes temporaries left by writes a crash interrupted (see [`crate::io::sweep_temporaries`]); returns
    /// how many.
    pub fn sweep_temporaries(&self) -> usize {
        [
            self.root.clone(),
            self.candidates(),
            self.results(),
            self.leases(),
            self.model(),
        ]
        .iter()
        .map(|d| crate::io::sweep_temporaries(d, 60.0))
        .sum()
    }

    /// Loads `space.toml` and resolves its space.
    pub fn load_space(&self) -> Result<(SpaceFile, SpaceDef)> {
        let p = self.space();
        if !p.exists() {
            bail!(
                "{}: not found: is {} a run directory? (create one with `nas space`)",
                p.display(),
                self.root.display()
            );
        }
        let f: SpaceFile = read_artifact(&p, "nas.space", ARTIFACTS_READ)?;
        let def = SpaceDef::from_spec(&f.experiment.space)
            .map_err(|e| anyhow!("{}: experiment: {e}", p.display()))?;
        Ok((f, def))
    }

    /// Every candidate with its result (if any), in id order; every file checked against the space.
    pub fn history(&self, space: &SpaceDef, input: &InputInfo) -> Result<Vec<Entry>> {
        let mut out = self.candidate_entries(space, input)?;
        for (id, path) in list_ids(&self.results())? {
            // A result that cannot be read (truncated, hand-edited) is an error that says how to recover.
            let r = self.read_result(&path, id, &out).map_err(|e| {
                anyhow!(
                    "{e} (to set it aside and evaluate the candidate again: nas evaluate {} --retry-failed)",
                    self.root.display()
                )
            })?;
            let e = out
                .iter_mut()
                .find(|e| e.candidate.id == id)
                .expect("read_result checked the candidate exists");
            e.result = Some(r);
        }
        Ok(out)
    }

    /// Every candidate, checked, without results (a damaged candidate file is an error: nothing can be
    /// scored without knowing what it is).
    fn candidate_entries(&self, space: &SpaceDef, input: &InputInfo) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (id, path) in list_ids(&self.candidates())? {
            let c: CandidateFile = read_artifact(&path, "nas.candidate", ARTIFACTS_READ)?;
            check_id(&path, c.id, id)?;
            let arch = space
                .parse(&c.arch)
                .map_err(|e| anyhow!("{}: arch: {e}", path.display()))?;
            // What the file claims about its architecture must be what the architecture is (a hand edit
            // that changed one and not the others would make rankings and the Pareto front lie).
            let (params, flops) = space.cost(&arch, input);
            let key = space.key(&arch, input);
            for (field, stored, actual) in [
                ("params", c.params.to_string(), params.to_string()),
                ("flops", c.flops.to_string(), flops.to_string()),
                ("key", c.key.clone(), key),
            ] {
                if stored != actual {
                    bail!(
                        "{}: {field} is {stored}, but arch `{}` has {actual} (was the file edited? restore it, or delete it and its result to generate again)",
                        path.display(),
                        c.arch
                    );
                }
            }
            out.push(Entry {
                candidate: c,
                arch,
                result: None,
            });
        }
        Ok(out)
    }

    /// [`RunDir::history`] that goes on past result files it cannot read: those candidates have no result,
    /// and each such file is listed with why (for `status`, `select` and `report`, which name them).
    pub fn history_readable(
        &self,
        space: &SpaceDef,
        input: &InputInfo,
    ) -> Result<(Vec<Entry>, Vec<Damaged>)> {
        let mut out = self.candidate_entries(space, input)?;
        let mut damaged = Vec::new();
        for (id, path) in list_ids(&self.results())? {
            match self.read_result(&path, id, &out) {
                Ok(r) => {
                    if let Some(e) = out.iter_mut().find(|e| e.candidate.id == id) {
                        e.result = Some(r);
                    }
                }
                Err(e) => damaged.push((path.clone(), e.to_string())),
            }
        }
        Ok((out, damaged))
    }

    /// One result file, checked against its name and its candidate.
    fn read_result(&self, path: &Path, id: u64, entries: &[Entry]) -> Result<ResultFile> {
        let r: ResultFile = read_artifact(path, "nas.result", ARTIFACTS_READ)?;
        check_id(path, r.id, id)?;
        let e = entries
            .iter()
            .find(|e| e.candidate.id == id)
            .ok_or_else(|| {
                anyhow!(
                    "{}: result for candidate {id}, which has no candidate file",
                    path.display()
                )
            })?;
        if r.arch != e.candidate.arch {
            bail!(
                "{}: arch differs from {}",
                path.display(),
                self.candidate(id).display()
            );
        }
        r.check().map_err(|m| anyhow!("{}: {m}", path.display()))?;
        Ok(r)
    }
}

/// A file's `id` must be the one its name gives.
fn check_id(path: &Path, stored: u64, named: u64) -> Result<()> {
    if stored != named {
        bail!(
            "{}: id {stored} does not match the file name",
            path.display()
        );
    }
    Ok(())
}

/// A result file that cannot be read, and why (the message names the file).
pub type Damaged = (PathBuf, String);

/// Files named `c<digits>.toml` in `dir`, by id. Temporary files (dot-prefixed) and others are ignored.
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

impl RunDir {
    /// Every lease file, with its age in seconds (from its modification time); unreadable ones are skipped
    /// (a lease being replaced), a damaged one is an error naming it.
    pub fn read_leases(&self) -> Result<Vec<(LeaseFile, f64)>> {
        let mut out = Vec::new();
        for (_, path) in list_ids(&self.leases())? {
            let age = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(t) => t.elapsed().map_or(0.0, |d| d.as_secs_f64()),
                Err(_) => continue,
            };
            match read_artifact::<LeaseFile>(&path, "nas.lease", ARTIFACTS_READ) {
                Ok(l) => out.push((l, age)),
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn list_ids(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => bail!("{}: cannot list: {e}", dir.display()),
    };
    for ent in rd {
        let ent = ent.map_err(|e| anyhow!("{}: cannot list: {e}", dir.display()))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix('c')
            .and_then(|s| s.strip_suffix(".toml"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((id, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A candidate with its parsed architecture and its result, if evaluated.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The candidate file.
    pub candidate: CandidateFile,
    /// Its parsed architecture.
    pub arch: Arch,
    /// The result file, once evaluated.
    pub result: Option<ResultFile>,
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
    /// The resolved experiment (defaults filled in, data path absolute).
    pub experiment: Experiment,
}

impl SpaceFile {
    /// Resolves an experiment against its data: the content of `space.toml`.
    pub fn resolve(mut exp: Experiment) -> Result<(SpaceFile, SpaceDef, Dataset)> {
        exp.validate()?;
        let data = Dataset::load(&exp.data)?;
        match (&exp.data.shape, data.shape) {
            (None, Some(s)) => exp.data.shape = Some(s.to_vec()),
            (None, None) => exp.data.shape = Dataset::default_shape(&exp.data.source),
            (Some(given), Some(found)) if given[..] != found[..] => bail!(
                "{}: [data] shape: {given:?} given, but the images are {found:?} (channels, height, width)",
                exp.data.source
            ),
            (Some(_), _) => {}
        }
        // `validate` checked a given shape has three sizes.
        let shape: Option<[usize; 3]> = exp.data.shape.as_deref().and_then(|s| s.try_into().ok());
        // Tabular data (no image shape) gets the dense chain space unless the experiment names a block.
        if shape.is_none() && exp.space.family == "chain" && exp.space.block.is_none() {
            exp.space.block = Some("dense".into());
        }
        // Images of 16×16 and more get a space whose conv blocks all downsample (2×2 max or average pooling),
        // unless the experiment names its pooling: a block at full resolution costs H·W·k²·Cin·Cout per image,
        // so halving the map after each block keeps a deep network within a small multiple of its first layer,
        // the layout of standard CNNs. (Without it, fashion10k's first default candidates took over 8 minutes
        // per fold on 2 cores.) Small images (the built-in 8×8 digits) keep the choice of not pooling.
        if let Some([_, h, w]) = shape {
            let chain_conv = exp.space.family == "chain"
                && exp.space.block.as_deref().is_none_or(|b| b == "conv");
            if chain_conv && h.min(w) >= 16 && exp.space.pool.is_none() {
                exp.space.pool = Some(vec!["max".into(), "avg".into()]);
            }
        }
        exp.fill_defaults(
            match shape {
                Some(_) => crate::experiment::IMAGE_DEFAULTS,
                None => crate::experiment::TABLE_DEFAULTS,
            },
            data.rows(),
        );
        let s = &exp.search;
        crate::fidelity::check(s.fidelity, s.eta, s.min_epochs, exp.evaluate.epochs)?;
        let def = SpaceDef::from_spec(&exp.space)?;
        let features = match shape {
            Some(_) => {
                if let Some(c) = data
                    .columns
                    .iter()
                    .find(|c| c.kind != crate::data::ColumnKind::Numeric || c.missing > 0)
                {
                    bail!(
                        "{}: [data] shape: image data must be numbers without empty cells, but column `{}` {}",
                        exp.data.source,
                        c.name,
                        if c.missing > 0 { "has empty cells" } else { "holds text" }
                    );
                }
                data.features
            }
            None => {
                let all: Vec<usize> = (0..data.rows()).collect();
                crate::prep::Prep::fit(&data.x, &data.columns, &all, None).width()
            }
        };
        let input = InputInfo {
            features,
            shape,
            classes: data.classes.len(),
        };
        def.check_input(&input)
            .map_err(|e| anyhow!("{}: {e}", exp.data.source))?;
        let f = SpaceFile {
            version: ARTIFACT_VERSION,
            kind: "nas.space".into(),
            size: def.size().to_string(),
            rows: data.rows(),
            data_fingerprint: data.fingerprint.clone(),
            class_names: data.classes.clone(),
            input,
            experiment: exp,
        };
        Ok((f, def, data))
    }

    /// Loads the data and checks it is the data this space was made for.
    pub fn load_data(&self, path: &Path) -> Result<Dataset> {
        let d = Dataset::load(&self.experiment.data)?;
        if d.fingerprint != self.data_fingerprint {
            bail!(
                "{}: the data at {} changed since the space was made (fingerprint {} ≠ {})",
                path.display(),
                self.experiment.data.source,
                d.fingerprint,
                self.data_fingerprint
            );
        }
        Ok(d)
    }

    /// Writes `space.toml` atomically.
    pub fn write(&self, run: &RunDir) -> Result<()> {
        write_toml(&run.space(), self)
    }
}

/// How a candidate was made (`origin` of a candidate file). Strategies that replay their state from the
/// history (annealing's walk, local search's climb, the surrogate's restarts) match on it, so it is typed;
/// text another program wrote is kept as [`Origin::Other`] and never taken for replay state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Origin {
    /// Sampled uniformly from the space: `random`.
    Random,
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
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per sample.
    pub flops: u64,
    /// Seconds spent evaluating.
    pub wall_s: f64,
    /// Which evaluator produced it.
    pub evaluator: String,
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
}

impl ResultFile {
    /// Whether the candidate was scored.
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.ok() && (self.fold_scores.is_empty() || !(0.0..=1.0).contains(&self.cv_mean)) {
            return Err("status ok needs fold_scores and a cv_mean in [0, 1]".into());
        }
        Ok(())
    }
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
    pub ended: Option<String>,
}

/// Version of `model.toml` (2: the column encodings).
pub const MODEL_VERSION: u32 = 2;

string_enum!(
    /// The form `nas export --format` writes the winner in.
    ExportFormat, "format", {
        /// `model.toml` and our safetensors: what `nas predict` reads.
        Native = "native",
        /// A standard ONNX model (`model.onnx`).
        Onnx = "onnx",
        /// `model.py` (a PyTorch module) and `weights.safetensors` in PyTorch's names and layouts.
        Pytorch = "pytorch",
    }
);

/// `model/model.toml`: what is needed to use the exported weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.model`.
    pub kind: String,
    /// Candidate id of the winner.
    pub id: u64,
    /// Architecture.
    pub arch: String,
    /// Input description.
    pub input: InputInfo,
    /// Class names in output order.
    pub class_names: Vec<String>,
    /// How each data column becomes network inputs, in input order (see `space::prep`); `nas predict` finds
    /// the columns by name.
    pub columns: Vec<crate::prep::ColumnEncoding>,
    /// Per-input mean subtracted before the network (after encoding; network layout order).
    pub feature_mean: Vec<f32>,
    /// Per-feature standard deviation divided by.
    pub feature_std: Vec<f32>,
    /// Accuracy on the training data after retraining.
    pub train_accuracy: f64,
    /// The safetensors file with the weights, next to this file.
    pub weights: String,
    /// The CSV label column the model was trained with (`nas predict` reports accuracy when it is present).
    pub label: String,
    /// The search space the architecture belongs to (rebuilds the network).
    pub space: crate::experiment::SpaceSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Images of 16×16 and more default to conv blocks that all pool; 8×8 and explicit choices are kept.
    #[test]
    fn large_images_default_to_a_space_that_downsamples_every_block() {
        let dir = std::env::temp_dir().join(format!("nas-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |side: usize, pool: Option<Vec<String>>| {
            let f = side * side;
            let mut csv: String = (0..f).map(|j| format!("p{j},")).collect::<String>() + "label\n";
            for r in 0..10 {
                csv += &(0..f)
                    .map(|j| format!("{},", (r * j) % 7))
                    .collect::<String>();
                csv += &format!("{}\n", r % 2);
            }
            let path = dir.join(format!("{side}.csv"));
            std::fs::write(&path, csv).unwrap();
            let mut e = crate::Experiment::default();
            e.data.source = path.to_string_lossy().into_owned();
            e.data.shape = Some(vec![1, side, side]);
            e.evaluate.folds = 2;
            e.space.pool = pool;
            SpaceFile::resolve(e).unwrap().0.experiment.space.pool
        };
        let all = Some(vec!["max".to_string(), "avg".to_string()]);
        assert_eq!(resolve(16, None), all);
        assert_eq!(resolve(8, None), None);
        let given = Some(vec!["none".to_string()]);
        assert_eq!(resolve(16, given.clone()), given);
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
}
