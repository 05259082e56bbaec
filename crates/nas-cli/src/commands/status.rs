//! `nas status`: where a run stands.

use super::id_list;
use anyhow::Result;
use space::RunDir;

/// `nas status`: done, pending, leased and damaged candidates, and the best so far.
pub(crate) fn run(run: &RunDir) -> Result<()> {
    let plan = run.load_plan()?;
    let (sf, def) = (&plan.file, &plan.def);
    let (h, damaged) = run.history_salvaged(def, &sf.input)?;
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
    println!("candidates: {} of budget {}", h.len(), plan.budget);
    println!(
        "done:       {} ok, {} stopped by racing, {} diverged, {} failed",
        count(space::Status::Ok),
        count(space::Status::Stopped),
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
    let (bad_candidates, bad_results): (Vec<_>, Vec<_>) = damaged
        .iter()
        .partition(|(p, _)| p.starts_with(run.candidates()));
    if !bad_results.is_empty() {
        println!(
            "damaged:    {} result files cannot be read",
            bad_results.len()
        );
        for (_, why) in &bad_results {
            println!("  {why}");
        }
        println!(
            "  recover:  nas evaluate {} --retry-failed   (sets them aside in retried/ and evaluates those candidates again)",
            run.root.display()
        );
    }
    if !bad_candidates.is_empty() {
        println!(
            "damaged:    {} candidate files cannot be read (left out above)",
            bad_candidates.len()
        );
        for (_, why) in &bad_candidates {
            println!("  {why}");
        }
        println!(
            "  recover:  restore them, or delete them and every later candidate and result: nas run --out {} then generates and evaluates those again, the same way",
            run.root.display()
        );
    }
    println!("leased:     {}", held.len());
    for l in &held {
        println!("  {l}");
    }
    match select::chosen(run, &plan, &h) {
        Ok(sel) => {
            println!(
                "best:       c{:05} {}  cv {:.4} ± {:.4}, {} params{}",
                sel.best.id,
                sel.best.arch,
                sel.best.cv_mean,
                sel.best.cv_std,
                sel.best.params,
                sel.max_params
                    .map_or(String::new(), |m| format!(" (within --max-params {m})"))
            );
            if let Some(e) = &sel.ensemble {
                println!(
                    "ensemble:   {}",
                    crate::progress::ensemble_line(e, sel.ensemble_use)
                );
            }
        }
        Err(_) => println!("best:       (none yet)"),
    }
    Ok(())
}
