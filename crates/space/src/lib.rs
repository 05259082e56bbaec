//! `space`: the shared vocabulary of every `nas` stage.
//!
//! It owns what the stages must agree on, and nothing else:
//! - the experiment file ([`Experiment`]) and its validation;
//! - the two space families ([`SpaceDef`]: `chain` and NAS-Bench-201 `cell`) with the operations a search needs
//!   — sample, mutate, cross over, neighbours, canonical key, parameter and FLOP counts, size;
//! - the [`Plan`]: the experiment resolved once against facts about its data, stored as `space.toml`;
//! - the run directory and its versioned artifacts ([`RunDir`], [`SpaceFile`], [`CandidateFile`], [`ResultFile`],
//!   [`SelectionFile`]), written atomically by [`io`];
//! - deterministic random streams ([`Rng`]). Reading data files is the `data` crate's job.
//!
//! Key design decision: the stages (`generate`, `evaluate`, `select`) depend on this crate and never on each
//! other, and talk only through the files defined here. So a stage can be run alone, resumed, or replaced by
//! another program that reads and writes the same files (see `docs/artifacts.md`). This crate does no training
//! and no searching: it has no candle dependency.
#![deny(missing_docs)]

/// An enum of values written as strings in files: each variant's name, the list of them, parsing with an
/// error that names the key and the valid names, and serde through that parsing (so a bad value in a file is
/// reported with its line and column).
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $key:literal, { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name {
            $($(#[$vm])* $v,)+
        }
        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];
            /// The name written in files and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$v => $s,)+
                }
            }
        }
        named_serde!($name, $key, $name::ALL);
    };
}

/// Serde through `FromStr` and `Display` (with `#[serde(try_from = "String", into = "String")]`), so a bad
/// value in a file is reported with the parse error's words and the file's line.
macro_rules! serde_via_str {
    ($name:ty) => {
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<$name, String> {
                s.parse().map_err(|e: anyhow::Error| e.to_string())
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
    };
}

/// `FromStr`, `Display` and serde (through [`serde_via_str!`]) for a `Copy` enum that has `name()` and a list of
/// its values: a bad value is "KEY: unknown "x" (expected one of …)", with the file's line when read from one.
macro_rules! named_serde {
    ($name:ident, $key:literal, $all:expr) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $name {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> anyhow::Result<$name> {
                $all.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = $all.iter().map(|v| v.name()).collect();
                    anyhow::anyhow!(
                        concat!($key, ": unknown \"{}\" (expected one of {})"),
                        s,
                        names.join(", ")
                    )
                })
            }
        }
        serde_via_str!($name);
    };
}

pub mod arch;
pub mod augment;
pub mod choices;
pub mod encoding;
pub mod execution;
pub mod experiment;
pub mod fidelity;
pub mod files;
pub mod folds;
pub mod io;
pub mod metrics;
pub mod model_file;
pub mod oof;
pub mod plan;
pub mod rng;
pub mod run_dir;
pub mod spec_data;
pub mod spec_space;

pub use arch::{Act, Arch, Block, Cell, CellOp, Family, InputInfo, Pool, SpaceDef, TextInput};
pub use experiment::{DeviceSetting, Evaluator, Execution, Experiment, Proxy, Strategy, TimeLimit};
pub use fidelity::Fidelity;
pub use files::{
    mean_std, BaselineFile, BaselineScore, CandidateFile, Curve, Ended, Ensemble, EnsembleUse,
    EvaluatedBy, LeaseFile, Member, Origin, Ranked, ResultFile, SelectionFile, SpaceFile, Status,
    ARTIFACTS_READ, ARTIFACT_VERSION,
};
pub use metrics::Metric;
pub use model_file::{ExportFormat, ModelFile, ModelMember, MODEL_VERSION};
pub use oof::Oof;
pub use plan::{DataFacts, Plan};
pub use rng::Rng;
pub use run_dir::{Damaged, Entry, RunDir};
pub use spec_data::{Builtin, DataSource};
pub use spec_space::{BlockKind, SpaceFamily};
