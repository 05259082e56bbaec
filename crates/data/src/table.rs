//! Tables: the built-in digits and user CSV files, loaded with errors that name file, line and column.

use anyhow::{anyhow, bail, Result};
use space::{Builtin, DataSource};
use std::io::Read;

/// The built-in digits set (gzip of `digits.csv`; see `data/DIGITS-ATTRIBUTION.md`).
const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// What a feature column holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnKind {
    /// Numbers (missing cells are NaN in [`Dataset::x`]).
    Numeric,
    /// Text categories; [`Dataset::x`] holds the index into `levels` (sorted), NaN for a missing cell.
    Categorical {
        /// The distinct values, sorted.
        levels: Vec<String>,
    },
    /// Free text ([`crate::text`]); [`Dataset::x`] holds the index into `values` (sorted), NaN for a missing
    /// cell. A column is text when `[data] text` names it, or when it is not numeric and looks like text
    /// ([`looks_like_text`]).
    Text {
        /// The distinct texts, sorted.
        values: Vec<String>,
        /// Their tokens, read when first needed.
        corpus: crate::text::Corpus,
    },
}

/// Whether a non-numeric column with these distinct `values` in `cells` non-empty cells is free text rather
/// than categories: at least 20 distinct values, more than half of its cells distinct (a category repeats;
/// one-hot encoding a column of mostly unique values gives the network nothing to learn), and two words
/// or more per value on average (a column of single unique words is identifiers; it stays categorical).
pub fn looks_like_text(values: &[String], cells: usize) -> bool {
    let words: usize = values.iter().map(|v| v.split_whitespace().count()).sum();
    values.len() >= 20 && 2 * values.len() > cells && words >= 2 * values.len()
}

/// One feature column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Header name.
    pub name: String,
    /// Numbers or categories.
    pub kind: ColumnKind,
    /// Empty cells.
    pub missing: usize,
}

/// A labelled table of features.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major raw features, `rows × features`: numbers, or category indices (see [`ColumnKind`]); NaN
    /// for a missing cell.
    pub x: Vec<f32>,
    /// Class index per row.
    pub y: Vec<u32>,
    /// Number of feature columns.
    pub features: usize,
    /// The feature columns, in file order.
    pub columns: Vec<Column>,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
    /// FNV-1a of the source bytes, to notice a data file that changed under a run.
    pub fingerprint: String,
    /// The image shape `[c, h, w]` the source itself gives (IDX files, image folders); `None` for a CSV.
    pub shape: Option<[usize; 3]>,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// The names of the text columns.
    pub fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Text { .. }))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Whether every feature is a number and no cell is missing (what image data must be).
    pub fn all_numeric_and_complete(&self) -> bool {
        self.columns
            .iter()
            .all(|c| c.kind == ColumnKind::Numeric && c.missing == 0)
    }

    /// The image shape a table's columns look like, for a hint (it is never applied unasked): at least 64
    /// complete numeric columns, a square number of them (or three times one, for colour), every value a
    /// whole number from 0 to 255 or a fraction from 0 to 1 — pixels, as MNIST-style CSVs store them.
    pub fn looks_like_images(&self) -> Option<[usize; 3]> {
        if self.shape.is_some() || self.features < 64 || !self.all_numeric_and_complete() {
            return None;
        }
        let bytes = self
            .x
            .iter()
            .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0);
        let unit = self.x.iter().all(|&v| (0.0..=1.0).contains(&v));
        if !(bytes || unit) {
            return None;
        }
        [1, 3].into_iter().find_map(|c| {
            let side = ((self.features / c) as f64).sqrt().round() as usize;
            (c * side * side == self.features).then_some([c, side, side])
        })
    }

    /// Parses CSV text with a header row; `label` names the class column; every other column is numbers
    /// or text categories, with empty cells for missing values.
    pub fn from_csv_bytes(name: &str, bytes: &[u8], label: &str) -> Result<Dataset> {
        Dataset::from_csv_forced(name, bytes, label, &[])
    }

    /// [`Dataset::from_csv_bytes`], with the columns named in `text` read as free text (`[data] text`).
    pub fn from_csv_forced(
        name: &str,
        bytes: &[u8],
        label: &str,
        text: &[&str],
    ) -> Result<Dataset> {
        let forced = Forced {
            categorical: &[],
            text,
        };
        let t = parse_csv_with(name, bytes, label, true, forced)?;
        for c in text {
            if *c == label {
                bail!("{name}: [data] text names `{c}`, the label column: the label holds classes");
            }
            if !t.columns.iter().any(|col| col.name == *c) {
                bail!("{name}: [data] text names `{c}`, which is not a column of the file");
            }
        }
        let labels = t.labels.expect("required");
        let mut classes: Vec<String> = labels.clone();
        classes.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(p), Ok(q)) => p.total_cmp(&q),
            _ => a.cmp(b),
        });
        classes.dedup();
        let rows = labels.len();
        let numeric = classes.iter().all(|c| c.parse::<f64>().is_ok());
        if rows >= 20 && classes.len() * 2 > rows && !numeric {
            bail!(
                "{name}: label column `{label}` has {} distinct values in {rows} rows: it looks like free text or identifiers, and nas predicts classes (choose a column of classes with --label)",
                classes.len()
            );
        }
        if rows >= 20 && classes.len() * 2 > rows {
            bail!(
                "{name}: label column `{label}` has {} distinct values in {rows} rows: it looks continuous, and nas classifies (choose a column of classes with --label)",
                classes.len()
            );
        }
        let y = labels
            .iter()
            .map(|l| classes.iter().position(|c| c == l).unwrap() as u32)
            .collect();
        Ok(Dataset {
            x: t.x,
            y,
            features: t.columns.len(),
            columns: t.columns,
            classes,
            fingerprint: format!("{:016x}", space::rng::fnv1a(bytes)),
            shape: None,
        })
    }
}

/// The bytes of a data source, gzip-compressed or not (decompressed here).
pub fn source_bytes(source: &DataSource) -> Result<Vec<u8>> {
    match source {
        DataSource::Builtin(Builtin::Digits) => {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(DIGITS_GZ).read_to_end(&mut text)?;
            Ok(text)
        }
        DataSource::Path(path) => read_data_file(path),
    }
}

/// Rows of a CSV: raw features (see [`Dataset::x`]), their columns, and the label column's text when present.
pub struct CsvRows {
    /// Row-major raw features, `rows × columns`.
    pub x: Vec<f32>,
    /// The feature columns.
    pub columns: Vec<Column>,
    /// The label of each row, when the label column is present.
    pub labels: Option<Vec<String>>,
}

/// The field separator of a CSV: whichever of `,` `;` tab occurs most in the header line outside quotes.
fn delimiter(bytes: &[u8]) -> u8 {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut quoted = false;
    let mut counts = [0usize; 3];
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// Parses CSV text with a header row (comma, semicolon or tab separated, detected; quoted fields): `label`
/// names the class column (an error when missing and `label_required`). A feature column whose non-empty
/// cells are all numbers is numeric, any other is categorical; empty cells are missing values.
pub fn parse_csv(name: &str, bytes: &[u8], label: &str, label_required: bool) -> Result<CsvRows> {
    parse_csv_with(name, bytes, label, label_required, Forced::default())
}

/// How columns are to be read whatever they hold (prediction reads a table as the training data was read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Forced<'a> {
    /// Columns read as categories, even when they hold numbers or look like text.
    pub categorical: &'a [&'a str],
    /// Columns read as free text, even when they hold numbers or look like categories.
    pub text: &'a [&'a str],
}

/// [`parse_csv`], with the columns `forced` names read as it says.
pub fn parse_csv_with(
    name: &str,
    bytes: &[u8],
    label: &str,
    label_required: bool,
    forced: Forced,
) -> Result<CsvRows> {
    let reader = || {
        csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter(bytes))
            .from_reader(bytes)
    };
    // With `;` or tab between fields, `3,14` is a number written with a decimal comma (as spreadsheets in
    // much of Europe write them); with `,` between fields a quoted "3,14" stays text (it may as well be 3,140).
    let decimal_comma = delimiter(bytes) != b',';
    let mut rdr = reader();
    let header = read_header(name, &mut rdr)?;
    let li = label_index(name, &header, label, label_required)?;
    let feature_cols: Vec<usize> = (0..header.len()).filter(|&c| Some(c) != li).collect();
    // Pass 1: the rows are well formed; which columns hold text; the levels of those.
    let mut text: Vec<Option<std::collections::BTreeSet<String>>> = header
        .iter()
        .map(|h| {
            let h = h.as_str();
            (forced.categorical.contains(&h) || forced.text.contains(&h)).then(Default::default)
        })
        .collect();
    let Scan {
        missing,
        rows,
        labels,
    } = scan(
        name,
        &mut rdr,
        (&header, li, label),
        decimal_comma,
        &mut text,
    )?;
    // The levels of text columns (every non-empty cell, numbers included, as text).
    if text.iter().any(Option::is_some) {
        for rec in reader().records().flatten() {
            for (c, cell) in rec.iter().enumerate() {
                if let Some(set) = text[c].as_mut() {
                    let cell = cell.trim();
                    if !cell.is_empty() {
                        set.insert(cell.to_string());
                    }
                }
            }
        }
    }
    let levels: Vec<Option<Vec<String>>> = text
        .into_iter()
        .map(|s| s.map(|s| s.into_iter().collect()))
        .collect();
    // Pass 2: the values.
    let mut x = Vec::with_capacity(rows * feature_cols.len());
    for rec in reader().records() {
        let rec = rec?;
        if rec.len() != header.len() {
            continue; // the blank lines skipped above
        }
        for &c in &feature_cols {
            let cell = rec.get(c).unwrap_or("").trim();
            x.push(if cell.is_empty() {
                f32::NAN
            } else {
                match &levels[c] {
                    Some(l) => l
                        .binary_search_by(|v| v.as_str().cmp(cell))
                        .map_or(f32::NAN, |i| i as f32),
                    None => number(cell, decimal_comma).unwrap_or(f32::NAN),
                }
            });
        }
    }
    let columns = feature_cols
        .iter()
        .map(|&c| Column {
            name: header[c].clone(),
            kind: match &levels[c] {
                Some(l) if forced.text.contains(&header[c].as_str()) => ColumnKind::Text {
                    values: l.clone(),
                    corpus: Default::default(),
                },
                Some(l)
                    if !forced.categorical.contains(&header[c].as_str())
                        && looks_like_text(l, rows - missing[c]) =>
                {
                    ColumnKind::Text {
                        values: l.clone(),
                        corpus: Default::default(),
                    }
                }
                Some(l) => ColumnKind::Categorical { levels: l.clone() },
                None => ColumnKind::Numeric,
            },
            missing: missing[c],
        })
        .collect();
    Ok(CsvRows {
        x,
        columns,
        labels: li.map(|_| labels),
    })
}

/// The header row of a CSV, trimmed; an empty file or a repeated name is an error naming `name`.
fn read_header(name: &str, rdr: &mut csv::Reader<&[u8]>) -> Result<Vec<String>> {
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| anyhow!("{name}:1: cannot read the header: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.len() <= 1 && header.first().is_none_or(|h| h.is_empty()) {
        bail!("{name}: empty file: expected a header row and data rows");
    }
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            bail!("{name}:1: column name `{h}` appears twice in the header");
        }
    }
    Ok(header)
}

/// The position of the label column in `header` (an error when missing and `required`).
fn label_index(
    name: &str,
    header: &[String],
    label: &str,
    required: bool,
) -> Result<Option<usize>> {
    let li = header.iter().position(|h| h == label);
    if li.is_none() && required {
        let cols: Vec<&str> = header.iter().take(8).map(String::as_str).collect();
        let last = header.last().map_or("", String::as_str);
        bail!(
            "{name}:1: label column `{label}` not found (columns: {}{}); name it with --label, e.g. --label {last}",
            cols.join(", "),
            if header.len() > 9 {
                format!(", …, {last}")
            } else if header.len() == 9 {
                format!(", {last}")
            } else {
                String::new()
            }
        );
    }
    if li.is_some() && header.len() < 2 {
        bail!("{name}:1: no feature columns besides the label `{label}`");
    }
    Ok(li)
}

/// A cell as a number: as Rust reads it, or with `decimal_comma` also `-3,14` (digits, one comma, digits).
fn number(cell: &str, decimal_comma: bool) -> Option<f32> {
    if let Ok(v) = cell.parse() {
        return Some(v);
    }
    let (int, frac) = cell.split_once(',').filter(|_| decimal_comma)?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let int_digits = int.strip_prefix(['-', '+']).unwrap_or(int);
    (digits(int_digits) && digits(frac))
        .then(|| format!("{int}.{frac}").parse().ok())
        .flatten()
}

/// What the first pass over a CSV's rows found.
struct Scan {
    /// Empty cells per column.
    missing: Vec<usize>,
    /// Data rows (blank lines skipped).
    rows: usize,
    /// The label of each row (empty without a label column).
    labels: Vec<String>,
}

/// The first pass: checks every row is well formed and every number finite; marks in `text` the columns
/// holding a cell that is not a number.
fn scan(
    name: &str,
    rdr: &mut csv::Reader<&[u8]>,
    (header, li, label): (&[String], Option<usize>, &str),
    decimal_comma: bool,
    text: &mut [Option<std::collections::BTreeSet<String>>],
) -> Result<Scan> {
    let mut missing = vec![0usize; header.len()];
    let mut rows = 0usize;
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
            let cell = cell.trim();
            if Some(c) == li {
                if cell.is_empty() {
                    bail!("{name}:{line}: the label `{label}` is empty");
                }
                labels.push(cell.to_string());
            } else if cell.is_empty() {
                missing[c] += 1;
            } else {
                match number(cell, decimal_comma) {
                    Some(v) if !v.is_finite() => bail!(
                        "{name}:{line}: column `{}`: `{cell}` is not a finite number",
                        header[c]
                    ),
                    Some(_) => {}
                    None => {
                        text[c].get_or_insert_with(Default::default);
                    }
                }
            }
        }
    }
    if rows == 0 {
        bail!("{name}: no data rows after the header");
    }
    Ok(Scan {
        missing,
        rows,
        labels,
    })
}

/// A data file's bytes, decompressed when it is gzip (by its magic bytes, whatever its name).
pub fn read_data_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("{}: cannot read data: {e}", path.display()))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
        .map_err(|e| anyhow!("{}: cannot decompress (gzip): {e}", path.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::experiment::DataSpec;

    #[test]
    fn builtin_digits_loads() {
        let d = Dataset::load(&DataSpec::default()).unwrap();
        assert_eq!(d.rows(), 1797);
        assert_eq!(d.features, 64);
        assert_eq!(d.classes.len(), 10);
        assert_eq!(d.x.len(), 1797 * 64);
    }

    #[test]
    fn decimal_commas_are_numbers_when_fields_are_not_comma_separated() {
        let d = Dataset::from_csv_bytes("d.csv", b"w;h;y\n3,5;-1,25;a\n2;4,0;b\n", "y").unwrap();
        assert_eq!(d.columns[0].kind, ColumnKind::Numeric);
        assert_eq!(d.columns[1].kind, ColumnKind::Numeric);
        assert_eq!(d.x, [3.5, -1.25, 2.0, 4.0]);
        // With commas between fields, a quoted "3,5" may be 3,500: it stays text.
        let d = Dataset::from_csv_bytes("d.csv", b"w,y\n\"3,5\",a\n2,b\n", "y").unwrap();
        assert!(matches!(d.columns[0].kind, ColumnKind::Categorical { .. }));
        // Not a number in any locale.
        let d = Dataset::from_csv_bytes("d.csv", b"w;y\n3,5,1;a\n,5;b\n", "y").unwrap();
        assert!(matches!(d.columns[0].kind, ColumnKind::Categorical { .. }));
    }

    #[test]
    fn text_and_empty_cells_make_categorical_columns_and_missing_values() {
        // Semicolon separated, quoted fields, a text column with a missing cell, a numeric one with one.
        let d = Dataset::from_csv_bytes(
            "d.csv",
            b"\"colour\";\"size\";\"y\"\n\"red\";1.5;a\n\"blue\";;b\n;2;a\n",
            "y",
        )
        .unwrap();
        assert_eq!(d.columns[0].name, "colour");
        assert_eq!(
            d.columns[0].kind,
            ColumnKind::Categorical {
                levels: vec!["blue".into(), "red".into()]
            }
        );
        assert_eq!((d.columns[0].missing, d.columns[1].missing), (1, 1));
        assert_eq!(d.columns[1].kind, ColumnKind::Numeric);
        let shown: Vec<String> = d.x.iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, ["1", "1.5", "0", "NaN", "NaN", "2"]);
        // Tab separated, gzip-compressed from a file.
        let p = std::env::temp_dir().join(format!("nas-data-{}.csv.gz", std::process::id()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"a\tb\ty\n1\t2\t0\n3\t4\t1\n").unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        let d = Dataset::load(&DataSpec {
            source: space::DataSource::Path(p.clone()),
            label: "y".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((d.features, d.x.clone()), (2, vec![1., 2., 3., 4.]));
        std::fs::remove_file(&p).unwrap();
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
            e("a,b,y\n1,inf,0\n", "y"),
            "d.csv:2: column `b`: `inf` is not a finite number"
        );
        assert_eq!(
            e("a,a,y\n1,2,0\n", "y"),
            "d.csv:1: column name `a` appears twice in the header"
        );
        let many: String = (0..40).map(|i| format!("{i},{}.5\n", i)).collect();
        assert!(e(&format!("a,y\n{many}"), "y").contains("looks continuous"));
        assert_eq!(
            e("a,b,y\n1,2,0\n", "label"),
            "d.csv:1: label column `label` not found (columns: a, b, y); name it with --label, e.g. --label y"
        );
        assert_eq!(
            e("", "y"),
            "d.csv: empty file: expected a header row and data rows"
        );
        assert_eq!(e("a,y\n", "y"), "d.csv: no data rows after the header");
        let d = Dataset::from_csv_bytes("d.csv", b"a,y\n1,10\n2,9\n3,10\n", "y").unwrap();
        assert_eq!(d.classes, vec!["9", "10"]);
        assert_eq!(d.y, vec![1, 0, 1]);
    }

    #[test]
    fn free_text_is_mostly_distinct_and_multi_word() {
        let v = |f: &dyn Fn(usize) -> String, n: usize| (0..n).map(f).collect::<Vec<String>>();
        let notes = v(&|i| format!("looked well on day {i}"), 30);
        assert!(looks_like_text(&notes, 30));
        assert!(
            !looks_like_text(&notes, 90),
            "each value three times: categories"
        );
        assert!(
            !looks_like_text(&v(&|i| format!("id{i}"), 30), 30),
            "single words: identifiers"
        );
        assert!(!looks_like_text(&notes[..10], 10), "too few values to tell");
        let d = Dataset::from_csv_bytes(
            "t.csv",
            format!(
                "n,y\n{}",
                notes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n},{}\n", i % 2))
                    .collect::<String>()
            )
            .as_bytes(),
            "y",
        )
        .unwrap();
        assert_eq!(d.text_columns(), vec!["n"]);
    }
}
