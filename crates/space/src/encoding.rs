//! `model.toml`'s column encodings: how one raw table column becomes network inputs. The type is a file
//! format, so it lives here with the other artifacts; fitting it on training rows is the `data` crate's job.

use serde::{Deserialize, Serialize};

/// How one raw column becomes network inputs (fitted on training rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ColumnEncoding {
    /// A number: missing cells filled with `fill`, and one more input (1 for a missing cell) when `indicator`.
    Numeric {
        /// Column name.
        name: String,
        /// The training mean, for missing cells.
        fill: f32,
        /// Whether an "is missing" input follows.
        indicator: bool,
    },
    /// A category: one input per level (one-hot); a missing cell counts as `fill`; an unknown level is all zeros.
    Categorical {
        /// Column name.
        name: String,
        /// The levels seen in the training rows, sorted.
        levels: Vec<String>,
        /// The most frequent training level, for missing cells.
        fill: String,
    },
}

impl ColumnEncoding {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnEncoding::Numeric { name, .. } | ColumnEncoding::Categorical { name, .. } => name,
        }
    }

    /// Network inputs this column becomes.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoding::Numeric { indicator, .. } => 1 + usize::from(*indicator),
            ColumnEncoding::Categorical { levels, .. } => levels.len(),
        }
    }
}

/// The names of a table's encoded features, in input order.
pub fn feature_names(columns: &[ColumnEncoding]) -> Vec<String> {
    let mut out = Vec::new();
    for c in columns {
        match c {
            ColumnEncoding::Numeric {
                name, indicator, ..
            } => {
                out.push(name.clone());
                if *indicator {
                    out.push(format!("{name} is missing"));
                }
            }
            ColumnEncoding::Categorical { name, levels, .. } => {
                out.extend(levels.iter().map(|l| format!("{name}={l}")));
            }
        }
    }
    out
}
