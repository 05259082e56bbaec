//! `model.toml`'s column encodings: how one raw table column becomes network inputs. The type is a file
//! format, so it lives here with the other artifacts; fitting it on training rows is the `data` crate's job.

use serde::{Deserialize, Serialize};

string_enum!(
    /// How the encoded inputs are standardised (`space.toml`'s `standardize`): the mean and deviation that
    /// each input has subtracted and is divided by, fitted on the training rows.
    Standardize, "standardize", {
        /// Each input its own (tables, and images in runs from before 2026-12-04).
        Feature = "feature",
        /// Each image channel one, pooled over its pixels: every pixel of a channel is standardised alike,
        /// as a convolution that slides over them expects (images since 2026-12-04: +0.0021 CV accuracy on
        /// average on six CNNs on fashion10k, all six better; docs/benchmarks.md).
        Channel = "channel",
    }
);

impl Standardize {
    /// The standardisation a new run uses for inputs of this image shape (`None`: not an image).
    pub fn for_shape(shape: Option<[usize; 3]>) -> Standardize {
        match shape {
            Some(_) => Standardize::Channel,
            None => Standardize::Feature,
        }
    }

    /// What a `space.toml` without the key did.
    pub fn before_key() -> Standardize {
        Standardize::Feature
    }
}

string_enum!(
    /// What a text encoding's tokens are (`data::text`).
    Tokens, "tokens", {
        /// The lower-cased words (runs of letters and digits) and each pair of adjacent words.
        Words = "words",
        /// The character 3- and 4-grams of each whitespace-separated lower-cased word, padded with a space
        /// on both sides (scikit-learn's `char_wb`): spelling, endings and punctuation.
        Chars = "chars",
    }
);

/// Network inputs of a text encoding of `len` slots: its ids, as many weights when `weighted`, then `seq`
/// word ids in text order (the one rule for `ColumnEncoding::width` and `TextInput::inputs`).
pub fn text_inputs(len: usize, weighted: bool, seq: usize) -> usize {
    len * (1 + usize::from(weighted)) + seq
}

/// Whether a count is zero (serde's `skip_serializing_if`).
pub fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Tokens {
    /// What a `model.toml` text encoding without the key was.
    pub fn before_key() -> Tokens {
        Tokens::Words
    }
}

/// How one raw column becomes network inputs (fitted on training rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ColumnEncoding {
    /// A number: missing cells filled with `fill`, and one more input (1 for a missing cell) when `indicator`.
    Numeric {
        /// Column name.
        name: String,
        /// The training mean, for missing cells.
        fill: f32,
        /// Whether an "is missing" input follows.
        indicator: bool,
    },
    /// A category: one input per level (one-hot); a missing cell counts as `fill`; an unknown level is all zeros.
    Categorical {
        /// Column name.
        name: String,
        /// The levels seen in the training rows, sorted.
        levels: Vec<String>,
        /// The most frequent training level, for missing cells.
        fill: String,
    },
    /// Free text: `len` inputs holding token ids (`data::text`: the vocabulary's token i is id i + 2; 0 pads,
    /// unknown tokens are left out), then, when `idf` is given, `len` inputs holding their weights: each
    /// known token once, weighted by its `idf`, the weights scaled to unit length (TF-IDF with binary counts,
    /// L2-normalised). Without `idf` (files from before 2026-12-04) a token repeats as often as in the text
    /// and the network takes the ids' mean. A words encoding then has `seq` inputs holding the text's words
    /// in order, each its vocabulary id or 1 when unknown, cut at `seq`, zeros after (absent, 0, in files from
    /// before the 1-D convolutions, late 2026-12-04; they read them). A text column has one encoding per kind of token (`tokens`), in
    /// that order. A table's text inputs come after all its other inputs, in column order.
    Text {
        /// Column name.
        name: String,
        /// The tokens fitted on the training rows, most frequent first.
        vocab: Vec<String>,
        /// Token ids per text (longer texts are cut).
        len: usize,
        /// What the tokens are.
        #[serde(default = "Tokens::before_key")]
        tokens: Tokens,
        /// Per vocabulary token, `ln((1 + n) / (1 + df)) + 1` over the `n` training texts, `df` of them
        /// holding it (scikit-learn's smoothed idf).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        idf: Vec<f32>,
        /// Word slots in text order (0: none).
        #[serde(default, skip_serializing_if = "is_zero")]
        seq: usize,
    },
}

impl ColumnEncoding {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnEncoding::Numeric { name, .. }
            | ColumnEncoding::Categorical { name, .. }
            | ColumnEncoding::Text { name, .. } => name,
        }
    }

    /// Network inputs this column becomes.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoding::Numeric { indicator, .. } => 1 + usize::from(*indicator),
            ColumnEncoding::Categorical { levels, .. } => levels.len(),
            ColumnEncoding::Text { len, idf, seq, .. } => text_inputs(*len, !idf.is_empty(), *seq),
        }
    }

    /// Whether the column is free text (its inputs are token ids, after every other column's).
    pub fn is_text(&self) -> bool {
        matches!(self, ColumnEncoding::Text { .. })
    }
}

/// The encodings in input order: every column that is not text, then the text columns, each in column order.
pub fn input_order(columns: &[ColumnEncoding]) -> impl Iterator<Item = (usize, &ColumnEncoding)> {
    let (text, other): (Vec<_>, Vec<_>) =
        columns.iter().enumerate().partition(|(_, c)| c.is_text());
    other.into_iter().chain(text)
}

/// The names of a table's encoded features, in input order.
pub fn feature_names(columns: &[ColumnEncoding]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, c) in input_order(columns) {
        match c {
            ColumnEncoding::Numeric {
                name, indicator, ..
            } => {
                out.push(name.clone());
                if *indicator {
                    out.push(format!("{name} is missing"));
                }
            }
            ColumnEncoding::Categorical { name, levels, .. } => {
                out.extend(levels.iter().map(|l| format!("{name}={l}")));
            }
            ColumnEncoding::Text {
                name,
                len,
                tokens,
                idf,
                seq,
                ..
            } => {
                let kind = tokens.name();
                out.extend((0..*len).map(|i| format!("{name} {kind} {i}")));
                if !idf.is_empty() {
                    out.extend((0..*len).map(|i| format!("{name} {kind} weight {i}")));
                }
                out.extend((0..*seq).map(|i| format!("{name} word {i}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text encoding and a text input from before 2026-12-04 read as what they were: words, no weights.
    #[test]
    fn text_files_from_before_idf_read_as_unweighted_words() {
        let e: ColumnEncoding =
            toml::from_str("kind = \"text\"\nname = \"t\"\nvocab = [\"a\", \"b\"]\nlen = 3\n")
                .unwrap();
        let ColumnEncoding::Text { tokens, idf, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (*tokens, idf.is_empty(), e.width()),
            (Tokens::Words, true, 3)
        );
        let t: crate::TextInput = toml::from_str("column = \"t\"\nlen = 3\nvocab = 4\n").unwrap();
        assert_eq!(
            (t.tokens, t.weighted, t.inputs()),
            (Tokens::Words, false, 3)
        );
        // Today's: ids then as many weights.
        let t = crate::TextInput {
            tokens: Tokens::Chars,
            weighted: true,
            ..t
        };
        assert_eq!(t.inputs(), 6);
        let back: crate::TextInput = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
