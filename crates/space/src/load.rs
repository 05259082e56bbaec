//! Where data comes from: [`Dataset::load`] reads the source `[data]` names, whatever its kind.

use crate::data::Dataset;
use crate::experiment::DataSpec;
use anyhow::{bail, Result};

impl Dataset {
    /// Loads the data named by `[data]`: `builtin:digits`, a CSV (plain or gzip), a folder of class
    /// subfolders of images, or an IDX images file with its IDX labels file (`labels`).
    pub fn load(spec: &DataSpec) -> Result<Dataset> {
        let path = std::path::Path::new(&spec.source);
        let resize = spec.resize.as_deref().and_then(|r| r.try_into().ok());
        if !spec.source.starts_with("builtin:") && path.is_dir() {
            return crate::images::load_folder(path, resize);
        }
        if let Some(labels) = &spec.labels {
            return crate::images::load_idx(path, std::path::Path::new(labels));
        }
        let bytes = crate::data::source_bytes(&spec.source)?;
        if crate::images::is_idx(&bytes) {
            bail!(
                "{}: an IDX file of images; name its labels file too ([data] labels, --labels FILE)",
                spec.source
            );
        }
        Dataset::from_csv_bytes(&spec.source, &bytes, &spec.label)
    }
}
