//! `[data]`: where the data comes from. The source is typed once here ([`DataSource`]): a built-in set or
//! a path, so no other code looks at its spelling.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

string_enum!(
    /// A data set that ships inside the binary (`builtin:NAME`).
    Builtin, "[data] source", {
        /// 1,797 handwritten digits, 8×8 (scikit-learn's `load_digits`).
        Digits = "builtin:digits",
    }
);

impl Builtin {
    /// The image shape `[channels, height, width]` of the set, if it is made of images.
    pub fn shape(self) -> Option<[usize; 3]> {
        match self {
            Builtin::Digits => Some([1, 8, 8]),
        }
    }
}

/// `[data] source`: a built-in set or a file or folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataSource {
    /// A built-in data set.
    Builtin(Builtin),
    /// A file (CSV, IDX, NPY) or a folder of class subfolders of images.
    Path(PathBuf),
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Builtin(Builtin::Digits)
    }
}

impl DataSource {
    /// The path, when the source is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataSource::Path(p) => Some(p),
            DataSource::Builtin(_) => None,
        }
    }

    /// A relative path made relative to `base` instead (the experiment file's folder); built-ins unchanged.
    pub fn relative_to(self, base: &Path) -> DataSource {
        match self {
            DataSource::Path(p) if p.is_relative() => DataSource::Path(base.join(p)),
            other => other,
        }
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Builtin(b) => f.write_str(b.name()),
            DataSource::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl std::str::FromStr for DataSource {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<DataSource> {
        if s.starts_with("builtin:") {
            let b = s.parse::<Builtin>().map_err(|_| {
                anyhow::anyhow!(
                    "[data] source: unknown built-in data set \"{s}\" (available: {})",
                    Builtin::ALL
                        .iter()
                        .map(|b| b.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            return Ok(DataSource::Builtin(b));
        }
        if s.is_empty() {
            anyhow::bail!("[data] source: empty (expected builtin:digits or a path)");
        }
        Ok(DataSource::Path(PathBuf::from(s)))
    }
}

serde_via_str!(DataSource);

/// `[data]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// `builtin:digits` or a path (relative paths are relative to the experiment file).
    #[serde(default)]
    pub source: DataSource,
    /// Name of the label column.
    #[serde(default = "default_label")]
    pub label: String,
    /// Image shape `[channels, height, width]` of the feature columns (channel-first); needed by conv spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// The IDX labels file, when `source` is an IDX images file (relative paths: to the experiment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// `[height, width]` every image of an image folder is resized to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<Vec<usize>>,
    /// Columns read as free text whatever they look like (`data::table::looks_like_text` decides for the
    /// others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
}

fn default_label() -> String {
    "label".into()
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            source: DataSource::default(),
            label: default_label(),
            shape: None,
            labels: None,
            resize: None,
            text: Vec::new(),
        }
    }
}
