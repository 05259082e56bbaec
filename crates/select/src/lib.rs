//! `select`: ranks the results and names the winner in `selection.toml`.
//!
//! The main function is [`select`]. Ranking is by mean CV accuracy, ties broken by fewer parameters, then
//! by the earlier candidate — a total order, so the winner never depends on file-listing order. Only results
//! with status `ok` are ranked; diverged and failed candidates are counted but never win. Retraining the
//! winner is a training job and lives in the `evaluate` crate; the CLI's `nas select --retrain` calls both.
#![deny(missing_docs)]

pub mod ensemble;

use anyhow::{bail, Result};
use space::{io, EnsembleUse, Entry, Plan, Ranked, RunDir, SelectionFile, ARTIFACT_VERSION};

/// Every ok result at the top rung (see [`Plan::top_rung`]; every result of a `full` search), best
/// first.
pub fn rank(plan: &Plan, history: &[Entry]) -> Vec<Ranked> {
    let mut v: Vec<Ranked> = history
        .iter()
        .filter(|e| plan.top_rung(&e.candidate))
        .filter_map(|e| e.result.as_ref().filter(|r| r.ok()))
        .map(|r| Ranked {
            id: r.id,
            arch: r.arch.clone(),
            cv_mean: r.cv_mean,
            cv_std: r.cv_std,
            fold_scores: r.fold_scores.clone(),
            params: r.params,
            flops: r.flops,
        })
        .collect();
    v.sort_by(|a, b| {
        b.cv_mean
            .total_cmp(&a.cv_mean)
            .then(a.params.cmp(&b.params))
            .then(a.id.cmp(&b.id))
    });
    v
}

/// The Pareto front of `ranking` (higher accuracy, fewer parameters, fewer multiply-accumulates), fewest
/// parameters first.
pub fn pareto_front(ranking: &[Ranked]) -> Vec<Ranked> {
    let dominates = |a: &Ranked, b: &Ranked| {
        a.cv_mean >= b.cv_mean
            && a.params <= b.params
            && a.flops <= b.flops
            && (a.cv_mean > b.cv_mean || a.params < b.params || a.flops < b.flops)
    };
    let mut front: Vec<Ranked> = ranking
        .iter()
        .filter(|b| !ranking.iter().any(|a| dominates(a, b)))
        .cloned()
        .collect();
    front.sort_by(|a, b| {
        a.params
            .cmp(&b.params)
            .then(b.cv_mean.total_cmp(&a.cv_mean))
            .then(a.id.cmp(&b.id))
    });
    front
}

/// The Pareto front of `ranking` in two dimensions only (higher accuracy, fewer parameters), fewest
/// parameters first: what a plot of accuracy against parameters can show as a front.
pub fn pareto_front_2d(ranking: &[Ranked]) -> Vec<Ranked> {
    let dominates = |a: &Ranked, b: &Ranked| {
        a.cv_mean >= b.cv_mean
            && a.params <= b.params
            && (a.cv_mean > b.cv_mean || a.params < b.params)
    };
    let mut front: Vec<Ranked> = ranking
        .iter()
        .filter(|b| !ranking.iter().any(|a| dominates(a, b)))
        .cloned()
        .collect();
    front.sort_by(|a, b| a.params.cmp(&b.params).then(a.id.cmp(&b.id)));
    front
}

/// The winner as the run's `selection.toml` defines it, on the results there are now: within the
/// `max_params` it was selected with, or the most accurate when the run has no selection yet. `status` and
/// `report` use this, so they name the same candidate `export` exports.
pub fn chosen(run: &RunDir, plan: &Plan, history: &[Entry]) -> Result<SelectionFile> {
    let stored: Option<SelectionFile> = if run.selection().exists() {
        Some(io::read_artifact(
            &run.selection(),
            "nas.selection",
            space::ARTIFACTS_READ,
        )?)
    } else {
        None
    };
    let max_params = stored.as_ref().and_then(|s| s.max_params);
    let using = stored
        .as_ref()
        .map_or(EnsembleUse::Auto, |s| s.ensemble_use);
    let mut sel = selection_within(plan, history, max_params)?;
    // Why the search ended, and the ensemble, still hold while no result was added since.
    match stored.filter(|s| s.evaluated == sel.evaluated) {
        Some(s) => {
            (sel.ended, sel.ensemble, sel.ensemble_use) = (s.ended, s.ensemble, s.ensemble_use)
        }
        None => with_ensemble(run, plan, &mut sel, using)?,
    }
    Ok(sel)
}

/// Adds to `sel` the ensemble of its ranking, used as `using` says; none with `max_params` (the limit is on
/// one network).
fn with_ensemble(
    run: &RunDir,
    plan: &Plan,
    sel: &mut SelectionFile,
    using: EnsembleUse,
) -> Result<()> {
    sel.ensemble_use = using;
    if sel.max_params.is_none() {
        sel.ensemble = ensemble::build(run, plan, &sel.ranking, using)?;
    }
    Ok(())
}

/// Builds the selection from the history (errors when nothing was scored).
pub fn selection(plan: &Plan, history: &[Entry]) -> Result<SelectionFile> {
    selection_within(plan, history, None)
}

/// Builds the selection; with `max_params`, the best is the most accurate candidate of at most that many
/// parameters (an error when there is none).
pub fn selection_within(
    plan: &Plan,
    history: &[Entry],
    max_params: Option<u64>,
) -> Result<SelectionFile> {
    let ranking = rank(plan, history);
    let evaluated = history.iter().filter(|e| e.result.is_some()).count();
    if ranking.is_empty() {
        let rung = if history.iter().any(|e| !plan.top_rung(&e.candidate)) {
            format!(" at the top rung ({} epochs)", plan.epochs)
        } else {
            String::new()
        };
        bail!("no candidate has an ok result{rung} yet ({evaluated} evaluated): nothing to select");
    }
    let best = ranking
        .iter()
        .find(|r| max_params.is_none_or(|m| r.params <= m))
        .cloned()
        .ok_or_else(|| {
            let smallest = ranking.iter().map(|r| r.params).min().unwrap_or(0);
            anyhow::anyhow!(
                "--max-params {}: no ok candidate is that small (the smallest has {smallest} parameters)",
                max_params.unwrap_or(0)
            )
        })?;
    Ok(SelectionFile {
        version: ARTIFACT_VERSION,
        kind: "nas.selection".into(),
        evaluated,
        ok: ranking.len(),
        max_params,
        best,
        front: pareto_front(&ranking),
        ranking,
        ended: None,
        ensemble: None,
        ensemble_use: EnsembleUse::Auto,
    })
}

/// The select stage: writes `selection.toml` atomically and returns it. Safe while workers are busy: it
/// reads only complete result files. A result file that cannot be read is an error when `strict`; else the
/// candidate counts as unscored and the file is returned with why, for the caller to name. With
/// `max_params` there is no ensemble (the limit is on one network); else `using` says when the ensemble is
/// the model.
pub fn select(
    run: &RunDir,
    max_params: Option<u64>,
    using: EnsembleUse,
    strict: bool,
) -> Result<(SelectionFile, Vec<space::Damaged>)> {
    let plan = run.load_plan()?;
    let (history, damaged) = if strict {
        (run.history(&plan.def, &plan.file.input)?, Vec::new())
    } else {
        run.history_readable(&plan.def, &plan.file.input)?
    };
    let mut sel = selection_within(&plan, &history, max_params)?;
    with_ensemble(run, &plan, &mut sel, using)?;
    io::write_toml(&run.selection(), &sel)?;
    Ok((sel, damaged))
}

/// Records in `selection.toml` why the search stopped, when not by spending its budget (`None`).
pub fn record_end(
    run: &RunDir,
    sel: &mut SelectionFile,
    ended: Option<space::Ended>,
) -> Result<()> {
    if ended.is_some() {
        sel.ended = ended;
        io::write_toml(&run.selection(), sel)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::{Arch, CandidateFile, ResultFile};

    /// A plan of the default experiment (no data needed: only the top rung's epochs matter here).
    fn plan() -> Plan {
        let mut e = space::Experiment::default();
        e.search.budget = Some(16);
        e.evaluate.epochs = Some(8);
        let def = space::SpaceDef::from_spec(&e.space).unwrap();
        let input = space::InputInfo {
            features: 64,
            shape: Some([1, 8, 8]),
            classes: 10,
            text: Vec::new(),
        };
        Plan::from_file(space::SpaceFile {
            version: space::ARTIFACT_VERSION,
            kind: "nas.space".into(),
            size: def.size().to_string(),
            rows: 0,
            data_fingerprint: String::new(),
            class_names: Vec::new(),
            standardize: space::encoding::Standardize::Channel,
            input,
            experiment: e,
        })
        .unwrap()
    }

    fn entry(id: u64, score: f64, params: u64, status: &str) -> Entry {
        Entry {
            candidate: CandidateFile {
                version: 1,
                kind: "nas.candidate".into(),
                id,
                batch: 0,
                batch_size: 1,
                arch: format!("a{id}"),
                key: format!("a{id}"),
                origin: space::Origin::Other("t".into()),
                params,
                flops: 0,
                epochs: None,
            },
            arch: Arch::Chain(vec![]),
            result: Some(ResultFile {
                version: 1,
                kind: "nas.result".into(),
                id,
                arch: format!("a{id}"),
                status: status.parse().unwrap(),
                fold_scores: vec![score],
                cv_mean: score,
                cv_std: 0.0,
                paired_mean: None,
                params,
                flops: 0,
                wall_s: 0.0,
                evaluator: space::EvaluatedBy::Other("t".into()),
                epochs: None,
                error: String::new(),
                metrics: Default::default(),
                per_class: None,
                curves: Vec::new(),
            }),
        }
    }

    #[test]
    fn best_by_mean_then_fewer_params_then_id_and_failures_never_win() {
        let h = vec![
            entry(1, 0.9, 100, "ok"),
            entry(2, 0.95, 300, "ok"),
            entry(3, 0.95, 200, "ok"),
            entry(4, 0.99, 1, "diverged"),
            entry(5, 0.95, 200, "ok"),
            // Raced out: its partial mean is never ranked, however high.
            entry(6, 0.999, 1, "stopped"),
        ];
        let s = selection(&plan(), &h).unwrap();
        assert_eq!(s.best.id, 3);
        assert_eq!(
            s.ranking.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![3, 5, 2, 1]
        );
        assert_eq!((s.evaluated, s.ok), (6, 4));
        assert!(selection(&plan(), &[entry(1, 0.5, 1, "failed")]).is_err());
    }

    #[test]
    fn front_keeps_the_undominated_and_max_params_picks_within_it() {
        let h = vec![
            entry(1, 0.90, 100, "ok"),
            entry(2, 0.95, 300, "ok"),
            entry(3, 0.93, 200, "ok"),
            entry(4, 0.92, 250, "ok"), // dominated by 3
            entry(5, 0.89, 100, "ok"), // dominated by 1
            entry(6, 0.97, 900, "ok"),
        ];
        let s = selection(&plan(), &h).unwrap();
        assert_eq!(
            s.front.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![1, 3, 2, 6]
        );
        assert_eq!(s.best.id, 6);
        assert_eq!(selection_within(&plan(), &h, Some(250)).unwrap().best.id, 3);
        assert_eq!(selection_within(&plan(), &h, Some(100)).unwrap().best.id, 1);
        let e = selection_within(&plan(), &h, Some(50))
            .unwrap_err()
            .to_string();
        assert!(e.contains("smallest has 100"), "{e}");
    }

    #[test]
    fn the_two_dimensional_front_has_no_point_dominated_in_accuracy_and_parameters() {
        let h = [
            entry(1, 0.90, 100, "ok"),
            entry(2, 0.95, 300, "ok"),
            entry(3, 0.93, 200, "ok"),
            entry(4, 0.92, 250, "ok"),
            entry(5, 0.89, 100, "ok"),
            entry(6, 0.97, 900, "ok"),
            entry(7, 0.94, 150, "ok"),
        ];
        let ranking = rank(&plan(), &h);
        let front = pareto_front_2d(&ranking);
        let ids: Vec<u64> = front.iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 7, 2, 6]);
        for f in &front {
            assert!(!ranking.iter().any(|r| r.cv_mean >= f.cv_mean
                && r.params <= f.params
                && (r.cv_mean > f.cv_mean || r.params < f.params)));
        }
    }
}
