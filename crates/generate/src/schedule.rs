//! Multi-fidelity schedules (`[search] fidelity`): what the next batch is. With `full` it is new proposals,
//! `[search] batch` at a time. With `halving` and `hyperband` the search runs in brackets: a batch of new
//! proposals trained at the bracket's first rung, then, rung by rung, the best 1/eta of the last batch
//! trained again at the next rung's epochs, until the top rung (`[evaluate] epochs`). Like every batch, the
//! plan is a pure function of the history, so resume and many workers replay it exactly.
//!
//! A promoted candidate is trained again from scratch, not continued: training's learning rate follows a
//! cosine schedule over its whole length, so weights after 3 of 9 epochs are not those after 3 of 3, and
//! only a fresh training at the rung's epochs gives what a direct run would. Its random streams are keyed
//! by the candidate it was first trained as ([`space::CandidateFile::stream_id`]), so it scores exactly that
//! direct run. The cost of retraining is small: each rung trains 1/eta as many candidates as the one below.

use space::{Entry, Experiment, Fidelity, Origin, Plan};

/// The next batch.
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// `n` new proposals, trained for `epochs` (`None`: `[evaluate] epochs`).
    Propose { n: usize, epochs: Option<usize> },
    /// These candidates trained again for `epochs`.
    Promote { from: Vec<&'a Entry>, epochs: usize },
    /// The budget of proposals is spent and every bracket is finished.
    Done,
}

/// Whether a candidate is a new architecture (not a promotion of an earlier one).
pub(crate) fn is_proposal(e: &Entry) -> bool {
    !matches!(e.candidate.origin, Origin::Promotion(_))
}

/// The number of proposals of bracket `s` (Hyperband's n = ⌈R/(s+1)·ηˢ⌉ for `r` rungs): with s = R − 1 it
/// starts at the lowest rung, with 0 at the top.
fn bracket_size(r: usize, s: usize, eta: usize) -> usize {
    (r * eta.pow(s as u32)).div_ceil(s + 1)
}

/// The next batch after `history` (in which every candidate has a result), for at most `budget` proposals.
pub(crate) fn next<'a>(plan: &Plan, history: &'a [Entry], budget: usize) -> Next<'a> {
    let exp = plan.exp();
    let proposals = history.iter().filter(|e| is_proposal(e)).count();
    let left = budget.saturating_sub(proposals);
    let rungs = plan.rungs();
    let r = rungs.len();
    if exp.search.fidelity == Fidelity::Full || r == 1 {
        return match exp.search.batch.min(left) {
            0 => Next::Done,
            n => Next::Propose { n, epochs: None },
        };
    }
    let full = plan.epochs;
    let eta = exp.search.eta;
    if let Some(last) = history.last() {
        let batch: Vec<&Entry> = history
            .iter()
            .filter(|e| e.candidate.batch == last.candidate.batch)
            .collect();
        let epochs = last.candidate.epochs_or(full);
        if let Some(i) = rungs
            .iter()
            .position(|&e| e == epochs)
            .filter(|&i| i + 1 < r)
        {
            let mut ok: Vec<&Entry> = batch
                .into_iter()
                .filter(|e| e.result.as_ref().is_some_and(|r| r.ok()))
                .collect();
            ok.sort_by(|a, b| {
                let score = |e: &Entry| e.result.as_ref().map_or(0.0, |r| r.cv_mean);
                score(b)
                    .total_cmp(&score(a))
                    .then(a.candidate.id.cmp(&b.candidate.id))
            });
            let keep = promoted(ok.len(), eta);
            if keep > 0 {
                ok.truncate(keep);
                return Next::Promote {
                    from: ok,
                    epochs: rungs[i + 1],
                };
            }
        }
    }
    if left == 0 {
        return Next::Done;
    }
    let (s, n) = bracket(exp, r, batches_of_proposals(history));
    Next::Propose {
        n: n.min(left),
        epochs: Some(rungs[r - 1 - s]),
    }
}

/// Bracket number `b` (from 0) of a search with `r` rungs: its s (it starts at rung r − 1 − s) and its
/// proposals. Halving always starts at the lowest rung, with at least `[search] batch` proposals to keep
/// the trainings busy; hyperband cycles from the lowest rung to the top.
fn bracket(exp: &Experiment, r: usize, b: usize) -> (usize, usize) {
    let eta = exp.search.eta;
    match exp.search.fidelity {
        Fidelity::Hyperband => {
            let s = (r - 1) - b % r;
            (s, bracket_size(r, s, eta))
        }
        _ => (r - 1, bracket_size(r, r - 1, eta).max(exp.search.batch)),
    }
}

/// The epochs (per fold) a search of `budget` proposals trains in all, if every training succeeds: the
/// length of a progress bar.
pub fn planned_epochs(plan: &Plan, budget: usize) -> usize {
    let exp = plan.exp();
    let rungs = plan.rungs();
    let (r, eta) = (rungs.len(), exp.search.eta);
    if exp.search.fidelity == Fidelity::Full || r == 1 {
        return budget * plan.epochs;
    }
    let (mut left, mut brackets, mut total) = (budget, 0, 0);
    while left > 0 {
        let (s, size) = bracket(exp, r, brackets);
        let mut n = size.min(left);
        left -= n;
        brackets += 1;
        total += n * rungs[r - 1 - s];
        for &epochs in &rungs[r - s..] {
            n = promoted(n, eta);
            total += n * epochs;
        }
    }
    total
}

/// How many of a rung's `n` ok results are promoted: the best ⌊n/eta⌋, at least one (none of none).
fn promoted(n: usize, eta: usize) -> usize {
    (n / eta).max(1).min(n)
}

/// How many batches of new proposals `history` has.
fn batches_of_proposals(history: &[Entry]) -> usize {
    let mut batches: Vec<u64> = history
        .iter()
        .filter(|e| is_proposal(e))
        .map(|e| e.candidate.batch)
        .collect();
    batches.dedup();
    batches.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planned_epochs_count_every_rung() {
        let mut e = Experiment::default();
        e.evaluate.epochs = Some(8);
        e.search.fidelity = Fidelity::Halving;
        // 8×8 images of 10 classes, like the built-in digits (only the schedule matters here).
        let plan = |e: &Experiment| {
            let facts = space::DataFacts {
                rows: 1797,
                fingerprint: String::new(),
                classes: (0..10).map(|c| c.to_string()).collect(),
                features: 64,
                shape: Some([1, 8, 8]),
                not_pixels: None,
                text: Vec::new(),
            };
            Plan::resolve(e.clone(), &facts, &|| (64, Vec::new())).unwrap()
        };
        // Brackets 9 → 3 → 1, then the 4 proposals left → 1 → 1, at rungs of 1, 3 and 8 epochs.
        assert_eq!(planned_epochs(&plan(&e), 13), 9 + 9 + 8 + 4 + 3 + 8);
        e.search.fidelity = Fidelity::Full;
        assert_eq!(planned_epochs(&plan(&e), 13), 13 * 8);
    }

    #[test]
    fn hyperband_brackets_have_the_classic_sizes() {
        // R = 3 rungs, η = 3: 9 at the lowest rung, 5 at the middle, 3 at the top.
        assert_eq!(
            (0..3).map(|s| bracket_size(3, s, 3)).collect::<Vec<_>>(),
            [3, 5, 9]
        );
        assert_eq!(bracket_size(5, 4, 2), 16);
    }
}
