//! Every search strategy: random search, regularized evolution, the classic heuristics — genetic algorithm,
//! simulated annealing, local search — and our surrogate-guided search, and [`strategy`] to pick one. Each is a pure function of the history: state such as the annealing walk's current point is
//! replayed from the history, with its random decisions drawn from streams keyed by candidate id.

use crate::context::{fitness, random_new, Context, Strategy, Taken};
use space::{Arch, Entry, Origin, Rng};

/// The implementation of a strategy.
pub fn strategy(s: space::Strategy) -> Box<dyn Strategy> {
    use space::Strategy as S;
    match s {
        S::Random => Box::new(RandomSearch),
        S::Evolution => Box::new(Evolution),
        S::Ga => Box::new(Genetic),
        S::Annealing => Box::new(Annealing),
        S::Local => Box::new(LocalSearch),
        S::Surrogate => Box::new(Surrogate),
    }
}

/// Random search.
pub struct RandomSearch;

impl Strategy for RandomSearch {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        random_new(ctx, rng, taken).map(|a| (a, Origin::Random))
    }
}

/// Regularized (aging) evolution (Real et al., 2019): the population is the most recent `population`
/// evaluated candidates; a child is a mutation of the best of `sample` members drawn at random.
pub struct Evolution;
impl Strategy for Evolution {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let p = ctx.settings.population;
        if ctx.history.len() < p {
            return RandomSearch.propose(ctx, rng, taken);
        }
        let pop = &ctx.history[ctx.history.len() - p..];
        for _ in 0..50 {
            let mut idx: Vec<usize> = (0..pop.len()).collect();
            rng.shuffle(&mut idx);
            let parent = idx[..ctx.settings.sample.min(pop.len())]
                .iter()
                .map(|&i| &pop[i])
                .max_by(|a, b| {
                    fitness(a)
                        .total_cmp(&fitness(b))
                        .then(b.candidate.id.cmp(&a.candidate.id))
                })
                .expect("sample >= 1");
            let child = ctx.space.mutate(&parent.arch, ctx.input, rng);
            if taken.claim(ctx, &child) {
                return Some((child, Origin::Mutation(parent.candidate.id)));
            }
        }
        RandomSearch.propose(ctx, rng, taken)
    }
}

/// Order: higher fitness first, then the earlier candidate.
fn better(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    fitness(b)
        .total_cmp(&fitness(a))
        .then(a.candidate.id.cmp(&b.candidate.id))
}

fn tournament<'a>(pop: &[&'a Entry], k: usize, rng: &mut Rng) -> &'a Entry {
    (0..k.max(1))
        .map(|_| pop[rng.below(pop.len())])
        .min_by(|a, b| better(a, b))
        .expect("k >= 1")
}

/// Tries the one-edit neighbours of `parent` until one is new: in random order, or with a prior, best by
/// prior first.
fn new_mutation(ctx: &Context, parent: &Arch, rng: &mut Rng, taken: &mut Taken) -> Option<Arch> {
    let mut ns = ctx.space.neighbours(parent);
    rng.shuffle(&mut ns);
    if let Some(prior) = ctx.prior {
        let mut scored: Vec<(f64, Arch)> = ns
            .into_iter()
            .filter(|n| !taken.contains(&ctx.space.key(n, ctx.input)))
            .map(|n| (prior(&n), n))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        ns = scored.into_iter().map(|(_, n)| n).collect();
    }
    ns.into_iter().find(|n| taken.claim(ctx, n))
}

/// Steady-state genetic algorithm: the population is the best `population` candidates so far; parents by
/// tournament (`sample`); a child is, with probability `crossover`, a crossover of two parents, then mutated.
pub struct Genetic;

impl Strategy for Genetic {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let p = ctx.settings.population;
        if ctx.history.len() < p {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::Random));
        }
        let mut pop: Vec<&Entry> = ctx.history.iter().collect();
        pop.sort_by(|a, b| better(a, b));
        pop.truncate(p);
        // Parents whose every one-edit neighbour is taken: no need to enumerate them again this time.
        let mut exhausted = std::collections::HashSet::new();
        for _ in 0..50 {
            let a = tournament(&pop, ctx.settings.sample, rng);
            if rng.uniform() < ctx.settings.crossover {
                let b = tournament(&pop, ctx.settings.sample, rng);
                let child = ctx.space.crossover(&a.arch, &b.arch, rng);
                let child = ctx.space.mutate(&child, ctx.input, rng);
                if taken.claim(ctx, &child) {
                    return Some((child, Origin::Crossover(a.candidate.id, b.candidate.id)));
                }
            } else if !exhausted.contains(&a.candidate.id) {
                match new_mutation(ctx, &a.arch, rng, taken) {
                    Some(child) => return Some((child, Origin::Mutation(a.candidate.id))),
                    None => {
                        exhausted.insert(a.candidate.id);
                    }
                }
            }
        }
        random_new(ctx, rng, taken).map(|a| (a, Origin::Random))
    }
}

/// Simulated annealing on one-edit moves: every candidate after the first is a move proposed from the
/// walk's current point, accepted when better or with probability exp(Δ/T); T starts at `temperature` and is
/// multiplied by `cooling` after each candidate. When every neighbour is taken, the walk restarts at random.
pub struct Annealing;

impl Strategy for Annealing {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let Some(first) = ctx.history.first() else {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::Random));
        };
        let mut cur = first;
        let mut t = ctx.settings.temperature;
        for e in &ctx.history[1..] {
            t *= ctx.settings.cooling;
            let delta = fitness(e) - fitness(cur);
            let u = Rng::derive(ctx.seed, "anneal-accept", &[e.candidate.id]).uniform();
            if e.candidate.origin == Origin::Random
                || delta >= 0.0
                || u < (delta / t.max(1e-12)).exp()
            {
                cur = e;
            }
        }
        match new_mutation(ctx, &cur.arch, rng, taken) {
            Some(a) => Some((a, Origin::Move(cur.candidate.id))),
            None => random_new(ctx, rng, taken).map(|a| (a, Origin::Random)),
        }
    }
}

/// Local search: from the best candidate of the current climb, evaluate its untried one-edit neighbours in
/// random order (moving as soon as one is better, since the climb's best changes); at a local optimum (every
/// neighbour tried), restart from a random architecture. The given architectures (`[search] initial`) start
/// the first climb, from the best of them.
pub struct LocalSearch;

impl Strategy for LocalSearch {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let start = ctx
            .history
            .iter()
            .rposition(|e| matches!(e.candidate.origin, Origin::Random | Origin::Given));
        let Some(start) = start else {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::Random));
        };
        let cur = ctx.history[start..]
            .iter()
            .min_by(|a, b| better(a, b))
            .expect("non-empty");
        match new_mutation(ctx, &cur.arch, rng, taken) {
            Some(a) => Some((a, Origin::Neighbour(cur.candidate.id))),
            None => random_new(ctx, rng, taken).map(|a| (a, Origin::Random)),
        }
    }
}

/// Ours: surrogate-guided local search. After an initial design of `population` uniform samples (at most a
/// quarter of the budget; with a prior, each the best by prior of a pool), it climbs from the best
/// candidate since the last restart: every step fits a Gaussian process to all scores so far
/// ([`crate::gp`]: a Hamming kernel on the one-hot encoding of the canonical architecture, with a mean
/// linear in the prior when there is one) and evaluates the untried one-edit neighbour of highest expected
/// improvement. At a local optimum (every neighbour tried) it restarts at a new random candidate. Nothing
/// in it depends on the space family or the data.
pub struct Surrogate;

thread_local! {
    static MODEL_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Runs `f` with the surrogate's model switched off on this thread: it tries the neighbours in random order,
/// or by prior alone when there is one. The ablation that shows what the model contributes (`nas bench
/// --ablation`).
pub fn without_surrogate_model<R>(f: impl FnOnce() -> R) -> R {
    let before = MODEL_ON.replace(false);
    let r = f();
    MODEL_ON.set(before);
    r
}

impl Surrogate {
    /// Size of the initial design of uniform samples.
    fn initial(ctx: &Context) -> usize {
        ctx.settings.population.min(ctx.budget / 4).max(2)
    }
}

/// A prior's value on a log scale (synflow spans many orders of magnitude); −∞ as a very low value.
fn prior_scale(v: f64) -> f64 {
    if v.is_finite() {
        v.signum() * v.abs().ln_1p()
    } else {
        -1e3
    }
}

impl Strategy for Surrogate {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let scored: Vec<&Entry> = ctx.history.iter().filter(|e| fitness(e) >= 0.0).collect();
        if ctx.history.len() < Self::initial(ctx) || scored.len() < 2 {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::Random));
        }
        // A climb from the best candidate since the last restart: its untried one-edit neighbours, in the
        // model's order; at a local optimum (all tried) it restarts at a new random candidate.
        let start = ctx
            .history
            .iter()
            .rposition(|e| e.candidate.origin == Origin::SurrogateRestart)
            .unwrap_or(0);
        let cur = ctx.history[start..]
            .iter()
            .min_by(|a, b| better(a, b))
            .expect("non-empty");
        let mut keys = std::collections::HashSet::new();
        let mut pool: Vec<Arch> = ctx
            .space
            .neighbours(&cur.arch)
            .into_iter()
            .filter(|n| {
                let key = ctx.space.key(n, ctx.input);
                !taken.contains(&key) && keys.insert(key)
            })
            .collect();
        if pool.is_empty() {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::SurrogateRestart));
        }
        let prior_of = |a: &Arch| ctx.prior.map(|p| prior_scale(p(a)));
        let pick = if MODEL_ON.get() {
            // The prior, standardised over the scored candidates.
            let hist_prior: Vec<f64> = scored.iter().filter_map(|e| prior_of(&e.arch)).collect();
            let (pm, ps) = space::mean_std(&hist_prior);
            let z = |a: &Arch| prior_of(a).map(|p| (p - pm) / ps.max(1e-9));
            let onehot = |a: &Arch| {
                let mut f = ctx.space.features(a, ctx.input);
                f.sort_unstable();
                f
            };
            let ys: Vec<f64> = scored.iter().map(|e| fitness(e)).collect();
            let zs: Option<Vec<f64>> = scored.iter().map(|e| z(&e.arch)).collect();
            let xs = scored.iter().map(|e| onehot(&e.arch)).collect();
            match crate::gp::Gp::fit(xs, &ys, zs.as_deref()) {
                Some(gp) => {
                    let top = ys.iter().copied().fold(f64::MIN, f64::max);
                    argmax(&pool, |a| {
                        let (m, s) = gp.predict(&onehot(a), z(a));
                        crate::gp::expected_improvement(m, s, top)
                    })
                }
                None => rng.below(pool.len()),
            }
        } else if ctx.prior.is_some() {
            argmax(&pool, |a| prior_of(a).unwrap_or(0.0))
        } else {
            rng.below(pool.len())
        };
        let arch = pool.swap_remove(pick);
        taken
            .claim(ctx, &arch)
            .then_some((arch, Origin::SurrogatePick(cur.candidate.id)))
    }
}

/// The index of the highest `score` in `pool` (the first of equals).
fn argmax(pool: &[Arch], score: impl Fn(&Arch) -> f64) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for (i, a) in pool.iter().enumerate() {
        let s = score(a);
        if s > best.0 {
            best = (s, i);
        }
    }
    best.1
}
