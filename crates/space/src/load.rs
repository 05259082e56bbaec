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
        let labels = spec.labels.as_deref().map(std::path::Path::new);
        let (idx, npy) = (crate::images::is_idx(&bytes), crate::images::is_npy(&bytes));
        match (idx, npy, labels) {
            (true, _, Some(l)) => crate::images::load_idx(path, bytes, l),
            (_, true, Some(l)) => crate::images::load_npy(path, bytes, l),
            (true, _, None) | (_, true, None) => bail!(
                "{}: {}; name its labels file too ([data] labels, --labels FILE)",
                spec.source,
                if idx { "an IDX file of images" } else { "a NumPy array" }
            ),
            (false, false, Some(_)) => bail!(
                "{}: [data] labels names a labels file, which only IDX and NPY data take (a CSV has a label column)",
                spec.source
            ),
            (false, false, None) => Dataset::from_csv_bytes(&spec.source, &bytes, &spec.label),
        }
    }
}
