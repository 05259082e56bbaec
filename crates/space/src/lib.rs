//! `space`: the shared vocabulary of every `nas` stage.
//!
//! It owns what the stages must agree on, and nothing else:
//! - the experiment file ([`Experiment`]) and its validation;
//! - the two space families ([`SpaceDef`]: `chain` and NAS-Bench-201 `cell`) with the operations a search needs
//!   — sample, mutate, cross over, neighbours, canonical key, parameter and FLOP counts, size;
//! - the run directory and its versioned artifacts ([`RunDir`], [`SpaceFile`], [`CandidateFile`], [`ResultFile`],
//!   [`SelectionFile`]), written atomically by [`io`];
//! - data loading ([`Dataset`]) and deterministic random streams ([`Rng`]).
//!
//! Key design decision: the stages (`generate`, `evaluate`, `select`) depend on this crate and never on each
//! other, and talk only through the files defined here. So a stage can be run alone, resumed, or replaced by
//! another program that reads and writes the same files (see `docs/artifacts.md`). This crate does no training
//! and no searching: it has no candle dependency.
#![deny(missing_docs)]

pub mod arch;
pub mod artifacts;
pub mod data;
pub mod experiment;
pub mod io;
pub mod rng;

pub use arch::{Act, Arch, Block, Cell, CellOp, Family, InputInfo, Pool, SpaceDef};
pub use artifacts::{
    mean_std, CandidateFile, Entry, LeaseFile, ModelFile, Ranked, ResultFile, RunDir,
    SelectionFile, SpaceFile, ARTIFACT_VERSION,
};
pub use data::Dataset;
pub use experiment::Experiment;
pub use rng::Rng;
