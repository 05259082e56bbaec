//! The classic heuristics — genetic algorithm, simulated annealing, local search — and our surrogate-guided
//! search. Each is a pure function of the history: state such as the annealing walk's current point is
//! replayed from the history, with its random decisions drawn from streams keyed by candidate id.

use crate::{fitness, random_new, Context, Strategy, Taken};
use space::{Arch, Entry, Rng};

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

/// Tries mutations of `parent` until one is new.
fn new_mutation(ctx: &Context, parent: &Arch, rng: &mut Rng, taken: &mut Taken) -> Option<Arch> {
    let mut ns = ctx.space.neighbours(parent);
    rng.shuffle(&mut ns);
    ns.into_iter().find(|n| taken.claim(ctx, n))
}

/// Steady-state genetic algorithm: the population is the best `population` candidates so far; parents by
/// tournament (`sample`); a child is, with probability `crossover`, a crossover of two parents, then mutated.
pub struct Genetic;

impl Strategy for Genetic {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, String)> {
        let p = ctx.settings.population;
        if ctx.history.len() < p {
            return random_new(ctx, rng, taken).map(|a| (a, "random".into()));
        }
        let mut pop: Vec<&Entry> = ctx.history.iter().collect();
        pop.sort_by(|a, b| better(a, b));
        pop.truncate(p);
        for _ in 0..50 {
            let a = tournament(&pop, ctx.settings.sample, rng);
            if rng.uniform() < ctx.settings.crossover {
                let b = tournament(&pop, ctx.settings.sample, rng);
                let child = ctx.space.crossover(&a.arch, &b.arch, rng);
                let child = ctx.space.mutate(&child, ctx.input, rng);
                if taken.claim(ctx, &child) {
                    return Some((
                        child,
                        format!("crossover of {} and {}", a.candidate.id, b.candidate.id),
                    ));
                }
            } else if let Some(child) = new_mutation(ctx, &a.arch, rng, taken) {
                return Some((child, format!("mutation of {}", a.candidate.id)));
            }
        }
        random_new(ctx, rng, taken).map(|a| (a, "random".into()))
    }
}

/// Simulated annealing on one-edit moves: every candidate after the first is a move proposed from the
/// walk's current point, accepted when better or with probability exp(Δ/T); T starts at `temperature` and is
/// multiplied by `cooling` after each candidate. When every neighbour is taken, the walk restarts at random.
pub struct Annealing;

impl Strategy for Annealing {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, String)> {
        let Some(first) = ctx.history.first() else {
            return random_new(ctx, rng, taken).map(|a| (a, "random".into()));
        };
        let mut cur = first;
        let mut t = ctx.settings.temperature;
        for e in &ctx.history[1..] {
            t *= ctx.settings.cooling;
            let delta = fitness(e) - fitness(cur);
            let u = Rng::derive(ctx.seed, "anneal-accept", &[e.candidate.id]).uniform();
            if e.candidate.origin == "random" || delta >= 0.0 || u < (delta / t.max(1e-12)).exp() {
                cur = e;
            }
        }
        match new_mutation(ctx, &cur.arch, rng, taken) {
            Some(a) => Some((a, format!("move from {}", cur.candidate.id))),
            None => random_new(ctx, rng, taken).map(|a| (a, "random".into())),
        }
    }
}

/// Local search: from the best candidate of the current climb, evaluate its untried one-edit neighbours in
/// random order (moving as soon as one is better, since the climb's best changes); at a local optimum (every
/// neighbour tried), restart from a random architecture.
pub struct LocalSearch;

impl Strategy for LocalSearch {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, String)> {
        let start = ctx
            .history
            .iter()
            .rposition(|e| e.candidate.origin == "random");
        let Some(start) = start else {
            return random_new(ctx, rng, taken).map(|a| (a, "random".into()));
        };
        let cur = ctx.history[start..]
            .iter()
            .min_by(|a, b| better(a, b))
            .expect("non-empty");
        match new_mutation(ctx, &cur.arch, rng, taken) {
            Some(a) => Some((a, format!("neighbour of {}", cur.candidate.id))),
            None => random_new(ctx, rng, taken).map(|a| (a, "random".into())),
        }
    }
}

/// Ours: surrogate-guided local search. A ridge regression on the canonical encoding, fitted to every score so
/// far, orders the untried one-edit neighbours of the current climb's best candidate, and only the most
/// promising one is evaluated; at a local optimum the climb restarts at random. The first `population`
/// candidates are random.
pub struct Surrogate;

const RIDGE: f64 = 1e-1;

/// Fits y ≈ w·x + b by ridge regression (targets centred, intercept unpenalised).
fn fit_ridge(xs: &[Vec<f64>], ys: &[f64]) -> (Vec<f64>, f64) {
    let d = xs.first().map_or(0, |x| x.len());
    let n = ys.len() as f64;
    let ym = ys.iter().sum::<f64>() / n;
    let mut xm = vec![0.0; d];
    for x in xs {
        for j in 0..d {
            xm[j] += x[j] / n;
        }
    }
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for (x, y) in xs.iter().zip(ys) {
        let xc: Vec<f64> = x.iter().zip(&xm).map(|(v, m)| v - m).collect();
        for i in 0..d {
            if xc[i] == 0.0 {
                continue;
            }
            b[i] += xc[i] * (y - ym);
            for j in 0..d {
                a[i * d + j] += xc[i] * xc[j];
            }
        }
    }
    for i in 0..d {
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
    let bias = ym - w.iter().zip(&xm).map(|(a, b)| a * b).sum::<f64>();
    (w, bias)
}

impl Strategy for Surrogate {
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, String)> {
        let scored: Vec<&Entry> = ctx.history.iter().filter(|e| fitness(e) >= 0.0).collect();
        if ctx.history.len() < ctx.settings.population || scored.len() < 2 {
            return random_new(ctx, rng, taken).map(|a| (a, "random".into()));
        }
        let xs: Vec<Vec<f64>> = scored
            .iter()
            .map(|e| ctx.space.encode(&e.arch, ctx.input))
            .collect();
        let ys: Vec<f64> = scored.iter().map(|e| fitness(e)).collect();
        let (w, b) = fit_ridge(&xs, &ys);
        let predict = |a: &Arch| -> f64 {
            b + ctx
                .space
                .encode(a, ctx.input)
                .iter()
                .zip(&w)
                .map(|(x, w)| x * w)
                .sum::<f64>()
        };
        // Local search whose moves are ordered by the surrogate: from the best candidate of the current climb,
        // the untried one-edit neighbour with the highest prediction; a random restart at a local optimum.
        let start = ctx
            .history
            .iter()
            .rposition(|e| e.candidate.origin == "random")
            .unwrap_or(0);
        let Some(cur) = ctx.history[start..].iter().min_by(|a, b| better(a, b)) else {
            return random_new(ctx, rng, taken).map(|a| (a, "random".into()));
        };
        let mut pool: Vec<(f64, usize, Arch)> = Vec::new();
        let mut ns = ctx.space.neighbours(&cur.arch);
        rng.shuffle(&mut ns);
        for (i, n) in ns.into_iter().enumerate() {
            if !taken.keys.contains(&ctx.space.key(&n, ctx.input)) {
                pool.push((predict(&n), i, n));
            }
        }
        pool.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        for (_, _, a) in pool {
            if taken.claim(ctx, &a) {
                return Some((a, format!("surrogate pick near {}", cur.candidate.id)));
            }
        }
        random_new(ctx, rng, taken).map(|a| (a, "random".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_function() {
        let mut rng = Rng::derive(1, "ridge", &[]);
        let xs: Vec<Vec<f64>> = (0..200)
            .map(|_| (0..4).map(|_| rng.below(2) as f64).collect())
            .collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|x| 0.5 + 2.0 * x[0] - x[2] + 0.25 * x[3])
            .collect();
        let (w, b) = fit_ridge(&xs, &ys);
        for (got, want) in w.iter().zip([2.0, 0.0, -1.0, 0.25]) {
            assert!((got - want).abs() < 0.01, "{w:?}");
        }
        assert!((b - 0.5).abs() < 0.01);
    }
}
