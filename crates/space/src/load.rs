//! Where data comes from: [`Dataset::load`] reads the source `[data]` names, whatever its kind.

use crate::data::Dataset;
use crate::experiment::DataSpec;
use anyhow::{bail, Result};

impl Dataset {
    /// Loads the data named by `[data]`: `builtin:digits`, a CSV (plain or gzip), a folder of class
    /// subfolders of images, or an IDX images file or a NumPy `.npy` features file with its labels file
    /// (`labels`).
    pub fn load(spec: &DataSpec) -> Result<Dataset> {
        let path = std::path::Path::new(&spec.source);
        let resize = spec.resize.as_deref().and_then(|r| r.try_into().ok());
        if !spec.source.starts_with("builtin:") && path.is_dir() {
            return crate::images::load_folder(path, resize);
        }
        let bytes = crate::data::source_bytes(&spec.source)?;
        let kind = if crate::images::is_idx(&bytes) {
            Some("an IDX file of images")
        } else if crate::images::is_npy(&bytes) {
            Some("a NumPy array")
        } else {
            None
        };
        match (kind, &spec.labels) {
            (Some(_), Some(labels)) if crate::images::is_npy(&bytes) => {
                return crate::images::load_npy(path, std::path::Path::new(labels));
            }
            (Some(_), Some(labels)) => {
                return crate::images::load_idx(path, std::path::Path::new(labels));
            }
            (Some(kind), None) => bail!(
                "{}: {kind}; name its labels file too ([data] labels, --labels FILE)",
                spec.source
            ),
            (None, Some(_)) => bail!(
                "{}: [data] labels names a labels file, which only IDX and NPY data take (a CSV has a label column)",
                spec.source
            ),
            (None, None) => {}
        }
        Dataset::from_csv_bytes(&spec.source, &bytes, &spec.label)
    }
}
