//! Data sets: the built-in digits and user CSV files, loaded with errors that name file, line and column.

use crate::experiment::DataSpec;
use anyhow::{anyhow, bail, Result};
use std::io::Read;

/// The built-in digits set (gzip of `digits.csv`; see `data/DIGITS-ATTRIBUTION.md`).
const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// A labelled table of numeric features.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major features, `rows × features`.
    pub x: Vec<f32>,
    /// Class index per row.
    pub y: Vec<u32>,
    /// Number of feature columns.
    pub features: usize,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
    /// FNV-1a of the source bytes, to notice a data file that changed under a run.
    pub fingerprint: String,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Loads the data named by `[data]` (`builtin:digits` or a CSV path).
    pub fn load(spec: &DataSpec) -> Result<Dataset> {
        let bytes = source_bytes(&spec.source)?;
        Dataset::from_csv_bytes(&spec.source, &bytes, &spec.label)
    }

    /// The default image shape of a source, if it has one.
    pub fn default_shape(source: &str) -> Option<Vec<usize>> {
        (source == "builtin:digits").then(|| vec![1, 8, 8])
    }

    /// Parses CSV text with a header row; `label` names the class column, every other column is a number.
    pub fn from_csv_bytes(name: &str, bytes: &[u8], label: &str) -> Result<Dataset> {
        let t = parse_csv(name, bytes, label, true)?;
        let labels = t.labels.expect("required");
        let mut classes: Vec<String> = labels.clone();
        classes.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(p), Ok(q)) => p.total_cmp(&q),
            _ => a.cmp(b),
        });
        classes.dedup();
        let y = labels
            .iter()
            .map(|l| classes.iter().position(|c| c == l).unwrap() as u32)
            .collect();
        Ok(Dataset {
            x: t.x,
            y,
            features: t.features,
            classes,
            fingerprint: format!("{:016x}", crate::rng::fnv1a(bytes)),
        })
    }
}

/// The bytes of a data source: `builtin:digits` or a CSV path.
pub fn source_bytes(source: &str) -> Result<Vec<u8>> {
    match source {
        "builtin:digits" => {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(DIGITS_GZ).read_to_end(&mut text)?;
            Ok(text)
        }
        s if s.starts_with("builtin:") => {
            bail!("[data] source: unknown built-in data set \"{s}\" (available: builtin:digits)")
        }
        path => std::fs::read(path).map_err(|e| anyhow!("{path}: cannot read data: {e}")),
    }
}

/// Rows of a CSV: features, and the label column's text when present.
pub struct CsvRows {
    /// Row-major features, `rows × features`.
    pub x: Vec<f32>,
    /// Number of feature columns.
    pub features: usize,
    /// The label of each row, when the label column is present.
    pub labels: Option<Vec<String>>,
}

/// Parses CSV text with a header row: `label` names the class column (an error when missing and
/// `label_required`), every other column is a number.
pub fn parse_csv(name: &str, bytes: &[u8], label: &str, label_required: bool) -> Result<CsvRows> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| anyhow!("{name}:1: cannot read the header: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.len() <= 1 && header.first().is_none_or(|h| h.is_empty()) {
        bail!("{name}: empty file: expected a header row and data rows");
    }
    let li = header.iter().position(|h| h == label);
    if li.is_none() && label_required {
        let cols: Vec<&str> = header.iter().take(8).map(String::as_str).collect();
        bail!(
            "{name}:1: label column `{label}` not found (columns: {}{})",
            cols.join(", "),
            if header.len() > 8 { ", …" } else { "" }
        );
    }
    if li.is_some() && header.len() < 2 {
        bail!("{name}:1: no feature columns besides the label `{label}`");
    }
    let features = header.len() - usize::from(li.is_some());
    let mut rows = 0usize;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (r, rec) in rdr.records().enumerate() {
        let line = r + 2;
        let rec = rec.map_err(|e| anyhow!("{name}:{line}: {e}"))?;
        if rec.len() == 1 && rec.get(0).is_some_and(|c| c.trim().is_empty()) {
            continue; // blank line
        }
        if rec.len() != header.len() {
            bail!(
                "{name}:{line}: row has {} cells, the header has {}",
                rec.len(),
                header.len()
            );
        }
        rows += 1;
        for (c, cell) in rec.iter().enumerate() {
            if Some(c) == li {
                labels.push(cell.trim().to_string());
                continue;
            }
            let v: f32 = cell.trim().parse().map_err(|_| {
                anyhow!(
                    "{name}:{line}: column `{}`: `{}` is not a number",
                    header[c],
                    cell
                )
            })?;
            if !v.is_finite() {
                bail!(
                    "{name}:{line}: column `{}`: `{cell}` is not a finite number",
                    header[c]
                );
            }
            x.push(v);
        }
    }
    if rows == 0 {
        bail!("{name}: no data rows after the header");
    }
    Ok(CsvRows {
        x,
        features,
        labels: li.map(|_| labels),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_digits_loads() {
        let d = Dataset::load(&DataSpec::default()).unwrap();
        assert_eq!(d.rows(), 1797);
        assert_eq!(d.features, 64);
        assert_eq!(d.classes.len(), 10);
        assert_eq!(d.x.len(), 1797 * 64);
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = |t: &str, l: &str| {
            Dataset::from_csv_bytes("d.csv", t.as_bytes(), l)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("a,b,y\n1,2,0\n1,2\n", "y"),
            "d.csv:3: row has 2 cells, the header has 3"
        );
        assert_eq!(
            e("a,b,y\n1,x,0\n", "y"),
            "d.csv:2: column `b`: `x` is not a number"
        );
        assert!(e("a,b,y\n1,2,0\n", "label").starts_with("d.csv:1: label column `label` not found"));
        assert_eq!(
            e("", "y"),
            "d.csv: empty file: expected a header row and data rows"
        );
        assert_eq!(e("a,y\n", "y"), "d.csv: no data rows after the header");
        let d = Dataset::from_csv_bytes("d.csv", b"a,y\n1,10\n2,9\n3,10\n", "y").unwrap();
        assert_eq!(d.classes, vec!["9", "10"]);
        assert_eq!(d.y, vec![1, 0, 1]);
    }
}
