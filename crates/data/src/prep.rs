//! Input preprocessing, fitted on training rows only: how raw columns become the numbers a network reads.
//!
//! A table's columns are encoded ([`ColumnEncoding`]): a numeric column as itself, its missing cells filled
//! with the training mean, plus an "is missing" indicator when the training rows have any; a categorical
//! column one-hot over the levels seen in the training rows, a missing cell as the most frequent level, a
//! level never seen in training as all zeros; a text column twice, as its words and as its character
//! grams, each the ids of its distinct tokens in a vocabulary fitted on the training rows and their idf
//! weights ([`crate::text`]), placed after every other input and not standardised. Images (all
//! numeric, complete) are reordered channel-last. Then every other input is standardised with the training
//! rows' mean and standard deviation: each its own, or an image's pixels one per channel
//! ([`Standardize`], which the run's `space.toml` records). [`Prep::fit`] sees only the rows it is given, so a held-out fold changes nothing that is fitted. The fitted [`Prep`] is
//! stored in `model.toml`, so prediction applies exactly what training did.

use crate::table::{Column, ColumnKind};
use crate::text;
pub use space::encoding::ColumnEncoding;
use space::encoding::{Standardize, Tokens};

/// Rows as the networks read them: images reordered channel-last (`h, w, c`), other data as is.
pub fn network_layout(x: &[f32], features: usize, shape: Option<[usize; 3]>) -> Vec<f32> {
    match shape {
        Some([c, h, w]) if c > 1 => {
            let hw = h * w;
            let mut out = vec![0.0; x.len()];
            for (r, row) in x.chunks(features).enumerate() {
                for ci in 0..c {
                    for p in 0..hw {
                        out[r * features + p * c + ci] = row[ci * hw + p];
                    }
                }
            }
            out
        }
        _ => x.to_vec(),
    }
}

/// Per-feature mean and standard deviation, fitted on training rows only.
#[derive(Clone, Debug)]
pub struct Standardizer {
    /// Feature means.
    pub mean: Vec<f32>,
    /// Feature standard deviations (1 where a feature is constant).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `rows` of `x` (`features` columns), each input its own mean and deviation.
    pub fn fit(x: &[f32], features: usize, rows: &[usize]) -> Standardizer {
        Standardizer::fit_channels(x, features, rows, features)
    }

    /// Fits one mean and deviation per channel of channel-last images of `c` channels (`features` a multiple
    /// of `c`), pooled over the pixels, written out per feature: every pixel of a channel is standardised
    /// alike, so an image shifted by a pixel is the same image shifted after standardisation too. With
    /// `c = features` each input is its own channel ([`Standardizer::fit`]). A deviation under 1e-6 is 1.
    pub fn fit_channels(x: &[f32], features: usize, rows: &[usize], c: usize) -> Standardizer {
        let c = c.max(1);
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for &r in rows {
            for (j, v) in x[r * features..(r + 1) * features].iter().enumerate() {
                sum[j % c] += *v as f64;
                sq[j % c] += (*v as f64) * (*v as f64);
            }
        }
        let n = (rows.len() * features / c).max(1) as f64;
        let (mut mean, mut std) = (Vec::with_capacity(features), Vec::with_capacity(features));
        for j in 0..features {
            let m = sum[j % c] / n;
            let sd = (sq[j % c] / n - m * m).max(0.0).sqrt();
            mean.push(m as f32);
            std.push(if sd < 1e-6 { 1.0 } else { sd as f32 });
        }
        Standardizer { mean, std }
    }

    /// Standardised copy of `rows`.
    pub fn apply(&self, x: &[f32], rows: &[usize]) -> Vec<f32> {
        let f = self.mean.len();
        let mut out = Vec::with_capacity(rows.len() * f);
        for &r in rows {
            for j in 0..f {
                out.push((x[r * f + j] - self.mean[j]) / self.std[j]);
            }
        }
        out
    }
}

/// Fits one column's encodings on its training values (NaN for a missing cell): one, or a text column's
/// one per kind of token.
fn fit_encoding(col: &Column, values: impl Iterator<Item = f32>) -> Vec<ColumnEncoding> {
    let name = col.name.clone();
    vec![match &col.kind {
        ColumnKind::Numeric => {
            let (mut sum, mut n, mut missing) = (0f64, 0usize, false);
            for v in values {
                if v.is_nan() {
                    missing = true;
                } else {
                    sum += v as f64;
                    n += 1;
                }
            }
            ColumnEncoding::Numeric {
                name,
                fill: if n > 0 { (sum / n as f64) as f32 } else { 0.0 },
                indicator: missing,
            }
        }
        ColumnKind::Categorical { levels } => {
            let mut count = vec![0usize; levels.len()];
            for v in values.filter(|v| !v.is_nan()) {
                count[v as usize] += 1;
            }
            // The most frequent level (the first in sorted order on a tie).
            let mode = (0..levels.len()).max_by_key(|&i| (count[i], std::cmp::Reverse(i)));
            ColumnEncoding::Categorical {
                name,
                levels: (0..levels.len())
                    .filter(|&i| count[i] > 0)
                    .map(|i| levels[i].clone())
                    .collect(),
                fill: mode
                    .filter(|&i| count[i] > 0)
                    .map_or(String::new(), |i| levels[i].clone()),
            }
        }
        ColumnKind::Text {
            values: texts,
            corpus,
        } => {
            let rows: Vec<usize> = values.filter(|v| !v.is_nan()).map(|v| v as usize).collect();
            return fit_text(&col.name, texts, corpus, &rows);
        }
    }]
}

/// Fits a text column's encodings on its training texts (`rows`: indices into `texts`, a text as often as
/// it is a row's): one per kind of token.
fn fit_text(
    name: &str,
    texts: &[String],
    corpus: &text::Corpus,
    rows: &[usize],
) -> Vec<ColumnEncoding> {
    [Tokens::Words, Tokens::Chars]
        .into_iter()
        .map(|tokens| {
            let read = corpus.kind(texts, tokens);
            let (vocab, idf) = read.fit_vocab(rows);
            let map = read.vocab_ids(&vocab);
            // As many slots as the training text with the most distinct known tokens has (at least one).
            let len = rows
                .iter()
                .map(|&r| read.known_ids(r, &map).count())
                .max()
                .unwrap_or(0)
                .clamp(1, text::max_len(tokens));
            // Word slots: as many as the training text with the most words has (at least one).
            let seq = match tokens {
                Tokens::Words => (rows.iter())
                    .map(|&r| read.words(r).len())
                    .max()
                    .unwrap_or(0)
                    .max(1),
                Tokens::Chars => 0,
            };
            ColumnEncoding::Text {
                name: name.to_string(),
                vocab,
                len,
                tokens,
                idf,
                seq,
            }
        })
        .collect()
}

/// How a text encoding finds a text's vocabulary ids.
enum TextVocab<'a> {
    /// From the column's token ids: the ids and the map from them to the vocabulary's.
    Ids(&'a text::Interned, Vec<u32>),
    /// By looking each token up (an encoding from before idf weights, which counts repeats).
    Index(std::collections::HashMap<&'a str, usize>),
    /// Not a text encoding.
    None,
}

/// Everything fitted between raw rows and the network: column encodings, image layout, standardisation.
#[derive(Clone, Debug)]
pub struct Prep {
    /// One encoding per raw column (a text column: one per kind of token), in the data's column order.
    pub columns: Vec<ColumnEncoding>,
    /// The image shape the inputs are reordered for, if any.
    pub shape: Option<[usize; 3]>,
    /// Standardisation of the encoded inputs.
    pub standardizer: Standardizer,
}

/// For each encoding, the column of `columns` it reads: by name, or `None` when the data lacks it.
pub fn match_columns(encodings: &[ColumnEncoding], columns: &[Column]) -> Vec<Option<usize>> {
    encodings
        .iter()
        .map(|e| columns.iter().position(|c| c.name == e.name()))
        .collect()
}

impl Prep {
    /// Fits on `rows` of the raw table `x` (columns `columns`); `shape` reorders images channel-last, whose
    /// inputs `standardize` says how to standardise.
    pub fn fit(
        x: &[f32],
        columns: &[Column],
        rows: &[usize],
        shape: Option<[usize; 3]>,
        standardize: Standardize,
    ) -> Prep {
        let f = columns.len();
        let mut encodings = Vec::new();
        let mut source = Vec::new();
        for (j, c) in columns.iter().enumerate() {
            let fitted = fit_encoding(c, rows.iter().map(|&r| x[r * f + j]));
            source.extend(std::iter::repeat_n(j, fitted.len()));
            encodings.extend(fitted);
        }
        let mut prep = Prep {
            columns: encodings,
            shape,
            standardizer: Standardizer {
                mean: Vec::new(),
                std: Vec::new(),
            },
        };
        let enc = prep.encode(x, columns, &source, rows).0;
        let w = prep.width();
        let all: Vec<usize> = (0..rows.len()).collect();
        prep.standardizer = match (shape, standardize) {
            (Some([c, ..]), Standardize::Channel) => Standardizer::fit_channels(&enc, w, &all, c),
            _ => Standardizer::fit(&enc, w, &all),
        };
        // Token ids and their weights are not measurements: they reach the network as they are.
        let ids: usize = prep
            .text_inputs()
            .iter()
            .map(space::TextInput::inputs)
            .sum();
        prep.standardizer.mean[w - ids..].fill(0.0);
        prep.standardizer.std[w - ids..].fill(1.0);
        prep
    }

    /// The text columns' token-id inputs, the last of the network's inputs (see [`space::InputInfo::text`]).
    pub fn text_inputs(&self) -> Vec<space::TextInput> {
        space::encoding::input_order(&self.columns)
            .filter_map(|(_, e)| match e {
                ColumnEncoding::Text {
                    name,
                    vocab,
                    len,
                    idf,
                    tokens,
                    seq,
                } => Some(space::TextInput {
                    column: name.clone(),
                    len: *len,
                    vocab: vocab.len() + text::RESERVED,
                    tokens: *tokens,
                    weighted: !idf.is_empty(),
                    seq: *seq,
                }),
                _ => None,
            })
            .collect()
    }

    /// Network inputs per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoding::width).sum()
    }

    /// Encoded, laid-out rows (not standardised); `source[i]` is the column of `x` that encoding i reads.
    /// Also counts the cells of unknown categories met.
    fn encode(
        &self,
        x: &[f32],
        columns: &[Column],
        source: &[usize],
        rows: &[usize],
    ) -> (Vec<f32>, usize) {
        let f = columns.len();
        let w = self.width();
        let mut out = Vec::with_capacity(rows.len() * w);
        let mut unknown = 0;
        // For categorical columns: the data's level index → the encoding's one-hot position.
        let maps: Vec<Vec<Option<usize>>> = self
            .columns
            .iter()
            .zip(source)
            .map(|(e, &j)| match (e, &columns[j].kind) {
                (
                    ColumnEncoding::Categorical { levels, .. },
                    ColumnKind::Categorical { levels: data },
                ) => data
                    .iter()
                    .map(|l| levels.iter().position(|k| k == l))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        // For text columns: the texts' token ids → the vocabulary's ids, or (a model from before idf
        // weights) the vocabulary's token → id map.
        let vocabs: Vec<TextVocab> = self
            .columns
            .iter()
            .zip(source)
            .map(|(e, &j)| match (e, &columns[j].kind) {
                (ColumnEncoding::Text { vocab, idf, .. }, _) if idf.is_empty() => {
                    TextVocab::Index(text::index(vocab))
                }
                (
                    ColumnEncoding::Text { vocab, tokens, .. },
                    ColumnKind::Text { values, corpus },
                ) => {
                    let read = corpus.kind(values, *tokens);
                    TextVocab::Ids(read, read.vocab_ids(vocab))
                }
                _ => TextVocab::None,
            })
            .collect();
        let order: Vec<usize> = space::encoding::input_order(&self.columns)
            .map(|(i, _)| i)
            .collect();
        for &r in rows {
            let row = &x[r * f..(r + 1) * f];
            for &i in &order {
                let (e, j, map) = (&self.columns[i], source[i], &maps[i]);
                let v = row[j];
                match e {
                    ColumnEncoding::Numeric {
                        fill, indicator, ..
                    } => {
                        out.push(if v.is_nan() { *fill } else { v });
                        if *indicator {
                            out.push(if v.is_nan() { 1.0 } else { 0.0 });
                        }
                    }
                    ColumnEncoding::Categorical { levels, fill, .. } => {
                        let at = out.len();
                        out.resize(at + levels.len(), 0.0);
                        let hot = if v.is_nan() {
                            levels.iter().position(|l| l == fill)
                        } else {
                            let h = map.get(v as usize).copied().flatten();
                            unknown += usize::from(h.is_none());
                            h
                        };
                        if let Some(h) = hot {
                            out[at + h] = 1.0;
                        }
                    }
                    ColumnEncoding::Text {
                        len,
                        tokens,
                        idf,
                        seq,
                        ..
                    } => match (&vocabs[i], &columns[j].kind) {
                        (TextVocab::Ids(read, map), _) if !v.is_nan() => {
                            let ids = read.known_ids(v as usize, map);
                            text::push_inputs(&mut out, ids, *len, idf);
                            text::push_words(&mut out, read.word_ids(v as usize, map), *seq);
                        }
                        (TextVocab::Index(ix), ColumnKind::Text { values, .. }) if !v.is_nan() => {
                            text::push_unweighted(&mut out, &values[v as usize], ix, *len, *tokens)
                        }
                        // A missing text (or a column read as something else): no known token.
                        _ => {
                            text::push_inputs(&mut out, std::iter::empty(), *len, idf);
                            text::push_words(&mut out, std::iter::empty(), *seq);
                        }
                    },
                }
            }
        }
        (network_layout(&out, w, self.shape), unknown)
    }

    /// The standardised network inputs of `rows` of a raw table whose columns are those the prep was
    /// fitted on (`source[i]`: the column encoding i reads, see [`match_columns`]), and how many cells held a
    /// category never seen in training (encoded as all zeros).
    pub fn apply_with(
        &self,
        x: &[f32],
        columns: &[Column],
        source: &[usize],
        rows: &[usize],
    ) -> (Vec<f32>, usize) {
        let (enc, unknown) = self.encode(x, columns, source, rows);
        let all: Vec<usize> = (0..rows.len()).collect();
        (self.standardizer.apply(&enc, &all), unknown)
    }

    /// [`Prep::apply_with`] on the table the prep was fitted on (same columns).
    pub fn apply(&self, x: &[f32], columns: &[Column], rows: &[usize]) -> Vec<f32> {
        let source: Vec<usize> = match_columns(&self.columns, columns)
            .into_iter()
            .map(|j| j.expect("the prep was fitted on these columns"))
            .collect();
        self.apply_with(x, columns, &source, rows).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Dataset;

    #[test]
    fn standardizer_uses_only_given_rows() {
        let x = vec![1.0, 10.0, 3.0, 10.0, 100.0, 0.0];
        let s = Standardizer::fit(&x, 2, &[0, 1]);
        assert_eq!(s.mean, vec![2.0, 10.0]);
        assert_eq!(s.std, vec![1.0, 1.0]);
        assert_eq!(s.apply(&x, &[2]), vec![98.0, -10.0]);
    }

    #[test]
    fn channel_last_reorders_images() {
        let x = vec![1., 2., 3., 4., 5., 6., 7., 8.];
        assert_eq!(
            network_layout(&x, 8, Some([2, 2, 2])),
            vec![1., 5., 2., 6., 3., 7., 4., 8.]
        );
    }

    #[test]
    fn images_are_standardised_per_channel_when_the_run_says_so() {
        // Two 2×1 images of 2 channels, channel-last: (pixel 0: c0, c1), (pixel 1: c0, c1).
        let x = [0., 10., 2., 30., 4., 50., 6., 70.];
        let st = Standardizer::fit_channels(&x, 4, &[0, 1], 2);
        // Channel 0 holds 0, 2, 4, 6 (mean 3, sd √5); channel 1 10, 30, 50, 70 (mean 40, sd √500).
        assert_eq!(st.mean, vec![3., 40., 3., 40.]);
        let (a, b) = (5f32.sqrt(), 500f32.sqrt());
        assert!(
            st.std
                .iter()
                .zip([a, b, a, b])
                .all(|(s, t)| (s - t).abs() < 1e-5),
            "{:?}",
            st.std
        );
        // Per feature, each input has its own.
        assert_eq!(
            Standardizer::fit(&x, 4, &[0, 1]).mean,
            vec![2., 30., 4., 50.]
        );
    }

    fn table(csv: &str) -> Dataset {
        Dataset::from_csv_bytes("t.csv", csv.as_bytes(), "y").unwrap()
    }

    #[test]
    fn categories_missing_cells_and_unknown_levels_are_encoded_as_documented() {
        // colour: text with a missing cell; size: numbers with a missing cell.
        let d = table("colour,size,y\nred,1,a\nblue,,b\n,3,a\nred,5,b\ngreen,7,a\n");
        let train = [0, 1, 2, 3];
        let p = Prep::fit(&d.x, &d.columns, &train, None, Standardize::Feature);
        assert_eq!(
            p.columns,
            vec![
                ColumnEncoding::Categorical {
                    name: "colour".into(),
                    levels: vec!["blue".into(), "red".into()],
                    fill: "red".into(),
                },
                ColumnEncoding::Numeric {
                    name: "size".into(),
                    fill: 3.0,
                    indicator: true,
                },
            ]
        );
        assert_eq!(p.width(), 4);
        let source = [0, 1];
        let (x, unknown) = p.encode(&d.x, &d.columns, &source, &[0, 1, 2, 4]);
        #[rustfmt::skip]
        assert_eq!(x, vec![
            0., 1., 1., 0., // red, 1
            1., 0., 3., 1., // blue, missing → mean 3 and the indicator
            0., 1., 3., 0., // missing colour → the most frequent, red
            0., 0., 7., 0., // green, never seen in training → all zeros
        ]);
        assert_eq!(unknown, 1);
    }

    #[test]
    fn a_value_only_in_held_out_rows_changes_nothing_fitted() {
        let a = table("colour,size,y\nred,1,a\nblue,2,b\nred,3,a\nblue,4,b\n");
        let b = table("colour,size,y\nred,1,a\nblue,2,b\nred,3,a\npurple,,b\n");
        let train = [0, 1, 2];
        let (pa, pb) = (
            Prep::fit(&a.x, &a.columns, &train, None, Standardize::Feature),
            Prep::fit(&b.x, &b.columns, &train, None, Standardize::Feature),
        );
        assert_eq!(pa.columns, pb.columns);
        assert_eq!(pa.standardizer.mean, pb.standardizer.mean);
        assert_eq!(pa.standardizer.std, pb.standardizer.std);
        assert_eq!(
            pa.apply(&a.x, &a.columns, &train),
            pb.apply(&b.x, &b.columns, &train)
        );
    }

    #[test]
    fn a_text_vocabulary_and_length_come_from_the_training_rows_only() {
        let mut csv = String::from("note,y\n");
        for i in 0..30 {
            csv += &format!("\"a quiet day number {i}\",{}\n", i % 2);
        }
        csv += "\"unseen words only here here here here here here\",1\n";
        let d = table(&csv);
        assert_eq!(d.text_columns(), vec!["note"]);
        let train: Vec<usize> = (0..30).collect();
        let p = Prep::fit(&d.x, &d.columns, &train, None, Standardize::Feature);
        let ColumnEncoding::Text { vocab, len, .. } = &p.columns[0] else {
            panic!("{:?}", p.columns[0])
        };
        let ColumnEncoding::Text {
            vocab: chars,
            len: char_len,
            tokens: Tokens::Chars,
            ..
        } = &p.columns[1]
        else {
            panic!("{:?}", p.columns[1])
        };
        assert!(
            !(vocab.iter().chain(chars)).any(|t| t.contains("unse") || t.contains("here")),
            "{vocab:?} {chars:?}"
        );
        // "a", "a quiet", "quiet", "quiet day", "day", "day number", "number": in every training text.
        assert_eq!(*len, 7);
        assert_eq!(
            p.text_inputs(),
            [
                (*len, vocab.len(), Tokens::Words),
                (*char_len, chars.len(), Tokens::Chars)
            ]
            .map(|(len, v, tokens)| space::TextInput {
                column: "note".into(),
                len,
                vocab: v + 2,
                tokens,
                weighted: true,
                // Five words per training text, in order (characters have none).
                seq: if tokens == Tokens::Words { 5 } else { 0 },
            })
        );
        // The held-out text's tokens are all unknown: empty bags (ids and weights zero), and its first
        // five words unknown (id 1).
        assert_eq!(p.width(), 2 * (len + char_len) + 5);
        let mut unseen = vec![0.0; 2 * (len + char_len) + 5];
        unseen[2 * len..2 * len + 5].fill(1.0);
        assert_eq!(p.apply(&d.x, &d.columns, &[30]), unseen);
        let row = p.apply(&d.x, &d.columns, &[0]);
        assert_eq!(row[0], 2.0, "the most frequent token first");
        // Its words in order: "a", "quiet", "day", "number" (ids by text count, ties in byte order), and
        // "0", in one training text only, unknown.
        assert_eq!(row[2 * len..2 * len + 5], [2.0, 5.0, 3.0, 4.0, 1.0]);
        // Its words' weights: seven known tokens in every text, so one idf each, at unit length.
        let w = &row[7..14];
        assert!(
            w.iter().all(|&v| (v - 1.0 / 7f32.sqrt()).abs() < 1e-6),
            "{w:?}"
        );
    }
}
