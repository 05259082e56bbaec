//! Which fold holds each row out: stratified k-fold assignment from the run's seed. Cross-validation trains
//! on it, and whatever reads out-of-fold predictions afterwards (the ensemble's nested estimate) recomputes it
//! from the labels, so both agree without storing it.

use crate::Rng;

/// Stratified fold of every row: each class shuffled (stream `(seed, "folds")`) and dealt round-robin.
pub fn stratified_folds(y: &[u32], k: usize, seed: u64) -> Vec<usize> {
    deal(y, k, Rng::derive(seed, "folds", &[k as u64]))
}

/// Each class's rows shuffled by `rng` and dealt round-robin into `k` parts.
pub fn deal(y: &[u32], k: usize, mut rng: Rng) -> Vec<usize> {
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut fold = vec![0; y.len()];
    let mut next = 0;
    for c in 0..classes {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] as usize == c).collect();
        rng.shuffle(&mut rows);
        for r in rows {
            fold[r] = next % k;
            next += 1;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_balanced() {
        let y: Vec<u32> = (0..103).map(|i| (i % 3) as u32).collect();
        let f = stratified_folds(&y, 5, 1);
        for k in 0..5 {
            let n = f.iter().filter(|&&x| x == k).count();
            assert!((20..=21).contains(&n), "fold {k}: {n}");
            for c in 0..3 {
                let m = (0..103).filter(|&i| f[i] == k && y[i] == c).count();
                assert!((6..=8).contains(&m));
            }
        }
        assert_eq!(f, stratified_folds(&y, 5, 1));
        assert_ne!(f, stratified_folds(&y, 5, 2));
    }
}
