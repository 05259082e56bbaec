//! Measures ensemble selection's settings on finished runs: for each run directory given, the nested
//! estimate (docs/benchmarks.md) of the single best and of ensembles from pools of the top 5, 10, 16 and 32
//! candidates with 10, 25 and 50 greedy steps. `cargo run --release -p select --example ensemble_sweep -- RUN…`

use anyhow::Result;
use select::ensemble;
use space::{Oof, RunDir};

fn main() -> Result<()> {
    for dir in std::env::args().skip(1) {
        let run = RunDir::new(&dir);
        let plan = run.load_plan()?;
        let history = run.history(&plan.def, &plan.file.input)?;
        let ranking = select::rank(&plan, &history);
        let oofs: Vec<Oof> = ranking
            .iter()
            .filter_map(|r| Oof::read(&run.oof(r.id)).ok())
            .filter(|o| o.probs.iter().all(|p| p.is_finite()))
            .collect();
        let (k, seed, metric) = (
            plan.exp().evaluate.folds,
            plan.exp().seed,
            plan.exp().evaluate.metric,
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        print!(
            "{dir}: {} ranked, {} with predictions, best cv {:.4}",
            ranking.len(),
            oofs.len(),
            ranking.first().map_or(0.0, |r| r.cv_mean)
        );
        let all: Vec<&Oof> = oofs.iter().collect();
        let (_, one) = ensemble::nested(&all, k, seed, metric, 1);
        println!(", nested single best {:.4}", mean(&one));
        for pool in [5, 10, 16, 32] {
            let p = &all[..pool.min(all.len())];
            let line: Vec<String> = [10, 25, 50]
                .iter()
                .map(|&steps| {
                    let (ens, _) = ensemble::nested(p, k, seed, metric, steps);
                    format!("steps {steps}: {:.4}", mean(&ens))
                })
                .collect();
            println!("  pool {pool:>2}: {}", line.join("  "));
        }
    }
    Ok(())
}
