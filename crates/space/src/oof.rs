//! Out-of-fold predictions (`results/cNNNNN.oof`): for every row of the data, the class probabilities a
//! candidate's network gave it while the row was held out, and the row's label. Cross-validation covers every
//! row once, so they are an honest picture of the candidate on data it did not train on: the per-class view
//! of the report reads them (and ensembles can be built from them without training again).
//!
//! Binary, little-endian: the 8 bytes `NASOOF1\n`, `u32` rows, `u32` classes, `rows` × `u32` labels (class
//! indices of `space.toml`'s `class_names`), then `rows × classes` × `f32` probabilities, row-major. A row of a
//! fold the candidate did not train (racing stopped it first) has NaN probabilities. Written crash-safely
//! before the candidate's result; a result without one (older runs, GPU trainings) simply has none.

use anyhow::{anyhow, bail, Result};
use std::path::Path;

const MAGIC: &[u8; 8] = b"NASOOF1\n";

/// A candidate's out-of-fold predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct Oof {
    /// Classes (the width of a row of probabilities).
    pub classes: usize,
    /// Each row's label.
    pub labels: Vec<u32>,
    /// `labels.len() × classes` probabilities, NaN for rows not predicted.
    pub probs: Vec<f32>,
}

impl Oof {
    /// Rows with no prediction yet, for `labels` of `classes` classes.
    pub fn empty(labels: Vec<u32>, classes: usize) -> Oof {
        Oof {
            classes,
            probs: vec![f32::NAN; labels.len() * classes],
            labels,
        }
    }

    /// The probabilities of row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.probs[r * self.classes..(r + 1) * self.classes]
    }

    /// Sets the probabilities of row `r`.
    pub fn set_row(&mut self, r: usize, p: &[f32]) {
        self.probs[r * self.classes..(r + 1) * self.classes].copy_from_slice(p);
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + 4 * (self.labels.len() + self.probs.len()));
        b.extend_from_slice(MAGIC);
        b.extend((self.labels.len() as u32).to_le_bytes());
        b.extend((self.classes as u32).to_le_bytes());
        self.labels.iter().for_each(|l| b.extend(l.to_le_bytes()));
        self.probs.iter().for_each(|p| b.extend(p.to_le_bytes()));
        b
    }

    /// Writes the file crash-safely.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::atomic_write(path, &self.to_bytes())
    }

    /// Reads a file written by [`Oof::write`]; errors name it.
    pub fn read(path: &Path) -> Result<Oof> {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        let bad = |why: &str| {
            anyhow!(
                "{}: not out-of-fold predictions nas reads: {why}",
                path.display()
            )
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("no NASOOF1 header"));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let (rows, classes) = (word(8) as usize, word(12) as usize);
        if bytes.len() != 16 + 4 * rows * (1 + classes) {
            return Err(bad(&format!(
                "{rows} rows of {classes} classes need {} bytes, the file has {}",
                16 + 4 * rows * (1 + classes),
                bytes.len()
            )));
        }
        let labels: Vec<u32> = (0..rows).map(|r| word(16 + 4 * r)).collect();
        if let Some(l) = labels.iter().find(|&&l| l as usize >= classes) {
            bail!("{}: label {l} of {classes} classes", path.display());
        }
        let start = 16 + 4 * rows;
        let probs = (0..rows * classes)
            .map(|i| {
                f32::from_le_bytes(
                    bytes[start + 4 * i..start + 4 * i + 4]
                        .try_into()
                        .expect("4 bytes"),
                )
            })
            .collect();
        Ok(Oof {
            classes,
            labels,
            probs,
        })
    }

    /// Each class's scores over the rows predicted (a result's `[per_class]`).
    pub fn per_class(&self) -> crate::metrics::PerClass {
        crate::metrics::PerClass::of(&self.confusion())
    }

    /// The confusion matrix over the rows predicted: `[label][predicted class]` counts (the most probable
    /// class; the lowest index on a tie).
    pub fn confusion(&self) -> Vec<Vec<usize>> {
        let mut m = vec![vec![0usize; self.classes]; self.classes];
        for (r, &l) in self.labels.iter().enumerate() {
            let p = self.row(r);
            if p.iter().any(|v| v.is_nan()) {
                continue;
            }
            m[l as usize][crate::metrics::argmax(p)] += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_fold_predictions_round_trip_and_make_a_confusion_matrix() {
        let mut o = Oof::empty(vec![0, 1, 1, 2], 3);
        o.set_row(0, &[0.7, 0.2, 0.1]);
        o.set_row(1, &[0.1, 0.8, 0.1]);
        o.set_row(2, &[0.1, 0.3, 0.6]);
        let p = std::env::temp_dir().join(format!("nas-oof-{}.oof", std::process::id()));
        o.write(&p).unwrap();
        let back = Oof::read(&p).unwrap();
        assert_eq!(back.labels, o.labels);
        assert!(back.row(3).iter().all(|v| v.is_nan()));
        assert_eq!(back.row(1), o.row(1));
        // Row 3 was not predicted: it is not counted.
        assert_eq!(back.confusion(), [[1, 0, 0], [0, 1, 1], [0, 0, 0]]);
        std::fs::write(&p, &o.to_bytes()[..20]).unwrap();
        let err = Oof::read(&p).unwrap_err().to_string();
        assert!(err.contains("need") && err.contains(".oof"), "{err}");
        std::fs::remove_file(&p).unwrap();
    }
}
