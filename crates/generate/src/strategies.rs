//! The classic heuristics — genetic algorithm, simulated annealing, local search — and our surrogate-guided
//! search. Each is a pure function of the history: state such as the annealing walk's current point is
//! replayed from the history, with its random decisions drawn from streams keyed by candidate id.

use crate::{fitness, random_new, Context, Strategy, Taken};
use space::{Arch, Entry, Origin, Rng};

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
/// neighbour tried), restart from a random architecture.
pub struct LocalSearch;

impl Strategy for LocalSearch {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let start = ctx
            .history
            .iter()
            .rposition(|e| e.candidate.origin == Origin::Random);
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

/// Ours: surrogate-guided local search. It starts from an initial design of uniform samples (3 ×
/// `population`, at most a quarter of the budget) and climbs from the best of them. A ridge regression on the
/// one-hot encoding of the canonical architecture, refitted to every score so far, orders the moves: each step
/// evaluates the untried one-edit neighbour of the climb's best candidate with the highest prediction. At a
/// local optimum (every neighbour tried) the climb restarts at the untried uniform sample with the highest
/// prediction. Nothing in it depends on the space family or the data set.
pub struct Surrogate;

const RIDGE: f64 = 1e-1;
const RESTART_SAMPLES: usize = 100;

impl Surrogate {
    /// Size of the initial design of uniform samples.
    fn initial(settings: &space::experiment::SearchSpec) -> usize {
        (3 * settings.population).min(settings.budget() / 4).max(2)
    }
}

/// A linear model over 0/1 features given as the list of set positions.
struct Linear {
    w: Vec<f64>,
    b: f64,
}

impl Linear {
    fn predict(&self, x: &[usize]) -> f64 {
        self.b + x.iter().map(|&i| self.w[i]).sum::<f64>()
    }
}

/// Fits y ≈ w·x + b by ridge regression (targets centred, intercept unpenalised); `xs` are the set positions
/// of 0/1 feature vectors of length `d`. Cost O(n·nnz² + d³).
fn fit_ridge(d: usize, xs: &[Vec<usize>], ys: &[f64]) -> Linear {
    let n = ys.len() as f64;
    let ym = ys.iter().sum::<f64>() / n;
    let mut xm = vec![0.0; d];
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for (x, y) in xs.iter().zip(ys) {
        for &i in x {
            xm[i] += 1.0 / n;
            b[i] += y - ym;
            for &j in x {
                a[i * d + j] += 1.0;
            }
        }
    }
    // Centre: Σ (x - m)(x - m)ᵀ = Σ x xᵀ - n m mᵀ.
    for i in 0..d {
        for j in 0..d {
            a[i * d + j] -= n * xm[i] * xm[j];
        }
        a[i * d + i] += RIDGE;
    }
    // Cholesky solve of the symmetric positive definite system.
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            l[i * d + j] = if i == j {
                s.max(1e-12).sqrt()
            } else {
                s / l[j * d + j]
            };
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[i * d + k] * z[k]).sum();
        z[i] = (b[i] - s) / l[i * d + i];
    }
    let mut w = vec![0.0; d];
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[k * d + i] * w[k]).sum();
        w[i] = (z[i] - s) / l[i * d + i];
    }
    let b = ym - w.iter().zip(&xm).map(|(a, b)| a * b).sum::<f64>();
    Linear { w, b }
}

impl Strategy for Surrogate {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)> {
        let scored: Vec<&Entry> = ctx.history.iter().filter(|e| fitness(e) >= 0.0).collect();
        if ctx.history.len() < Self::initial(ctx.settings) || scored.len() < 2 {
            return random_new(ctx, rng, taken).map(|a| (a, Origin::Random));
        }
        let xs: Vec<Vec<usize>> = scored
            .iter()
            .map(|e| ctx.space.features(&e.arch, ctx.input))
            .collect();
        let ys: Vec<f64> = scored.iter().map(|e| fitness(e)).collect();
        let model = fit_ridge(ctx.space.feature_count(), &xs, &ys);
        let predict = |a: &Arch| model.predict(&ctx.space.features(a, ctx.input));
        // The climb since the last restart (or since the start), from its best candidate.
        let start = ctx
            .history
            .iter()
            .rposition(|e| e.candidate.origin == Origin::SurrogateRestart)
            .unwrap_or(0);
        let cur = ctx.history[start..]
            .iter()
            .min_by(|a, b| better(a, b))
            .expect("non-empty");
        let mut moves: Vec<(f64, usize, Arch)> = ctx
            .space
            .neighbours(&cur.arch)
            .into_iter()
            .enumerate()
            .map(|(i, n)| (predict(&n), i, n))
            .collect();
        moves.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        for (_, _, a) in moves {
            if taken.claim(ctx, &a) {
                return Some((a, Origin::SurrogatePick(cur.candidate.id)));
            }
        }
        // A local optimum: restart at the untried sample with the highest prediction.
        let mut best: Option<(f64, Arch)> = None;
        for _ in 0..RESTART_SAMPLES {
            let a = ctx.space.sample(rng);
            let y = predict(&a);
            if best.as_ref().is_none_or(|b| y > b.0)
                && !taken.contains(&ctx.space.key(&a, ctx.input))
            {
                best = Some((y, a));
            }
        }
        if let Some((_, a)) = best {
            if taken.claim(ctx, &a) {
                return Some((a, Origin::SurrogateRestart));
            }
        }
        random_new(ctx, rng, taken).map(|a| (a, Origin::Random))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_function() {
        let mut rng = Rng::derive(1, "ridge", &[]);
        let xs: Vec<Vec<usize>> = (0..200)
            .map(|_| (0..4).filter(|_| rng.below(2) == 1).collect())
            .collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|x| {
                0.5 + [2.0, 0.0, -1.0, 0.25]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| x.contains(i))
                    .map(|(_, w)| w)
                    .sum::<f64>()
            })
            .collect();
        let Linear { w, b } = fit_ridge(4, &xs, &ys);
        for (got, want) in w.iter().zip([2.0, 0.0, -1.0, 0.25]) {
            assert!((got - want).abs() < 0.01, "{w:?}");
        }
        assert!((b - 0.5).abs() < 0.01);
    }
}
