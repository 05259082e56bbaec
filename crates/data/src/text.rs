//! Free text: the tokenizer, the vocabulary fitted on training rows, and a text's token ids.
//!
//! Tokens are the words of the lower-cased text (maximal runs of letters and digits; everything else
//! separates) and each pair of adjacent words (`"of the"`), in text order: word 1, words 1–2, word 2, …
//! Word pairs are what a linear model on TF-IDF needs to beat a bag of words on sentiment and style; letter
//! n-grams are left out (they multiply the tokens per text by about five for what pairs already give on
//! clean text). The rule is four lines of Python (`re.findall(r"[^\W_]+", text.lower())`), so an exported
//! model's `encode` reproduces it.

use std::collections::HashMap;

/// Most tokens a vocabulary keeps: AutoKeras's largest default, enough for the word pairs that occur in
/// at least two texts of a few thousand, and an embedding table of 20,002 × width that AdamW updates in a
/// few milliseconds.
pub const MAX_VOCAB: usize = 20_000;

/// Fewest training texts a token must occur in to enter the vocabulary (scikit-learn's `min_df`):
/// a token seen once cannot be learned from and only adds rows.
pub const MIN_TEXTS: usize = 2;

/// Most token ids one text gives the network: longer texts are cut (a 100,000-character text costs what a
/// 500-word one does).
pub const MAX_LEN: usize = 512;

/// Ids 0 and 1 are reserved: 0 pads a text's slots, 1 stands for a token outside the vocabulary. The
/// vocabulary's token i has id `i + RESERVED` ([`space::TextInput::RESERVED`], which the networks read).
pub const RESERVED: usize = space::TextInput::RESERVED;

/// The words of `text`, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The tokens of `text`: each word, followed by its pair with the next word.
pub fn tokens(text: &str) -> Vec<String> {
    let w = words(text);
    let mut out = Vec::with_capacity(2 * w.len());
    for i in 0..w.len() {
        out.push(w[i].clone());
        if i + 1 < w.len() {
            out.push(format!("{} {}", w[i], w[i + 1]));
        }
    }
    out
}

/// The vocabulary of `texts` (the training rows'): tokens in at least [`MIN_TEXTS`] of them, words before
/// word pairs, each by decreasing count (ties in byte order), the first [`MAX_VOCAB`]. Words first: a
/// common pair ("of the") must not take the slot of a rarer word (a name) that tells texts apart; measured
/// on Austen's novels, 0.9269 → 0.9313 for the search's best network (docs/benchmarks.md).
pub fn fit_vocab<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut df: HashMap<String, usize> = HashMap::new();
    for t in texts {
        let mut toks = tokens(t);
        toks.sort_unstable();
        toks.dedup();
        for k in toks {
            *df.entry(k).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = df.into_iter().filter(|(_, n)| *n >= MIN_TEXTS).collect();
    let pair = |k: &str| k.contains(' ');
    v.sort_unstable_by(|a, b| {
        (pair(&a.0).cmp(&pair(&b.0)))
            .then(b.1.cmp(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    v.truncate(MAX_VOCAB);
    v.into_iter().map(|(k, _)| k).collect()
}

/// A vocabulary's token → id map.
pub fn index(vocab: &[String]) -> HashMap<&str, usize> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i + RESERVED))
        .collect()
}

/// The ids of `text`'s tokens that are in the vocabulary (`index`), in order, at most `len`; then zeros
/// up to `len`. Tokens outside the vocabulary are left out, so a long text's known tokens fill its slots.
pub fn ids(text: &str, index: &HashMap<&str, usize>, len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = tokens(text)
        .iter()
        .filter_map(|t| index.get(t.as_str()).copied())
        .take(len)
        .collect();
    out.resize(len, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_vocabulary_keeps_tokens_of_two_texts_words_first_most_frequent_first() {
        let v = fit_vocab(["b a", "a c", "a b", "d"].into_iter());
        assert_eq!(v, vec!["a", "b"]);
        let ix = index(&v);
        assert_eq!(ids("A b z a", &ix, 5), vec![2, 3, 2, 0, 0]);
        assert_eq!(ids("a a a a", &ix, 2), vec![2, 2]);
        // Words before pairs: "of the" in three texts comes after "darcy" in two.
        let v = fit_vocab(["of the darcy", "of the darcy", "of the"].into_iter());
        assert_eq!(v, ["of", "the", "darcy", "of the", "the darcy"]);
    }
}
