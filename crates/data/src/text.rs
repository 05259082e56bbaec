//! Free text: the tokenizers, the vocabularies fitted on training rows, and a text's network inputs.
//!
//! A text column is read two ways ([`Tokens`]), each its own vocabulary and embedding table:
//! - words: the words of the lower-cased text (maximal runs of letters and digits; everything else
//!   separates) and each pair of adjacent words (`"of the"`), in text order: word 1, words 1–2, word 2, …
//!   Word pairs are what a linear model on TF-IDF needs to beat a bag of words on sentiment and style.
//! - chars: the character 3- and 4-grams of each whitespace-separated lower-cased word padded with a space
//!   on both sides (scikit-learn's `char_wb`): word endings, spelling variants, misspellings and punctuation,
//!   which words miss. On Austen's novels a linear model on both reads 0.9435 against 0.9337 on words only
//!   (docs/benchmarks.md); the standard pairing for short, noisy text (reviews, tickets, messages).
//!
//! Each kind's known tokens enter once, weighted by their inverse document frequency on the training rows
//! and scaled to unit length: TF-IDF with binary counts (within 0.001 of sublinear counts there, and a
//! text's inputs stay one id and one weight per distinct token). Both rules are a few lines of Python, so
//! an exported model's `encode` reproduces them.

use space::encoding::Tokens;
use std::collections::HashMap;

/// Most tokens a vocabulary keeps (each kind): AutoKeras's largest default, enough for the word pairs that
/// occur in at least two texts of a few thousand, and an embedding table of 20,002 × width that AdamW updates
/// in a few milliseconds.
pub const MAX_VOCAB: usize = 20_000;

/// Fewest training texts a token must occur in to enter the vocabulary (scikit-learn's `min_df`):
/// a token seen once cannot be learned from and only adds rows.
pub const MIN_TEXTS: usize = 2;

/// Most token ids one text gives the network, per kind of token ([`max_len`]): a text's distinct known
/// tokens from its start, the rest cut (a 100,000-character text costs what a long review does). A
/// 60-word passage has about 140 distinct words and pairs and 570 distinct character n-grams.
pub fn max_len(tokens: Tokens) -> usize {
    match tokens {
        Tokens::Words => 512,
        Tokens::Chars => 1024,
    }
}

/// Most word slots a text gives the 1-D convolutions ([`space::TextInput::seq`]): its first 256 words
/// (AutoKeras's sequence lengths run from 64 to 512; a review's opening and a message whole fit, and a
/// convolution's cost grows with the slots).
pub const MAX_SEQ: usize = 256;

/// Ids 0 and 1 are reserved: 0 pads a text's slots, 1 stands for a token outside the vocabulary. The
/// vocabulary's token i has id `i + RESERVED` ([`space::TextInput::RESERVED`], which the networks read).
pub const RESERVED: usize = space::TextInput::RESERVED;

/// Calls `f` on each token of `text` of kind `kind`, in order, without a string per token (a text has a
/// few hundred character grams; most are already interned when [`Interned::new`] meets them).
pub fn each_token(text: &str, kind: Tokens, mut f: impl FnMut(&str)) {
    let lower = text.to_lowercase();
    let mut buf = String::new();
    match kind {
        Tokens::Words => {
            let mut prev: Option<&str> = None;
            for w in lower
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                if let Some(p) = prev {
                    buf.clear();
                    buf.push_str(p);
                    buf.push(' ');
                    buf.push_str(w);
                    f(&buf);
                }
                f(w);
                prev = Some(w);
            }
        }
        Tokens::Chars => {
            let mut at = Vec::new();
            for w in lower.split_whitespace() {
                buf.clear();
                buf.push(' ');
                buf.push_str(w);
                buf.push(' ');
                at.clear();
                at.extend(buf.char_indices().map(|(i, _)| i).chain([buf.len()]));
                let chars = at.len() - 1;
                for n in [3, 4] {
                    if chars <= n {
                        f(&buf);
                        break;
                    }
                    (0..=chars - n).for_each(|s| f(&buf[at[s]..at[s + n]]));
                }
            }
        }
    }
}

/// A text column's texts read once per kind of token, when a fold first needs them: every fold's vocabulary
/// and every candidate's inputs then come from the ids of each text's tokens, not from tokenizing again
/// (a search reads each text in every fold of every candidate). Clones share it; it is a function of the
/// texts, so it takes no part in comparing columns.
#[derive(Clone, Default)]
pub struct Corpus(std::sync::Arc<[std::sync::OnceLock<Interned>; 2]>);

impl Corpus {
    /// The texts' tokens of kind `kind` (`texts`: the column's texts, which this corpus belongs to).
    pub fn kind(&self, texts: &[String], kind: Tokens) -> &Interned {
        let at = match kind {
            Tokens::Words => 0,
            Tokens::Chars => 1,
        };
        self.0[at].get_or_init(|| Interned::new(texts.iter().map(String::as_str), kind))
    }
}

impl PartialEq for Corpus {
    fn eq(&self, _: &Corpus) -> bool {
        true
    }
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Corpus")
    }
}

/// Texts' tokens of one kind as ids: the distinct tokens of all the texts, sorted (so ids compare as the
/// tokens' bytes do), and each text's distinct tokens' ids in order of first occurrence; for words, also
/// each text's words in order (its first [`MAX_SEQ`]).
pub struct Interned {
    kind: Tokens,
    tokens: Vec<String>,
    /// Text i's ids are `ids[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    ids: Vec<u32>,
    /// Text i's words in order are `words[word_starts[i]..word_starts[i + 1]]` (empty for characters).
    word_starts: Vec<usize>,
    words: Vec<u32>,
}

impl Interned {
    /// Reads `texts` once.
    pub fn new<'a>(texts: impl Iterator<Item = &'a str>, kind: Tokens) -> Interned {
        let mut id: HashMap<String, u32> = HashMap::new();
        // Per id: 1 + the last text it was seen in, to keep each text's first occurrence only.
        let mut last: Vec<usize> = Vec::new();
        let (mut starts, mut ids) = (vec![0], Vec::new());
        let (mut word_starts, mut words) = (vec![0], Vec::new());
        for (i, text) in texts.enumerate() {
            let at = words.len();
            each_token(text, kind, |t| {
                let k = match id.get(t) {
                    Some(&k) => k,
                    None => {
                        let k = last.len() as u32;
                        id.insert(t.to_string(), k);
                        last.push(0);
                        k
                    }
                };
                if last[k as usize] != i + 1 {
                    last[k as usize] = i + 1;
                    ids.push(k);
                }
                if kind == Tokens::Words && !t.contains(' ') && words.len() - at < MAX_SEQ {
                    words.push(k);
                }
            });
            starts.push(ids.len());
            word_starts.push(words.len());
        }
        let mut tokens: Vec<(String, u32)> = id.into_iter().collect();
        tokens.sort_unstable();
        let mut rank = vec![0u32; tokens.len()];
        for (r, (_, k)) in tokens.iter().enumerate() {
            rank[*k as usize] = r as u32;
        }
        ids.iter_mut().for_each(|k| *k = rank[*k as usize]);
        words.iter_mut().for_each(|k| *k = rank[*k as usize]);
        Interned {
            kind,
            tokens: tokens.into_iter().map(|(t, _)| t).collect(),
            starts,
            ids,
            word_starts,
            words,
        }
    }

    /// Text `i`'s words in order (its first [`MAX_SEQ`]; none when the tokens are not words).
    pub fn words(&self, i: usize) -> &[u32] {
        match self.word_starts.get(i + 1) {
            Some(&end) => &self.words[self.word_starts[i]..end],
            None => &[],
        }
    }

    /// Text `i`'s words' ids in `vocab` (`map` from [`Interned::vocab_ids`]), in order, 1 for a word not in it.
    pub fn word_ids<'a>(&'a self, i: usize, map: &'a [u32]) -> impl Iterator<Item = usize> + 'a {
        (self.words(i).iter()).map(|&k| (map[k as usize] as usize).max(RESERVED - 1))
    }

    /// Text `i`'s distinct tokens' ids, in order of first occurrence.
    pub fn text(&self, i: usize) -> &[u32] {
        &self.ids[self.starts[i]..self.starts[i + 1]]
    }

    /// The vocabulary of texts `rows` (the training rows'; a text counts as often as it is listed): tokens in
    /// at least [`MIN_TEXTS`] of them, by decreasing count of texts (ties in byte order), words before word
    /// pairs, the first [`MAX_VOCAB`]; and each one's idf, `ln((1 + n) / (1 + df)) + 1` over the `n` texts.
    /// Words first: a common pair ("of the") must not take the slot of a rarer word (a name) that tells
    /// texts apart; measured on Austen's novels, 0.9269 → 0.9313 for the search's best network
    /// (docs/benchmarks.md).
    pub fn fit_vocab(&self, rows: &[usize]) -> (Vec<String>, Vec<f32>) {
        let mut df = vec![0u32; self.tokens.len()];
        for &r in rows {
            self.text(r).iter().for_each(|&k| df[k as usize] += 1);
        }
        let pair = |k: u32| self.kind == Tokens::Words && self.tokens[k as usize].contains(' ');
        let mut v: Vec<(bool, std::cmp::Reverse<u32>, u32)> = (0..df.len() as u32)
            .filter(|&k| df[k as usize] as usize >= MIN_TEXTS)
            .map(|k| (pair(k), std::cmp::Reverse(df[k as usize]), k))
            .collect();
        v.sort_unstable();
        v.truncate(MAX_VOCAB);
        let n = rows.len();
        let idf = v
            .iter()
            .map(|&(_, std::cmp::Reverse(df), _)| {
                (((1 + n) as f64 / (1 + df as usize) as f64).ln() + 1.0) as f32
            })
            .collect();
        let vocab = v.iter().map(|&(.., k)| self.tokens[k as usize].clone());
        (vocab.collect(), idf)
    }

    /// For each of these texts' token ids, its id in `vocab` (from [`RESERVED`] on), or 0 when it is not
    /// in it.
    pub fn vocab_ids(&self, vocab: &[String]) -> Vec<u32> {
        let mut map = vec![0u32; self.tokens.len()];
        for (i, t) in vocab.iter().enumerate() {
            if let Ok(k) = self.tokens.binary_search(t) {
                map[k] = (i + RESERVED) as u32;
            }
        }
        map
    }

    /// Text `i`'s known tokens' ids (`map` from [`Interned::vocab_ids`]), each once, in order of first
    /// occurrence.
    pub fn known_ids<'a>(&'a self, i: usize, map: &'a [u32]) -> impl Iterator<Item = usize> + 'a {
        (self.text(i).iter())
            .map(|&k| map[k as usize] as usize)
            .filter(|&v| v != 0)
    }
}

/// A vocabulary's token → id map.
pub fn index(vocab: &[String]) -> HashMap<&str, usize> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i + RESERVED))
        .collect()
}

/// Appends to `out` a text's inputs for an encoding from before 2026-12-04 (no idf; vocabulary `index`,
/// `len` slots, kind `kind`): the ids of every known token as often as it occurs, cut at `len`, zeros up
/// to `len`.
pub fn push_unweighted(
    out: &mut Vec<f32>,
    text: &str,
    index: &HashMap<&str, usize>,
    len: usize,
    kind: Tokens,
) {
    let mut ids = Vec::new();
    each_token(text, kind, |t| ids.extend(index.get(t).copied()));
    push_inputs(out, ids.into_iter(), len, &[]);
}

/// Appends to `out` the inputs of a text whose known tokens' ids are `ids` (see
/// `space::encoding::ColumnEncoding::Text`): the ids cut at `len`, zeros up to `len`; then, with an `idf`,
/// their idf weights scaled to unit length, zeros up to `len`.
pub fn push_inputs(out: &mut Vec<f32>, ids: impl Iterator<Item = usize>, len: usize, idf: &[f32]) {
    let at = out.len();
    out.extend(ids.take(len).map(|id| id as f32));
    let n = out.len() - at;
    out.resize(at + len, 0.0);
    if !idf.is_empty() {
        for k in 0..n {
            out.push(idf[out[at + k] as usize - RESERVED]);
        }
        let w = &mut out[at + len..];
        let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt();
        let norm = norm.max(f32::MIN_POSITIVE);
        w.iter_mut().for_each(|v| *v /= norm);
        out.resize(at + 2 * len, 0.0);
    }
}

/// Appends to `out` a text's words' ids in order (see `space::encoding::ColumnEncoding::Text`): cut at
/// `seq`, zeros up to `seq`.
pub fn push_words(out: &mut Vec<f32>, ids: impl Iterator<Item = usize>, seq: usize) {
    let at = out.len();
    out.extend(ids.take(seq).map(|id| id as f32));
    out.resize(at + seq, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens of `text` of kind `kind`.
    fn tokens_of(text: &str, kind: Tokens) -> Vec<String> {
        let mut out = Vec::new();
        each_token(text, kind, |t| out.push(t.to_string()));
        out
    }

    fn tokens(text: &str) -> Vec<String> {
        tokens_of(text, Tokens::Words)
    }

    fn char_grams(text: &str) -> Vec<String> {
        tokens_of(text, Tokens::Chars)
    }

    /// The vocabulary of all of `texts`.
    fn fit_vocab(texts: &[&str], kind: Tokens) -> (Vec<String>, Vec<f32>) {
        let all: Vec<usize> = (0..texts.len()).collect();
        Interned::new(texts.iter().copied(), kind).fit_vocab(&all)
    }

    /// The ids of `text`'s tokens in the vocabulary (`index`), each once, in order of first occurrence,
    /// found by looking each token up: the reference the token-id path is checked against.
    fn known_ids(text: &str, index: &HashMap<&str, usize>, kind: Tokens) -> Vec<usize> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        each_token(text, kind, |t| {
            if let Some(&id) = index.get(t) {
                if seen.insert(id) {
                    out.push(id);
                }
            }
        });
        out
    }

    #[test]
    fn tokens_are_lower_cased_words_and_their_pairs() {
        assert_eq!(
            tokens("It is a truth, universally-acknowledged!"),
            vec![
                "it",
                "it is",
                "is",
                "is a",
                "a",
                "a truth",
                "truth",
                "truth universally",
                "universally",
                "universally acknowledged",
                "acknowledged"
            ]
        );
        assert_eq!(
            tokens("Ça coûte 3€"),
            vec!["ça", "ça coûte", "coûte", "coûte 3", "3"]
        );
        assert!(tokens("  ... !").is_empty());
    }

    #[test]
    fn char_grams_are_the_3_and_4_grams_of_padded_whitespace_words() {
        assert_eq!(
            char_grams("Ab, c"),
            vec![" ab", "ab,", "b, ", " ab,", "ab, ", " c "]
        );
        // Multi-byte letters are one character each.
        assert_eq!(char_grams("été")[..3], [" ét", "été", "té "]);
        assert!(char_grams(" \t\n").is_empty());
    }

    #[test]
    fn the_vocabulary_keeps_tokens_of_two_texts_words_first_most_frequent_first() {
        // Texts 0-3 train; 4 and 5 are read with their vocabulary.
        let texts = ["b a", "a c", "a b", "d", "A b z a", "zz"];
        let read = Interned::new(texts.into_iter(), Tokens::Words);
        let (v, idf) = read.fit_vocab(&[0, 1, 2, 3]);
        assert_eq!(v, vec!["a", "b"]);
        // idf over 4 texts: "a" in 3, "b" in 2.
        let want = [(5f32 / 4.0).ln() + 1.0, (5f32 / 3.0).ln() + 1.0];
        assert!((idf[0] - want[0]).abs() < 1e-6 && (idf[1] - want[1]).abs() < 1e-6);
        let ix = index(&v);
        // The old encoding (no idf): every known token as often as it occurs.
        let unweighted = |text: &str, len: usize| {
            let mut out = Vec::new();
            push_unweighted(&mut out, text, &ix, len, Tokens::Words);
            out
        };
        assert_eq!(unweighted("A b z a", 5), [2., 3., 2., 0., 0.]);
        assert_eq!(unweighted("a a a a", 2), [2., 2.]);
        // Each known token once, then the idf weights at unit length.
        let map = read.vocab_ids(&v);
        let weighted = |i: usize, len: usize| {
            let mut out = Vec::new();
            push_inputs(&mut out, read.known_ids(i, &map), len, &idf);
            out
        };
        let got = weighted(4, 3);
        let norm = (want[0] * want[0] + want[1] * want[1]).sqrt();
        assert_eq!(got[..3], [2., 3., 0.]);
        assert!((got[3] - want[0] / norm).abs() < 1e-6 && (got[4] - want[1] / norm).abs() < 1e-6);
        assert_eq!(got[5], 0.0);
        // No known token: all zeros.
        assert!(weighted(5, 2).iter().all(|&v| v == 0.0));
        // Words before pairs: "of the" in three texts comes after "darcy" in two.
        let (v, _) = fit_vocab(&["of the darcy", "of the darcy", "of the"], Tokens::Words);
        assert_eq!(v, ["of", "the", "darcy", "of the", "the darcy"]);
        // Character grams have no pairs to put last: by count alone.
        let (v, _) = fit_vocab(&["ab ab", "ab", "x y"], Tokens::Chars);
        assert_eq!(v, [" ab", " ab ", "ab "]);
    }

    #[test]
    fn interned_texts_give_the_ids_their_tokens_do() {
        let texts = [
            "The cat sat, the cat!",
            "a cat sat",
            "",
            "Été, été cat",
            "a a a",
        ];
        for kind in [Tokens::Words, Tokens::Chars] {
            let read = Interned::new(texts.iter().copied(), kind);
            // A text listed twice counts twice: "été" is in the vocabulary from text 3 alone.
            let (vocab, _) = read.fit_vocab(&[0, 1, 3, 3, 4]);
            assert!(vocab.iter().any(|t| t.contains("été")), "{vocab:?}");
            let (ix, map) = (index(&vocab), read.vocab_ids(&vocab));
            for (i, text) in texts.iter().enumerate() {
                let got: Vec<usize> = read.known_ids(i, &map).collect();
                assert_eq!(got, known_ids(text, &ix, kind), "{kind:?} {text:?}");
            }
        }
    }
}
