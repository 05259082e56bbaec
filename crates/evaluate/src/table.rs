//! The tabular evaluator: looks each architecture up in a benchmark table (NAS-Bench-201 format: an
//! architecture-string column and metric columns) instead of training it.
//!
//! The search sees one column (the result's `cv_mean`); report columns go into the result's `metrics` only.

use anyhow::{anyhow, bail, Result};
use space::experiment::EvalSpec;
use space::{CandidateFile, ResultFile};
use std::collections::HashMap;

/// A loaded benchmark table.
pub struct Table {
    rows: HashMap<String, (f64, Vec<f64>)>,
    report_names: Vec<String>,
    scale: f64,
}

impl Table {
    /// Loads the table named in `[evaluate]`.
    pub fn from_spec(spec: &EvalSpec) -> Result<Table> {
        let path = spec
            .table
            .as_deref()
            .ok_or_else(|| anyhow!("[evaluate] table: not set"))?;
        let search = spec
            .search_metric
            .as_deref()
            .ok_or_else(|| anyhow!("[evaluate] search_metric: not set"))?;
        Table::load(path, &spec.arch_column, search, &spec.report_metrics)
    }

    /// Loads `path`; `search` is the column the search sees, `report` the columns recorded for reporting.
    pub fn load(path: &str, arch_col: &str, search: &str, report: &[String]) -> Result<Table> {
        let bytes = std::fs::read(path).map_err(|e| anyhow!("{path}: cannot read table: {e}"))?;
        let mut rdr = csv::ReaderBuilder::new().from_reader(&bytes[..]);
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| anyhow!("{path}:1: {e}"))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                anyhow!(
                    "{path}:1: column `{name}` not found (columns: {})",
                    header.join(", ")
                )
            })
        };
        let ai = col(arch_col)?;
        let si = col(search)?;
        let ri: Vec<usize> = report.iter().map(|r| col(r)).collect::<Result<_>>()?;
        let mut rows = HashMap::new();
        let mut max: f64 = 0.0;
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| anyhow!("{path}:{line}: {e}"))?;
            let num = |c: usize| -> Result<f64> {
                let cell = rec.get(c).unwrap_or("");
                cell.trim().parse::<f64>().map_err(|_| {
                    anyhow!(
                        "{path}:{line}: column `{}`: `{cell}` is not a number",
                        header[c]
                    )
                })
            };
            let s = num(si)?;
            max = max.max(s);
            let reps = ri.iter().map(|&c| num(c)).collect::<Result<Vec<_>>>()?;
            rows.insert(rec.get(ai).unwrap_or("").trim().to_string(), (s, reps));
        }
        if rows.is_empty() {
            bail!("{path}: no rows");
        }
        Ok(Table {
            rows,
            report_names: report.to_vec(),
            scale: if max > 1.0 { 0.01 } else { 1.0 },
        })
    }

    /// Search score (0–1) and the raw report values of `arch`.
    pub fn lookup(&self, arch: &str) -> Option<(f64, &[f64])> {
        self.rows
            .get(arch)
            .map(|(s, r)| (s * self.scale, r.as_slice()))
    }

    /// Every architecture with its search score (0–1) and report values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64, &[f64])> {
        self.rows
            .iter()
            .map(|(a, (s, r))| (a.as_str(), s * self.scale, r.as_slice()))
    }

    /// The result file of a candidate (status `failed` when the table lacks it).
    pub fn result(&self, c: &CandidateFile) -> ResultFile {
        let scored = match self.lookup(&c.arch) {
            Some((s, reps)) => Ok((
                s,
                self.report_names
                    .iter()
                    .cloned()
                    .zip(reps.iter().copied())
                    .collect(),
            )),
            None => Err("architecture not in the table".to_string()),
        };
        crate::evaluator::single_score(c, space::EvaluatedBy::Table, scored, 0.0)
    }
}

impl crate::evaluator::Lookup for Table {
    fn score(&self, e: &space::Entry) -> ResultFile {
        self.result(&e.candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::Status;

    fn excerpt() -> String {
        format!(
            "{}/data/nb201-cifar10-excerpt.csv",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn looks_up_search_and_report_columns_and_hides_report_from_the_score() {
        let t = Table::load(&excerpt(), "arch", "cifar10-val", &["cifar10-test".into()]).unwrap();
        let arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";
        let (s, r) = t.lookup(arch).unwrap();
        assert!((s - 0.63364).abs() < 1e-9);
        assert_eq!(r, &[69.55]);
        let c = CandidateFile {
            version: 1,
            kind: "nas.candidate".into(),
            id: 4,
            batch: 0,
            batch_size: 1,
            arch: arch.into(),
            key: arch.into(),
            origin: space::Origin::Other("t".into()),
            params: 1,
            flops: 1,
            epochs: None,
        };
        let res = t.result(&c);
        assert_eq!(
            (res.status, res.cv_mean, res.fold_scores.len()),
            (Status::Ok, s, 1)
        );
        assert_eq!(res.metrics["cifar10-test"], 69.55);
        let missing = t.result(&CandidateFile {
            arch: "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|".into(),
            ..c
        });
        assert_eq!(missing.status, Status::Failed);
    }

    #[test]
    fn a_missing_column_is_named() {
        let e = Table::load(&excerpt(), "arch", "cifar100-val", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("column `cifar100-val` not found"), "{e}");
    }
}
