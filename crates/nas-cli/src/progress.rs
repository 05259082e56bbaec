//! Progress while evaluating (a bar on a terminal, plain lines otherwise) and the summary table.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use space::{RunDir, SelectionFile, SpaceFile};
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    best: Mutex<f64>,
    folds: usize,
    epochs: usize,
    budget: usize,
}

impl Progress {
    pub fn new(run: &RunDir, sf: &SpaceFile, quiet: bool) -> anyhow::Result<Progress> {
        let (_, def) = run.load_space()?;
        let history = run.history(&def, &sf.input)?;
        let done = history.iter().filter(|e| e.result.is_some()).count();
        let best = select::selection(&history).map_or(0.0, |s| s.best.cv_mean);
        let budget = sf.experiment.search.budget();
        let folds = sf.experiment.evaluate.folds;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(
                Some((budget * folds) as u64),
                ProgressDrawTarget::stderr(),
            );
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_position((done * folds) as u64);
            b.set_message(format!("{done}/{budget} candidates"));
            b
        });
        Ok(Progress {
            bar,
            quiet,
            best: Mutex::new(best),
            folds,
            epochs: sf.experiment.evaluate.epochs(),
            budget,
        })
    }

    pub fn event(&self, e: evaluate::Event) {
        match e {
            evaluate::Event::Begin { .. } => {}
            evaluate::Event::Epoch { id, fold, epoch } => {
                if let Some(b) = &self.bar {
                    b.set_message(format!(
                        "c{id:05} fold {}/{} epoch {epoch}/{} · best {:.4}",
                        fold + 1,
                        self.folds,
                        self.epochs,
                        *self.best.lock().unwrap()
                    ));
                }
            }
            evaluate::Event::Fold { id, fold, .. } => {
                if let Some(b) = &self.bar {
                    b.inc(1);
                    b.set_message(format!(
                        "c{id:05} fold {}/{} · best {:.4}",
                        fold + 1,
                        self.folds,
                        *self.best.lock().unwrap()
                    ));
                }
            }
            evaluate::Event::Done(r) => {
                let mut best = self.best.lock().unwrap();
                if r.ok() && r.cv_mean > *best {
                    *best = r.cv_mean;
                }
                let line = if r.ok() {
                    format!(
                        "c{:05}/{} {:.4} ± {:.4}  {:>8} params {:>6.1} s  {}",
                        r.id, self.budget, r.cv_mean, r.cv_std, r.params, r.wall_s, r.arch
                    )
                } else {
                    format!(
                        "c{:05}/{} {}: {}  {}",
                        r.id, self.budget, r.status, r.error, r.arch
                    )
                };
                match &self.bar {
                    Some(b) => b.println(line),
                    None if !self.quiet => eprintln!("{line}"),
                    None => {}
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Prints the top `n` of the ranking as a table.
pub fn print_table(sel: &SelectionFile, metric: space::Metric, n: usize) {
    println!(
        "{:>4}  {:>6}  {:>15}  {:>9}  {:>10}  arch",
        "rank",
        "id",
        format!("cv {metric}"),
        "params",
        "MACs"
    );
    for (i, r) in sel.ranking.iter().take(n).enumerate() {
        println!(
            "{:>4}  c{:05}  {:.4} ± {:.4}  {:>9}  {:>10}  {}",
            i + 1,
            r.id,
            r.cv_mean,
            r.cv_std,
            r.params,
            r.flops,
            r.arch
        );
    }
    println!("({} evaluated, {} ok)", sel.evaluated, sel.ok);
}
