//! `model/model.toml`: the model `nas export` writes and `nas predict` reads — one network or an ensemble —
//! and the forms `nas export --format` writes it in. Documented in `docs/artifacts.md`.

use crate::arch::InputInfo;
use crate::files::Member;
use serde::{Deserialize, Serialize};

/// Version of `model.toml` (2: the column encodings; 3: ensembles, `members`). Version 2 files are read.
pub const MODEL_VERSION: u32 = 3;

string_enum!(
    /// The form `nas export --format` writes the winner in.
    ExportFormat, "format", {
        /// `model.toml` and our safetensors: what `nas predict` reads.
        Native = "native",
        /// A standard ONNX model (`model.onnx`).
        Onnx = "onnx",
        /// `model.py` (a PyTorch module) and `weights.safetensors` in PyTorch's names and layouts.
        Pytorch = "pytorch",
    }
);

/// `model/model.toml`: what is needed to use the exported weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Format version.
    pub version: u32,
    /// Always `nas.model`.
    pub kind: String,
    /// Candidate id of the winner.
    pub id: u64,
    /// Architecture.
    pub arch: String,
    /// Input description.
    pub input: InputInfo,
    /// Class names in output order.
    pub class_names: Vec<String>,
    /// How each data column becomes network inputs, in input order (see `data::prep`); `nas predict` finds
    /// the columns by name.
    pub columns: Vec<crate::encoding::ColumnEncoding>,
    /// Per-input mean subtracted before the network (after encoding; network layout order).
    pub feature_mean: Vec<f32>,
    /// Per-feature standard deviation divided by.
    pub feature_std: Vec<f32>,
    /// Accuracy on the training data after retraining.
    pub train_accuracy: f64,
    /// The safetensors file with the weights, next to this file.
    pub weights: String,
    /// The CSV label column the model was trained with (`nas predict` reports accuracy when it is present).
    pub label: String,
    /// The search space the architecture belongs to (rebuilds the network).
    pub space: crate::experiment::SpaceSpec,
    /// An ensemble's networks, whose class probabilities the model averages (empty for one network; `id`,
    /// `arch` and `weights` are then the first member's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ModelMember>,
}

/// A network of an ensemble model (`model.toml`'s `[[members]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMember {
    /// Candidate id.
    pub id: u64,
    /// Architecture.
    pub arch: String,
    /// Its safetensors file, next to `model.toml`.
    pub weights: String,
    /// Its share of the averaged probabilities (the members' add up to 1).
    pub weight: f64,
    /// The temperature its logits were divided by (already in its weights: its last layer scaled; see
    /// `Member::temperature`).
    #[serde(
        default = "crate::files::unit",
        skip_serializing_if = "crate::files::is_unit"
    )]
    pub temperature: f64,
}

impl ModelFile {
    /// Its networks as members (one of weight 1 when it is not an ensemble).
    pub fn networks(&self) -> Vec<ModelMember> {
        if self.members.is_empty() {
            vec![ModelMember {
                id: self.id,
                arch: self.arch.clone(),
                weights: self.weights.clone(),
                weight: 1.0,
                temperature: 1.0,
            }]
        } else {
            self.members.clone()
        }
    }

    /// Whether it holds the networks `members` with their weights (what [`SelectionFile::model_members`]
    /// names).
    pub fn holds(&self, members: &[Member]) -> bool {
        let nets = self.networks();
        nets.len() == members.len()
            && (nets.iter().zip(members).zip(Member::weights(members))).all(|((n, m), w)| {
                n.id == m.id && (n.weight - w).abs() < 1e-12 && n.temperature == m.temperature
            })
    }
}
