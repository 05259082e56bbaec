//! `[space]`: the search space's settings, each typed where the file is read (a bad value is reported with
//! its line); [`crate::SpaceDef::from_spec`] turns them into the space the stages search.

use crate::choices::{Act, CellOp, Pool};
use serde::{Deserialize, Serialize};

string_enum!(
    /// The space family (`[space] family`).
    #[derive(Default)]
    SpaceFamily, "[space] family", {
        /// A sequence of conv or dense blocks.
        #[default]
        Chain = "chain",
        /// A NAS-Bench-201 cell, stacked.
        Cell = "cell",
    }
);

string_enum!(
    /// The kind of a chain's blocks (`[space] block`).
    BlockKind, "[space] block", {
        /// Convolutions over images.
        Conv = "conv",
        /// Dense layers (an MLP).
        Dense = "dense",
    }
);

/// `[space]`: one struct for both families, so that TOML errors keep their line numbers; keys that do not
/// belong to the chosen family are rejected by [`Experiment::validate`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceSpec {
    /// `chain` (MLP/CNN sequence of blocks) or `cell` (NAS-Bench-201 cell).
    #[serde(default)]
    pub family: SpaceFamily,
    // --- chain ---
    /// chain: `conv` or `dense` blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockKind>,
    /// chain: `[min, max]` number of blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<Vec<usize>>,
    /// chain: width (dense units or conv channels) choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<Vec<usize>>,
    /// chain: kernel size choices (odd). Conv blocks: k×k convolutions. Dense blocks over text: the 1-D
    /// convolutions over a text's words a block may be instead of a dense layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Vec<usize>>,
    /// chain, dense over text: the dilation choices of the 1-D convolutions over words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<Vec<usize>>,
    /// chain: activation choices (`relu`, `gelu`, `tanh`, `silu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Vec<Act>>,
    /// chain, conv: pooling choices after a block (`none`, `max`, `avg`: 2×2, stride 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Vec<Pool>>,
    /// chain: batch-norm choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_norm: Option<Vec<bool>>,
    /// chain: dropout-rate choices in [0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<Vec<f64>>,
    /// chain: residual (skip) connection choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<Vec<bool>>,
    // --- cell ---
    /// cell: nodes in the cell DAG (NAS-Bench-201: 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    /// cell: the edge operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<CellOp>>,
    /// cell: channels of the first stage (doubled at each reduction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// cell: cells per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells_per_stage: Option<usize>,
    /// cell: stages (a reduction block between consecutive stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<usize>,
}
