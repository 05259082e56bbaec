//! `nas-cli`: the `nas` command line — the stage commands (plumbing) and `nas run` (porcelain).
//!
//! Every command is a thin layer over one stage function: `nas space` → [`data::resolve`],
//! `nas generate` → [`generate::step`], `nas evaluate` → [`evaluate::evaluate_pending`], `nas select` →
//! [`select::select`] (and [`export::retrain`]). `nas run` loops generate → evaluate over the same files,
//! so nothing it does is impossible stage by stage, and running it again on a directory resumes it.
//! Errors are printed as one line `nas: error: …` with exit code 1; panics never reach the user.
#![deny(missing_docs)]

mod args;
mod bench;
mod bench_proxy;
mod commands;
mod curves;
mod drawing;
mod html;
mod per_class;
mod plot;
mod progress;
mod report;

use args::*;

use anyhow::Result;
use clap::Parser;
use space::RunDir;

#[global_allocator]
static GLOBAL: nn::mem::Counting<mimalloc::MiMalloc> = nn::mem::Counting(mimalloc::MiMalloc);

/// Entry point: parses the command line, runs, prints errors as one line, sets the exit code.
pub fn main() {
    evaluate::init_threads();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("nas: internal error (a bug, please report it): {info}");
    }));
    let code = match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("nas: error: {}", msg.join(": ").replace('\n', " "));
            1
        }
        Err(_) => 101,
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run(a) => commands::run::run(a),
        Cmd::Space(a) => commands::space::run(a),
        Cmd::Generate(a) => commands::generate::run(a),
        Cmd::Evaluate(a) => commands::evaluate::run(a),
        Cmd::Select(a) => commands::select::run(a),
        Cmd::Status(a) => commands::status::run(&RunDir::new(&a.dir)),
        Cmd::Bench(a) => bench::bench(a),
        Cmd::Report(a) => commands::report::run(a),
        Cmd::Export(a) => commands::export::run(a),
        Cmd::Predict(a) => commands::predict::run(a),
        Cmd::Devices => commands::devices::run(),
    }
}
