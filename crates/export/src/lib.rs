//! `export`: the winner outside the search — retrain it on all data, write `model/`, load it back, predict.
//!
//! [`retrain`] trains one candidate of a run on every row (random streams `(seed, "init"/…, [u64::MAX, id])`)
//! and writes `model/weights.safetensors` and `model/model.toml` ([`space::ModelFile`]) through
//! [`space::io`], so a crash leaves either the old model or the new one. [`load_model`] and
//! [`predict_source`] use an exported model on new rows, applying the stored input normalisation.
//!
//! Key design decision: this is its own crate, not part of the evaluate stage, because it has another job
//! (one model for use, not scores for a search) and other readers (`nas export`, `nas predict`, and later
//! ONNX and PyTorch writers); the `model.toml` format lives in `space::artifacts` beside every other
//! artifact. Like every stage it trains through [`nn`] and never writes outside `model/`.
#![deny(missing_docs)]

mod lower;
mod onnx;
mod onnx_proto;
mod pytorch;

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device};
use data::prep::{match_columns, ColumnEncoding, Prep, Standardizer};
use nn::train::{self, Trained};
use nn::{init_threads, Model};
use rayon::prelude::*;
use space::{
    io, Arch, ExportFormat, Member, ModelFile, ModelMember, Rng, RunDir, SpaceDef, MODEL_VERSION,
};
use std::path::{Path, PathBuf};

/// The network's tensors in the safetensors format, as bytes (`path` names the file in errors).
fn safetensors_bytes(tensors: &[(String, candle_core::Tensor)], path: &Path) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| anyhow!("{}: cannot encode the weights: {e}", path.display()))
}

/// Trains `members` (one candidate, or an ensemble's; stream `(seed, "init"/…, [u64::MAX, id])`, so a
/// candidate retrains alike alone or in an ensemble) on all the data, each training on its own thread up to
/// one per core, and writes their weights and then `model/model.toml`.
pub fn retrain(run: &RunDir, members: &[Member]) -> Result<ModelFile> {
    init_threads();
    let plan = run.load_plan()?;
    let (sf, def) = (&plan.file, &plan.def);
    if sf.experiment.evaluate.evaluator != space::Evaluator::Train {
        bail!(
            "{}: this run looks candidates up in a table (evaluator = \"{}\"); there is no model to retrain",
            run.space().display(),
            sf.experiment.evaluate.evaluator
        );
    }
    let history = run.history(def, &sf.input)?;
    let archs = members
        .iter()
        .map(|m| {
            history
                .iter()
                .find(|e| e.candidate.id == m.id)
                .map(|e| e.arch.clone())
                .ok_or_else(|| anyhow!("{}: no candidate {}", run.candidates().display(), m.id))
        })
        .collect::<Result<Vec<Arch>>>()?;
    let data = data::load_checked(&plan, &run.space())?;
    let all: Vec<usize> = (0..data.rows()).collect();
    let prep = Prep::fit(&data.x, &data.columns, &all, sf.input.shape, sf.standardize);
    let xs = prep.apply(&data.x, &data.columns, &all);
    let hyper = nn::Hyper::new(&sf.experiment.evaluate, plan.epochs);
    let train_one = |i: usize| -> Result<Model> {
        let id = members[i].id;
        match train::train(
            def,
            &archs[i],
            &sf.input,
            &hyper,
            sf.experiment.seed,
            &[u64::MAX, id],
            &xs,
            &data.y,
            &Device::Cpu,
            &|_| {},
            &|| false,
            None,
        )? {
            Trained::Ok(mut m, _) => {
                // Its logits divided by the temperature the selection calibrated it with.
                m.scale_logits(1.0 / members[i].temperature)?;
                Ok(m)
            }
            Trained::Diverged(msg) => bail!("retraining candidate {id} diverged: {msg}"),
            Trained::Stopped => unreachable!("retraining is never abandoned"),
        }
    };
    // One training per thread, up to one per core (each training is single-threaded, `init_threads`).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(nn::thread_count(0).min(members.len()))
        .build()?;
    let mut models = pool.install(|| {
        (0..members.len())
            .into_par_iter()
            .map(train_one)
            .collect::<Result<Vec<Model>>>()
    })?;
    let dir = run.model();
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("{}: cannot create: {e}", dir.display()))?;
    let mut nets = Vec::new();
    for ((m, model), weight) in members
        .iter()
        .zip(&mut models)
        .zip(Member::weights(members))
    {
        let name = if members.len() == 1 {
            "weights.safetensors".to_string()
        } else {
            format!("weights-c{:05}.safetensors", m.id)
        };
        let path = dir.join(&name);
        io::atomic_write(&path, &safetensors_bytes(&model.tensors(), &path)?)?;
        nets.push(ModelMember {
            id: m.id,
            arch: m.arch.clone(),
            weights: name,
            weight,
            temperature: m.temperature,
        });
    }
    let weights = nets.iter().map(|n| n.weight as f32);
    let logits = average(models.iter_mut().zip(weights), &xs, prep.width())?;
    let hit = (logits.iter().zip(&data.y))
        .filter(|(l, &y)| space::metrics::argmax(l) == y as usize)
        .count();
    let first = nets[0].clone();
    let mf = ModelFile {
        version: MODEL_VERSION,
        kind: "nas.model".into(),
        id: first.id,
        arch: first.arch,
        input: sf.input.clone(),
        class_names: sf.class_names.clone(),
        columns: prep.columns,
        feature_mean: prep.standardizer.mean,
        feature_std: prep.standardizer.std,
        train_accuracy: hit as f64 / data.rows().max(1) as f64,
        weights: first.weights,
        label: sf.experiment.data.label.clone(),
        space: sf.experiment.space.clone(),
        members: if nets.len() > 1 { nets } else { Vec::new() },
    };
    io::write_toml(&dir.join("model.toml"), &mf)?;
    remove_unused_weights(&dir, &mf);
    Ok(mf)
}

/// Deletes the weights files in `dir` that `mf` does not name: a previous model's (an ensemble's members
/// after the single best was retrained, or the other way round). Only after the new `model.toml` is in
/// place, so a crash leaves at worst an unused file, never a model without its weights.
fn remove_unused_weights(dir: &Path, mf: &ModelFile) {
    let nets = mf.networks();
    let used: Vec<&str> = nets.iter().map(|n| n.weights.as_str()).collect();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let weights = name.starts_with("weights") && name.ends_with(".safetensors");
        if weights && !used.contains(&name.as_str()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The class logits of `xs` (rows of `width` inputs): one network's own, or for an ensemble the logarithm
/// of its networks' class probabilities averaged with their weights (so the class is still the first
/// largest).
fn average<'a>(
    nets: impl IntoIterator<Item = (&'a mut Model, f32)>,
    xs: &[f32],
    width: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut nets: Vec<(&mut Model, f32)> = nets.into_iter().collect();
    if let [(one, _)] = nets.as_mut_slice() {
        return train::logits(one, xs, width);
    }
    let mut sum: Vec<Vec<f32>> = Vec::new();
    for (model, w) in nets {
        let logits = train::logits(model, xs, width)?;
        if sum.is_empty() {
            sum = vec![vec![0.0; logits.first().map_or(0, Vec::len)]; logits.len()];
        }
        for (acc, mut row) in sum.iter_mut().zip(logits) {
            space::metrics::softmax(&mut row);
            acc.iter_mut().zip(&row).for_each(|(a, p)| *a += w * p);
        }
    }
    sum.iter_mut()
        .for_each(|row| row.iter_mut().for_each(|p| *p = p.ln()));
    Ok(sum)
}

/// One network of an exported model, loaded.
pub struct Net {
    /// Its architecture, parsed once.
    pub arch: Arch,
    /// The network with its weights.
    pub model: Model,
    /// Its share of the averaged probabilities (1 for a model of one network).
    pub weight: f32,
}

/// An exported model, loaded: its description and its networks (one, or an ensemble's).
pub struct Loaded {
    /// `model.toml`.
    pub file: ModelFile,
    /// Its space, built once from `file.space`.
    pub def: SpaceDef,
    /// Its networks, in `file.networks()` order.
    pub nets: Vec<Net>,
}

impl Loaded {
    /// The model's class logits of `xs` (see [`average`]).
    pub fn logits(&mut self, xs: &[f32], width: usize) -> Result<Vec<Vec<f32>>> {
        average(
            self.nets.iter_mut().map(|n| (&mut n.model, n.weight)),
            xs,
            width,
        )
    }
}

/// Loads `DIR/model.toml` and its weights.
pub fn load_model(dir: &Path) -> Result<Loaded> {
    let path = dir.join("model.toml");
    let file: ModelFile =
        io::read_artifact(&path, "nas.model", 2..=MODEL_VERSION).map_err(|e| {
            anyhow!(
                "{e} (to make it again with this nas: nas export RUN --out DIR, which retrains it)"
            )
        })?;
    let def =
        SpaceDef::from_spec(&file.space).map_err(|e| anyhow!("{}: space: {e}", path.display()))?;
    let nets = file
        .networks()
        .iter()
        .map(|n| {
            let arch = def
                .parse(&n.arch)
                .map_err(|e| anyhow!("{}: arch: {e}", path.display()))?;
            let mut rng = Rng::derive(0, "load", &[]);
            let mut model =
                Model::new(&def, &arch, &file.input, &mut rng, DType::F32, &Device::Cpu)?;
            let wpath = dir.join(&n.weights);
            let tensors = candle_core::safetensors::load(&wpath, &Device::Cpu)
                .map_err(|e| anyhow!("{}: cannot read weights: {e}", wpath.display()))?;
            model
                .load_tensors(&tensors)
                .map_err(|e| anyhow!("{}: {e}", wpath.display()))?;
            Ok(Net {
                arch,
                model,
                weight: n.weight as f32,
            })
        })
        .collect::<Result<Vec<Net>>>()?;
    Ok(Loaded { file, def, nets })
}

/// Writes `loaded`, the model exported in `model_dir` ([`load_model`]), to `out` in `format`: a folder for
/// `native` (a copy of its files) and `pytorch` (`model.py`, `weights.safetensors`); for `onnx`, `out` itself
/// when it ends in `.onnx`, else `out/model.onnx`. Returns the files written.
pub fn write_format(
    model_dir: &Path,
    mut loaded: Loaded,
    format: ExportFormat,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let folder = |d: &Path| {
        std::fs::create_dir_all(d).map_err(|e| anyhow!("{}: cannot create: {e}", d.display()))
    };
    let mut lowered = || -> Result<lower::Lowered> {
        let nets = (loaded.nets.iter_mut())
            .map(|n| Ok((&n.arch, our_tensors(&mut n.model)?, n.weight)))
            .collect::<Result<Vec<lower::Net>>>()?;
        lower::lower(&loaded.file, &loaded.def, &nets)
    };
    let file = &loaded.file;
    Ok(match format {
        ExportFormat::Native => {
            folder(out)?;
            let mut written = Vec::new();
            for n in file.networks() {
                let from = model_dir.join(&n.weights);
                let weights = std::fs::read(&from)
                    .map_err(|e| anyhow!("{}: cannot read: {e}", from.display()))?;
                let w = out.join(&n.weights);
                io::atomic_write(&w, &weights)?;
                written.push(w);
            }
            let m = out.join("model.toml");
            io::write_toml(&m, file)?;
            written.insert(0, m);
            written
        }
        ExportFormat::Onnx => {
            let path = if out.extension().is_some_and(|e| e == "onnx") {
                if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                    folder(parent)?;
                }
                out.to_path_buf()
            } else {
                folder(out)?;
                out.join("model.onnx")
            };
            io::atomic_write(&path, &onnx::model_bytes(file, lowered()?))?;
            vec![path]
        }
        ExportFormat::Pytorch => {
            folder(out)?;
            let l = lowered()?;
            let (py, w) = (out.join("model.py"), out.join("weights.safetensors"));
            let bytes = safetensors_bytes(&pytorch::state_dict(&l)?, &w)?;
            io::atomic_write(&py, pytorch::model_py(file, &loaded.def)?.as_bytes())?;
            io::atomic_write(&w, &bytes)?;
            vec![py, w]
        }
    })
}

/// The network's tensors by name, as dimensions and values.
fn our_tensors(model: &mut Model) -> Result<lower::Tensors> {
    model
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            Ok((n, (t.dims().to_vec(), v)))
        })
        .collect()
}

/// Predictions for the rows of a data source.
pub struct Predictions {
    /// Predicted class name per row.
    pub classes: Vec<String>,
    /// The network's class logits per row (the class is the first largest), in `class_names` order.
    pub logits: Vec<Vec<f32>>,
    /// The model's classes.
    pub class_names: Vec<String>,
    /// Accuracy, when the data has the label column.
    pub accuracy: Option<f64>,
    /// Label values of the data that are none of the model's classes (sorted, each once): their rows count
    /// as wrong in `accuracy`.
    pub unknown_labels: Vec<String>,
    /// Columns of the data the model does not read (ignored).
    pub ignored: Vec<String>,
    /// Cells holding a category the model never saw in training (encoded as all zeros).
    pub unknown_categories: usize,
}

/// Predicts every row of `source` (`builtin:digits` or a CSV holding the training columns, found by name in
/// any order; other columns are ignored, the label column is optional; a folder of class subfolders of
/// images; or an IDX images or `.npy` features file, with `labels` its optional labels file) with the model
/// exported in `dir`.
pub fn predict_source(dir: &Path, source: &str, labels: Option<&Path>) -> Result<Predictions> {
    init_threads();
    let m = load_model(dir)?;
    let rows = if Path::new(source).is_dir() {
        // A folder of class subfolders: resized to the model's images; the subfolder names are the labels.
        let [c, h, w] = m.file.input.shape.ok_or_else(|| {
            anyhow!("{source}: a folder of images, but the model was trained on a table")
        })?;
        let data = data::images::load_folder(Path::new(source), Some([h, w]))?;
        if data.shape != Some([c, h, w]) {
            bail!(
                "{source}: the images have {} channels, the model was trained on {c}",
                data.shape.map_or(0, |s| s[0])
            );
        }
        data::table::CsvRows {
            labels: Some(
                data.y
                    .iter()
                    .map(|&k| data.classes[k as usize].clone())
                    .collect(),
            ),
            x: data.x,
            columns: data.columns,
        }
    } else {
        let bytes = data::table::source_bytes(&source.parse()?)?;
        if let Some(rows) = data::images::unlabelled_rows(Path::new(source), &bytes, labels)? {
            rows
        } else {
            if labels.is_some() {
                bail!("{source}: --labels names a labels file, which only IDX and NPY data take (a CSV has a label column)");
            }
            csv_rows(&m, source, &bytes)?
        }
    };
    predict_rows(m, source, rows)
}

/// The rows of a CSV `source` (its `bytes`) for model `m`: its categorical and text columns read as such.
fn csv_rows(m: &Loaded, source: &str, bytes: &[u8]) -> Result<data::table::CsvRows> {
    let names = |text: bool| -> Vec<&str> {
        m.file
            .columns
            .iter()
            .filter(|c| c.is_text() == text && !matches!(c, ColumnEncoding::Numeric { .. }))
            .map(ColumnEncoding::name)
            .collect()
    };
    let (categorical, text) = (names(false), names(true));
    let forced = data::table::Forced {
        categorical: &categorical,
        text: &text,
    };
    data::table::parse_csv_with(source, bytes, &m.file.label, false, forced)
}

/// Predicts `rows` of `source` with model `m`.
fn predict_rows(mut m: Loaded, source: &str, rows: data::table::CsvRows) -> Result<Predictions> {
    let found = match_columns(&m.file.columns, &rows.columns);
    let missing: Vec<&str> = m
        .file
        .columns
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(c, _)| c.name())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{source}:1: the model reads column{} {} (not in this file)",
            if missing.len() > 1 { "s" } else { "" },
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let source_cols: Vec<usize> = found.into_iter().flatten().collect();
    for (e, &j) in m.file.columns.iter().zip(&source_cols) {
        if matches!(e, ColumnEncoding::Numeric { .. })
            && rows.columns[j].kind != data::table::ColumnKind::Numeric
        {
            bail!(
                "{source}: column `{}` holds text; the model was trained on numbers there",
                e.name()
            );
        }
    }
    let ignored = rows
        .columns
        .iter()
        .enumerate()
        .filter(|(j, _)| !source_cols.contains(j))
        .map(|(_, c)| c.name.clone())
        .collect();
    let prep = Prep {
        columns: m.file.columns.clone(),
        shape: m.file.input.shape,
        standardizer: Standardizer {
            mean: m.file.feature_mean.clone(),
            std: m.file.feature_std.clone(),
        },
    };
    let n = rows.x.len() / rows.columns.len().max(1);
    let all: Vec<usize> = (0..n).collect();
    let (xs, unknown_categories) = prep.apply_with(&rows.x, &rows.columns, &source_cols, &all);
    let logits = m.logits(&xs, prep.width())?;
    let classes: Vec<String> = logits
        .iter()
        .map(|row| m.file.class_names[space::metrics::argmax(row)].clone())
        .collect();
    let accuracy = rows.labels.as_ref().map(|labels| {
        let hit = labels.iter().zip(&classes).filter(|(a, b)| a == b).count();
        hit as f64 / labels.len() as f64
    });
    let mut unknown_labels: Vec<String> = rows
        .labels
        .iter()
        .flatten()
        .filter(|l| !m.file.class_names.contains(l))
        .cloned()
        .collect();
    unknown_labels.sort();
    unknown_labels.dedup();
    Ok(Predictions {
        classes,
        logits,
        class_names: m.file.class_names,
        accuracy,
        unknown_labels,
        ignored,
        unknown_categories,
    })
}
