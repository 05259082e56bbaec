//! `nas-cli`: the `nas` command line — the stage commands (plumbing) and `nas run` (porcelain).
//!
//! Every command is a thin layer over one stage function: `nas space` → [`space::SpaceFile::resolve`],
//! `nas generate` → [`generate::step`], `nas evaluate` → [`evaluate::evaluate_pending`], `nas select` →
//! [`select::select`] (and [`export::retrain`]). `nas run` loops generate → evaluate over the same files,
//! so nothing it does is impossible stage by stage, and running it again on a directory resumes it.
//! Errors are printed as one line `nas: error: …` with exit code 1; panics never reach the user.
#![deny(missing_docs)]

mod bench;
mod progress;
mod report;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Parser, Subcommand};
use space::{DeviceSetting, Evaluator, Experiment, RunDir, SpaceFile, Strategy};
use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "nas",
    version,
    about = "Neural architecture search: search a space of networks, score them by k-fold cross-validation, pick the best."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    Bench(bench::BenchArgs),
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
struct ReportArgs {
    /// Run directory.
    dir: PathBuf,
    /// HTML file to write (default: DIR/report.html).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the table of all candidates as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[derive(Args)]
struct ExportArgs {
    /// Run directory.
    dir: PathBuf,
    /// Folder to write model.toml and the weights into.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct PredictArgs {
    /// Folder of an exported model (model.toml + weights).
    #[arg(long)]
    model: PathBuf,
    /// Data: a CSV with the training columns (the label column is optional), or builtin:digits.
    #[arg(long)]
    data: String,
}

#[derive(Args, Clone, Default)]
struct ExpArgs {
    /// Experiment file (TOML). Without it: built-in digits, a small CNN chain space, regularized evolution.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Candidates to evaluate in all.
    #[arg(long)]
    budget: Option<usize>,
    /// Seed of every random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Training epochs per fold.
    #[arg(long)]
    epochs: Option<usize>,
    /// Data: a CSV path or builtin:digits.
    #[arg(long)]
    data: Option<String>,
    /// Label column of the CSV (default: `label`).
    #[arg(long)]
    label: Option<String>,
    /// Image shape of the feature columns, channels first: C,H,W (e.g. 1,28,28). Without it a CSV is a table.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    shape: Option<Vec<usize>>,
    /// Search strategy: random, evolution, ga, annealing, local or surrogate.
    #[arg(long)]
    strategy: Option<Strategy>,
    /// What scores, ranks and selects: accuracy, balanced_accuracy or macro_f1.
    #[arg(long)]
    metric: Option<space::Metric>,
}

impl ExpArgs {
    fn given(&self) -> bool {
        self.config.is_some()
            || self.budget.is_some()
            || self.seed.is_some()
            || self.epochs.is_some()
            || self.data.is_some()
            || self.label.is_some()
            || self.shape.is_some()
            || self.strategy.is_some()
            || self.metric.is_some()
    }

    /// Where the experiment came from, for error messages.
    fn origin(&self) -> String {
        self.config
            .as_ref()
            .map_or("command line".into(), |p| p.display().to_string())
    }

    /// The experiment resolved against its data (what `space.toml` holds); errors name the experiment file.
    fn resolve(&self) -> Result<SpaceFile> {
        Ok(self.resolve_with_data()?.0)
    }

    /// [`ExpArgs::resolve`], and the data.
    fn resolve_with_data(&self) -> Result<(SpaceFile, space::Dataset)> {
        let (sf, _, data) = SpaceFile::resolve(self.experiment()?)
            .map_err(|e| anyhow!("{}: {e}", self.origin()))?;
        Ok((sf, data))
    }

    fn experiment(&self) -> Result<Experiment> {
        let mut e = match &self.config {
            Some(p) => Experiment::load(p)?,
            None => Experiment::default(),
        };
        if let Some(v) = self.budget {
            e.search.budget = v;
        }
        if let Some(v) = self.seed {
            e.seed = v;
        }
        if let Some(v) = self.epochs {
            e.evaluate.epochs = v;
        }
        if let Some(v) = &self.data {
            e.data.source = if v.starts_with("builtin:") {
                v.clone()
            } else {
                absolute(v)
            };
        }
        if let Some(v) = &self.label {
            e.data.label = v.clone();
        }
        if let Some(v) = &self.shape {
            e.data.shape = Some(v.clone());
        }
        if let Some(v) = self.strategy {
            e.search.strategy = v;
        }
        if let Some(v) = self.metric {
            e.evaluate.metric = v;
        }
        e.validate().map_err(|err| {
            anyhow!(
                "{}: {err}",
                self.config
                    .as_ref()
                    .map_or("command line".into(), |p| p.display().to_string())
            )
        })?;
        Ok(e)
    }
}

fn absolute(p: &str) -> String {
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
struct RunArgs {
    #[command(flatten)]
    exp: ExpArgs,
    /// Run directory (created, or resumed when it exists).
    #[arg(long, short = 'o', default_value = "nas-run")]
    out: PathBuf,
    /// Concurrent trainings (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where to train: cpu, cuda (every GPU), cuda:N or auto (default: the experiment's `[evaluate] device`).
    #[arg(long)]
    device: Option<DeviceSetting>,
    /// Skip retraining the winner on all data at the end.
    #[arg(long)]
    no_retrain: bool,
    /// No progress bar or log lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct SpaceArgs {
    #[command(flatten)]
    exp: ExpArgs,
    /// Run directory to create.
    #[arg(long, short = 'o')]
    out: PathBuf,
}

#[derive(Args)]
struct DirArg {
    /// Run directory.
    dir: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    /// Run directory.
    dir: PathBuf,
    /// Concurrent trainings (default: the experiment's setting, else one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// No progress bar or log lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Where to train: cpu, cuda (every GPU), cuda:N or auto (default: the experiment's `[evaluate] device`).
    #[arg(long)]
    device: Option<DeviceSetting>,
    /// Keep going until the search is done: take pending candidates one at a time, make the next batch when
    /// none is left, wait while other workers hold the rest. Any number of workers may share a run directory.
    #[arg(long)]
    worker: bool,
    /// Seconds after which a lease that was not renewed is taken over (a worker renews every quarter of it).
    #[arg(long, default_value_t = 120.0)]
    lease_timeout: f64,
    /// First set aside the results of failed and diverged candidates (to retried/), so they are evaluated again.
    #[arg(long)]
    retry_failed: bool,
}

#[derive(Args)]
struct SelectArgs {
    /// Run directory.
    dir: PathBuf,
    /// Retrain the winner on all data and write model/ (weights as safetensors next to model.toml).
    #[arg(long)]
    retrain: bool,
    /// Select the most accurate candidate with at most this many parameters.
    #[arg(long)]
    max_params: Option<u64>,
}

/// Entry point: parses the command line, runs, prints errors as one line, sets the exit code.
pub fn main() {
    evaluate::init_threads();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("nas: internal error (a bug, please report it): {info}");
    }));
    let code = match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("nas: error: {}", msg.join(": ").replace('\n', " "));
            1
        }
        Err(_) => 101,
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Space(a) => {
            let run = RunDir::new(&a.out);
            if run.space().exists() {
                bail!(
                    "{}: already exists; use another --out, or `nas run --out {}` to resume",
                    run.space().display(),
                    a.out.display()
                );
            }
            let sf = make_space(&run, &a.exp, false)?;
            println!(
                "{}: {} space of {} architectures over {} rows, {} classes",
                run.space().display(),
                sf.experiment.space.family,
                sf.size,
                sf.rows,
                sf.input.classes
            );
            Ok(())
        }
        Cmd::Generate(a) => {
            let run = RunDir::new(&a.dir);
            match generate::step(&run)? {
                generate::Step::Generated(ids) => {
                    println!("generated {} candidates: {}", ids.len(), id_list(&ids))
                }
                generate::Step::Pending(n) => println!("pending: {n} candidates wait for results"),
                generate::Step::Done => {
                    println!("done: budget spent and every candidate evaluated")
                }
            }
            Ok(())
        }
        Cmd::Evaluate(a) => evaluate_cmd(a),
        Cmd::Select(a) => {
            let run = RunDir::new(&a.dir);
            let sel = select::select(&run, a.max_params)?;
            let (sf, _) = run.load_space()?;
            progress::print_table(&sel, sf.experiment.evaluate.metric, 10);
            println!(
                "pareto front (accuracy vs parameters and MACs): {}",
                sel.front
                    .iter()
                    .map(|r| format!("c{:05} ({:.4}, {} params)", r.id, r.cv_mean, r.params))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if a.retrain {
                retrain(&run, sel.best.id)?;
            }
            Ok(())
        }
        Cmd::Status(a) => status(&RunDir::new(&a.dir)),
        Cmd::Bench(a) => bench::bench(a),
        Cmd::Report(a) => {
            let run = RunDir::new(&a.dir);
            let (sf, def) = run.load_space()?;
            let history = run.history(&def)?;
            let html = report::render(&run, &sf, &history)?;
            let out = a.out.unwrap_or_else(|| run.root.join("report.html"));
            space::io::atomic_write(&out, html.as_bytes())?;
            println!("report: {}", out.display());
            if let Some(csv) = a.csv {
                report::write_csv(&history, &csv)?;
                println!("table: {}", csv.display());
            }
            Ok(())
        }
        Cmd::Export(a) => export(&RunDir::new(&a.dir), &a.out),
        Cmd::Devices => {
            println!(
                "cpu: {} cores (one training per core)",
                evaluate::thread_count(0)
            );
            if !nn::device::cuda_built() {
                println!("cuda: not in this build (cargo build --release --features cuda)");
                return Ok(());
            }
            let gpus = nn::device::gpus()?;
            if gpus.is_empty() {
                println!("cuda: built in; no GPU found (device = \"auto\" trains on the CPU)");
            }
            for g in gpus {
                println!(
                    "cuda:{}: {}, {:.1} of {:.1} GiB free (up to {} trainings at once on small data)",
                    g.ordinal,
                    g.name,
                    g.free as f64 / (1u64 << 30) as f64,
                    g.total as f64 / (1u64 << 30) as f64,
                    nn::device::trainings_per_gpu(
                        g.free,
                        nn::device::bytes_per_training(0, 0, 0),
                        evaluate::thread_count(0)
                    )
                );
            }
            Ok(())
        }
        Cmd::Predict(a) => {
            let p = export::predict_source(&a.model, &a.data)?;
            if !p.ignored.is_empty() {
                eprintln!(
                    "nas: note: the model does not read column{} {} (ignored)",
                    if p.ignored.len() > 1 { "s" } else { "" },
                    p.ignored.join(", ")
                );
            }
            if p.unknown_categories > 0 {
                eprintln!(
                    "nas: warning: {} cells hold a category the model never saw in training (read as none of its categories)",
                    p.unknown_categories
                );
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            use std::io::Write;
            writeln!(out, "row,prediction")?;
            for (i, c) in p.classes.iter().enumerate() {
                writeln!(out, "{},{c}", i + 1)?;
            }
            drop(out);
            match p.accuracy {
                Some(acc) => eprintln!("accuracy: {acc:.4} on {} rows", p.classes.len()),
                None => eprintln!(
                    "{} rows predicted (no label column, no accuracy)",
                    p.classes.len()
                ),
            }
            Ok(())
        }
    }
}

fn id_list(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| format!("c{i:05}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn make_space(run: &RunDir, exp: &ExpArgs, quiet: bool) -> Result<SpaceFile> {
    let (sf, data) = exp.resolve_with_data()?;
    if !quiet {
        eprintln!("nas: data: {}", describe(&sf, &data));
    }
    run.create()?;
    sf.write(run)?;
    Ok(sf)
}

/// What was detected in the data: rows, columns, classes, kind, categorical columns, missing cells.
fn describe(sf: &SpaceFile, data: &space::Dataset) -> String {
    use space::data::ColumnKind;
    let kind = match sf.input.shape {
        Some([c, h, w]) => format!("images {c}×{h}×{w}"),
        None => "tabular".into(),
    };
    let cats: Vec<&str> = data
        .columns
        .iter()
        .filter(|c| matches!(c.kind, ColumnKind::Categorical { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let missing: usize = data.columns.iter().map(|c| c.missing).sum();
    let with_missing = data.columns.iter().filter(|c| c.missing > 0).count();
    let mut s = format!(
        "{} rows, {} feature columns, {} classes, {kind}",
        data.rows(),
        data.features,
        data.classes.len()
    );
    if !cats.is_empty() {
        let shown: Vec<&str> = cats.iter().take(6).copied().collect();
        s += &format!(
            "; {} categorical ({}{})",
            cats.len(),
            shown.join(", "),
            if cats.len() > 6 { ", …" } else { "" }
        );
    }
    if missing > 0 {
        s += &format!("; {missing} missing cells in {with_missing} columns");
    }
    if sf.input.features != data.features {
        s += &format!("; {} network inputs after encoding", sf.input.features);
    }
    s
}

/// The first key where two experiments differ, as `[section] key: a ≠ b`.
fn first_difference(a: &Experiment, b: &Experiment) -> String {
    let ta = toml::Value::try_from(a).ok();
    let tb = toml::Value::try_from(b).ok();
    if let (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) = (ta, tb) {
        for (k, va) in &ta {
            let vb = tb.get(k);
            if Some(va) == vb {
                continue;
            }
            if let (toml::Value::Table(sa), Some(toml::Value::Table(sb))) = (va, vb) {
                let keys: std::collections::BTreeSet<&String> =
                    sa.keys().chain(sb.keys()).collect();
                for kk in keys {
                    if sa.get(kk) != sb.get(kk) {
                        let show = |v: Option<&toml::Value>| {
                            v.map_or("(unset)".to_string(), |v| v.to_string())
                        };
                        return format!("[{k}] {kk}: {} ≠ {}", show(sa.get(kk)), show(sb.get(kk)));
                    }
                }
            }
            return format!(
                "{k}: {} ≠ {}",
                va,
                vb.map_or("(unset)".into(), |v| v.to_string())
            );
        }
    }
    "the experiments differ".into()
}

fn run(a: RunArgs) -> Result<()> {
    let run = RunDir::new(&a.out);
    let started = std::time::Instant::now();
    let (sf, exec) = if run.space().exists() {
        let (sf, _) = run.load_space()?;
        let mut exec = sf.experiment.execution();
        if a.exp.given() {
            let want = a.exp.resolve()?;
            // Only the identity must match: execution settings (device, threads) are simply used.
            if want.experiment.identity() != sf.experiment.identity() {
                bail!(
                    "{}: this run was made with a different experiment ({}, stored ≠ asked); resume with the same settings, or use another --out",
                    run.space().display(),
                    first_difference(&sf.experiment.identity(), &want.experiment.identity())
                );
            }
            exec = want.experiment.execution();
        }
        let swept = run.sweep_temporaries() + evaluate::lease::sweep_markers(&run);
        if !a.quiet {
            eprintln!("nas: resuming {}", a.out.display());
            if swept > 0 {
                eprintln!("nas: removed {swept} temporary files left by an interrupted write");
            }
        }
        (sf, exec)
    } else {
        let sf = make_space(&run, &a.exp, a.quiet)?;
        let exec = sf.experiment.execution();
        (sf, exec)
    };
    if !a.quiet {
        eprintln!(
            "nas: {} space of {} architectures; {} search, budget {}, {}-fold CV scored by {}, {} epochs, {} rows from {}",
            sf.experiment.space.family, sf.size, sf.experiment.search.strategy, sf.experiment.search.budget, sf.experiment.evaluate.folds, sf.experiment.evaluate.metric, sf.experiment.evaluate.epochs, sf.rows, sf.experiment.data.source
        );
    }
    let opts = evaluate::Options {
        threads: if a.threads > 0 {
            a.threads
        } else {
            exec.threads
        },
        device: Some(a.device.unwrap_or(exec.device)),
        ..Default::default()
    };
    let p = progress::Progress::new(&run, &sf, a.quiet)?;
    drive(&run, &opts, &p, |_| {})?;
    p.finish();
    let sel = select::select(&run, None)?;
    if !a.quiet {
        progress::print_table(&sel, sf.experiment.evaluate.metric, 10);
    }
    if !a.no_retrain && sf.experiment.evaluate.evaluator == Evaluator::Train {
        retrain(&run, sel.best.id)?;
    }
    if !a.quiet {
        println!(
            "best: c{:05} {}  cv {:.4} ± {:.4}  ({} params) — {} in {:.1} s",
            sel.best.id,
            sel.best.arch,
            sel.best.cv_mean,
            sel.best.cv_std,
            sel.best.params,
            run.selection().display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The one orchestration loop, behind `nas run` and `nas evaluate --worker`: evaluate what is pending (as
/// `opts` allows), make the next batch when nothing is, wait while other workers hold the rest; it ends when
/// the generate stage says the budget is spent and every candidate has a result. `say` hears each pass.
fn drive(
    run: &RunDir,
    opts: &evaluate::Options,
    p: &progress::Progress,
    say: impl Fn(&evaluate::Outcome),
) -> Result<()> {
    let wait = || std::thread::sleep(std::time::Duration::from_millis(250));
    loop {
        let out = evaluate::evaluate_pending(run, opts, &|e| p.event(e))?;
        say(&out);
        if !out.results.is_empty() || !out.discarded.is_empty() {
            continue;
        }
        if out.leased_elsewhere > 0 {
            // Other workers hold what is left: wait for their results.
            wait();
            continue;
        }
        match generate::step(run)? {
            generate::Step::Done => return Ok(()),
            generate::Step::Generated(_) => {}
            // Pending with none claimable: results are being written right now.
            generate::Step::Pending(_) => wait(),
        }
    }
}

/// `nas export`: copies the retrained winner of selection.toml (made by `nas select` when missing) to `out`,
/// retraining it first when model/ is missing or holds another candidate.
fn export(run: &RunDir, out: &std::path::Path) -> Result<()> {
    let sel: space::SelectionFile = if run.selection().exists() {
        space::io::read_artifact(&run.selection(), "nas.selection", space::ARTIFACT_VERSION)?
    } else {
        select::select(run, None)?
    };
    let current = export::load_model(&run.model()).ok();
    if current.as_ref().is_none_or(|m| m.file.id != sel.best.id) {
        retrain(run, sel.best.id)?;
    }
    let loaded = export::load_model(&run.model())?;
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", out.display()))?;
    let from = run.model().join(&loaded.file.weights);
    let weights = std::fs::read(&from)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", from.display()))?;
    space::io::atomic_write(&out.join(&loaded.file.weights), &weights)?;
    space::io::write_toml(&out.join("model.toml"), &loaded.file)?;
    println!(
        "exported c{:05} {} to {} (model.toml, {})",
        loaded.file.id,
        loaded.file.arch,
        out.display(),
        loaded.file.weights
    );
    Ok(())
}

fn retrain(run: &RunDir, id: u64) -> Result<()> {
    let m = export::retrain(run, id)?;
    println!(
        "model: {} (c{:05}, training accuracy {:.4})",
        run.model().join("model.toml").display(),
        m.id,
        m.train_accuracy
    );
    Ok(())
}

fn evaluate_cmd(a: EvalArgs) -> Result<()> {
    let run = RunDir::new(&a.dir);
    let (sf, _) = run.load_space()?;
    if a.lease_timeout.is_nan() || a.lease_timeout <= 0.0 {
        bail!("--lease-timeout: must be a positive number of seconds");
    }
    if a.retry_failed {
        let ids = evaluate::retry_failed(&run)?;
        println!(
            "retrying {} failed candidates{}",
            ids.len(),
            if ids.is_empty() {
                String::new()
            } else {
                format!(": {}", id_list(&ids))
            }
        );
    }
    run.sweep_temporaries();
    evaluate::lease::sweep_markers(&run);
    let opts = evaluate::Options {
        threads: a.threads,
        max_claims: if a.worker { 1 } else { usize::MAX },
        lease_timeout_s: a.lease_timeout,
        device: a.device,
    };
    let p = progress::Progress::new(&run, &sf, a.quiet)?;
    let say = |out: &evaluate::Outcome| {
        for r in &out.results {
            println!("evaluated c{:05}", r.id);
        }
        for id in &out.discarded {
            println!("discarded c{id:05}: another worker wrote its result first");
        }
    };
    if a.worker {
        drive(&run, &opts, &p, say)?;
    } else {
        let out = evaluate::evaluate_pending(&run, &opts, &|e| p.event(e))?;
        say(&out);
        if out.leased_elsewhere > 0 {
            println!(
                "{} pending candidates are held by other workers",
                out.leased_elsewhere
            );
        }
    }
    p.finish();
    Ok(())
}

fn status(run: &RunDir) -> Result<()> {
    let (sf, def) = run.load_space()?;
    let h = run.history(&def)?;
    let count = |s: space::Status| {
        h.iter()
            .filter(|e| e.result.as_ref().is_some_and(|r| r.status == s))
            .count()
    };
    let queue = evaluate::queue(run, &h)?;
    let pending = queue.free;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let held: Vec<String> = queue
        .leased
        .iter()
        .map(|(l, age)| {
            format!(
                "c{:05} by {}:{} since {:.0} s ago (renewed {:.0} s ago)",
                l.id,
                l.host,
                l.pid,
                (now - l.since).max(0.0),
                age
            )
        })
        .collect();
    println!("run:        {}", run.root.display());
    println!(
        "space:      {} ({} architectures), {} search",
        sf.experiment.space.family, sf.size, sf.experiment.search.strategy
    );
    println!(
        "candidates: {} of budget {}",
        h.len(),
        sf.experiment.search.budget
    );
    println!(
        "done:       {} ok, {} diverged, {} failed",
        count(space::Status::Ok),
        count(space::Status::Diverged),
        count(space::Status::Failed)
    );
    println!(
        "pending:    {}{}",
        pending.len(),
        if pending.is_empty() {
            String::new()
        } else {
            format!(" ({})", id_list(&pending))
        }
    );
    println!("leased:     {}", held.len());
    for l in &held {
        println!("  {l}");
    }
    match select::selection(&h) {
        Ok(sel) => println!(
            "best:       c{:05} {}  cv {:.4} ± {:.4}, {} params",
            sel.best.id, sel.best.arch, sel.best.cv_mean, sel.best.cv_std, sel.best.params
        ),
        Err(_) => println!("best:       (none yet)"),
    }
    Ok(())
}
