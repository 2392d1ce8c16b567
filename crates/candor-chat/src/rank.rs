//! Relevance order for chat search. What matches stays exact — any
//! substring, by character pairs ([`crate::index`]) — and a word segmenter
//! (jieba, with its built-in dictionary) only orders the matches: a message
//! where the query stands as whole words (华为 in 华为手机) ranks above one
//! where it straddles words (华为 in 中华为人民服务), and more such
//! occurrences in a shorter message rank higher (BM25's saturation and
//! length normalisation). Segmentation runs at query time on the candidates
//! only; segmenting every message at index time would cost more than the
//! whole bigram index does (jieba cuts a few MB/s; see decision 0013).

use crate::text::{highlights, normalise};
use std::sync::OnceLock;

/// BM25's term-frequency saturation and length weight.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// What an occurrence counts for: on word boundaries at both ends, at one,
/// at neither.
const WHOLE: f64 = 1.0;
const HALF: f64 = 0.5;
const INSIDE: f64 = 0.2;

/// The segmenter, built on first use (its dictionary takes ~0.4 s to load).
fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

/// Character offsets where jieba's words of `text` begin, and its length.
fn boundaries(text: &str) -> Vec<usize> {
    let mut at = 0;
    let mut out = vec![0];
    for word in jieba().cut(text, false) {
        at += word.chars().count();
        out.push(at);
    }
    out
}

/// How well `query` matches `text` (0 when it does not occur); `avg_chars`
/// is the candidates' mean length.
pub fn score(query: &str, text: &str, avg_chars: f64) -> f64 {
    let text = normalise(text);
    let found = highlights(&text, query);
    if found.is_empty() {
        return 0.0;
    }
    let bounds = boundaries(&text);
    let on = |at: usize| bounds.binary_search(&at).is_ok();
    let tf: f64 = found
        .iter()
        .map(|&(a, z)| match (on(a), on(z)) {
            (true, true) => WHOLE,
            (false, false) => INSIDE,
            _ => HALF,
        })
        .sum();
    let len = text.chars().count() as f64;
    tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_chars.max(1.0)))
}

/// `candidates` (id, time, text) best first for `query`; equal scores newest first.
pub fn order(query: &str, candidates: &[(u64, i64, &str)]) -> Vec<u64> {
    let avg = candidates.iter().map(|c| c.2.chars().count()).sum::<usize>() as f64 / candidates.len().max(1) as f64;
    let mut scored: Vec<(f64, i64, u64)> =
        candidates.iter().map(|&(id, ts, t)| (score(query, t, avg), ts, id)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    scored.into_iter().map(|s| s.2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_rank_first() {
        let texts =
            [(1, 30, "为中华为人民服务的精神"), (2, 20, "新买的华为手机很好用"), (3, 10, "华为，华为，还是华为")];
        // 3 has the most whole-word occurrences, 2 one, 1 only one that straddles 中华 and 为.
        assert_eq!(order("华为", &texts), [3, 2, 1]);
        assert!(score("华为", "中华为人民服务", 8.0) < score("华为", "华为手机好", 8.0));
        assert_eq!(score("苹果", "华为手机", 8.0), 0.0);
        // Case and width are folded as search folds them.
        assert!(score("iphone", "新的ＩＰＨＯＮＥ到了", 8.0) > 0.0);
        // Equal scores: newest first.
        assert_eq!(order("报价", &[(1, 5, "报价"), (2, 9, "报价")]), [2, 1]);
    }
}
