//! Where data comes from: [`Dataset::load`] reads the source `[data]` names, whatever its kind, and
//! [`resolve`] makes an experiment's [`Plan`] from it.

use crate::prep::Prep;
use crate::table::{ColumnKind, Dataset};
use anyhow::{bail, Result};
use space::experiment::DataSpec;
use space::{DataFacts, Experiment, Plan};

impl Dataset {
    /// Loads the data named by `[data]`: `builtin:digits`, a CSV (plain or gzip), a folder of class
    /// subfolders of images, or an IDX images file or a NumPy `.npy` features file with its labels file
    /// (`labels`).
    pub fn load(spec: &DataSpec) -> Result<Dataset> {
        let resize = spec.resize.as_deref().and_then(|r| r.try_into().ok());
        let name = spec.source.to_string();
        if let Some(dir) = spec.source.path().filter(|p| p.is_dir()) {
            return crate::images::load_folder(dir, resize);
        }
        let bytes = crate::table::source_bytes(&spec.source)?;
        let path = std::path::Path::new(&name);
        let labels = spec.labels.as_deref().map(std::path::Path::new);
        let (idx, npy) = (crate::images::is_idx(&bytes), crate::images::is_npy(&bytes));
        match (idx, npy, labels) {
            (true, _, Some(l)) => crate::images::load_idx(path, bytes, l),
            (_, true, Some(l)) => crate::images::load_npy(path, bytes, l),
            (true, _, None) | (_, true, None) => bail!(
                "{name}: {}; name its labels file too ([data] labels, --labels FILE)",
                if idx { "an IDX file of images" } else { "a NumPy array" }
            ),
            (false, false, Some(_)) => bail!(
                "{name}: [data] labels names a labels file, which only IDX and NPY data take (a CSV has a label column)"
            ),
            (false, false, None) => {
                let text: Vec<&str> = spec.text.iter().map(String::as_str).collect();
                Dataset::from_csv_forced(&name, &bytes, &spec.label, &text)
            }
        }
    }

    /// What resolving an experiment needs to know of this data.
    pub fn facts(&self) -> DataFacts {
        let not_pixels = self
            .columns
            .iter()
            .find(|c| c.kind != ColumnKind::Numeric || c.missing > 0);
        DataFacts {
            rows: self.rows(),
            fingerprint: self.fingerprint.clone(),
            classes: self.classes.clone(),
            features: self.features,
            shape: self.shape,
            text: self
                .text_columns()
                .into_iter()
                .map(str::to_string)
                .collect(),
            not_pixels: not_pixels.map(|c| {
                format!(
                    "column `{}` {}",
                    c.name,
                    if c.missing > 0 {
                        "has empty cells"
                    } else {
                        "holds text"
                    }
                )
            }),
        }
    }
}

/// Resolves an experiment against its data: loads the data, then [`Plan::resolve`]. The experiment is
/// validated before any data is read.
pub fn resolve(exp: Experiment) -> Result<(Plan, Dataset)> {
    exp.validate()?;
    let data = Dataset::load(&exp.data)?;
    let width = || {
        let all: Vec<usize> = (0..data.rows()).collect();
        let p = Prep::fit(
            &data.x,
            &data.columns,
            &all,
            None,
            space::encoding::Standardize::Feature,
        );
        (p.width(), p.text_inputs())
    };
    let plan = Plan::resolve(exp, &data.facts(), &width)?;
    Ok((plan, data))
}

/// Loads a plan's data and checks it is the data the plan was made for (`space` names `space.toml` in errors).
pub fn load_checked(plan: &Plan, space: &std::path::Path) -> Result<Dataset> {
    let f = &plan.file;
    let d = Dataset::load(&f.experiment.data)?;
    if d.fingerprint != f.data_fingerprint {
        bail!(
            "{}: the data at {} changed since the space was made (fingerprint {} ≠ {})",
            space.display(),
            f.experiment.data.source,
            d.fingerprint,
            f.data_fingerprint
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use space::Pool;

    /// Images of 16×16 and more default to conv blocks that all pool, widths 16–64, and the textbook CNN as
    /// the first candidate (`[search] initial`); 8×8 images and explicit choices are kept, and a space that
    /// does not hold the textbook CNN gets no first candidate.
    #[test]
    fn large_images_default_to_a_space_that_downsamples_every_block() {
        let dir = std::env::temp_dir().join(format!("nas-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |side: usize, pool: Option<Vec<Pool>>, width: Option<Vec<usize>>| {
            let f = side * side;
            let mut csv: String = (0..f).map(|j| format!("p{j},")).collect::<String>() + "label\n";
            for r in 0..10 {
                csv += &(0..f)
                    .map(|j| format!("{},", (r * j) % 7))
                    .collect::<String>();
                csv += &format!("{}\n", r % 2);
            }
            let path = dir.join(format!("{side}.csv"));
            std::fs::write(&path, csv).unwrap();
            let mut e = space::Experiment::default();
            e.data.source = space::DataSource::Path(path.clone());
            e.data.shape = Some(vec![1, side, side]);
            e.evaluate.folds = 2;
            e.space.pool = pool;
            e.space.width = width;
            crate::resolve(e).unwrap().0.file.experiment
        };
        let all = Some(vec![Pool::Max, Pool::Avg]);
        let textbook = Some(vec![space::plan::TEXTBOOK_CNN.to_string()]);
        let e = resolve(16, None, None);
        assert_eq!(e.space.pool, all);
        assert_eq!(e.space.width, Some(vec![16, 32, 64]));
        assert_eq!(e.search.initial, textbook);
        let e = resolve(8, None, None);
        assert_eq!(
            (e.space.pool, e.space.width, e.search.initial),
            (None, None, None)
        );
        let given = Some(vec![Pool::None]);
        let e = resolve(16, given.clone(), None);
        assert_eq!((e.space.pool, e.search.initial), (given, None));
        let e = resolve(16, None, Some(vec![32, 64, 128]));
        assert_eq!(
            (e.space.width, e.search.initial),
            (Some(vec![32, 64, 128]), textbook)
        );
        let e = resolve(16, None, Some(vec![8, 16]));
        assert_eq!(e.search.initial, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
