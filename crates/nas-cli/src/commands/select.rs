//! `nas select`: rank the results, write `selection.toml`, optionally retrain the winner.

use super::{retrain, warn_damaged};
use crate::args::SelectArgs;
use crate::progress;
use anyhow::Result;
use space::RunDir;

/// `nas select`.
pub(crate) fn run(a: SelectArgs) -> Result<()> {
    let run = RunDir::new(&a.dir);
    let (sel, damaged) = select::select(&run, a.max_params, a.ensemble, a.strict)?;
    warn_damaged(&run, &damaged);
    let plan = run.load_plan()?;
    let sf = &plan.file;
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
    if let Some(e) = &sel.ensemble {
        println!("{}", progress::ensemble_line(e, sel.ensemble_use));
    }
    if a.retrain {
        retrain(&run, &sel.model_members(), false)?;
    }
    Ok(())
}
