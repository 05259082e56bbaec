//! The evaluate stage over a run directory: claim pending candidates under leases, score them (k-fold
//! training or a table lookup), write each result once; and `--retry-failed`.

use crate::{lease, Event};
use anyhow::{anyhow, bail, Result};
use nn::device;
use space::{io, DeviceSetting, Entry, Evaluator, LeaseFile, Plan, ResultFile, RunDir, Status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
/// What one evaluate pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Results this process wrote.
    pub results: Vec<ResultFile>,
    /// Candidates this process evaluated whose result another worker had written first (kept theirs).
    pub discarded: Vec<u64>,
    /// Pending candidates left alone because another live worker holds their lease.
    pub leased_elsewhere: usize,
}

/// The candidates without a result, as the evaluate stage sees them.
#[derive(Debug, Default)]
pub struct Queue {
    /// Ids free to be claimed (no lease, or an expired one).
    pub free: Vec<u64>,
    /// Live leases of candidates being evaluated, with seconds since each was renewed.
    pub leased: Vec<(LeaseFile, f64)>,
}

/// Which candidates of `history` (of `run`) wait for a result: free ones, and those under a live lease.
pub fn queue(run: &RunDir, history: &[Entry]) -> Result<Queue> {
    let leases = run.read_leases()?;
    let mut q = Queue::default();
    for e in history.iter().filter(|e| e.result.is_none()) {
        let id = e.candidate.id;
        match leases
            .iter()
            .find(|(l, age)| l.id == id && !lease::expired(l, *age))
        {
            Some(held) => q.leased.push(held.clone()),
            None => q.free.push(id),
        }
    }
    Ok(q)
}

/// Options of an evaluate pass.
#[derive(Clone, Debug)]
pub struct Options {
    /// Concurrent trainings (0: the experiment's setting, else one per core).
    pub threads: usize,
    /// Claim at most this many candidates (a worker takes one at a time).
    pub max_claims: usize,
    /// Seconds after which a lease that was not renewed is expired.
    pub lease_timeout_s: f64,
    /// Device setting overriding the experiment's `[evaluate] device`.
    pub device: Option<DeviceSetting>,
    /// Trainings still running at this instant are abandoned: their candidates stay pending.
    pub deadline: Option<std::time::Instant>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 0,
            max_claims: usize::MAX,
            lease_timeout_s: 120.0,
            device: None,
            deadline: None,
        }
    }
}

/// Writes a result unless one exists; false when another worker's result was there first.
fn write_result_once(run: &RunDir, r: &ResultFile) -> Result<bool> {
    io::atomic_create_new(&run.result(r.id), toml::to_string(r)?.as_bytes())
}

/// The evaluate stage: claims pending candidates of `run` (those without a result whose lease is free or
/// expired, see [`lease`]), cross-validates them, and writes each result as it completes. Safe to run in any
/// number of processes at once.
pub fn evaluate_pending(
    run: &RunDir,
    opts: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Outcome> {
    let plan = run.load_plan()?;
    let (sf, def) = (&plan.file, &plan.def);
    let history = run.history(def, &sf.input)?;
    let pending: Vec<Entry> = history
        .iter()
        .filter(|e| e.result.is_none())
        .cloned()
        .collect();
    let mut out = Outcome::default();
    if pending.is_empty() {
        return Ok(out);
    }
    let timeout = opts.lease_timeout_s;
    let mut claimed = Vec::new();
    let mut leases = Vec::new();
    for e in pending {
        if claimed.len() >= opts.max_claims {
            break;
        }
        match lease::try_claim(run, e.candidate.id, timeout)? {
            // A result may have landed between listing and claiming.
            Some(l) if run.result(e.candidate.id).exists() => l.release(),
            Some(l) => {
                leases.push(l);
                claimed.push(e);
            }
            None => out.leased_elsewhere += 1,
        }
    }
    if claimed.is_empty() {
        return Ok(out);
    }
    // Before any training: a run directory made by hand (candidates written by another tool) may lack
    // results/, and a trained result that cannot be written is lost work.
    run.create()?;
    let held = Mutex::new(leases);
    let release = |id: u64| {
        let mut h = held.lock().unwrap();
        if let Some(i) = h.iter().position(|l| l.id == id) {
            h.swap_remove(i).release();
        }
    };
    let discarded = Mutex::new(Vec::new());
    let record = |r: &ResultFile| -> Result<()> {
        if !write_result_once(run, r)? {
            discarded.lock().unwrap().push(r.id);
        }
        release(r.id);
        Ok(())
    };
    let evaluator = evaluator_of(&plan, run, &history, opts)?;
    let stop = AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        s.spawn(|| lease::renew_until(&held, &stop, timeout));
        let r = evaluator.evaluate(&claimed, on_event, &record);
        stop.store(true, Ordering::SeqCst);
        r
    });
    // Whatever was not finished (an error) is given up for others to take.
    for l in held.into_inner().unwrap() {
        l.release();
    }
    let discarded = discarded.into_inner().unwrap();
    out.results = results?
        .into_iter()
        .filter(|r| !discarded.contains(&r.id))
        .collect();
    out.discarded = discarded;
    Ok(out)
}

/// The checks evaluating `plan` needs before anything is written: with training, enough of the data's `rows`
/// for the folds, and a device (`device`, else the plan's) that can be used.
pub fn check_plan(plan: &Plan, rows: usize, device: Option<DeviceSetting>) -> Result<()> {
    let e = &plan.exp().evaluate;
    if e.evaluator != Evaluator::Train {
        return Ok(());
    }
    let folds = e.folds;
    if rows < folds {
        bail!("[evaluate] folds: {folds} folds need at least {folds} rows; the data has {rows}");
    }
    device::resolve(device.unwrap_or(e.device), 1, 0, 0)?;
    Ok(())
}

/// The evaluator `[evaluate] evaluator` names, for the run in `run`.
fn evaluator_of<'a>(
    plan: &'a Plan,
    run: &RunDir,
    history: &'a [Entry],
    opts: &Options,
) -> Result<Box<dyn crate::evaluator::Evaluator + 'a>> {
    let e = &plan.exp().evaluate;
    Ok(match e.evaluator {
        space::Evaluator::Table => Box::new(crate::table::Table::from_spec(e)?),
        space::Evaluator::Proxy => {
            let proxy = e.proxy.unwrap_or(space::Proxy::Synflow);
            let data = match proxy {
                space::Proxy::Naswot => Some(data::load_checked(plan, &run.space())?),
                _ => None,
            };
            Box::new(crate::proxy::Proxies::new(proxy, plan, data.as_ref())?)
        }
        space::Evaluator::Train => Box::new(crate::cv::CrossValidation::new(
            plan,
            run,
            history,
            opts.threads,
            opts.device,
            opts.deadline,
        )?),
    })
}

/// `nas evaluate --retry-failed`: moves the results of failed or diverged candidates, and result files that
/// cannot be read, to `retried/` (as `cNNNNN.K.toml`, K counting earlier tries), so that those candidates
/// are pending again. Returns their ids.
pub fn retry_failed(run: &RunDir) -> Result<Vec<u64>> {
    let plan = run.load_plan()?;
    let (sf, def) = (&plan.file, &plan.def);
    let (history, damaged) = run.history_readable(def, &sf.input)?;
    let failed = history
        .iter()
        .filter_map(|e| {
            e.result
                .as_ref()
                .filter(|r| matches!(r.status, Status::Failed | Status::Diverged))
        })
        .map(|r| (r.id, run.result(r.id)));
    let unreadable = damaged.iter().filter_map(|(path, _)| {
        let id = path
            .file_stem()?
            .to_str()?
            .strip_prefix('c')?
            .parse()
            .ok()?;
        Some((id, path.clone()))
    });
    let mut ids = Vec::new();
    for (id, from) in failed.chain(unreadable) {
        let dir = run.retried();
        std::fs::create_dir_all(&dir)
            .map_err(|err| anyhow!("{}: cannot create directory: {err}", dir.display()))?;
        let k = (1..)
            .find(|k| !dir.join(format!("c{id:05}.{k}.toml")).exists())
            .expect("a free name");
        io::move_file(&from, &dir.join(format!("c{id:05}.{k}.toml")))?;
        ids.push(id);
    }
    ids.sort();
    Ok(ids)
}
