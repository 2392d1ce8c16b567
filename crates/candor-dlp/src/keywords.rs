//! Keyword matching that stays fast with many CJK keywords. A plain
//! Aho-Corasick automaton walks a state per byte, and on Chinese text with
//! thousands of Chinese keywords nearly every character begins some keyword,
//! so it runs from memory rather than cache (measured: ~100 MiB/s with 10k
//! keywords; see docs/benchmarks.md). Here the text is sampled every
//! `stride` bytes: the [`GRAM`] bytes at each sample (ASCII case folded) are
//! tested in a hash bit set, and only where it hits is the gram looked up
//! and its keywords compared. Each keyword is indexed by its grams at
//! offsets `0..stride`, so one of them lies on a sample wherever the keyword
//! starts; that needs keywords of at least `GRAM + stride - 1` bytes. The
//! stride is the largest (up to [`MAX_STRIDE`]) that leaves at most
//! [`AUTOMATON_WORDS`] keywords shorter than that, and those go to an
//! ordinary automaton (the `aho-corasick` crate), whose vectorised
//! prefilter serves a few words well: three-character Chinese keywords
//! (9 bytes) give a sample every 4 bytes, however many there are. Sample
//! positions do not depend on the text, so the CPU overlaps their loads
//! instead of waiting on UTF-8 decoding.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Filter bits per indexed gram (about 3% false hits), and the most: 512 KiB
/// stays in L2 cache.
const FILTER_BITS_PER_GRAM: usize = 32;
const MAX_FILTER_BITS: u32 = 22;
const ONES: u64 = 0x0101_0101_0101_0101;
/// Bytes hashed per sample: two Chinese characters when aligned, and at any
/// offset one whole character plus most of a neighbour. Measured on the
/// keyword set of `candor bench dlp`: 4-byte grams scanned 146 MiB/s, 5-byte
/// 412, 6-byte 573 — shorter grams hit far more often.
const GRAM: usize = 6;
/// Each keyword is indexed `stride` times; the cap bounds the index and the
/// filter's fill when every keyword is long.
const MAX_STRIDE: usize = 8;
/// Keywords an automaton takes beside the sampled scan: aho-corasick's
/// vectorised prefilter stays fast up to a few dozen words.
const AUTOMATON_WORDS: usize = 32;

pub struct Keywords {
    /// Which grams are indexed (a hash bit set of `1 << filter_bits`).
    filter: Box<[u64]>,
    filter_bits: u32,
    /// The indexed grams: an open-addressed table (linear probing) of
    /// `gram | OCCUPIED`, with each gram's range of `entries` beside it.
    slots: Box<[(u64, u32, u32)]>,
    /// Bits of the hash that index `slots`.
    slot_bits: u32,
    entries: Box<[Entry]>,
    /// The ASCII-folded keywords, end to end.
    arena: Box<[u8]>,
    /// Bytes between samples.
    stride: usize,
    /// Keywords too short for the stride: an unanchored automaton.
    short: Option<(AhoCorasick, Vec<usize>)>,
}

/// Marks a used slot; grams use only the low `8 * GRAM` bits.
const OCCUPIED: u64 = 1 << 63;

/// A keyword as indexed under one of its grams, kept in one flat array so a
/// filter hit costs a table probe and an entry read, not pointer chasing.
#[derive(Clone, Copy)]
struct Entry {
    /// The keyword's first and last 8 bytes ([`word8`]): for keywords of up
    /// to 16 bytes, all of it, so most candidates are rejected without
    /// reading the arena.
    head: u64,
    tail: u64,
    /// Where the keyword lies in the arena.
    off: u32,
    len: u32,
    id: u32,
    /// Bytes in the keyword before the indexed gram.
    back: u32,
}

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// The first `n` (at most 8) bytes at `b[i..]` as a number, ASCII letters
/// folded, zeros past `n` bytes or the end of `b`.
#[inline(always)]
fn word8(b: &[u8], i: usize, n: usize) -> u64 {
    let mut w = [0u8; 8];
    if i + 8 <= b.len() {
        // A fixed-size copy is one load; the variable one below is a call.
        w.copy_from_slice(&b[i..i + 8]);
    } else {
        let m = (b.len() - i).min(8);
        w[..m].copy_from_slice(&b[i..i + m]);
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
    x | (upper >> 2)
}

/// The [`GRAM`] bytes at `b[i..]` and their hash, whose top bits index the
/// filter and the slots. The caller ensures `i + GRAM <= b.len()`.
#[inline(always)]
fn gram(b: &[u8], i: usize) -> (u64, u64) {
    let x = word8(b, i, GRAM);
    (x, x.wrapping_mul(MIX))
}

impl Keywords {
    /// `words[i]` belongs to pattern id `i` (reported back by [`Keywords::find`]).
    pub fn new(words: &[&str]) -> Result<Keywords, aho_corasick::BuildError> {
        // The stride is the largest that leaves at most `AUTOMATON_WORDS`
        // keywords too short to be indexed at it: one short keyword must
        // not slow the scan for ten thousand long ones.
        let mut lens: Vec<usize> = words.iter().map(|w| w.len()).filter(|&n| n > 0).collect();
        lens.sort_unstable();
        let stride = (1..=MAX_STRIDE)
            .rev()
            .find(|s| lens.partition_point(|&n| n < GRAM + s - 1) <= AUTOMATON_WORDS)
            .unwrap_or(1);
        let (mut long, mut short, mut short_ids) = (Vec::new(), Vec::new(), Vec::new());
        for (i, w) in words.iter().enumerate() {
            match w.len() {
                0 => {}
                n if n < GRAM + stride - 1 => {
                    short.push(*w);
                    short_ids.push(i);
                }
                _ => long.push((w.to_ascii_lowercase().into_bytes().into_boxed_slice(), i)),
            }
        }
        let filter_bits = (long.len() * stride * FILTER_BITS_PER_GRAM)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(12, MAX_FILTER_BITS);
        let mut filter = vec![0u64; 1 << (filter_bits - 6)].into_boxed_slice();
        let mut arena = Vec::new();
        // (gram, entry) for every keyword and offset, grouped by gram in the
        // order leftmost-longest matching tries them: earliest start first,
        // then longest.
        let mut indexed = Vec::with_capacity(long.len() * stride);
        for (word, id) in long {
            let off = arena.len() as u32;
            arena.extend_from_slice(&word);
            // Every long keyword has at least `stride + GRAM - 1` bytes.
            for back in 0..stride {
                let (x, h) = gram(&word, back);
                let k = h >> (64 - filter_bits);
                filter[(k >> 6) as usize] |= 1 << (k & 63);
                let n = word.len();
                let (head, tail) = (word8(&word, 0, n), word8(&word, n.saturating_sub(8), 8));
                let e = Entry { head, tail, off, len: n as u32, id: id as u32, back: back as u32 };
                indexed.push((x, e));
            }
        }
        indexed.sort_unstable_by_key(|(x, e)| (*x, std::cmp::Reverse(e.back), std::cmp::Reverse(e.len)));
        let distinct = indexed.chunk_by(|a, b| a.0 == b.0).count();
        let slot_bits = (2 * distinct).next_power_of_two().trailing_zeros().max(4);
        let mut slots = vec![(0u64, 0u32, 0u32); 1 << slot_bits].into_boxed_slice();
        let mut at = 0;
        for group in indexed.chunk_by(|a, b| a.0 == b.0) {
            let x = group[0].0;
            let mut k = (x.wrapping_mul(MIX) >> (64 - slot_bits)) as usize;
            while slots[k].0 != 0 {
                k = (k + 1) & (slots.len() - 1);
            }
            slots[k] = (x | OCCUPIED, at as u32, group.len() as u32);
            at += group.len();
        }
        let entries = indexed.into_iter().map(|(_, e)| e).collect();
        let short = if short.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(true)
                .build(&short)?;
            Some((ac, short_ids))
        };
        Ok(Keywords { filter, filter_bits, slots, slot_bits, entries, arena: arena.into_boxed_slice(), stride, short })
    }

    /// Calls `found(pattern id, start, end)` for each match: leftmost-longest
    /// and non-overlapping among keywords of a gram or longer, and among the
    /// shorter ones.
    pub fn find(&self, text: &str, mut found: impl FnMut(usize, usize, usize)) {
        if let Some((ac, ids)) = &self.short {
            for m in ac.find_iter(text) {
                found(ids[m.pattern().as_usize()], m.start(), m.end());
            }
        }
        if self.entries.is_empty() {
            return;
        }
        let b = text.as_bytes();
        // The sample at `i` finds keywords starting in `i + 1 - stride ..= i`;
        // past `b.len() - GRAM` no keyword fits.
        let mut i = self.stride - 1;
        while i + GRAM <= b.len() {
            let (x, h) = gram(b, i);
            let k = h >> (64 - self.filter_bits);
            if self.filter[(k >> 6) as usize] & (1 << (k & 63)) != 0 {
                let hit = self.group(x, h).iter().find_map(|e| {
                    let (start, n) = (i.checked_sub(e.back as usize)?, e.len as usize);
                    let end = start + n;
                    // A keyword begins with a lead byte, so bytes equal to it
                    // begin at a character boundary.
                    let equal = end <= b.len()
                        && word8(b, start, n) == e.head
                        && (n <= 8 || word8(b, end - 8, 8) == e.tail)
                        && (n <= 16 || {
                            let middle = e.off as usize + 8..e.off as usize + n - 8;
                            b[start + 8..end - 8].eq_ignore_ascii_case(&self.arena[middle])
                        });
                    equal.then_some((e.id as usize, start, end))
                });
                if let Some((id, start, end)) = hit {
                    found(id, start, end);
                    i = end + self.stride - 1;
                    continue;
                }
            }
            i += self.stride;
        }
    }

    /// The entries indexed under `gram`, whose [`gram`] hash is `hash` (none
    /// for a filter's false hit).
    #[inline]
    fn group(&self, gram: u64, hash: u64) -> &[Entry] {
        let want = gram | OCCUPIED;
        let mut k = (hash >> (64 - self.slot_bits)) as usize;
        loop {
            let (x, at, n) = self.slots[k];
            if x == want {
                return &self.entries[at as usize..(at + n) as usize];
            }
            if x == 0 {
                return &[];
            }
            k = (k + 1) & (self.slots.len() - 1);
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

    /// Random keyword sets of mixed Chinese and ASCII words on text made of
    /// them (dense, overlapping matches): the sampled
    /// words match exactly as a plain automaton over them, and the words
    /// left to the automaton as one over those.
    #[test]
    fn every_stride_agrees_with_a_plain_automaton() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> = "报价单客户合同aB1".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut strides = std::collections::BTreeSet::new();
        for round in 0..400 {
            let chars = 1 + round % 6;
            let words: Vec<String> = (0..1 + rng.gen_range(0..60))
                .map(|_| (0..rng.gen_range(chars..chars + 4)).map(|_| alphabet[rng.gen_range(0..8)]).collect())
                .collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            // Whole keywords, their tails (so that matches overlap) and noise.
            let mut text = String::new();
            for _ in 0..rng.gen_range(0..80) {
                let w = words[rng.gen_range(0..words.len())];
                match rng.gen_range(0..3) {
                    0 => text.push_str(w),
                    1 => text.extend(w.chars().skip(rng.gen_range(0..w.chars().count()))),
                    _ => text.push(alphabet[rng.gen_range(0..alphabet.len())]),
                }
            }
            // ASCII case differs between keywords and text.
            let text: String = text.chars().map(|c| if rng.gen() { c.to_ascii_uppercase() } else { c }).collect();
            let kw = Keywords::new(&words).unwrap();
            strides.insert(kw.stride);
            let sampled = |w: &str| w.len() >= GRAM + kw.stride - 1;
            assert!(words.iter().filter(|w| !sampled(w)).count() <= AUTOMATON_WORDS || kw.stride == 1);
            let mut ours = [Vec::new(), Vec::new()];
            kw.find(&text, |id, a, z| ours[sampled(words[id]) as usize].push((a, z, id)));
            for (side, found) in ours.iter_mut().enumerate() {
                let ids: Vec<usize> = (0..words.len()).filter(|&i| sampled(words[i]) == (side == 1)).collect();
                let plain = AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .ascii_case_insensitive(true)
                    .build(ids.iter().map(|&i| words[i]))
                    .unwrap();
                let theirs: Vec<_> =
                    plain.find_iter(&text).map(|m| (m.start(), m.end(), ids[m.pattern().as_usize()])).collect();
                // Equal words: either id is right.
                let same = |a: &[(usize, usize, usize)], b: &[(usize, usize, usize)]| {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|(x, y)| (x.0, x.1) == (y.0, y.1) && words[x.2].eq_ignore_ascii_case(words[y.2]))
                };
                found.sort();
                assert!(same(found, &theirs), "words {words:?} text {text:?}: {found:?} vs {theirs:?}");
            }
        }
        assert!(strides.len() >= 5, "strides tried: {strides:?}");
    }
}
