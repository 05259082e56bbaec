//! `nas report`: write the run's self-contained HTML report (and optionally its table as CSV).

use super::warn_damaged;
use crate::args::ReportArgs;
use crate::report;
use anyhow::Result;
use space::RunDir;

/// `nas report`.
pub(crate) fn run(a: ReportArgs) -> Result<()> {
    let run = RunDir::new(&a.dir);
    let plan = run.load_plan()?;
    let (sf, def) = (&plan.file, &plan.def);
    let history = if a.strict {
        run.history(def, &sf.input)?
    } else {
        let (history, damaged) = run.history_readable(def, &sf.input)?;
        warn_damaged(&run, &damaged);
        history
    };
    let html = report::render(&run, &plan, &history)?;
    let out = a.out.unwrap_or_else(|| run.root.join("report.html"));
    space::io::atomic_write(&out, html.as_bytes())?;
    println!("report: {}", out.display());
    if let Some(csv) = a.csv {
        report::write_csv(&history, &csv)?;
        println!("table: {}", csv.display());
    }
    Ok(())
}
