//! k-fold cross-validation of a batch of candidates over [`nn`]: the folds, each fold's standardised rows,
//! trainings spread over the devices (one per (candidate, fold) on the CPU; a candidate's folds grouped on a
//! GPU), and one [`ResultFile`] per candidate the moment its last fold ends.

pub mod baseline;
mod folds;
mod job;
mod race;
mod tally;

pub use tally::PEAK_MIB;

use crate::{init_threads, Event};
use anyhow::{bail, Result};
use candle_core::Device;
use data::Dataset;
use folds::FoldPlan;
use job::Job;
use space::{Entry, Metric, Plan, ResultFile, RunDir, Status};
use std::sync::Mutex;
use std::time::Instant;

/// Cross-validates `entries` on `data`, one training at a time on each of `devices` (see
/// [`nn::device::resolve`]; `vec![Device::Cpu; n]` for n CPU trainings); calls `done` with each result as its
/// last fold finishes (in completion order). Results are returned in the order of `entries`.
/// On a GPU a candidate's folds train as one grouped network ([`nn::train::train_grouped`]); on the CPU each
/// fold is its own training.
pub fn cross_validate(
    plan: &Plan,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    cross_validate_until(plan, data, entries, devices, None, on_event, done)
}

/// [`cross_validate`] that abandons the trainings still running at `deadline` (and those not started): their
/// candidates get no result and are left out of what is returned, so they stay pending.
#[allow(clippy::too_many_arguments)]
pub fn cross_validate_until(
    plan: &Plan,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    deadline: Option<Instant>,
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    cross_validate_raced(
        plan,
        data,
        entries,
        devices,
        grouped(plan, devices),
        deadline,
        &[],
        None,
        on_event,
        done,
    )
}

/// What a fold that trained gives: its scores and its held-out rows' class probabilities.
#[derive(Clone, Debug)]
pub(super) struct FoldScore {
    /// Every metric, in [`Metric::ALL`] order.
    pub(super) scores: Vec<f64>,
    /// `held-out rows × classes`, in the fold's held-out order (empty when not computed: grouped GPU folds).
    pub(super) probs: Vec<f32>,
    /// Its training epoch by epoch (`None` for grouped GPU folds).
    pub(super) curve: Option<space::Curve>,
}

/// A fold's outcome: its scores, or why it has none.
pub(super) type FoldOutcome = std::result::Result<FoldScore, (Status, String)>;

/// Every metric of a fold's predictions, in [`Metric::ALL`] order.
pub(crate) fn fold_scores(pred: &[u32], truth: &[u32], classes: usize) -> Vec<f64> {
    Metric::ALL
        .iter()
        .map(|m| m.score(pred, truth, classes))
        .collect()
}

/// Whether a candidate's folds train as one grouped network: on a GPU, unless early stopping (which ends each
/// fold's training at its own epoch, which a grouped network cannot do), text columns (each fold has its
/// own vocabulary, so its own embedding tables) or class weights (the grouped loss has none).
fn grouped(plan: &Plan, devices: &[Device]) -> bool {
    let e = &plan.exp().evaluate;
    devices.first().is_some_and(|d| !d.is_cpu())
        && e.patience.is_none()
        && plan.file.input.text.is_empty()
        && !e.balanced()
}

/// [`cross_validate`], with the folds grouped into one training each (`group`) or not.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn cross_validate_with(
    plan: &Plan,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    group: bool,
    deadline: Option<Instant>,
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    let races: [Option<race::Rival>; 0] = [];
    cross_validate_raced(
        plan, data, entries, devices, group, deadline, &races, None, on_event, done,
    )
}

/// [`cross_validate_with`], each candidate racing its incumbent (`races[i]` for `entries[i]`: the incumbent and
/// the pool of earlier differences; empty or `None`: no race, see [`race`]). Racing orders the jobs fold by
/// fold across candidates.
/// With `oof`, each candidate scored (ok or stopped) on the CPU gets its out-of-fold predictions written
/// there ([`space::Oof`]) before `done` hears of its result.
#[allow(clippy::too_many_arguments)]
fn cross_validate_raced(
    plan: &Plan,
    data: &Dataset,
    entries: &[Entry],
    devices: &[Device],
    group: bool,
    deadline: Option<Instant>,
    races: &[Option<race::Rival>],
    oof: Option<&RunDir>,
    on_event: &(dyn Fn(Event) + Sync),
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<Vec<ResultFile>> {
    init_threads();
    let (sf, def) = (&plan.file, &plan.def);
    let spec = &sf.experiment.evaluate;
    let k = spec.folds;
    let hyper = nn::Hyper::new(spec, plan.epochs);
    let metric_at = tally::metric_index(spec.metric);
    let seed = sf.experiment.seed;
    let folds_plan = FoldPlan::new(plan, data)?;
    let folds = &folds_plan;
    on_event(Event::Begin {
        total: entries.len(),
        folds: k,
    });
    let fold_sets = folds.sets(group, &hyper);
    let mut jobs: Vec<(usize, &[usize])> = (0..entries.len())
        .flat_map(|e| fold_sets.iter().map(move |fs| (e, &fs[..])))
        .collect();
    if !races.is_empty() {
        // Fold by fold: every candidate's first fold, then every second fold, … so that a candidate's early
        // folds are in before its later ones start, whatever the threads.
        jobs.sort_by_key(|&(e, fs)| (fs[0], e));
    }
    let state: Vec<Mutex<tally::Pending>> = entries
        .iter()
        .map(|_| Mutex::new(tally::Pending::new(k)))
        .collect();
    let results: Vec<Mutex<Option<ResultFile>>> =
        entries.iter().map(|_| Mutex::new(None)).collect();
    let taken = Mutex::new(vec![false; jobs.len()]);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    if devices.is_empty() {
        bail!("no device to train on");
    }
    let job = Job {
        def,
        hyper,
        seed,
        group,
        deadline,
        folds,
        data,
        on_event,
    };
    let evaluator = if devices[0].is_cpu() {
        space::EvaluatedBy::CpuKfold
    } else {
        space::EvaluatedBy::CudaKfold
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(devices.len())
        .build()?;
    pool.broadcast(|ctx| loop {
        let dev = &devices[ctx.index() % devices.len()];
        if first_error.lock().unwrap().is_some() {
            return;
        }
        let Some(j) = next_job(&jobs, &taken, &state, !races.is_empty()) else {
            return;
        };
        let (e, folds) = jobs[j];
        let entry = &entries[e];
        let id = entry.candidate.id;
        let t0 = Instant::now();
        let raced_out = || state[e].lock().unwrap().stopped();
        let (outcomes, peak) = attempt(&job, entry, folds, dev, &raced_out);
        for (i, &f) in folds.iter().enumerate() {
            let score = outcomes.as_ref().and_then(|o| o[i].as_ref().ok());
            on_event(Event::Fold {
                id,
                fold: f,
                score: score.map(|s| s.scores[metric_at]),
            });
        }
        let finished = {
            let mut p = state[e].lock().unwrap();
            if !p.reported() {
                p.add(folds, outcomes, t0.elapsed().as_secs_f64(), peak);
                if let Some(Some(inc)) = races.get(e) {
                    p.race(inc, metric_at);
                }
            }
            p.finished().then(|| {
                let predictions = oof.and_then(|_| p.oof(&folds_plan, &data.y, data.classes.len()));
                let mut r =
                    tally::make_result(entry, &mut p, evaluator.clone(), spec.metric, plan.epochs);
                r.per_class = predictions.as_ref().map(space::Oof::per_class);
                (r, predictions)
            })
        };
        if let Some((r, predictions)) = finished {
            if let Err(err) = record(&r, oof.zip(predictions), done) {
                first_error.lock().unwrap().get_or_insert(err);
                return;
            }
            on_event(Event::Done(Box::new(r.clone())));
            *results[e].lock().unwrap() = Some(r);
        }
    });
    if let Some(err) = first_error.into_inner().unwrap() {
        return Err(err);
    }
    // Abandoned candidates have none.
    Ok(results
        .into_iter()
        .filter_map(|r| r.into_inner().unwrap())
        .collect())
}

/// Records a finished candidate's result `r`: its out-of-fold predictions first (when the run keeps them and
/// it was scored, in full or raced out), so a result's are complete whenever it exists; then `done`.
fn record(
    r: &ResultFile,
    oof: Option<(&RunDir, space::Oof)>,
    done: &(dyn Fn(&ResultFile) -> Result<()> + Sync),
) -> Result<()> {
    if let Some((run, o)) = oof.filter(|_| r.scored()) {
        o.write(&run.oof(r.id))?;
    }
    done(r)
}

/// The next job to start, in `jobs`' order, marked taken; `None` when none is left. Jobs of a candidate racing
/// has stopped are skipped. Racing (`racing`), a job whose candidate's previous fold is still training waits
/// behind any job that is ready: training it now would be lost if that fold stops the candidate.
fn next_job(
    jobs: &[(usize, &[usize])],
    taken: &Mutex<Vec<bool>>,
    state: &[Mutex<tally::Pending>],
    racing: bool,
) -> Option<usize> {
    let mut taken = taken.lock().unwrap();
    let mut waiting = None;
    for (j, &(e, folds)) in jobs.iter().enumerate() {
        if taken[j] {
            continue;
        }
        let p = state[e].lock().unwrap();
        if p.stopped() {
            taken[j] = true;
            continue;
        }
        if !racing || folds[0] == 0 || p.has_fold(folds[0] - 1) {
            taken[j] = true;
            return Some(j);
        }
        waiting.get_or_insert(j);
    }
    let j = waiting?;
    taken[j] = true;
    Some(j)
}

/// Runs one job: each fold's outcome (`None`: the deadline had passed, or passed during its training, or
/// `raced_out` said its candidate was stopped) and the most bytes it held; an error or a panic is every fold's
/// failure. A later fold that started while an earlier one was training (nothing else was ready) is so
/// abandoned as soon as that earlier fold stops the candidate: its score would be dropped.
fn attempt(
    job: &Job,
    entry: &Entry,
    folds: &[usize],
    dev: &Device,
    raced_out: &dyn Fn() -> bool,
) -> (Option<Vec<FoldOutcome>>, u64) {
    if job.past_deadline() {
        return (None, 0);
    }
    // The memory of this job alone, whatever ran on the thread before (a result is deterministic).
    nn::cpu::free_scratch();
    let (outcome, peak) = nn::mem::peak_of(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job.run(entry, folds, dev, raced_out)
        }))
    });
    (tally::outcomes(outcome, folds), peak)
}

/// k-fold cross-validated training on the devices an evaluate pass may use.
pub struct CrossValidation<'a> {
    plan: &'a Plan,
    /// Where out-of-fold predictions are written.
    run: RunDir,
    /// The run's candidates and results when the pass began: racing's incumbents come from it.
    history: &'a [Entry],
    data: Dataset,
    devices: Vec<Device>,
    deadline: Option<std::time::Instant>,
}

impl<'a> CrossValidation<'a> {
    /// Loads the plan's data (checked against `space.toml`) and resolves the devices: `threads` concurrent
    /// trainings (0: the plan's setting, else one per core) on `device` (else the plan's); trainings still
    /// running at `deadline` are abandoned. `history` is the run's, as the pass read it (every earlier batch,
    /// which racing's incumbents come from, has its results in it).
    pub fn new(
        plan: &'a Plan,
        run: &RunDir,
        history: &'a [Entry],
        threads: usize,
        device: Option<space::DeviceSetting>,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let e = &plan.exp().evaluate;
        let data = data::load_checked(plan, &run.space())?;
        let requested = if threads > 0 { threads } else { e.threads };
        let threads = crate::thread_count(requested);
        let setting = device.unwrap_or(e.device);
        let per_training = nn::device::bytes_per_training(data.rows(), data.features, e.folds);
        let devices = nn::device::resolve(setting, threads, per_training, requested)?;
        Ok(CrossValidation {
            plan,
            run: run.clone(),
            history,
            data,
            devices,
            deadline,
        })
    }
}

impl crate::evaluator::Evaluator for CrossValidation<'_> {
    fn evaluate(
        &self,
        claimed: &[Entry],
        on_event: &(dyn Fn(Event) + Sync),
        record: crate::evaluator::Record,
    ) -> Result<Vec<ResultFile>> {
        let plan = self.plan;
        let group = grouped(plan, &self.devices);
        let races = if plan.exp().evaluate.race == Some(true) && !group {
            race::incumbents(
                self.history,
                claimed,
                plan.epochs,
                plan.exp().evaluate.folds,
            )
        } else {
            Vec::new()
        };
        cross_validate_raced(
            plan,
            &self.data,
            claimed,
            &self.devices,
            group,
            self.deadline,
            &races,
            Some(&self.run),
            on_event,
            record,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nn::device;
    use space::Experiment;
    use std::sync::atomic::Ordering;

    fn small(exp_edit: impl Fn(&mut Experiment)) -> (Plan, Dataset) {
        let mut e = Experiment::default();
        e.evaluate.epochs = Some(2);
        e.evaluate.folds = 3;
        exp_edit(&mut e);
        data::resolve(e).unwrap()
    }

    fn entries(plan: &Plan, archs: &[&str]) -> Vec<Entry> {
        let (sf, def) = (&plan.file, &plan.def);
        archs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let arch = def.parse(a).unwrap();
                let (params, flops) = def.cost(&arch, &sf.input);
                Entry {
                    candidate: space::CandidateFile {
                        version: 1,
                        kind: "nas.candidate".into(),
                        id: i as u64 + 1,
                        batch: 0,
                        batch_size: archs.len() as u64,
                        arch: a.to_string(),
                        key: def.key(&arch, &sf.input),
                        origin: space::Origin::Other("test".into()),
                        params,
                        flops,
                        epochs: None,
                    },
                    arch,
                    result: None,
                }
            })
            .collect()
    }

    /// Racing stops a candidate behind its incumbent with the folds it trained (scored as without racing),
    /// the same on one thread or two; against an incumbent it beats, it is scored as without racing.
    #[test]
    fn racing_stops_a_candidate_behind_the_incumbent_with_the_folds_it_trained() {
        let (plan, data) = small(|e| e.evaluate.folds = 5);
        let es = entries(&plan, &["conv8x3-relu", "conv8x3-silu"]);
        let cpus = |n: usize| vec![Device::Cpu; n];
        let run = |races: &[Option<race::Rival>], threads: usize| {
            let none = &|_| {};
            let ok = &|_: &ResultFile| Ok(());
            let (d, n) = (&data, cpus(threads));
            cross_validate_raced(&plan, d, &es, &n, false, None, races, None, none, ok).unwrap()
        };
        // What racing decides (not the seconds it took).
        let strip = |v: &[ResultFile]| -> Vec<(Status, Vec<f64>, String)> {
            v.iter()
                .map(|r| (r.status, r.fold_scores.clone(), r.error.clone()))
                .collect()
        };
        let plain = run(&[], 2);
        let perfect = race::Rival::alone(99, vec![1.0; 5]);
        // With earlier candidates' spread to go by, one fold can decide.
        let pooled = race::Rival {
            pooled_ss: 0.001,
            pooled_df: 10,
            ..perfect.clone()
        };
        for (rival, folds) in [(perfect, 2..5), (pooled, 1..2)] {
            let rival = Some(rival);
            for threads in [1, 2] {
                let raced = run(&[rival.clone(), rival.clone()], threads);
                for (r, p) in raced.iter().zip(&plain) {
                    assert_eq!(r.status, Status::Stopped, "{r:?}");
                    let n = r.fold_scores.len();
                    assert!(folds.contains(&n), "{r:?}");
                    assert_eq!(r.fold_scores[..], p.fold_scores[..n]);
                    assert!(r.error.contains("c00099"), "{}", r.error);
                    // The incumbent scored 1 on every fold, so the paired estimate is the partial mean.
                    let est = r.paired_mean.unwrap();
                    assert!(
                        (est - r.cv_mean).abs() < 1e-12 && r.fitness() == est,
                        "{r:?}"
                    );
                }
                let other = run(&[rival.clone(), rival.clone()], 3 - threads);
                assert_eq!(strip(&raced), strip(&other));
            }
        }
        let beaten = Some(race::Rival::alone(99, vec![0.0; 5]));
        let raced = run(&[beaten.clone(), beaten], 2);
        assert_eq!(strip(&raced), strip(&plain));
        assert!(raced.iter().all(|r| r.paired_mean.is_none()));
    }

    /// The incumbent is the best ok candidate of earlier batches; the pool is the spread of every other earlier
    /// candidate's paired differences with it (two folds or more, ok or raced out).
    #[test]
    fn the_pool_is_earlier_candidates_paired_with_the_incumbent() {
        let (plan, _) = small(|e| e.evaluate.folds = 5);
        let mut es = entries(&plan, &["conv8x3-relu"; 6]);
        let inc = [0.95, 0.96, 0.94, 0.95, 0.96];
        let scored: [(&[f64], Status, u64); 5] = [
            (&inc, Status::Ok, 0),
            // Behind by 0.01 then 0.03: deviations of 0.01 about its mean, ν = 1.
            (&[0.94, 0.93], Status::Stopped, 0),
            // One fold: no spread to add; a failure: none either.
            (&[0.5], Status::Stopped, 0),
            (&[0.1, 0.9], Status::Failed, 0),
            // A later batch's is not seen.
            (&[0.1, 0.9], Status::Stopped, 1),
        ];
        for (e, (scores, status, batch)) in es.iter_mut().zip(scored) {
            let by = space::EvaluatedBy::CpuKfold;
            let mut r = crate::evaluator::single_score(&e.candidate, by, Err("x".into()), 0.0);
            (r.status, r.fold_scores, r.cv_mean) =
                (status, scores.to_vec(), space::mean_std(scores).0);
            (e.candidate.batch, e.result) = (batch, Some(r));
        }
        let (history, claimed) = es.split_at(5);
        let mut claimed = claimed.to_vec();
        claimed[0].candidate.batch = 1;
        let rival = race::incumbents(history, &claimed, plan.epochs, 5)[0]
            .clone()
            .unwrap();
        assert_eq!(
            (rival.id, rival.scores.clone(), rival.pooled_df),
            (1, inc.to_vec(), 1)
        );
        assert!(
            (rival.pooled_ss - 2.0 * 0.01f64.powi(2)).abs() < 1e-12,
            "{rival:?}"
        );
    }

    #[test]
    fn scores_do_not_depend_on_thread_count() {
        let (plan, data) = small(|_| {});
        let es = entries(
            &plan,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1",
                "conv8x3-silu-res/conv16x5-relu-bn-maxpool-res",
            ],
        );
        let run = |t: usize| {
            cross_validate(&plan, &data, &es, &vec![Device::Cpu; t], &|_| {}, &|_| {
                Ok(())
            })
            .unwrap()
        };
        let one = run(1);
        let two = run(2);
        let three = run(3);
        for ((a, b), c) in one.iter().zip(&two).zip(&three) {
            assert_eq!(a.status, Status::Ok, "{}", a.error);
            assert_eq!(a.fold_scores, b.fold_scores);
            assert_eq!(a.fold_scores, c.fold_scores);
            assert!(a.cv_mean > 0.6, "{} learns digits: {}", a.arch, a.cv_mean);
        }
    }

    /// A promoted candidate (trained at a rung after a shorter training of the same architecture) scores
    /// exactly what a direct training at that rung's epochs gives: it is trained again from scratch, with
    /// the random streams of the candidate it was first trained as. A candidate at a lower rung trains for
    /// its own epochs, and records them.
    #[test]
    fn a_promoted_candidate_scores_what_a_direct_training_at_its_epochs_does() {
        let (plan, data) = small(|e| e.evaluate.epochs = Some(3));
        let arch = "conv8x3-relu-bn-maxpool-drop0.1";
        let mut es = entries(&plan, &[arch, arch, arch]);
        es[0].candidate.epochs = Some(1);
        es[1].candidate.id = 7;
        es[1].candidate.origin = space::Origin::Promotion(1);
        es[1].candidate.epochs = Some(3);
        let mut direct = entries(&plan, &[arch]);
        direct[0].candidate.epochs = None; // [evaluate] epochs = 3
        let cpus = [Device::Cpu];
        let run =
            |es: &[Entry]| cross_validate(&plan, &data, es, &cpus, &|_| {}, &|_| Ok(())).unwrap();
        let (rungs, direct) = (run(&es[..2]), run(&direct));
        assert_eq!(rungs[1].fold_scores, direct[0].fold_scores);
        assert_eq!((rungs[0].epochs, rungs[1].epochs), (Some(1), Some(3)));
        assert_ne!(
            rungs[0].fold_scores, rungs[1].fold_scores,
            "a rung of 1 epoch trains less"
        );
        // Candidate 7 without the promotion would be another training: its streams are its own.
        es[2].candidate.id = 7;
        assert_ne!(run(&es[2..]).remove(0).fold_scores, direct[0].fold_scores);
    }

    /// What a GPU does (a candidate's folds trained as one grouped network), on the CPU: the same scores as
    /// the folds trained one by one, up to a few predictions flipped by float rounding. The grouped network
    /// runs on candle ops, the folds alone on the CPU kernels, whose rounding differs; a bias right before a
    /// batch norm gets only that rounding as its gradient, and AdamW turns it into steps of up to lr. (With
    /// the same ops on both sides, `nn`'s `grouped_folds_train_like_separate_folds` compares the weights.)
    #[test]
    fn grouped_folds_score_like_separate_folds() {
        let (plan, data) = small(|_| {});
        let es = entries(
            &plan,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1",
                "conv16x5-silu/conv8x3-relu-bn-res",
            ],
        );
        let run = |group: bool| {
            let cpus = [Device::Cpu, Device::Cpu];
            cross_validate_with(&plan, &data, &es, &cpus, group, None, &|_| {}, &|_| Ok(()))
                .unwrap()
        };
        let (alone, grouped) = (run(false), run(true));
        let val = data.rows() as f64 / 3.0;
        for (a, g) in alone.iter().zip(&grouped) {
            assert_eq!(g.status, Status::Ok, "{}", g.error);
            assert_eq!(a.fold_scores.len(), g.fold_scores.len());
            for (x, y) in a.fold_scores.iter().zip(&g.fold_scores) {
                assert!(
                    (x - y).abs() * val < 4.5,
                    "{}: {x} alone vs {y} grouped",
                    a.arch
                );
            }
        }
    }

    #[test]
    fn dense_and_cell_networks_train() {
        let (plan, data) = small(|e| {
            e.space.family = space::SpaceFamily::Chain;
            e.space.block = Some(space::BlockKind::Dense);
        });
        let r = cross_validate(
            &plan,
            &data,
            &entries(&plan, &["fc64-relu-bn/fc32-silu-drop0.1-res"]),
            &[Device::Cpu, Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert!(r[0].cv_mean > 0.8, "{:?}", r[0]);
        let (plan, data) = small(|e| {
            e.space = space::experiment::SpaceSpec {
                family: space::SpaceFamily::Cell,
                ..Default::default()
            }
        });
        let es = entries(&plan, &[
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|",
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ]);
        let r = cross_validate(
            &plan,
            &data,
            &es,
            &[Device::Cpu, Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert!(r[0].cv_mean > 0.85, "{:?}", r[0]);
        assert!(
            r[1].cv_mean < 0.3,
            "an all-none cell sees nothing: {:?}",
            r[1]
        );
    }

    /// The GPU agrees with the CPU: per-fold accuracies within 2 points, same ranking of two clearly
    /// different candidates. Skipped (with the reason printed) without a CUDA build and a GPU.
    #[test]
    fn gpu_and_cpu_agree() {
        let gpus = device::gpus().unwrap();
        if gpus.is_empty() {
            eprintln!(
                "SKIPPED gpu_and_cpu_agree: {}",
                if device::cuda_built() {
                    "no CUDA GPU found"
                } else {
                    "built without the cuda feature"
                }
            );
            return;
        }
        let (plan, data) = small(|_| {});
        let es = entries(
            &plan,
            &[
                "conv8x3-relu-bn-maxpool-drop0.1/conv16x3-relu-res",
                "conv8x3-silu",
            ],
        );
        let cpu = cross_validate(&plan, &data, &es, &[Device::Cpu], &|_| {}, &|_| Ok(())).unwrap();
        let gpu_dev = Device::new_cuda(gpus[0].ordinal).unwrap();
        let gpu = cross_validate(&plan, &data, &es, &[gpu_dev], &|_| {}, &|_| Ok(())).unwrap();
        for (c, g) in cpu.iter().zip(&gpu) {
            assert!(g.ok(), "{g:?}");
            for (a, b) in c.fold_scores.iter().zip(&g.fold_scores) {
                assert!((a - b).abs() < 0.02, "c{}: cpu {a} vs gpu {b}", c.id);
            }
        }
        assert_eq!(
            cpu[0].cv_mean > cpu[1].cv_mean,
            gpu[0].cv_mean > gpu[1].cv_mean
        );
    }

    #[test]
    fn divergence_is_recorded_not_fatal() {
        let (plan, data) = small(|e| e.evaluate.lr = Some(1e30));
        let r = cross_validate(
            &plan,
            &data,
            &entries(&plan, &["conv8x3-relu"]),
            &[Device::Cpu],
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert_eq!(r[0].status, Status::Diverged, "{:?}", r[0]);
        assert!(r[0].error.contains("loss became"));
        let es = entries(&plan, &["conv8x3-relu"]);
        let r = cross_validate_with(
            &plan,
            &data,
            &es,
            &[Device::Cpu],
            true,
            None,
            &|_| {},
            &|_| Ok(()),
        );
        let r = r.unwrap();
        assert_eq!(r[0].status, Status::Diverged, "grouped: {:?}", r[0]);
    }

    /// A training that fails (on a GPU: out of memory) is recorded as a failed candidate, grouped or not,
    /// and the other candidates are evaluated.
    #[test]
    fn a_failing_training_is_recorded_and_the_rest_go_on() {
        let (plan, data) = small(|_| {});
        let mut es = entries(&plan, &["conv8x3-relu", "conv8x3-silu"]);
        // An architecture of another family: building its network fails.
        let (cell, _) = small(|e| {
            e.space = space::experiment::SpaceSpec {
                family: space::SpaceFamily::Cell,
                ..Default::default()
            }
        });
        es[1].arch = cell
            .def
            .parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
            .unwrap();
        for group in [false, true] {
            let cpus = [Device::Cpu, Device::Cpu];
            let r =
                cross_validate_with(&plan, &data, &es, &cpus, group, None, &|_| {}, &|_| Ok(()))
                    .unwrap();
            assert_eq!(r[0].status, Status::Ok, "group {group}: {:?}", r[0]);
            assert_eq!(r[1].status, Status::Failed, "group {group}: {:?}", r[1]);
            assert!(r[1].error.contains("family"), "{}", r[1].error);
        }
    }

    /// At the deadline, trainings are abandoned: their candidates get no result (they stay pending) and
    /// nothing is written for them.
    #[test]
    fn trainings_past_the_deadline_are_abandoned_without_a_result() {
        let (plan, data) = small(|_| {});
        let es = entries(&plan, &["conv8x3-relu", "conv8x3-silu"]);
        let written = std::sync::atomic::AtomicUsize::new(0);
        for group in [false, true] {
            let r = cross_validate_with(
                &plan,
                &data,
                &es,
                &[Device::Cpu],
                group,
                Some(Instant::now()),
                &|_| {},
                &|_| {
                    written.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
            .unwrap();
            assert!(r.is_empty(), "group {group}: {r:?}");
        }
        assert_eq!(written.load(Ordering::SeqCst), 0);
        // With time to spare, the same call scores both.
        let later = Some(Instant::now() + std::time::Duration::from_secs(3600));
        let r = cross_validate_with(
            &plan,
            &data,
            &es,
            &[Device::Cpu],
            false,
            later,
            &|_| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert_eq!(r.len(), 2);
    }
}
