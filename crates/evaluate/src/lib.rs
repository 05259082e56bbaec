//! `evaluate`: trains and scores the candidates that have no result yet.
//!
//! The stage is [`evaluate_pending`]: it reads `space.toml` and the candidate files, runs stratified k-fold
//! cross-validation of every pending candidate with candle on CPU, and writes one result file per candidate
//! the moment its last fold finishes — so an interrupted evaluation loses at most the candidates in flight.
//! [`retrain`] trains the selected winner on all data and exports it (used by `nas select --retrain`).
//!
//! Key design decision: parallel trainings, not parallel ops. The networks are small, so candle's own
//! threading costs more than it gives; each (candidate, fold) training runs single-threaded on one worker of
//! a rayon pool, taking jobs in order from a shared counter. Every random stream is derived from
//! (seed, purpose, candidate, fold), so scores do not depend on the thread count or the schedule.
#![deny(missing_docs)]

/// The hand-written CPU convolution.
pub mod conv_op;
/// CPU or CUDA devices.
pub mod device;
/// Leases: many workers on one run directory.
pub mod lease;
pub mod model;
pub mod ops;
pub mod table;
pub mod train;

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device};
use model::Model;
use serde::{Deserialize, Serialize};
use space::{
    io, mean_std, Dataset, Entry, InputInfo, ResultFile, Rng, RunDir, SpaceDef, SpaceFile,
    ARTIFACT_VERSION,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Instant;
use train::{Standardizer, Trained};

/// Name written in each result's `evaluator` field by a CPU evaluation.
pub const EVALUATOR: &str = "candle-cpu-kfold";
/// Name written in each result's `evaluator` field by a GPU evaluation (folds batched).
pub const EVALUATOR_CUDA: &str = "candle-cuda-kfold";

static THREADS: Once = Once::new();

/// Makes candle single-threaded inside each training (call before any candle op; the CLI does it first
/// thing). candle's matmul reads `RAYON_NUM_THREADS` and its elementwise ops `CANDLE_NUM_THREADS`.
pub fn init_threads() {
    THREADS.call_once(|| {
        std::env::set_var("RAYON_NUM_THREADS", "1");
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    });
}

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
        /// Held-out accuracy (None when the fold failed or diverged).
        score: Option<f64>,
    },
    /// A training finished an epoch.
    Epoch {
        /// Candidate id.
        id: u64,
        /// Fold index.
        fold: usize,
        /// Epochs done.
        epoch: usize,
    },
    /// A candidate finished and its result file is written.
    Done(ResultFile),
}

/// Number of concurrent trainings: the setting, or one per core.
pub fn thread_count(setting: usize) -> usize {
    if setting > 0 {
        setting
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

struct Pending {
    scores: Vec<Option<f64>>,
    problem: Option<(String, String)>,
    secs: f64,
    left: usize,
}

/// Cross-validates `entries` on `data`, one training at a time on each of `devices` (see
/// [`device::resolve`]; `vec![Device::Cpu; n]` for n CPU trainings); calls `done` with each result as its
/// last fold finishes (in completion order). Results are returned in the order of `entries`.
/// On a GPU a candidate's folds train as one grouped network ([`train::train_grouped`]); on the CPU each
/// fold is its own training.
pub fn cross_validate(
    sf: &SpaceFile,
    def: &SpaceDef,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    let group = devices.first().is_some_and(|d| !d.is_cpu());
    cross_validate_with(sf, def, data, entries, devices, group, on_event, done)
}

type FoldOutcome = std::result::Result<f64, (String, String)>;

/// [`cross_validate`], with the folds grouped into one training each (`group`) or not.
#[allow(clippy::too_many_arguments)]
fn cross_validate_with(
    sf: &SpaceFile,
    def: &SpaceDef,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    group: bool,
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    init_threads();
    let spec = &sf.experiment.evaluate;
    let k = spec.folds;
    let seed = sf.experiment.seed;
    let x = train::network_layout(data, &sf.input);
    let fold_of = train::stratified_folds(&data.y, k, seed);
    for f in 0..k {
        if !fold_of.contains(&f) {
            bail!("{} rows are too few for {k} folds", data.rows());
        }
    }
    on_event(Event::Begin {
        total: entries.len(),
        folds: k,
    });
    // A job is a candidate and the folds trained together: one fold on the CPU; on a GPU, the folds with
    // the same number of steps per epoch (usually all).
    let fold_sets: Vec<Vec<usize>> = if group {
        let mut by_steps = std::collections::BTreeMap::<usize, Vec<usize>>::new();
        for f in 0..k {
            let n = fold_of.iter().filter(|&&g| g != f).count();
            by_steps
                .entry(train::steps_per_epoch(n, spec))
                .or_default()
                .push(f);
        }
        by_steps.into_values().collect()
    } else {
        (0..k).map(|f| vec![f]).collect()
    };
    let jobs: Vec<(usize, &[usize])> = (0..entries.len())
        .flat_map(|e| fold_sets.iter().map(move |fs| (e, &fs[..])))
        .collect();
    let state: Vec<Mutex<Pending>> = entries
        .iter()
        .map(|_| {
            Mutex::new(Pending {
                scores: vec![None; k],
                problem: None,
                secs: 0.0,
                left: k,
            })
        })
        .collect();
    let results: Vec<Mutex<Option<ResultFile>>> =
        entries.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    if devices.is_empty() {
        bail!("no device to train on");
    }
    // One fold's standardised training and validation rows.
    let split = |f: usize| {
        let train_rows: Vec<usize> = (0..data.rows()).filter(|&r| fold_of[r] != f).collect();
        let val_rows: Vec<usize> = (0..data.rows()).filter(|&r| fold_of[r] == f).collect();
        let st = Standardizer::fit(&x, data.features, &train_rows);
        let labels = |rows: &[usize]| rows.iter().map(|&r| data.y[r]).collect::<Vec<u32>>();
        (
            (st.apply(&x, &train_rows), labels(&train_rows)),
            (st.apply(&x, &val_rows), labels(&val_rows)),
        )
    };
    // Trains `folds` of candidate `entry` together on `dev`: each fold's held-out accuracy, or the problem.
    let run_job = |entry: &Entry, folds: &[usize], dev: &Device| -> Result<Vec<FoldOutcome>> {
        let id = entry.candidate.id;
        let splits: Vec<_> = folds.iter().map(|&f| split(f)).collect();
        if !group {
            let f = folds[0];
            let ((xt, yt), (xv, yv)) = &splits[0];
            let on_epoch = |epoch| on_event(Event::Epoch { id, fold: f, epoch });
            let stream = [id, f as u64];
            return Ok(vec![match train::train(
                def,
                &entry.arch,
                &sf.input,
                spec,
                seed,
                &stream,
                xt,
                yt,
                dev,
                &on_epoch,
            )? {
                Trained::Ok(mut m) => Ok(train::accuracy(
                    &train::predict(&mut m, xv, data.features)?,
                    yv,
                )),
                Trained::Diverged(msg) => Err(("diverged".into(), format!("fold {f}: {msg}"))),
            }]);
        }
        let rows: Vec<train::FoldRows> = folds
            .iter()
            .zip(&splits)
            .map(|(&f, ((xt, yt), _))| train::FoldRows {
                x: xt,
                y: yt,
                stream: vec![id, f as u64],
            })
            .collect();
        let on_epoch = |epoch| {
            for &fold in folds {
                on_event(Event::Epoch { id, fold, epoch });
            }
        };
        match train::train_grouped(
            def,
            &entry.arch,
            &sf.input,
            spec,
            seed,
            &rows,
            dev,
            &on_epoch,
        )? {
            Ok(mut m) => {
                let xvs: Vec<&[f32]> = splits.iter().map(|(_, (xv, _))| &xv[..]).collect();
                let preds = train::predict_grouped(&mut m, &xvs, data.features)?;
                Ok(preds
                    .iter()
                    .zip(&splits)
                    .map(|(p, (_, (_, yv)))| Ok(train::accuracy(p, yv)))
                    .collect())
            }
            Err((i, msg)) => {
                let prob = ("diverged".to_string(), format!("fold {}: {msg}", folds[i]));
                Ok(vec![Err(prob); folds.len()])
            }
        }
    };
    let evaluator = if devices[0].is_cpu() {
        EVALUATOR
    } else {
        EVALUATOR_CUDA
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(devices.len())
        .build()?;
    pool.broadcast(|ctx| loop {
        let dev = &devices[ctx.index() % devices.len()];
        let j = next.fetch_add(1, Ordering::SeqCst);
        if j >= jobs.len() || first_error.lock().unwrap().is_some() {
            return;
        }
        let (e, folds) = jobs[j];
        let entry = &entries[e];
        let id = entry.candidate.id;
        let t0 = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(entry, folds, dev)));
        let f0 = folds[0];
        let outcomes: Vec<FoldOutcome> = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(err)) => vec![
                Err((
                    "failed".into(),
                    format!("fold {f0}: {}", err.to_string().replace('\n', " ")),
                ));
                folds.len()
            ],
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                vec![Err(("failed".into(), format!("fold {f0}: panic: {msg}"))); folds.len()]
            }
        };
        for (&f, o) in folds.iter().zip(&outcomes) {
            on_event(Event::Fold {
                id,
                fold: f,
                score: o.as_ref().ok().copied(),
            });
        }
        let finished = {
            let mut p = state[e].lock().unwrap();
            p.secs += t0.elapsed().as_secs_f64();
            for (&f, o) in folds.iter().zip(outcomes) {
                match o {
                    Ok(s) => p.scores[f] = Some(s),
                    Err(prob) => {
                        if p.problem.is_none() {
                            p.problem = Some(prob);
                        }
                    }
                }
                p.left -= 1;
            }
            (p.left == 0).then(|| make_result(entry, &p, evaluator))
        };
        if let Some(r) = finished {
            if let Err(err) = done(&r) {
                first_error.lock().unwrap().get_or_insert(err);
                return;
            }
            on_event(Event::Done(r.clone()));
            *results[e].lock().unwrap() = Some(r);
        }
    });
    if let Some(err) = first_error.into_inner().unwrap() {
        return Err(err);
    }
    Ok(results
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every job ran"))
        .collect())
}

fn make_result(entry: &Entry, p: &Pending, evaluator: &str) -> ResultFile {
    let (status, error, scores) = match &p.problem {
        None => (
            "ok".to_string(),
            String::new(),
            p.scores.iter().map(|s| s.unwrap()).collect::<Vec<f64>>(),
        ),
        Some((st, msg)) => (st.clone(), msg.clone(), Vec::new()),
    };
    let (cv_mean, cv_std) = mean_std(&scores);
    ResultFile {
        version: ARTIFACT_VERSION,
        kind: "nas.result".into(),
        id: entry.candidate.id,
        arch: entry.candidate.arch.clone(),
        status,
        fold_scores: scores,
        cv_mean,
        cv_std,
        params: entry.candidate.params,
        flops: entry.candidate.flops,
        wall_s: (p.secs * 1000.0).round() / 1000.0,
        evaluator: evaluator.into(),
        error,
        metrics: Default::default(),
    }
}

/// What one evaluate pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Results this process wrote.
    pub results: Vec<ResultFile>,
    /// Candidates this process evaluated whose result another worker had written first (kept theirs).
    pub discarded: Vec<u64>,
    /// Pending candidates left alone because another live worker holds their lease.
    pub leased_elsewhere: usize,
}

/// Options of an evaluate pass.
#[derive(Clone, Debug)]
pub struct Options {
    /// Concurrent trainings (0: the experiment's setting, else one per core).
    pub threads: usize,
    /// Claim at most this many candidates (a worker takes one at a time).
    pub max_claims: usize,
    /// Seconds after which a lease that was not renewed is expired.
    pub lease_timeout_s: f64,
    /// Device setting overriding the experiment's `[evaluate] device`.
    pub device: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 0,
            max_claims: usize::MAX,
            lease_timeout_s: 120.0,
            device: None,
        }
    }
}

/// Writes a result unless one exists; false when another worker's result was there first.
fn write_result_once(run: &RunDir, r: &ResultFile) -> Result<bool> {
    io::atomic_create_new(&run.result(r.id), toml::to_string(r)?.as_bytes())
}

/// The evaluate stage: claims pending candidates of `run` (those without a result whose lease is free or
/// expired, see [`lease`]), cross-validates them, and writes each result as it completes. Safe to run in any
/// number of processes at once.
pub fn evaluate_pending(
    run: &RunDir,
    opts: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Outcome> {
    let (sf, def) = run.load_space()?;
    let pending: Vec<Entry> = run
        .history(&def)?
        .into_iter()
        .filter(|e| e.result.is_none())
        .collect();
    let mut out = Outcome::default();
    if pending.is_empty() {
        return Ok(out);
    }
    let timeout = opts.lease_timeout_s;
    let mut claimed = Vec::new();
    let mut leases = Vec::new();
    for e in pending {
        if claimed.len() >= opts.max_claims {
            break;
        }
        match lease::try_claim(run, e.candidate.id, timeout)? {
            // A result may have landed between listing and claiming.
            Some(l) if run.result(e.candidate.id).exists() => l.release(),
            Some(l) => {
                leases.push(l);
                claimed.push(e);
            }
            None => out.leased_elsewhere += 1,
        }
    }
    if claimed.is_empty() {
        return Ok(out);
    }
    let held = Mutex::new(leases);
    let release = |id: u64| {
        let mut h = held.lock().unwrap();
        if let Some(i) = h.iter().position(|l| l.id == id) {
            h.swap_remove(i).release();
        }
    };
    let discarded = Mutex::new(Vec::new());
    let record = |r: &ResultFile| -> Result<()> {
        if !write_result_once(run, r)? {
            discarded.lock().unwrap().push(r.id);
        }
        release(r.id);
        Ok(())
    };
    let results = if sf.experiment.evaluate.evaluator == "table" {
        let t = table::Table::from_spec(&sf.experiment.evaluate)?;
        on_event(Event::Begin {
            total: claimed.len(),
            folds: 1,
        });
        let mut rs = Vec::new();
        for e in &claimed {
            let r = t.result(&e.candidate);
            record(&r)?;
            on_event(Event::Done(r.clone()));
            rs.push(r);
        }
        Ok(rs)
    } else {
        let data = sf.load_data(&run.space())?;
        let requested = if opts.threads > 0 {
            opts.threads
        } else {
            sf.experiment.evaluate.threads
        };
        let threads = thread_count(requested);
        let setting = opts
            .device
            .as_deref()
            .unwrap_or(&sf.experiment.evaluate.device);
        let per_training =
            device::bytes_per_training(data.rows(), data.features, sf.experiment.evaluate.folds);
        let devices = device::resolve(setting, threads, per_training, requested)?;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| lease::renew_until(&held, &stop, timeout));
            let r = cross_validate(&sf, &def, &data, &claimed, &devices, on_event, &record);
            stop.store(true, Ordering::SeqCst);
            r
        })
    };
    // Whatever was not finished (an error) is given up for others to take.
    for l in held.into_inner().unwrap() {
        l.release();
    }
    let discarded = discarded.into_inner().unwrap();
    out.results = results?
        .into_iter()
        .filter(|r| !discarded.contains(&r.id))
        .collect();
    out.discarded = discarded;
    Ok(out)
}

/// `nas evaluate --retry-failed`: moves the results of failed or diverged candidates to `retried/` (as
/// `cNNNNN.K.toml`, K counting earlier tries), so that they are pending again. Returns their ids.
pub fn retry_failed(run: &RunDir) -> Result<Vec<u64>> {
    let (_, def) = run.load_space()?;
    let mut ids = Vec::new();
    for e in run.history(&def)? {
        let Some(r) = &e.result else { continue };
        if r.ok() {
            continue;
        }
        let dir = run.retried();
        std::fs::create_dir_all(&dir)
            .map_err(|err| anyhow!("{}: cannot create directory: {err}", dir.display()))?;
        let k = (1..)
            .find(|k| !dir.join(format!("c{:05}.{k}.toml", r.id)).exists())
            .expect("a free name");
        let to = dir.join(format!("c{:05}.{k}.toml", r.id));
        std::fs::rename(run.result(r.id), &to).map_err(|err| {
            anyhow!(
                "{}: cannot move to {}: {err}",
                run.result(r.id).display(),
                to.display()
            )
        })?;
        ids.push(r.id);
    }
    Ok(ids)
}

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
    /// Per-feature mean subtracted before the network (network layout order).
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
    pub space: space::experiment::SpaceSpec,
}

/// Trains candidate `id` on all the data (stream `(seed, "retrain")`) and writes `model/model.toml` and
/// `model/weights.safetensors`.
pub fn retrain(run: &RunDir, id: u64) -> Result<ModelFile> {
    init_threads();
    let (sf, def) = run.load_space()?;
    if sf.experiment.evaluate.evaluator != "train" {
        bail!(
            "{}: this run looks candidates up in a table (evaluator = \"{}\"); there is no model to retrain",
            run.space().display(),
            sf.experiment.evaluate.evaluator
        );
    }
    let entry = run
        .history(&def)?
        .into_iter()
        .find(|e| e.candidate.id == id)
        .ok_or_else(|| anyhow!("{}: no candidate {id}", run.candidates().display()))?;
    let data = sf.load_data(&run.space())?;
    let x = train::network_layout(&data, &sf.input);
    let all: Vec<usize> = (0..data.rows()).collect();
    let st = Standardizer::fit(&x, data.features, &all);
    let xs = st.apply(&x, &all);
    let mut model = match train::train(
        &def,
        &entry.arch,
        &sf.input,
        &sf.experiment.evaluate,
        sf.experiment.seed,
        &[u64::MAX, id],
        &xs,
        &data.y,
        &Device::Cpu,
        &|_| {},
    )? {
        Trained::Ok(m) => m,
        Trained::Diverged(msg) => bail!("retraining candidate {id} diverged: {msg}"),
    };
    let acc = train::accuracy(&train::predict(&mut model, &xs, data.features)?, &data.y);
    let dir = run.model();
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("{}: cannot create: {e}", dir.display()))?;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        model.tensors().into_iter().collect();
    let tmp = dir.join(format!(".weights.safetensors.tmp.{}", std::process::id()));
    candle_core::safetensors::save(&tensors, &tmp)
        .map_err(|e| anyhow!("{}: cannot write: {e}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join("weights.safetensors"))?;
    let mf = ModelFile {
        version: ARTIFACT_VERSION,
        kind: "nas.model".into(),
        id,
        arch: entry.candidate.arch.clone(),
        input: sf.input.clone(),
        class_names: sf.class_names.clone(),
        feature_mean: st.mean,
        feature_std: st.std,
        train_accuracy: acc,
        weights: "weights.safetensors".into(),
        label: sf.experiment.data.label.clone(),
        space: sf.experiment.space.clone(),
    };
    io::write_toml(&dir.join("model.toml"), &mf)?;
    Ok(mf)
}

/// An exported model, loaded: its description and the network with its weights.
pub struct Loaded {
    /// `model.toml`.
    pub file: ModelFile,
    /// The network.
    pub model: Model,
}

/// Loads `DIR/model.toml` and its weights.
pub fn load_model(dir: &Path) -> Result<Loaded> {
    let path = dir.join("model.toml");
    let file: ModelFile = io::read_artifact(&path, "nas.model", ARTIFACT_VERSION)?;
    let def =
        SpaceDef::from_spec(&file.space).map_err(|e| anyhow!("{}: space: {e}", path.display()))?;
    let arch = def
        .parse(&file.arch)
        .map_err(|e| anyhow!("{}: arch: {e}", path.display()))?;
    let mut rng = Rng::derive(0, "load", &[]);
    let mut model = Model::new(&def, &arch, &file.input, &mut rng, DType::F32, &Device::Cpu)?;
    let wpath = dir.join(&file.weights);
    let tensors = candle_core::safetensors::load(&wpath, &Device::Cpu)
        .map_err(|e| anyhow!("{}: cannot read weights: {e}", wpath.display()))?;
    model
        .load_tensors(&tensors)
        .map_err(|e| anyhow!("{}: {e}", wpath.display()))?;
    Ok(Loaded { file, model })
}

/// Predictions for the rows of a data source.
pub struct Predictions {
    /// Predicted class name per row.
    pub classes: Vec<String>,
    /// Accuracy, when the data has the label column.
    pub accuracy: Option<f64>,
}

/// Predicts every row of `source` (`builtin:digits` or a CSV with the training columns, in the same order;
/// the label column is optional) with the model exported in `dir`.
pub fn predict_source(dir: &Path, source: &str) -> Result<Predictions> {
    init_threads();
    let mut m = load_model(dir)?;
    let bytes = space::data::source_bytes(source)?;
    let rows = space::data::parse_csv(source, &bytes, &m.file.label, false)?;
    let f = m.file.input.features;
    if rows.features != f {
        bail!(
            "{source}: {} feature columns, the model was trained on {f}",
            rows.features
        );
    }
    let x = train::rows_to_network_layout(&rows.x, f, &m.file.input);
    let st = Standardizer {
        mean: m.file.feature_mean.clone(),
        std: m.file.feature_std.clone(),
    };
    let all: Vec<usize> = (0..x.len() / f).collect();
    let pred = train::predict(&mut m.model, &st.apply(&x, &all), f)?;
    let classes: Vec<String> = pred
        .iter()
        .map(|&p| m.file.class_names[p as usize].clone())
        .collect();
    let accuracy = rows.labels.map(|labels| {
        let hit = labels.iter().zip(&classes).filter(|(a, b)| a == b).count();
        hit as f64 / labels.len() as f64
    });
    Ok(Predictions { classes, accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::Experiment;

    fn small(exp_edit: impl Fn(&mut Experiment)) -> (SpaceFile, SpaceDef, Dataset) {
        let mut e = Experiment::default();
        e.evaluate.epochs = 2;
        e.evaluate.folds = 3;
        exp_edit(&mut e);
        SpaceFile::resolve(e).unwrap()
    }

    fn entries(sf: &SpaceFile, def: &SpaceDef, archs: &[&str]) -> Vec<Entry> {
        archs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let arch = def.parse(a).unwrap();
                let (params, flops) = def.cost(&arch, &sf.input);
                Entry {
                    candidate: space::CandidateFile {
                        version: 1,
                        kind: "nas.candidate".into(),
                        id: i as u64 + 1,
                        batch: 0,
                        batch_size: archs.len() as u64,
                        arch: a.to_string(),
                        key: def.key(&arch, &sf.input),
                        origin: "test".into(),
                        params,
                        flops,
                    },
                    arch,
                    result: None,
                }
            })
            .collect()
    }

    #[test]
    fn scores_do_not_depend_on_thread_count() {
        let (sf, def, data) = small(|_| {});
        let es = entries(
            &sf,
            &def,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1",
                "conv8x3-silu-res/conv16x5-relu-bn-maxpool-res",
            ],
        );
        let run = |t: usize| {
            cross_validate(
                &sf,
                &def,
                &data,
                &es,
                &vec![Device::Cpu; t],
                &|_| {},
                &|_| Ok(()),
            )
            .unwrap()
        };
        let one = run(1);
        let two = run(2);
        let three = run(3);
        for ((a, b), c) in one.iter().zip(&two).zip(&three) {
            assert_eq!(a.status, "ok", "{}", a.error);
            assert_eq!(a.fold_scores, b.fold_scores);
            assert_eq!(a.fold_scores, c.fold_scores);
            assert!(a.cv_mean > 0.6, "{} learns digits: {}", a.arch, a.cv_mean);
        }
    }

    /// What a GPU does (a candidate's folds trained as one grouped network), on the CPU: the same scores as
    /// the folds trained one by one, up to a prediction flipped by float rounding.
    #[test]
    fn grouped_folds_score_like_separate_folds() {
        let (sf, def, data) = small(|_| {});
        let es = entries(
            &sf,
            &def,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1",
                "conv16x5-silu/conv8x3-relu-bn-res",
            ],
        );
        let run = |group: bool| {
            let cpus = [Device::Cpu, Device::Cpu];
            cross_validate_with(&sf, &def, &data, &es, &cpus, group, &|_| {}, &|_| Ok(())).unwrap()
        };
        let (alone, grouped) = (run(false), run(true));
        let val = data.rows() as f64 / 3.0;
        for (a, g) in alone.iter().zip(&grouped) {
            assert_eq!(g.status, "ok", "{}", g.error);
            assert_eq!(a.fold_scores.len(), g.fold_scores.len());
            for (x, y) in a.fold_scores.iter().zip(&g.fold_scores) {
                assert!(
                    (x - y).abs() * val < 1.5,
                    "{}: {x} alone vs {y} grouped",
                    a.arch
                );
            }
        }
    }

    #[test]
    fn dense_and_cell_networks_train() {
        let (sf, def, data) = small(|e| {
            e.space.family = "chain".into();
            e.space.block = Some("dense".into());
        });
        let r = cross_validate(
            &sf,
            &def,
            &data,
            &entries(&sf, &def, &["fc64-relu-bn/fc32-silu-drop0.1-res"]),
            &[Device::Cpu, Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert!(r[0].cv_mean > 0.85, "{:?}", r[0]);
        let (sf, def, data) = small(|e| {
            e.space = space::experiment::SpaceSpec {
                family: "cell".into(),
                ..Default::default()
            }
        });
        let es = entries(&sf, &def, &[
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|",
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ]);
        let r = cross_validate(
            &sf,
            &def,
            &data,
            &es,
            &[Device::Cpu, Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert!(r[0].cv_mean > 0.85, "{:?}", r[0]);
        assert!(
            r[1].cv_mean < 0.3,
            "an all-none cell sees nothing: {:?}",
            r[1]
        );
    }

    /// The GPU agrees with the CPU: per-fold accuracies within 2 points, same ranking of two clearly
    /// different candidates. Skipped (with the reason printed) without a CUDA build and a GPU.
    #[test]
    fn gpu_and_cpu_agree() {
        let gpus = device::gpus().unwrap();
        if gpus.is_empty() {
            eprintln!(
                "SKIPPED gpu_and_cpu_agree: {}",
                if device::cuda_built() {
                    "no CUDA GPU found"
                } else {
                    "built without the cuda feature"
                }
            );
            return;
        }
        let (sf, def, data) = small(|_| {});
        let es = entries(
            &sf,
            &def,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1/conv16x3-relu-res",
                "conv8x3-silu",
            ],
        );
        let cpu =
            cross_validate(&sf, &def, &data, &es, &[Device::Cpu], &|_| {}, &|_| Ok(())).unwrap();
        let gpu_dev = Device::new_cuda(gpus[0].ordinal).unwrap();
        let gpu = cross_validate(&sf, &def, &data, &es, &[gpu_dev], &|_| {}, &|_| Ok(())).unwrap();
        for (c, g) in cpu.iter().zip(&gpu) {
            assert!(g.ok(), "{g:?}");
            for (a, b) in c.fold_scores.iter().zip(&g.fold_scores) {
                assert!((a - b).abs() < 0.02, "c{}: cpu {a} vs gpu {b}", c.id);
            }
        }
        assert_eq!(
            cpu[0].cv_mean > cpu[1].cv_mean,
            gpu[0].cv_mean > gpu[1].cv_mean
        );
    }

    #[test]
    fn divergence_is_recorded_not_fatal() {
        let (sf, def, data) = small(|e| e.evaluate.lr = 1e30);
        let r = cross_validate(
            &sf,
            &def,
            &data,
            &entries(&sf, &def, &["conv8x3-relu"]),
            &[Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert_eq!(r[0].status, "diverged", "{:?}", r[0]);
        assert!(r[0].error.contains("loss became"));
        let es = entries(&sf, &def, &["conv8x3-relu"]);
        let r = cross_validate_with(
            &sf,
            &def,
            &data,
            &es,
            &[Device::Cpu],
            true,
            &|_| {},
            &|_| Ok(()),
        );
        let r = r.unwrap();
        assert_eq!(r[0].status, "diverged", "grouped: {:?}", r[0]);
    }

    /// A training that fails (on a GPU: out of memory) is recorded as a failed candidate, grouped or not,
    /// and the other candidates are evaluated.
    #[test]
    fn a_failing_training_is_recorded_and_the_rest_go_on() {
        let (sf, def, data) = small(|_| {});
        let mut es = entries(&sf, &def, &["conv8x3-relu", "conv8x3-silu"]);
        // An architecture of another family: building its network fails.
        let (_, cell, _) = small(|e| {
            e.space = space::experiment::SpaceSpec {
                family: "cell".into(),
                ..Default::default()
            }
        });
        es[1].arch = cell
            .parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
            .unwrap();
        for group in [false, true] {
            let cpus = [Device::Cpu, Device::Cpu];
            let r = cross_validate_with(&sf, &def, &data, &es, &cpus, group, &|_| {}, &|_| Ok(()))
                .unwrap();
            assert_eq!(r[0].status, "ok", "group {group}: {:?}", r[0]);
            assert_eq!(r[1].status, "failed", "group {group}: {:?}", r[1]);
            assert!(r[1].error.contains("family"), "{}", r[1].error);
        }
    }
}
