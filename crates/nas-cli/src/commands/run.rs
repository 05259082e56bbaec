//! `nas run`: the porcelain — make or resume a run, loop the stages over its files, select and retrain.

use super::space::make_space;
use super::{baselines, drive, ended, retrain, Stop};
use crate::args::RunArgs;
use crate::progress;
use anyhow::{anyhow, bail, Result};
use space::{Evaluator, Experiment, Plan, RunDir};

/// `nas run`: make or resume the run, drive generate → evaluate until the search ends, select, retrain.
pub(crate) fn run(a: RunArgs) -> Result<()> {
    let run = RunDir::new(&a.out);
    let started = std::time::Instant::now();
    let (plan, exec) = if run.space().exists() {
        resume(&run, &a)?
    } else {
        let plan = make_space(&run, &a.exp, a.device, a.quiet)?;
        let exec = plan.exp().execution();
        (plan, exec)
    };
    say_on_interrupt(&run);
    let sf = &plan.file;
    if !a.quiet {
        let e = plan.exp();
        eprintln!(
            "nas: {} space of {} architectures; {} search, budget {}{}, {}-fold CV scored by {}, {} epochs, {} rows from {}",
            e.space.family, sf.size, e.search.strategy, plan.budget,
            plan.time.map_or(String::new(), |t| format!(" or {t} (whichever ends first)")),
            e.evaluate.folds, e.evaluate.metric, plan.epochs, sf.rows, e.data.source
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
    let p = progress::Progress::new(&run, a.quiet)?;
    let end = drive(&run, &opts, &p, |_| {})?;
    p.finish();
    let (mut sel, _) =
        select::select(&run, None, space::EnsembleUse::Auto, true).map_err(|e| match end {
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
    select::record_end(&run, &mut sel, end.recorded())?;
    let trains = sf.experiment.evaluate.evaluator == Evaluator::Train;
    let baseline = if trains {
        Some(baselines(&run, &plan)?)
    } else {
        None
    };
    if !a.quiet {
        eprintln!("nas: {}", ended(end));
        progress::print_table(&sel, sf.experiment.evaluate.metric, 10);
        if let Some(b) = &baseline {
            println!(
                "baselines on the same folds: {}",
                progress::baseline_line(b)
            );
        }
        if let Some(e) = &sel.ensemble {
            println!("{}", progress::ensemble_line(e, sel.ensemble_use));
        }
    }
    if !a.no_retrain && trains {
        retrain(&run, &sel.model_members(), a.quiet)?;
    }
    if !a.quiet {
        let model = match &sel.ensemble {
            Some(e) if e.used => "; the model is the ensemble above",
            _ => "",
        };
        println!(
            "best: c{:05} {}  cv {:.4} ± {:.4}  ({} params){model} — {} in {:.1} s",
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

/// On Ctrl-C (SIGINT), says what the run kept and how to resume it, then exits with 130. Every artifact is
/// written crash-safely, so stopping at any moment loses at most the trainings in progress.
fn say_on_interrupt(run: &RunDir) {
    let (results, candidates, root) = (run.results(), run.candidates(), run.root.clone());
    let count = |d: &std::path::Path| {
        std::fs::read_dir(d).map_or(0, |r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                .count()
        })
    };
    // Without a handler (one is already set, e.g. in a test harness) Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(move || {
        let (done, all) = (count(&results), count(&candidates));
        eprintln!(
            "\nnas: interrupted. Kept in {}: {done} results of {all} candidates ({} pending, trainings in progress \
             are lost). Resume with: nas run --out {}",
            root.display(),
            all.saturating_sub(done),
            root.display()
        );
        std::process::exit(130);
    });
}

/// Resumes the run in `run`: checks the experiment asked for is the one it was made with (its identity),
/// takes a new budget or time limit, and sweeps what an interrupted write left.
fn resume(run: &RunDir, a: &RunArgs) -> Result<(Plan, space::Execution)> {
    let mut plan = run.load_plan()?;
    let stored = plan.exp().clone();
    // What this command asks for: its experiment file or data, or else the run's own experiment with the
    // flags given applied.
    let want = if a.exp.config.is_some() || a.exp.data.is_some() {
        a.exp.resolve()?.0.file.experiment
    } else {
        let want = a.exp.apply(stored.clone())?;
        want.validate()
            .map_err(|e| anyhow!("{}: {e}", a.exp.origin()))?;
        want
    };
    // Only the identity must match: the budget may change and execution settings are simply used.
    if want.identity() != stored.identity() {
        bail!(
            "{}: this run was made with a different experiment ({}, stored ≠ asked); resume with the same settings, or use another --out",
            run.space().display(),
            first_difference(&stored.identity(), &want.identity())
        );
    }
    let budget = want.search.budget.unwrap_or(plan.budget);
    if (budget, want.search.time) != (plan.budget, plan.time) {
        if !a.quiet {
            let show = |t: Option<space::TimeLimit>| t.map_or("none".into(), |t| t.to_string());
            let mut changes = Vec::new();
            if budget != plan.budget {
                changes.push(format!("budget changed from {} to {budget}", plan.budget));
            }
            if want.search.time != plan.time {
                changes.push(format!(
                    "time limit changed from {} to {}",
                    show(plan.time),
                    show(want.search.time)
                ));
            }
            eprintln!("nas: {}", changes.join(", "));
        }
        plan.set_limits(budget, want.search.time);
        plan.file.write(run)?;
    }
    let swept = run.sweep_temporaries() + evaluate::lease::sweep_markers(run);
    if !a.quiet {
        eprintln!("nas: resuming {}", a.out.display());
        if swept > 0 {
            eprintln!("nas: removed {swept} temporary files left by an interrupted write");
        }
    }
    Ok((plan, want.execution()))
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
