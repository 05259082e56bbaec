//! `nas evaluate`: train and score the pending candidates, once or as a worker until the search ends.

use super::{drive, ended, id_list};
use crate::args::EvalArgs;
use crate::progress;
use anyhow::{bail, Result};
use space::RunDir;

/// `nas evaluate` (and `--worker`: the orchestration loop as one worker).
pub(crate) fn run(a: EvalArgs) -> Result<()> {
    let run = RunDir::new(&a.dir);
    if a.lease_timeout.is_nan() || a.lease_timeout <= 0.0 {
        bail!("--lease-timeout: must be a positive number of seconds");
    }
    if a.retry_failed {
        let ids = evaluate::retry_failed(&run)?;
        println!(
            "retrying {} failed candidates{}",
            ids.len(),
            if ids.is_empty() {
                String::new()
            } else {
                format!(": {}", id_list(&ids))
            }
        );
    }
    run.sweep_temporaries();
    evaluate::lease::sweep_markers(&run);
    let opts = evaluate::Options {
        threads: a.threads,
        max_claims: if a.worker { 1 } else { usize::MAX },
        lease_timeout_s: a.lease_timeout,
        device: a.device,
        deadline: None,
    };
    let p = progress::Progress::new(&run, a.quiet)?;
    let say = |out: &evaluate::Outcome| {
        for r in &out.results {
            println!("evaluated c{:05}", r.id);
        }
        for id in &out.discarded {
            println!("discarded c{id:05}: another worker wrote its result first");
        }
    };
    if a.worker {
        let end = drive(&run, &opts, &p, say)?;
        println!("done: {}", ended(end));
    } else {
        let out = evaluate::evaluate_pending(&run, &opts, &|e| p.event(e))?;
        say(&out);
        if out.leased_elsewhere > 0 {
            println!(
                "{} pending candidates are held by other workers",
                out.leased_elsewhere
            );
        }
    }
    p.finish();
    Ok(())
}
