//! `nas generate`: write the next batch of candidates (or complete a half-written one).

use super::{ended, generate_step, id_list, Stop};
use crate::args::DirArg;
use anyhow::Result;
use space::RunDir;

/// `nas generate`.
pub(crate) fn run(a: DirArg) -> Result<()> {
    let run = RunDir::new(&a.dir);
    let prior = evaluate::proxy::Prior::of_run(&run)?;
    match generate_step(&run, prior.as_ref())? {
        generate::Step::Generated(ids) => {
            println!("generated {} candidates: {}", ids.len(), id_list(&ids))
        }
        generate::Step::Pending(n) => println!("pending: {n} candidates wait for results"),
        generate::Step::Done(end) => println!("done: {}", ended(Stop::Search(end))),
    }
    Ok(())
}
