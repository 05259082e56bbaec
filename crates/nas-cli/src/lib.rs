//! `nas-cli`: the `nas` command line — the stage commands (plumbing) and `nas run` (porcelain).
//!
//! Every command is a thin layer over one stage function: `nas space` → [`space::SpaceFile::resolve`],
//! `nas generate` → [`generate::step`], `nas evaluate` → [`evaluate::evaluate_pending`], `nas select` →
//! [`select::select`] (and [`export::retrain`]). `nas run` loops generate → evaluate over the same files,
//! so nothing it does is impossible stage by stage, and running it again on a directory resumes it.
//! Errors are printed as one line `nas: error: …` with exit code 1; panics never reach the user.
#![deny(missing_docs)]

mod args;
mod bench;
mod bench_proxy;
mod progress;
mod report;

use args::*;

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use space::{DeviceSetting, Evaluator, Experiment, RunDir, SpaceFile};

#[global_allocator]
static GLOBAL: nn::mem::Counting<mimalloc::MiMalloc> = nn::mem::Counting(mimalloc::MiMalloc);

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
            let sf = make_space(&run, &a.exp, None, false)?;
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
            let prior = evaluate::proxy::Prior::of_run(&run)?;
            match generate_step(&run, prior.as_ref())? {
                generate::Step::Generated(ids) => {
                    println!("generated {} candidates: {}", ids.len(), id_list(&ids))
                }
                generate::Step::Pending(n) => println!("pending: {n} candidates wait for results"),
                generate::Step::Done(end) => println!("done: {}", ended(Stop::Search(end))),
            }
            Ok(())
        }
        Cmd::Evaluate(a) => evaluate_cmd(a),
        Cmd::Select(a) => {
            let run = RunDir::new(&a.dir);
            let (sel, damaged) = select::select(&run, a.max_params, a.strict)?;
            warn_damaged(&run, &damaged);
            let (sf, _) = run.load_space()?;
            progress::print_table(&sel, sf.experiment.evaluate.metric, 10);
            let top = &sel.ranking[0];
            println!(
                "selected: c{:05} {}  cv {:.4} ± {:.4}, {} params — {}",
                sel.best.id,
                sel.best.arch,
                sel.best.cv_mean,
                sel.best.cv_std,
                sel.best.params,
                match sel.max_params {
                    Some(m) if top.id != sel.best.id => format!(
                        "the most accurate with at most {m} parameters (the most accurate overall, c{:05}, has {})",
                        top.id, top.params
                    ),
                    Some(m) => format!("the most accurate overall, within {m} parameters"),
                    None => "the most accurate".into(),
                }
            );
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
            let history = if a.strict {
                run.history(&def, &sf.input)?
            } else {
                let (history, damaged) = run.history_readable(&def, &sf.input)?;
                warn_damaged(&run, &damaged);
                history
            };
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
        Cmd::Export(a) => export(&RunDir::new(&a.dir), a.format, &a.out),
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
            write!(out, "row,prediction")?;
            if a.logits {
                for c in &p.class_names {
                    write!(out, ",logit:{c}")?;
                }
            }
            writeln!(out)?;
            for (i, (c, l)) in p.classes.iter().zip(&p.logits).enumerate() {
                write!(out, "{},{c}", i + 1)?;
                if a.logits {
                    for v in l {
                        write!(out, ",{v}")?;
                    }
                }
                writeln!(out)?;
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

/// Names each result file that could not be read, and how to recover.
fn warn_damaged(run: &RunDir, damaged: &[space::artifacts::Damaged]) {
    for (_, why) in damaged {
        eprintln!("nas: warning: skipped: {why}");
    }
    if !damaged.is_empty() {
        eprintln!(
            "nas: to set them aside and evaluate those candidates again: nas evaluate {} --retry-failed",
            run.root.display()
        );
    }
}

/// Why a search session stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// The generate stage has nothing more to do.
    Search(generate::End),
    /// The `[search] time` limit passed (trainings still running were abandoned; they stay pending).
    Time,
}

impl Stop {
    /// What `selection.toml` records (`ended`), when not the budget.
    fn recorded(self) -> Option<&'static str> {
        match self {
            Stop::Search(generate::End::Budget) => None,
            Stop::Search(generate::End::SpaceExhausted) => Some("space"),
            Stop::Time => Some("time"),
        }
    }
}

/// Why the search ended, in words.
fn ended(stop: Stop) -> &'static str {
    match stop {
        Stop::Search(generate::End::Budget) => "budget spent and every candidate evaluated",
        Stop::Search(generate::End::SpaceExhausted) => {
            "the space ran out before the budget: every architecture the strategy could find was evaluated"
        }
        Stop::Time => {
            "the time limit ([search] time) passed; trainings still running were abandoned (those candidates stay pending for a resumed run)"
        }
    }
}

fn id_list(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| format!("c{i:05}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves the experiment, makes every check that can be made before anything is written (data, shape,
/// space, folds against rows, the device), then creates the run directory and its `space.toml`.
fn make_space(
    run: &RunDir,
    exp: &ExpArgs,
    device: Option<DeviceSetting>,
    quiet: bool,
) -> Result<SpaceFile> {
    let (sf, data) = exp.resolve_with_data()?;
    let folds = sf.experiment.evaluate.folds;
    if sf.experiment.evaluate.evaluator == Evaluator::Train {
        if data.rows() < folds {
            bail!(
                "{}: [evaluate] folds: {folds} folds need at least {folds} rows; the data has {}",
                exp.origin(),
                data.rows()
            );
        }
        let device = device.unwrap_or(sf.experiment.evaluate.device);
        nn::device::resolve(device, 1, 0, 0).map_err(|e| anyhow!("{}: {e}", exp.origin()))?;
    }
    if !quiet {
        eprintln!("nas: data: {}", describe(&sf, &data));
        let mut counts = vec![0usize; data.classes.len()];
        for &y in &data.y {
            counts[y as usize] += 1;
        }
        if let Some((c, n)) = counts.iter().enumerate().min_by_key(|(_, n)| **n) {
            if *n < folds {
                eprintln!(
                    "nas: warning: class `{}` has {n} rows, fewer than the {folds} folds: some folds will not see it",
                    data.classes[c]
                );
            }
        }
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
        let (mut sf, _) = run.load_space()?;
        let stored = sf.experiment.clone();
        // What this command asks for: its experiment file or data, or else the run's own experiment with the
        // flags given applied.
        let want = if a.exp.config.is_some() || a.exp.data.is_some() {
            a.exp.resolve()?.experiment
        } else {
            a.exp.apply(stored.clone())?
        };
        // Only the identity must match: the budget may change and execution settings are simply used.
        if want.identity() != stored.identity() {
            bail!(
                "{}: this run was made with a different experiment ({}, stored ≠ asked); resume with the same settings, or use another --out",
                run.space().display(),
                first_difference(&stored.identity(), &want.identity())
            );
        }
        let limits = |e: &Experiment| (e.search.budget(), e.search.time);
        if limits(&want) != limits(&stored) {
            if !a.quiet {
                let show = |t: Option<space::TimeLimit>| t.map_or("none".into(), |t| t.to_string());
                eprintln!(
                    "nas: budget changed from {} to {}, time limit from {} to {}",
                    stored.search.budget(),
                    want.search.budget(),
                    show(stored.search.time),
                    show(want.search.time)
                );
            }
            sf.experiment.search.budget = want.search.budget;
            sf.experiment.search.time = want.search.time;
            sf.write(&run)?;
        }
        let exec = want.execution();
        let swept = run.sweep_temporaries() + evaluate::lease::sweep_markers(&run);
        if !a.quiet {
            eprintln!("nas: resuming {}", a.out.display());
            if swept > 0 {
                eprintln!("nas: removed {swept} temporary files left by an interrupted write");
            }
        }
        (sf, exec)
    } else {
        let sf = make_space(&run, &a.exp, a.device, a.quiet)?;
        let exec = sf.experiment.execution();
        (sf, exec)
    };
    if !a.quiet {
        eprintln!(
            "nas: {} space of {} architectures; {} search, budget {}{}, {}-fold CV scored by {}, {} epochs, {} rows from {}",
            sf.experiment.space.family, sf.size, sf.experiment.search.strategy, sf.experiment.search.budget(),
            sf.experiment.search.time.map_or(String::new(), |t| format!(" or {t} (whichever ends first)")),
            sf.experiment.evaluate.folds, sf.experiment.evaluate.metric, sf.experiment.evaluate.epochs(), sf.rows, sf.experiment.data.source
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
    let end = drive(&run, &opts, &p, |_| {})?;
    p.finish();
    let (mut sel, _) = select::select(&run, None, true).map_err(|e| match end {
        Stop::Time => anyhow::anyhow!(
            "{e}: the time limit passed before any candidate {}; resume with more time \
             (nas run --out {} --time 2h) or train less per candidate (--epochs)",
            match sf.experiment.search.fidelity {
                space::Fidelity::Full => "finished its folds",
                _ => "reached the top rung",
            },
            run.root.display()
        ),
        _ => e,
    })?;
    if let Some(why) = end.recorded() {
        sel.ended = Some(why.into());
        space::io::write_toml(&run.selection(), &sel)?;
    }
    if !a.quiet {
        eprintln!("nas: {}", ended(end));
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

/// The generate stage with the run's `[search] prior` (loaded once by the caller, which keeps its memo).
fn generate_step(run: &RunDir, prior: Option<&evaluate::proxy::Prior>) -> Result<generate::Step> {
    let value = prior.map(|p| move |a: &space::Arch| p.value(a));
    generate::step(run, value.as_ref().map(|f| f as generate::Prior))
}

/// The one orchestration loop, behind `nas run` and `nas evaluate --worker`: evaluate what is pending (as
/// `opts` allows), make the next batch when nothing is, wait while other workers hold the rest; it ends when
/// the generate stage says the budget is spent and every candidate has a result. `say` hears each pass.
fn drive(
    run: &RunDir,
    opts: &evaluate::Options,
    p: &progress::Progress,
    say: impl Fn(&evaluate::Outcome),
) -> Result<Stop> {
    let wait = || std::thread::sleep(std::time::Duration::from_millis(250));
    let (sf, _) = run.load_space()?;
    let deadline = sf
        .experiment
        .search
        .time
        .map(|t| std::time::Instant::now() + t.0);
    let opts = evaluate::Options {
        deadline,
        ..opts.clone()
    };
    let prior = evaluate::proxy::Prior::of_run(run)?;
    loop {
        let out = evaluate::evaluate_pending(run, &opts, &|e| p.event(e))?;
        say(&out);
        // Past the time limit, whatever was still training was abandoned (it stays pending): stop.
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(Stop::Time);
        }
        if !out.results.is_empty() || !out.discarded.is_empty() {
            continue;
        }
        if out.leased_elsewhere > 0 {
            // Other workers hold what is left: wait for their results.
            wait();
            continue;
        }
        match generate_step(run, prior.as_ref())? {
            generate::Step::Done(end) => return Ok(Stop::Search(end)),
            generate::Step::Generated(_) => {}
            // Pending with none claimable: results are being written right now.
            generate::Step::Pending(_) => wait(),
        }
    }
}

/// `nas export`: copies the retrained winner of selection.toml (made by `nas select` when missing) to `out`,
/// retraining it first when model/ is missing or holds another candidate.
fn export(run: &RunDir, format: space::ExportFormat, out: &std::path::Path) -> Result<()> {
    let sel: space::SelectionFile = if run.selection().exists() {
        space::io::read_artifact(&run.selection(), "nas.selection", space::ARTIFACTS_READ)?
    } else {
        select::select(run, None, true)?.0
    };
    let current = export::load_model(&run.model())
        .ok()
        .filter(|m| m.file.id == sel.best.id);
    let loaded = match current {
        Some(m) => m,
        None => {
            retrain(run, sel.best.id)?;
            export::load_model(&run.model())?
        }
    };
    let written = export::write_format(&run.model(), loaded, format, out)?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!(
        "exported c{:05} {} as {format}: {}",
        sel.best.id,
        sel.best.arch,
        names.join(", ")
    );
    Ok(())
}

fn retrain(run: &RunDir, id: u64) -> Result<()> {
    eprintln!("nas: retraining c{id:05} on all rows for model/ …");
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
        deadline: None,
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
        let end = drive(&run, &opts, &p, say)?;
        println!("done: {}", ended(end));
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
    let (h, damaged) = run.history_readable(&def, &sf.input)?;
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
        sf.experiment.search.budget()
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
    if !damaged.is_empty() {
        println!("damaged:    {} result files cannot be read", damaged.len());
        for (_, why) in &damaged {
            println!("  {why}");
        }
        println!(
            "  recover:  nas evaluate {} --retry-failed   (sets them aside in retried/ and evaluates those candidates again)",
            run.root.display()
        );
    }
    println!("leased:     {}", held.len());
    for l in &held {
        println!("  {l}");
    }
    match select::chosen(run, &sf.experiment, &h) {
        Ok(sel) => println!(
            "best:       c{:05} {}  cv {:.4} ± {:.4}, {} params{}",
            sel.best.id,
            sel.best.arch,
            sel.best.cv_mean,
            sel.best.cv_std,
            sel.best.params,
            sel.max_params
                .map_or(String::new(), |m| format!(" (within --max-params {m})"))
        ),
        Err(_) => println!("best:       (none yet)"),
    }
    Ok(())
}
