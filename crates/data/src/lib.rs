//! `data`: reading a user's data and fitting what turns it into network inputs.
//!
//! - [`Dataset`] and its readers: the built-in digits and CSV tables ([`table`]), IDX and NPY arrays and
//!   folders of images ([`images`]), chosen by what the source is ([`Dataset::load`]);
//! - [`prep::Prep`]: imputation, one-hot, token ids of text ([`text`]), image layout and standardisation,
//!   fitted on training rows only;
//! - [`resolve`]: an experiment resolved against its data into the run's [`space::Plan`].
//!
//! Key design decision: `space` (the stages' shared vocabulary) never reads data files; it resolves an
//! experiment from the few facts this crate reports ([`space::DataFacts`]). So the formats a stage agrees
//! on stay small, and a new reader (the tokenizer of text columns, say) lands here without touching them.
//! The stages that need the rows themselves (`evaluate`, `export`) depend on this crate; the others do not.
#![deny(missing_docs)]

pub mod images;
mod load;
pub mod prep;
pub mod table;
pub mod text;

pub use load::{load_checked, resolve};
pub use table::{Column, ColumnKind, Dataset};
