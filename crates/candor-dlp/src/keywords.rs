//! Keyword matching that stays fast with many CJK keywords. A plain
//! Aho-Corasick automaton walks a state per byte, and on Chinese text with
//! thousands of Chinese keywords nearly every character begins some keyword,
//! so it runs from memory rather than cache (measured: ~100 MiB/s with 10k
//! keywords; see docs/benchmarks.md). Here the keywords are grouped by their
//! first two characters (ASCII case folded): a 128 KiB bit set of those pairs
//! is tested at each character, and only where it hits is the group looked
//! up and its keywords compared, longest first. One-character keywords go to
//! an ordinary automaton (the `aho-corasick` crate), whose own prefilters
//! serve a few short words well.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const FILTER_BITS: u32 = 20;
const ONES: u64 = 0x0101_0101_0101_0101;

pub struct Keywords {
    /// Which first-character pairs begin a keyword (a hash bit set).
    filter: Box<[u64]>,
    /// Keywords of two characters or more by their first pair, longest first:
    /// (ASCII-folded bytes, pattern id).
    groups: Groups,
    /// One-character keywords: an unanchored automaton.
    short: Option<(AhoCorasick, Vec<usize>)>,
}

/// First pair → (ASCII-folded keyword bytes, pattern id), longest first.
type Groups = HashMap<u64, Vec<(Box<[u8]>, usize)>, BuildHasherDefault<PairHasher>>;

/// The pair is already well mixed by [`pair`]'s multiply; no need for SipHash.
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Length of the UTF-8 sequence a lead byte starts (1 for stray bytes).
#[inline(always)]
fn char_len(lead: u8) -> usize {
    const LEN: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LEN[(lead >> 4) as usize] as usize
}

/// The two characters at `b[i..]` as a number (bytes past the pair zeroed,
/// ASCII letters folded) and their filter slot; `None` if there are not two.
#[inline(always)]
fn pair(b: &[u8], i: usize) -> Option<(u64, u32)> {
    let n1 = char_len(b[i]);
    let n2 = char_len(*b.get(i + n1)?);
    let n = n1 + n2;
    if i + n > b.len() {
        return None;
    }
    let mut w = [0u8; 8];
    if i + 8 <= b.len() {
        // A fixed-size copy is one load; the variable one below is a call.
        w.copy_from_slice(&b[i..i + 8]);
    } else {
        w[..b.len() - i].copy_from_slice(&b[i..]);
    }
    let mut x = u64::from_le_bytes(w);
    if n < 8 {
        x &= (1u64 << (8 * n)) - 1;
    }
    // SWAR lower-casing of ASCII capitals (bytes ≥ 0x80 are left alone).
    let low7 = x & (0x7f * ONES);
    let upper = low7.wrapping_add((0x80 - b'A' as u64) * ONES)
        & !low7.wrapping_add((0x80 - b'Z' as u64 - 1) * ONES)
        & !x
        & (0x80 * ONES);
    x |= upper >> 2;
    Some((x, (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as u32))
}

impl Keywords {
    /// `words[i]` belongs to pattern id `i` (reported back by [`Keywords::find`]).
    pub fn new(words: &[&str]) -> Result<Keywords, aho_corasick::BuildError> {
        let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)].into_boxed_slice();
        let mut groups = Groups::default();
        let (mut short, mut short_ids) = (Vec::new(), Vec::new());
        for (i, w) in words.iter().enumerate() {
            match pair(w.as_bytes(), 0) {
                Some((x, k)) => {
                    filter[(k >> 6) as usize] |= 1 << (k & 63);
                    groups.entry(x).or_default().push((w.as_bytes().to_ascii_lowercase().into_boxed_slice(), i));
                }
                None => {
                    short.push(*w);
                    short_ids.push(i);
                }
            }
        }
        for g in groups.values_mut() {
            g.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        }
        let short = if short.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(true)
                .build(&short)?;
            Some((ac, short_ids))
        };
        Ok(Keywords { filter, groups, short })
    }

    /// Calls `found(pattern id, start, end)` for each match: leftmost-longest
    /// and non-overlapping among keywords of two characters or more, and
    /// among the one-character ones.
    pub fn find(&self, text: &str, mut found: impl FnMut(usize, usize, usize)) {
        if let Some((ac, ids)) = &self.short {
            for m in ac.find_iter(text) {
                found(ids[m.pattern().as_usize()], m.start(), m.end());
            }
        }
        if self.groups.is_empty() {
            return;
        }
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let Some((x, k)) = pair(b, i) else { break };
            if self.filter[(k >> 6) as usize] & (1 << (k & 63)) != 0 {
                let hit = self.groups.get(&x).and_then(|g| {
                    g.iter().find(|(w, _)| b.len() - i >= w.len() && b[i..i + w.len()].eq_ignore_ascii_case(w))
                });
                if let Some((w, id)) = hit {
                    found(*id, i, i + w.len());
                    i += w.len();
                    continue;
                }
            }
            i += char_len(b[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same matches as one plain automaton over the same words, on text
    /// where no short keyword overlaps a long one.
    #[test]
    fn agrees_with_a_plain_automaton() {
        let words = ["报价单", "客户名单", "Secret", "机密文件", "ok", "价格表", "客户", "税"];
        let text = "请把客户名单和报价单发我，SECRET 机密文件ok价格表；客户。机密文 保密 SeCrEt 交税";
        let kw = Keywords::new(&words).unwrap();
        let mut ours = Vec::new();
        kw.find(text, |p, a, z| ours.push((a, z, p)));
        ours.sort();
        let plain = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(words)
            .unwrap();
        let theirs: Vec<_> = plain.find_iter(text).map(|m| (m.start(), m.end(), m.pattern().as_usize())).collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 9);
    }
}
