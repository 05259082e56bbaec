//! `nas bench`: search strategies compared on a tabular benchmark, in process, through the same code paths
//! as a run (`generate::make_batch` proposes, `evaluate::table::Table` scores), without files.

use anyhow::{bail, Result};
use evaluate::table::Table;
use rayon::prelude::*;
use space::{Entry, Experiment, Plan, Strategy};
use std::io::Write;
use std::path::PathBuf;

/// Options of `nas bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Benchmark table (CSV, NAS-Bench-201 architecture strings).
    #[arg(long)]
    table: String,
    /// Architecture-string column.
    #[arg(long, default_value = "arch")]
    arch_column: String,
    /// Column the search sees.
    #[arg(long)]
    search_metric: String,
    /// Column reported for the best-by-search architecture (never seen by the search).
    #[arg(long)]
    report_metric: String,
    /// Strategies, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    strategy: String,
    /// Query budgets to report, comma-separated (one run of the largest serves all).
    #[arg(long, default_value = "25,50,100,200,300")]
    budgets: String,
    /// Seeds (runs) per strategy.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// Write each run's evaluation order as DIR/<strategy>-seed<N>.csv (column `arch`).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Gap to the best achievable report value counted as "reached".
    #[arg(long, default_value_t = 0.5)]
    within: f64,
    /// A zero-cost proxy guiding every strategy (`[search] prior`): synflow or params, computed on our own
    /// network of each architecture and cached next to the table (TABLE.<proxy>.csv) when its folder is
    /// writable.
    #[arg(long)]
    prior: Option<space::Proxy>,
    /// Also run `surrogate` with its model switched off (moves in random order, or by prior when there is
    /// one; restarts at random): what the model contributes.
    #[arg(long)]
    ablation: bool,
    /// Print the Spearman rank correlation of each proxy (synflow, params) with the table's columns over
    /// every architecture, instead of searching.
    #[arg(long)]
    proxy_correlation: bool,
}

/// One search on the table: the evaluation order with (search score, report value).
pub fn search_on_table(
    plan: &Plan,
    table: &Table,
    budget: usize,
    prior: Option<generate::Prior>,
) -> Result<Vec<(String, f64, f64)>> {
    let mut history: Vec<Entry> = Vec::with_capacity(budget);
    let mut out = Vec::with_capacity(budget);
    while history.len() < budget {
        let id = history.len() as u64 + 1;
        let Some(c) =
            generate::make_batch(plan, &history, history.len() as u64, 1, id, prior)?.pop()
        else {
            break;
        };
        let r = table.result(&c);
        if !r.ok() {
            bail!("{}: not in the table", c.arch);
        }
        out.push((
            c.arch.clone(),
            r.cv_mean,
            r.metrics.values().next().copied().unwrap_or(f64::NAN),
        ));
        let arch = plan.def.parse(&c.arch)?;
        history.push(Entry {
            candidate: c,
            arch,
            result: Some(r),
        });
    }
    Ok(out)
}

/// The experiment a benchmark run uses: the cell space, `strategy`, `seed`, one candidate per batch, `prior`.
pub fn bench_space(
    strategy: Strategy,
    seed: u64,
    budget: usize,
    prior: Option<space::Proxy>,
) -> Result<Plan> {
    let mut e = Experiment::default();
    e.space.family = space::SpaceFamily::Cell;
    e.search.strategy = strategy;
    e.search.prior = prior;
    e.search.batch = 1;
    e.search.budget = Some(budget);
    e.seed = seed;
    e.validate()?;
    // NAS-Bench-201's CIFAR-10: 32×32 colour images of 10 classes (no rows are read: a table scores).
    let facts = space::DataFacts {
        rows: 0,
        fingerprint: String::new(),
        classes: (0..10).map(|c| c.to_string()).collect(),
        features: 3 * 32 * 32,
        shape: Some([3, 32, 32]),
        not_pixels: None,
        text: Vec::new(),
    };
    Plan::resolve(e, &facts, &|| (0, Vec::new()))
}

/// `--proxy-correlation`: the Spearman correlation of each proxy with the table's two columns.
fn print_proxy_correlation(
    a: &BenchArgs,
    table: &Table,
    plan0: &Plan,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let rows: Vec<(&str, f64, f64)> = table.iter().map(|(arch, s, r)| (arch, s, r[0])).collect();
    let search: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let report: Vec<f64> = rows.iter().map(|r| r.2).collect();
    println!(
        "Spearman rank correlation over the {} architectures of {}:",
        rows.len(),
        a.table
    );
    println!(
        "{:<10} {:>12} {:>12}",
        "proxy", a.search_metric, a.report_metric
    );
    for p in [space::Proxy::Synflow, space::Proxy::Params] {
        let v = crate::bench_proxy::values(table, &a.table, p, plan0, pool)?;
        let x: Vec<f64> = rows.iter().map(|r| v[r.0]).collect();
        println!(
            "{:<10} {:>12.3} {:>12.3}",
            p.name(),
            crate::bench_proxy::spearman(&x, &search),
            crate::bench_proxy::spearman(&x, &report)
        );
    }
    Ok(())
}

/// One strategy's row of the table: the report value at each budget, the queries to the target; and its
/// traces with `--trace`.
fn print_row(
    a: &BenchArgs,
    s: Strategy,
    model: bool,
    runs: &[Vec<(String, f64, f64)>],
    budgets: &[usize],
    target: f64,
    max_budget: usize,
) -> Result<()> {
    let name = if model { s.name() } else { "(no model)" };
    print!("{:<10}", name);
    for &b in budgets {
        let finals: Vec<f64> = runs
            .iter()
            .map(|r| {
                r.iter()
                    .take(b)
                    .fold((f64::MIN, f64::NAN), |acc, x| {
                        if x.1 > acc.0 {
                            (x.1, x.2)
                        } else {
                            acc
                        }
                    })
                    .1
            })
            .collect();
        let (m, sd) = space::mean_std(&finals);
        print!(" {:>15}", format!("{m:.2} ± {sd:.2}"));
    }
    let (qm, reached) = queries_to(runs, target, max_budget);
    println!(
        " {:>22}",
        format!("{qm:.1} ({reached}/{} reach)", runs.len())
    );
    if let Some(dir) = &a.trace {
        for (seed, r) in runs.iter().enumerate() {
            let mut f = Vec::new();
            writeln!(f, "arch,{},{}", a.search_metric, a.report_metric)?;
            for (arch, sv, rv) in r {
                writeln!(f, "{arch},{:.3},{rv}", sv * 100.0)?;
            }
            space::io::atomic_write(&dir.join(format!("{s}-seed{seed}.csv")), &f)?;
        }
    }
    Ok(())
}

/// Runs the benchmark and prints the table.
pub fn bench(a: BenchArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let table = Table::load(
        &a.table,
        &a.arch_column,
        &a.search_metric,
        std::slice::from_ref(&a.report_metric),
    )?;
    let budgets: Vec<usize> = a
        .budgets
        .split(',')
        .map(|b| b.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--budgets: expected numbers like 25,50,100"))?;
    let max_budget = *budgets
        .iter()
        .max()
        .ok_or_else(|| anyhow::anyhow!("--budgets: empty"))?;
    let strategies: Vec<Strategy> = if a.strategy == "all" {
        Strategy::ALL.to_vec()
    } else {
        a.strategy
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_>>()
            .map_err(|e| anyhow::anyhow!("--strategy: {e}"))?
    };
    let (best_search, best_report) =
        table
            .iter()
            .map(|(_, s, r)| (s, r[0]))
            .fold(
                (f64::MIN, f64::NAN),
                |acc, x| if x.0 > acc.0 { x } else { acc },
            );
    let target = best_report - a.within;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(evaluate::thread_count(0))
        .build()?;
    let plan0 = bench_space(Strategy::Random, 0, max_budget, None)?;
    if a.proxy_correlation {
        return print_proxy_correlation(&a, &table, &plan0, &pool);
    }
    let prior_values = match a.prior {
        Some(p) => Some(crate::bench_proxy::values(
            &table, &a.table, p, &plan0, &pool,
        )?),
        None => None,
    };
    let prior_fn = prior_values.as_ref().map(|v| {
        move |arch: &space::Arch| {
            v.get(&arch.to_string())
                .copied()
                .unwrap_or(f64::NEG_INFINITY)
        }
    });
    println!(
        "nas bench on {} ({} architectures): search `{}`, report `{}`; best achievable {:.2} (best by search, {:.3}); {} seeds", a.table, table.iter().count(), a.search_metric, a.report_metric, best_report, best_search * 100.0, a.seeds
    );
    print!("{:<10}", "strategy");
    for b in &budgets {
        print!(" {:>15}", format!("@{b}"));
    }
    println!(" {:>22}", format!("queries to ≥{:.2}", target));
    if let Some(dir) = &a.trace {
        std::fs::create_dir_all(dir)?;
    }
    // Searches in parallel on every core (the global pool is pinned to one thread for training).
    // (strategy, its surrogate model on): with --ablation, the surrogate again with its model off.
    let mut rows: Vec<(Strategy, bool)> = strategies.iter().map(|&s| (s, true)).collect();
    if a.ablation && strategies.contains(&Strategy::Surrogate) {
        rows.push((Strategy::Surrogate, false));
    }
    for (s, model) in &rows {
        let runs: Vec<Vec<(String, f64, f64)>> = pool.install(|| {
            (0..a.seeds)
                .into_par_iter()
                .map(|seed| {
                    let plan = bench_space(*s, seed, max_budget, a.prior)?;
                    let prior = prior_fn.as_ref().map(|f| f as generate::Prior);
                    let search = || search_on_table(&plan, &table, max_budget, prior);
                    match model {
                        true => search(),
                        false => generate::strategies::without_surrogate_model(search),
                    }
                })
                .collect::<Result<_>>()
        })?;
        print_row(&a, *s, *model, &runs, &budgets, target, max_budget)?;
    }
    println!("(queries to the target: the mean over all seeds, a seed that never gets there counted at {max_budget})");
    println!("({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The mean over all runs of the queries until the report value of the best-by-search architecture so far
/// is at least `target`, a run that never gets there counted at `max_budget` (averaging only the runs that
/// get there would flatter a strategy that often misses), and how many get there. A run is its queries in
/// order: (architecture, search value, report value).
fn queries_to(runs: &[Vec<(String, f64, f64)>], target: f64, max_budget: usize) -> (f64, usize) {
    let mut reached = 0;
    let mut q = Vec::new();
    for r in runs {
        let mut best = (f64::MIN, f64::NAN);
        let hit = r.iter().position(|x| {
            if x.1 > best.0 {
                best = (x.1, x.2);
            }
            best.1 >= target
        });
        reached += usize::from(hit.is_some());
        q.push(hit.map_or(max_budget, |i| i + 1) as f64);
    }
    (space::mean_std(&q).0, reached)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_that_never_reaches_the_target_counts_at_the_largest_budget() {
        let q = |s: f64, r: f64| (String::new(), s, r);
        // Reaches at query 2 (the best by search is then the second); never reaches (its best by search
        // reports low, whatever the others report).
        let runs = vec![
            vec![q(0.1, 80.0), q(0.5, 90.0), q(0.2, 95.0)],
            vec![q(0.9, 70.0), q(0.1, 99.0), q(0.2, 99.0)],
        ];
        assert_eq!(
            super::queries_to(&runs, 89.0, 300),
            ((2.0 + 300.0) / 2.0, 1)
        );
    }
}
