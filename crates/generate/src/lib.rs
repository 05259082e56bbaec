//! `generate`: proposes the next batch of candidates from the space and every result so far.
//!
//! The main trait is [`Strategy`]: one implementation per search strategy (random search, regularized
//! evolution). [`step`] is the stage: it reads the run directory, and writes the next batch of candidate files.
//!
//! Key design decision: a batch is a pure function of (space, strategy settings, seed, batch number, the
//! candidates and results of all earlier batches). The random stream is derived from (seed, "generate", batch),
//! and a new batch is only made once every earlier candidate has a result. So a run interrupted anywhere —
//! even half-way through writing a batch, which [`step`] completes by recomputing it — replays exactly the
//! candidates of an uninterrupted run.
#![deny(missing_docs)]

mod context;
mod gp;
mod schedule;
pub use context::{fitness, Context, Prior, Strategy, Taken, PRIOR_POOL};
pub use schedule::planned_epochs;
/// Every search strategy.
pub mod strategies;
pub use strategies::{strategy, Evolution, RandomSearch};

use anyhow::Result;
use space::{io, CandidateFile, Entry, Origin, Plan, Rng, RunDir, ARTIFACT_VERSION};

/// Computes batch `batch` of `n` new proposals, ids from `first_id`, from the history of earlier batches;
/// `prior` is the experiment's `[search] prior` (an error when it names one and none is given).
pub fn make_batch(
    plan: &Plan,
    history: &[Entry],
    batch: u64,
    n: usize,
    first_id: u64,
    prior: Option<Prior>,
) -> Result<Vec<CandidateFile>> {
    propose(plan, history, (batch, n, first_id), None, prior)
}

/// [`make_batch`] of (batch, n, first id), the proposals trained for `epochs` (a rung).
fn propose(
    plan: &Plan,
    history: &[Entry],
    (batch, n, first_id): (u64, usize, u64),
    epochs: Option<usize>,
    prior: Option<Prior>,
) -> Result<Vec<CandidateFile>> {
    let (sf, def) = (&plan.file, &plan.def);
    if let (Some(p), None) = (sf.experiment.search.prior, prior) {
        anyhow::bail!("[search] prior = \"{p}\": no proxy was given to compute it");
    }
    let ctx = Context {
        space: def,
        input: &sf.input,
        history,
        settings: &sf.experiment.search,
        budget: plan.budget,
        seed: sf.experiment.seed,
        prior: prior.filter(|_| sf.experiment.search.prior.is_some()),
    };
    let strat = strategy(sf.experiment.search.strategy);
    let mut taken = Taken::new(history);
    let mut rng = Rng::derive(sf.experiment.seed, "generate", &[batch]);
    let mut out: Vec<CandidateFile> = Vec::new();
    for i in 0..n {
        let Some((arch, origin)) = strat.propose(&ctx, &mut rng, &mut taken) else {
            break;
        };
        out.push(candidate(
            plan,
            &arch,
            origin,
            (batch, first_id + i as u64),
            epochs,
        ));
    }
    Ok(with_size(out))
}

/// The candidate file of `arch` with id `id` in batch `batch` (its size set by [`with_size`]).
fn candidate(
    plan: &Plan,
    arch: &space::Arch,
    origin: Origin,
    (batch, id): (u64, u64),
    epochs: Option<usize>,
) -> CandidateFile {
    let (def, input) = (&plan.def, &plan.file.input);
    let (params, flops) = def.cost(arch, input);
    CandidateFile {
        version: ARTIFACT_VERSION,
        kind: "nas.candidate".into(),
        id,
        batch,
        batch_size: 0,
        key: def.key(arch, input),
        arch: arch.to_string(),
        origin,
        params,
        flops,
        epochs,
    }
}

/// The first batch when the experiment gives architectures to start from (`[search] initial`): each once
/// (by canonical key), at most the budget of them, trained for `epochs`.
fn given(
    plan: &Plan,
    (batch, first_id): (u64, u64),
    epochs: Option<usize>,
) -> Result<Vec<CandidateFile>> {
    let mut keys = std::collections::HashSet::new();
    let mut out = Vec::new();
    for text in plan.exp().search.initial.iter().flatten() {
        let arch = plan.def.parse(text)?;
        if out.len() < plan.budget && keys.insert(plan.def.key(&arch, &plan.file.input)) {
            let id = first_id + out.len() as u64;
            out.push(candidate(plan, &arch, Origin::Given, (batch, id), epochs));
        }
    }
    Ok(with_size(out))
}

fn with_size(mut batch: Vec<CandidateFile>) -> Vec<CandidateFile> {
    let size = batch.len() as u64;
    batch.iter_mut().for_each(|c| c.batch_size = size);
    batch
}

/// Batch `batch` (ids from `first_id`) after `history`, in which every candidate has a result: new
/// proposals or promotions, as the schedule says ([`schedule::next`]); `None` when the budget is spent.
fn next_batch(
    plan: &Plan,
    history: &[Entry],
    (batch, first_id): (u64, u64),
    prior: Option<Prior>,
) -> Result<Option<Vec<CandidateFile>>> {
    Ok(match schedule::next(plan, history, plan.budget) {
        schedule::Next::Done => None,
        schedule::Next::Propose { epochs, .. }
            if history.is_empty()
                && plan
                    .exp()
                    .search
                    .initial
                    .as_ref()
                    .is_some_and(|v| !v.is_empty()) =>
        {
            Some(given(plan, (batch, first_id), epochs)?)
        }
        schedule::Next::Propose { n, epochs } => {
            // Strategies see each architecture once, at the rung it was proposed at.
            let proposals: Vec<Entry>;
            let seen = if plan.exp().search.fidelity == space::Fidelity::Full {
                history
            } else {
                proposals = history
                    .iter()
                    .filter(|e| schedule::is_proposal(e))
                    .cloned()
                    .collect();
                &proposals
            };
            Some(propose(plan, seen, (batch, n, first_id), epochs, prior)?)
        }
        schedule::Next::Promote { from, epochs } => Some(with_size(
            from.iter()
                .enumerate()
                .map(|(i, e)| CandidateFile {
                    version: ARTIFACT_VERSION,
                    id: first_id + i as u64,
                    batch,
                    origin: Origin::Promotion(e.candidate.stream_id()),
                    epochs: Some(epochs),
                    ..e.candidate.clone()
                })
                .collect(),
        )),
    })
}

/// What one generate step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// New candidate files were written (their ids).
    Generated(Vec<u64>),
    /// Nothing written: this many candidates still wait for a result.
    Pending(usize),
    /// Every candidate has a result and no more will be generated, for this reason.
    Done(End),
}

/// Why a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// As many candidates as the budget were evaluated.
    Budget,
    /// The strategy found no architecture that was not tried yet: the space ran out before the budget.
    SpaceExhausted,
}

/// The generate stage: completes a half-written batch, or writes the next one when every candidate has a
/// result and the budget is not spent. Safe to run again at any time; concurrent runs write the same files.
///
/// `prior` computes the experiment's `[search] prior`, if it names one.
pub fn step(run: &RunDir, prior: Option<Prior>) -> Result<Step> {
    let plan = run.load_plan()?;
    let history = run.history(&plan.def, &plan.file.input)?;
    if let Some(last) = history.last() {
        let b = last.candidate.batch;
        let in_batch = history.iter().filter(|e| e.candidate.batch == b).count() as u64;
        if in_batch < last.candidate.batch_size {
            let before: Vec<Entry> = history
                .iter()
                .filter(|e| e.candidate.batch < b)
                .cloned()
                .collect();
            let first = before.last().map_or(1, |e| e.candidate.id + 1);
            let want = next_batch(&plan, &before, (b, first), prior)?.unwrap_or_default();
            let mut written = Vec::new();
            for c in want {
                if !history.iter().any(|e| e.candidate.id == c.id) {
                    write_candidate(run, &c)?;
                    written.push(c.id);
                }
            }
            return Ok(Step::Generated(written));
        }
    }
    let pending = history.iter().filter(|e| e.result.is_none()).count();
    if pending > 0 {
        return Ok(Step::Pending(pending));
    }
    let batch = history.last().map_or(0, |e| e.candidate.batch + 1);
    let first = history.last().map_or(1, |e| e.candidate.id + 1);
    let Some(cands) = next_batch(&plan, &history, (batch, first), prior)? else {
        return Ok(Step::Done(End::Budget));
    };
    if cands.is_empty() {
        return Ok(Step::Done(End::SpaceExhausted));
    }
    for c in &cands {
        write_candidate(run, c)?;
    }
    Ok(Step::Generated(cands.iter().map(|c| c.id).collect()))
}

fn write_candidate(run: &RunDir, c: &CandidateFile) -> Result<()> {
    let text = toml::to_string(c)?;
    io::atomic_create_new(&run.candidate(c.id), text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::{Experiment, ResultFile, SpaceFile};
    use std::collections::HashSet;

    fn setup(strategy: &str, seed: u64) -> (RunDir, SpaceFile) {
        setup_with(strategy, seed, space::Fidelity::Full)
    }

    fn setup_with(strategy: &str, seed: u64, fidelity: space::Fidelity) -> (RunDir, SpaceFile) {
        let (run, plan) = new_run(&format!("{strategy}-{seed}-{fidelity}"), |e| {
            e.seed = seed;
            e.search.fidelity = fidelity;
            e.evaluate.epochs = Some(8);
            e.search.strategy = strategy.parse().unwrap();
            e.search.budget = Some(24);
            e.search.population = 6;
        });
        (run, plan.file)
    }

    /// A fresh run directory `name` (under the temporary directory) holding the plan of the default
    /// experiment as `edit` changes it.
    fn new_run(name: &str, edit: impl FnOnce(&mut Experiment)) -> (RunDir, Plan) {
        let dir = std::env::temp_dir().join(format!("nas-gen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut e = Experiment::default();
        edit(&mut e);
        let run = RunDir::new(&dir);
        run.create().unwrap();
        let (plan, _) = data::resolve(e).unwrap();
        plan.file.write(&run).unwrap();
        (run, plan)
    }

    /// A fake evaluator: the score is a deterministic function of the architecture text.
    fn fake_eval(run: &RunDir) {
        let plan = run.load_plan().unwrap();
        let (sf, def) = (&plan.file, &plan.def);
        for e in run.history(def, &sf.input).unwrap() {
            if e.result.is_none() {
                // Longer trainings score a little higher, as they do.
                let s = (space::rng::fnv1a(e.candidate.arch.as_bytes()) % 900) as f64 / 1000.0
                    + e.candidate.epochs.unwrap_or(8) as f64 / 100.0;
                let r = ResultFile {
                    version: 1,
                    kind: "nas.result".into(),
                    id: e.candidate.id,
                    arch: e.candidate.arch.clone(),
                    status: space::Status::Ok,
                    fold_scores: vec![s],
                    cv_mean: s,
                    cv_std: 0.0,
                    paired_mean: None,
                    params: 0,
                    flops: 0,
                    wall_s: 0.0,
                    evaluator: space::EvaluatedBy::Other("fake".into()),
                    epochs: None,
                    error: String::new(),
                    metrics: Default::default(),
                    per_class: None,
                    curves: Vec::new(),
                };
                io::write_toml(&run.result(e.candidate.id), &r).unwrap();
            }
        }
    }

    fn drive(run: &RunDir) -> Vec<String> {
        loop {
            match step(run, None).unwrap() {
                Step::Done(_) => break,
                _ => fake_eval(run),
            }
        }
        let plan = run.load_plan().unwrap();
        let (sf, def) = (&plan.file, &plan.def);
        run.history(def, &sf.input)
            .unwrap()
            .iter()
            .map(|e| e.candidate.arch.clone())
            .collect()
    }

    #[test]
    fn budget_is_met_without_duplicates_and_resume_after_partial_batch_is_identical() {
        for &strat in space::Strategy::ALL {
            let (run, _) = setup(strat.name(), 5);
            let full = drive(&run);
            assert_eq!(full.len(), 24);
            let plan = run.load_plan().unwrap();
            let (sf, def) = (&plan.file, &plan.def);
            let keys: HashSet<String> = full
                .iter()
                .map(|a| def.key(&def.parse(a).unwrap(), &sf.input))
                .collect();
            assert_eq!(keys.len(), 24, "{strat}: duplicates");
            // Damage the run as a crash would: drop the last two results and one candidate of a batch.
            let last = 24u64;
            std::fs::remove_file(run.result(last)).unwrap();
            std::fs::remove_file(run.result(last - 1)).unwrap();
            std::fs::remove_file(run.candidate(last)).unwrap();
            assert_eq!(step(&run, None).unwrap(), Step::Generated(vec![last]));
            assert_eq!(drive(&run), full, "{strat}: resume changed the sequence");
            let _ = std::fs::remove_dir_all(&run.root);
        }
    }

    /// (batch size, epochs, origins are promotions) of each batch.
    fn batches(run: &RunDir) -> Vec<(usize, usize, bool)> {
        let plan = run.load_plan().unwrap();
        let (sf, def) = (&plan.file, &plan.def);
        let h = run.history(def, &sf.input).unwrap();
        let mut out: Vec<(usize, usize, bool)> = Vec::new();
        for (i, e) in h.iter().enumerate() {
            if i == 0 || e.candidate.batch != h[i - 1].candidate.batch {
                let promoted = matches!(e.candidate.origin, Origin::Promotion(_));
                out.push((0, e.candidate.epochs_or(8), promoted));
            }
            out.last_mut().unwrap().0 += 1;
        }
        out
    }

    #[test]
    fn halving_promotes_the_best_third_of_each_rung_and_replays_after_a_crash() {
        use space::Fidelity;
        let (run, _) = setup_with("evolution", 3, Fidelity::Halving);
        let full = drive(&run);
        let b = batches(&run);
        #[rustfmt::skip]
        assert_eq!(b, [
            (9, 1, false), (3, 3, true), (1, 8, true),
            (9, 1, false), (3, 3, true), (1, 8, true),
            (6, 1, false), (2, 3, true), (1, 8, true),
        ]);
        // Each promotion is among the best of its rung, and keyed to the candidate first trained.
        let plan = run.load_plan().unwrap();
        let (sf, def) = (&plan.file, &plan.def);
        let h = run.history(def, &sf.input).unwrap();
        let score = |id: u64| h[id as usize - 1].result.as_ref().unwrap().cv_mean;
        for e in &h {
            if let Origin::Promotion(root) = e.candidate.origin {
                let prev = h.iter().filter(|p| {
                    p.candidate.batch + 1 == e.candidate.batch && p.candidate.stream_id() == root
                });
                let prev = prev
                    .map(|p| p.candidate.id)
                    .next()
                    .expect("promoted from the batch before");
                let rivals = h
                    .iter()
                    .filter(|p| p.candidate.batch + 1 == e.candidate.batch);
                let better = rivals
                    .filter(|p| score(p.candidate.id) > score(prev))
                    .count();
                let promoted = h
                    .iter()
                    .filter(|p| p.candidate.batch == e.candidate.batch)
                    .count();
                assert!(
                    better < promoted,
                    "c{} was promoted over better ones",
                    e.candidate.id
                );
                assert_eq!(h[root as usize - 1].candidate.key, e.candidate.key);
            }
        }
        // A crash half-way through writing a promotion batch: the rerun completes it identically.
        let last = h.len() as u64;
        std::fs::remove_file(run.result(last)).unwrap();
        std::fs::remove_file(run.result(last - 1)).unwrap();
        std::fs::remove_file(run.result(last - 2)).unwrap();
        std::fs::remove_file(run.candidate(last - 1)).unwrap();
        std::fs::remove_file(run.candidate(last)).unwrap();
        assert_eq!(step(&run, None).unwrap(), Step::Generated(vec![last - 1]));
        assert_eq!(drive(&run), full);
        let _ = std::fs::remove_dir_all(&run.root);
    }

    #[test]
    fn hyperband_cycles_its_brackets_from_the_lowest_rung_to_the_top() {
        let (run, _) = setup_with("random", 4, space::Fidelity::Hyperband);
        drive(&run);
        #[rustfmt::skip]
        assert_eq!(batches(&run), [
            (9, 1, false), (3, 3, true), (1, 8, true),
            (5, 3, false), (1, 8, true),
            (3, 8, false),
            (7, 1, false), (2, 3, true), (1, 8, true),
        ]);
        let _ = std::fs::remove_dir_all(&run.root);
    }

    /// `[search] initial`: in every strategy the first batch is the given architectures, each once (a
    /// duplicate by canonical key is dropped), origin `given`; the strategy's own proposals follow and never
    /// repeat them. A name outside the space is refused when the plan is made, naming the key.
    #[test]
    fn the_given_architectures_are_the_first_batch() {
        let given = [
            "conv16x3-relu",
            "conv16x3-relu",
            "conv8x5-silu-bn/conv32x3-relu",
        ];
        for &strat in space::Strategy::ALL {
            let (run, plan) = new_run(&format!("given-{}", strat.name()), |e| {
                e.search.strategy = strat;
                e.search.budget = Some(10);
                e.search.initial = Some(given.iter().map(|s| s.to_string()).collect());
            });
            assert_eq!(step(&run, None).unwrap(), Step::Generated(vec![1, 2]));
            fake_eval(&run);
            let Step::Generated(next) = step(&run, None).unwrap() else {
                panic!("{}: no second batch", strat.name());
            };
            assert_eq!(next, [3, 4, 5, 6], "{}", strat.name());
            drive(&run);
            let h = run.history(&plan.def, &plan.file.input).unwrap();
            assert_eq!(h.len(), 10, "{}", strat.name());
            for (e, want) in h.iter().zip([given[0], given[2]]) {
                assert_eq!(
                    (e.candidate.batch, e.arch.to_string()),
                    (0, want.to_string())
                );
                assert_eq!(e.candidate.origin, Origin::Given);
            }
            assert!(h[2..].iter().all(|e| e.candidate.origin != Origin::Given));
            let keys: HashSet<&str> = h.iter().map(|e| e.candidate.key.as_str()).collect();
            assert_eq!(
                keys.len(),
                10,
                "{}: a given architecture was proposed again",
                strat.name()
            );
            let _ = std::fs::remove_dir_all(&run.root);
        }
        let mut e = Experiment::default();
        e.search.initial = Some(vec!["conv16x7-relu".into()]);
        let err = data::resolve(e).unwrap_err().to_string();
        assert!(err.contains("[search] initial: `conv16x7-relu`"), "{err}");
    }

    /// Local search climbs from the given architectures: its first batch after them is their best's neighbours.
    #[test]
    fn local_search_climbs_from_the_given_architectures() {
        let (run, plan) = new_run("given-local", |e| {
            e.search.strategy = space::Strategy::Local;
            e.search.budget = Some(6);
            e.search.initial = Some(vec!["conv16x3-relu".into()]);
        });
        assert_eq!(step(&run, None).unwrap(), Step::Generated(vec![1]));
        fake_eval(&run);
        step(&run, None).unwrap();
        let h = run.history(&plan.def, &plan.file.input).unwrap();
        assert!(h.len() > 1);
        for e in &h[1..] {
            assert_eq!(e.candidate.origin, Origin::Neighbour(1), "{}", e.arch);
        }
        let _ = std::fs::remove_dir_all(&run.root);
    }

    #[test]
    fn evolution_uses_mutations_after_the_initial_population() {
        let (run, _) = setup("evolution", 9);
        drive(&run);
        let plan = run.load_plan().unwrap();
        let (sf, def) = (&plan.file, &plan.def);
        let h = run.history(def, &sf.input).unwrap();
        assert!(h[..6].iter().all(|e| e.candidate.origin == Origin::Random));
        assert!(h[8..]
            .iter()
            .any(|e| matches!(e.candidate.origin, Origin::Mutation(_))));
        let _ = std::fs::remove_dir_all(&run.root);
    }
}
