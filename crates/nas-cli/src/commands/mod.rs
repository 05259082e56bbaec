//! One module per `nas` command, each a thin layer over its stage function; here what several share: the
//! orchestration loop ([`drive`]), why a search stopped ([`Stop`]), retraining, and the run's messages.

use crate::progress;
use ::space::RunDir;
use anyhow::Result;

pub(crate) mod devices;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod generate;
pub(crate) mod predict;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod select;
pub(crate) mod space;
pub(crate) mod status;

/// Names each result file that could not be read, and how to recover.
pub(crate) fn warn_damaged(run: &RunDir, damaged: &[::space::Damaged]) {
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
pub(crate) enum Stop {
    /// The generate stage has nothing more to do.
    Search(::generate::End),
    /// The `[search] time` limit passed (trainings still running were abandoned; they stay pending).
    Time,
}

impl Stop {
    /// What `selection.toml` records (`ended`), when not the budget.
    pub(crate) fn recorded(self) -> Option<::space::Ended> {
        match self {
            Stop::Search(::generate::End::Budget) => None,
            Stop::Search(::generate::End::SpaceExhausted) => Some(::space::Ended::Space),
            Stop::Time => Some(::space::Ended::Time),
        }
    }
}

/// Why the search ended, in words.
pub(crate) fn ended(stop: Stop) -> &'static str {
    match stop {
        Stop::Search(::generate::End::Budget) => "budget spent and every candidate evaluated",
        Stop::Search(::generate::End::SpaceExhausted) => {
            "the space ran out before the budget: every architecture the strategy could find was evaluated"
        }
        Stop::Time => {
            "the time limit ([search] time) passed; trainings still running were abandoned (those candidates stay pending for a resumed run)"
        }
    }
}

pub(crate) fn id_list(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| format!("c{i:05}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The generate stage with the run's `[search] prior` (loaded once by the caller, which keeps its memo).
pub(crate) fn generate_step(
    run: &RunDir,
    prior: Option<&::evaluate::proxy::Prior>,
) -> Result<::generate::Step> {
    let value = prior.map(|p| move |a: &::space::Arch| p.value(a));
    ::generate::step(run, value.as_ref().map(|f| f as ::generate::Prior))
}

/// The one orchestration loop, behind `nas run` and `nas evaluate --worker`: evaluate what is pending (as
/// `opts` allows), make the next batch when nothing is, wait while other workers hold the rest; it ends when
/// the generate stage says the budget is spent and every candidate has a result. `say` hears each pass.
pub(crate) fn drive(
    run: &RunDir,
    opts: &::evaluate::Options,
    p: &progress::Progress,
    say: impl Fn(&::evaluate::Outcome),
) -> Result<Stop> {
    let wait = || std::thread::sleep(std::time::Duration::from_millis(250));
    let deadline = run
        .load_plan()?
        .time
        .map(|t| std::time::Instant::now() + t.0);
    let opts = ::evaluate::Options {
        deadline,
        ..opts.clone()
    };
    let prior = ::evaluate::proxy::Prior::of_run(run)?;
    loop {
        let out = ::evaluate::evaluate_pending(run, &opts, &|e| p.event(e))?;
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
            ::generate::Step::Done(end) => return Ok(Stop::Search(end)),
            ::generate::Step::Generated(_) => {}
            // Pending with none claimable: results are being written right now.
            ::generate::Step::Pending(_) => wait(),
        }
    }
}

/// The run's baselines (`baseline.toml`): read when there, else computed on the run's folds (seconds) and
/// written.
pub(crate) fn baselines(run: &RunDir, plan: &::space::Plan) -> Result<::space::BaselineFile> {
    if run.baseline().exists() {
        return ::space::io::read_artifact(
            &run.baseline(),
            "nas.baseline",
            ::space::ARTIFACTS_READ,
        );
    }
    let data = ::data::load_checked(plan, &run.space())?;
    let b = ::evaluate::baselines(plan, &data)?;
    ::space::io::write_toml(&run.baseline(), &b)?;
    Ok(b)
}

/// `model/`, loaded, when it holds `members` (with their weights) and can be read.
pub(crate) fn current_model(run: &RunDir, members: &[::space::Member]) -> Option<::export::Loaded> {
    ::export::load_model(&run.model())
        .ok()
        .filter(|m| m.file.holds(members))
}

/// `members` as words: `c00012`, or `the ensemble of c00012, c00003`.
pub(crate) fn naming(members: &[::space::Member]) -> String {
    let ids: Vec<String> = members.iter().map(|m| format!("c{:05}", m.id)).collect();
    match ids.as_slice() {
        [one] => one.clone(),
        _ => format!("the ensemble of {}", ids.join(", ")),
    }
}

/// Makes `model/` hold `members` (the selection's model: one candidate or an ensemble) retrained on all
/// rows: kept when it already does (retraining is deterministic, so a finished run's command run again does
/// not train again), else retrained.
pub(crate) fn retrain(run: &RunDir, members: &[::space::Member], quiet: bool) -> Result<()> {
    let model = run.model().join("model.toml");
    let what = naming(members);
    if current_model(run, members).is_some() {
        if !quiet {
            eprintln!(
                "nas: {} holds {what} already, retrained earlier; kept",
                model.display()
            );
        }
        return Ok(());
    }
    if !quiet {
        eprintln!("nas: retraining {what} on all rows for model/ …");
    }
    let m = ::export::retrain(run, members)?;
    if quiet {
        return Ok(());
    }
    println!(
        "model: {} ({what}, training accuracy {:.4})",
        model.display(),
        m.train_accuracy
    );
    Ok(())
}
