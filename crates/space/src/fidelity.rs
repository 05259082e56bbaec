//! Multi-fidelity schedules (`[search] fidelity`): at which epoch counts (rungs) a search trains its
//! candidates before the best are promoted to the full `[evaluate] epochs`.

use anyhow::{bail, Result};

string_enum!(
    /// How long candidates train (`[search] fidelity`).
    #[derive(Default)]
    Fidelity, "[search] fidelity", {
        /// Every candidate trains for `[evaluate] epochs`.
        #[default]
        Full = "full",
        /// Successive halving: candidates start at `min_epochs`; the best 1/eta of each rung is trained again at
        /// eta times the epochs, up to `[evaluate] epochs`.
        Halving = "halving",
        /// Hyperband: brackets of successive halving that start at each rung in turn, from the lowest (many
        /// candidates, few epochs) to the top (few candidates, all epochs).
        Hyperband = "hyperband",
    }
);

/// `[search] eta` when not given.
pub const DEFAULT_ETA: usize = 3;

/// `[search] min_epochs` when not given: `full / eta²` rounded up, so a schedule has three rungs when the
/// epochs allow (at least 1).
pub fn default_min_epochs(full: usize, eta: usize) -> usize {
    full.div_ceil(eta * eta).max(1)
}

/// The rungs' epoch counts, lowest first, ending with `full`: `min`, `min·eta`, `min·eta²`, … (capped at
/// `full`). `Fidelity::Full` has the one rung `full`.
pub fn rungs(fidelity: Fidelity, full: usize, min: usize, eta: usize) -> Vec<usize> {
    if fidelity == Fidelity::Full || min >= full {
        return vec![full];
    }
    let mut out = vec![min];
    while *out.last().expect("non-empty") < full {
        let next = (out.last().expect("non-empty") * eta).min(full);
        out.push(next);
    }
    out
}

/// Checks `eta` and `min_epochs` against the epochs of a full training.
pub fn check(
    fidelity: Fidelity,
    eta: usize,
    min_epochs: Option<usize>,
    full: Option<usize>,
) -> Result<()> {
    if eta < 2 {
        bail!(
            "[search] eta: must be at least 2 (each rung keeps 1/eta of the candidates), got {eta}"
        );
    }
    match (min_epochs, full) {
        (Some(0), _) => bail!("[search] min_epochs: must be at least 1"),
        (Some(m), Some(e)) if fidelity != Fidelity::Full && m >= e => bail!(
            "[search] min_epochs: {m} must be less than [evaluate] epochs ({e}), the top rung"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_eta_and_end_at_the_full_epochs() {
        assert_eq!(
            rungs(Fidelity::Halving, 8, default_min_epochs(8, 3), 3),
            [1, 3, 8]
        );
        assert_eq!(
            rungs(Fidelity::Hyperband, 30, default_min_epochs(30, 3), 3),
            [4, 12, 30]
        );
        assert_eq!(
            rungs(Fidelity::Halving, 2, default_min_epochs(2, 3), 3),
            [1, 2]
        );
        assert_eq!(rungs(Fidelity::Halving, 1, 1, 3), [1]);
        assert_eq!(rungs(Fidelity::Full, 8, 1, 3), [8]);
        assert_eq!(rungs(Fidelity::Halving, 16, 1, 2), [1, 2, 4, 8, 16]);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |f, eta, m, e| check(f, eta, m, e).unwrap_err().to_string();
        assert!(err(Fidelity::Halving, 1, None, None).starts_with("[search] eta:"));
        assert!(err(Fidelity::Halving, 3, Some(8), Some(8)).starts_with("[search] min_epochs:"));
        assert!(err(Fidelity::Halving, 3, Some(0), None).starts_with("[search] min_epochs:"));
        check(Fidelity::Halving, 3, Some(2), Some(8)).unwrap();
        assert!("thirds"
            .parse::<Fidelity>()
            .unwrap_err()
            .to_string()
            .starts_with("[search] fidelity: unknown"));
    }
}
